package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

var errNeedsChild = errors.New("this scenario restarts the server: use -target serve (rivet serve as a child process) or peer")

// durability runs rounds of: callers increment one counter over HTTP; once
// a random number of increments in [k/2, k] has been acknowledged, the
// server is killed with SIGKILL mid-stream; it restarts on the same data
// and the count is read. Every acknowledged increment must be in it
// (r.Lost counts those missing, which must be 0). Increments that were
// applied without being acknowledged (their response was lost in the
// crash) are counted in r.Unacked; there can be at most as many as calls
// that failed (r.InFlight).
func durability(ctx context.Context, s *server, o *options, enc string, callers, k, rounds int, r *result) error {
	if s.proc == nil {
		return errNeedsChild
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	lats := []time.Duration{}
	var elapsed time.Duration
	for round := range rounds {
		client := newClient(s.endpoint, enc, o.noDelay)
		key := rivet.Key{"durability", strconv.Itoa(round), nonce}
		h := client.GetOrCreate("counter", key)
		if _, err := h.Call(ctx, "getCount"); err != nil {
			return fmt.Errorf("round %d: creating the counter: %w", round, err)
		}
		killAt := int64(k/2 + rand.IntN(k/2+1))
		pids := s.proc.pids()
		var acked, maxSeen, failed atomic.Int64
		var killOnce sync.Once
		var killedAt time.Time
		kill := func() {
			killOnce.Do(func() {
				killedAt = time.Now()
				for _, p := range pids {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			})
		}
		mu := sync.Mutex{}
		meter.mark()
		t0 := time.Now()
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for ctx.Err() == nil {
					st := time.Now()
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					v, err := rivetclient.Call[int](cctx, h, "increment", 1)
					cancel()
					if err != nil {
						failed.Add(1)
						return
					}
					d := time.Since(st)
					mu.Lock()
					lats = append(lats, d)
					mu.Unlock()
					for {
						m := maxSeen.Load()
						if int64(v) <= m || maxSeen.CompareAndSwap(m, int64(v)) {
							break
						}
					}
					if acked.Add(1) >= killAt {
						kill()
					}
				}
			})
		}
		wg.Wait()
		kill() // the context ran out before killAt: still crash the server
		elapsed += killedAt.Sub(t0)
		s.proc.reap(pids)
		if err := s.proc.start(ctx); err != nil {
			return fmt.Errorf("round %d: restart after kill -9: %w", round, err)
		}
		observed, err := rivetclient.Call[int](ctx, newClient(s.endpoint, enc, o.noDelay).Get("counter", key), "getCount")
		if err != nil {
			return fmt.Errorf("round %d: reading the count after restart: %w", round, err)
		}
		a, m := int(acked.Load()), int(maxSeen.Load())
		// The counter started at 0 and only this round incremented it, so
		// the count must cover every acknowledged increment and the
		// highest acknowledged value.
		want := max(a, m)
		r.Acked += a
		r.Observed += observed
		r.InFlight += int(failed.Load())
		r.Lost += max(0, want-observed)
		r.Unacked += max(0, observed-a)
		r.Rounds++
		fmt.Fprintf(logOut, "  durability round %d: acknowledged %d (highest value %d), killed, restarted, observed %d, failed calls %d\n", round, a, m, observed, failed.Load())
	}
	summarize(r, lats, elapsed)
	r.N = r.Acked
	r.Note = "acknowledged increments vs count after kill -9 and restart"
	if r.Unacked > r.InFlight {
		return fmt.Errorf("%d unacknowledged increments appeared, more than the %d calls in flight", r.Unacked, r.InFlight)
	}
	return nil
}

// wakeRestart creates n counters (one increment each), stops the server
// gracefully, starts it again and times the first action on each actor,
// sequentially, by key.
func wakeRestart(ctx context.Context, s *server, o *options, enc string, n int, r *result) error {
	if s.proc == nil {
		return errNeedsChild
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	keys := make([]rivet.Key, n)
	for i := range keys {
		keys[i] = rivet.Key{"wake-restart", strconv.Itoa(i), nonce}
	}
	client := newClient(s.endpoint, enc, o.noDelay)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range min(16, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := client.GetOrCreate("counter", keys[i]).Call(ctx, "increment", 1); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("creating %d actors: %w", n, err)
	}
	if err := s.proc.stop(); err != nil {
		return err
	}
	if err := s.proc.start(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	client = newClient(s.endpoint, enc, o.noDelay)
	lats := make([]time.Duration, 0, n)
	meter.mark()
	t0 := time.Now()
	for i := range keys {
		st := time.Now()
		v, err := rivetclient.Call[int](ctx, client.Get("counter", keys[i]), "getCount")
		if err != nil {
			return fmt.Errorf("first call after restart: %w", err)
		}
		if v != 1 {
			r.Lost++
		}
		lats = append(lats, time.Since(st))
	}
	summarize(r, lats, time.Since(t0))
	r.Note = "first action per actor after a graceful restart"
	return nil
}
