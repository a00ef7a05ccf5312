// Command bench is rivetgo's load generator. It speaks RivetKit's client
// protocol (through rivetclient, json, cbor or bare) to any endpoint, or
// starts the server it measures itself, on loopback:
//
//	go run ./bench -scenario all -target all -peer-dir DIR   # the report run (bench/peer/run.sh)
//	go run ./bench -scenario hot -target serve -encoding json,bare
//	go run ./bench -scenario ws-rtt -target http://127.0.0.1:6420
//
// Targets: baseline (plain in-memory maps behind net/http and a WebSocket
// library: the ceiling), rivet (the runtime in this process, embedded
// store), serve (`rivet serve` as a child process on a temporary data
// directory; its RSS is read from /proc), peer (RivetKit 2.3.19: node
// bench/peer/server.mjs, which runs the rivet-engine binary from npm), or
// an endpoint URL. Every row starts a fresh server.
//
// Scenarios (all bounded in count and time):
//
//	hot           one counter, -c concurrent HTTP callers, -n increments
//	ws-rtt        -n sequential increments on one connection
//	fanout        -conns connections on one chatRoom, -n messages from one
//	              sender: events delivered/s, delivery latency, events lost
//	spread        -n distinct counters, -c callers, one increment each
//	              (getOrCreate): creations/s, latency
//	cold          -n sequential first calls on new keys
//	wake          -n actors put to sleep (POST /actors/{id}/sleep), then
//	              one call each
//	wake-restart  -n actors, graceful restart, first call on each
//	durability    -rounds of: -c callers increment one counter, kill -9
//	              after a random number (≤ -n) of acknowledgements,
//	              restart, compare the count with what was acknowledged
//	idle          -n awake idle actors: server RSS (then after they sleep)
//	conns         -conns idle WebSocket connections: server memory per connection
//	sleeping      -n actors asleep on disk (created in-process by `bench
//	              populate`): server RSS
//
// Each row prints a line, a JSON line with its parameters and the command
// that reproduces it; the run ends with a table and, for several targets,
// the ratio table.
package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

// loopAction is what hot and ws-rtt call in their loop: increment(1), a
// durable write, or with -read-only getCount(), which commits nothing
// (the runtime's cost without the fsync).
var (
	loopAction = "increment"
	loopArgs   = []any{1}
)

func summarize(r *result, lats []time.Duration, elapsed time.Duration) {
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(float64(len(lats))*p))].Microseconds())
	}
	meter.done()
	r.OK = len(lats)
	r.Seconds = elapsed.Seconds()
	r.PerSec = float64(len(lats)) / elapsed.Seconds()
	r.P50us, r.P90us, r.P99us, r.P999us = pct(0.5), pct(0.9), pct(0.99), pct(0.999)
}

// warmUp makes a scenario's first call, the one that creates its actor,
// up to three times, each bounded by 20 s: behind rivet-engine a creation
// can stall and fail with pegboard.route_resolve_query_timeout after 15 s
// (the cold scenario measures creations; the others measure the steady
// state).
func warmUp(ctx context.Context, call func(context.Context) error) error {
	var err error
	for range 3 {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = call(cctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("first call (3 attempts): %w", err)
}

// hot is hotActors on one counter (key ["hot"]).
func hot(ctx context.Context, c *rivetclient.Client, callers, n int, r *result) error {
	return hotActors(ctx, c, callers, n, 1, r)
}

func wsRTT(ctx context.Context, c *rivetclient.Client, n int, r *result) error {
	conn := c.GetOrCreate("counter", rivet.Key{"rtt"}).Connect()
	defer conn.Close()
	if err := warmUp(ctx, func(ctx context.Context) error { _, err := conn.Call(ctx, "increment", 1); return err }); err != nil {
		return err
	}
	lats := make([]time.Duration, 0, n)
	meter.mark()
	t0 := time.Now()
	for range n {
		s := time.Now()
		if _, err := conn.Call(ctx, loopAction, loopArgs...); err != nil {
			return err
		}
		lats = append(lats, time.Since(s))
	}
	summarize(r, lats, time.Since(t0))
	return nil
}

func fanout(ctx context.Context, c *rivetclient.Client, conns, n int, r *result) error {
	room := c.GetOrCreate("chatRoom", rivet.Key{"fanout"})
	// Create the room before the connections open: this scenario measures
	// delivery, not a creation racing a thousand WebSocket opens.
	if err := warmUp(ctx, func(ctx context.Context) error { _, err := room.Call(ctx, "getHistory"); return err }); err != nil {
		return err
	}
	var mu sync.Mutex
	sent := make([]time.Time, n)
	var lats []time.Duration
	var lastEvent time.Time
	var got, subscribed atomic.Int64
	ready := make([]atomic.Bool, conns)
	firstErrs := make([]atomic.Pointer[string], conns)
	cs := make([]*rivetclient.Connection, conns)
	for k := range conns {
		conn := room.Connect()
		defer conn.Close()
		cs[k] = conn
		conn.OnError(func(err error) {
			e := err.Error()
			firstErrs[k].CompareAndSwap(nil, &e)
		})
		conn.On("newMessage", func(a rivet.Args) {
			// Only the text: RivetKit sends ts as a float (Date.now() is a
			// JavaScript number).
			var m struct {
				Text string `json:"text"`
			}
			if a.Decode(0, &m) != nil {
				return
			}
			i, err := strconv.Atoi(m.Text)
			if err != nil || i < 0 || i >= n {
				if m.Text == "ready" && !ready[k].Swap(true) {
					subscribed.Add(1)
				}
				return
			}
			mu.Lock()
			now := time.Now()
			lats = append(lats, now.Sub(sent[i]))
			lastEvent = now
			mu.Unlock()
			got.Add(1)
		})
	}
	// A connection is subscribed once it has seen a message: send "ready"
	// until every connection has seen one, for at most a minute (or half
	// the time left); events for connections that never subscribed count
	// as lost.
	subscribeBy := time.Now().Add(time.Minute)
	if d, ok := ctx.Deadline(); ok && time.Until(d)/2 < time.Minute {
		subscribeBy = time.Now().Add(time.Until(d) / 2)
	}
	var sendErrs int
	var firstErr error
	for subscribed.Load() < int64(conns) && time.Now().Before(subscribeBy) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := room.Call(cctx, "sendMessage", "bench", "ready")
		cancel()
		if err != nil && ctx.Err() != nil {
			return err
		} else if err != nil { // RivetKit under load: try again
			sendErrs++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		deadline := time.Now().Add(250 * time.Millisecond)
		for subscribed.Load() < int64(conns) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if s := subscribed.Load(); s == 0 {
		return fmt.Errorf("no connection of %d received a message", conns)
	} else if s < int64(conns) {
		// Why: each such connection's status and first error.
		why := map[string]int{}
		for k := range conns {
			if ready[k].Load() {
				continue
			}
			e := "no error"
			if p := firstErrs[k].Load(); p != nil {
				e = *p
			}
			why[fmt.Sprintf("status %v, %s", cs[k].Status(), e)]++
		}
		r.Note = fmt.Sprintf("%d of %d connections never received a message in the subscribe phase; their events count as lost (%v)", int64(conns)-s, conns, why)
	}
	meter.mark()
	t0 := time.Now()
	for i := range n {
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := room.Call(cctx, "sendMessage", "bench", strconv.Itoa(i))
		cancel()
		if err != nil { // its events count as lost
			sendErrs++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if sendErrs > 0 {
		r.Note = strings.TrimPrefix(r.Note+fmt.Sprintf("; %d sendMessage calls failed, first: %v", sendErrs, firstErr), "; ")
	}
	// Wait until every event arrived, or until none has arrived for 5 s
	// (the rest are lost).
	want := int64(n * conns)
	last, lastChange := got.Load(), time.Now()
	for got.Load() < want && ctx.Err() == nil && time.Since(lastChange) < 5*time.Second {
		time.Sleep(2 * time.Millisecond)
		if g := got.Load(); g != last {
			last, lastChange = g, time.Now()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The rate runs from the first send to the last delivery.
	end := lastEvent
	if end.IsZero() {
		end = time.Now()
	}
	summarize(r, lats, end.Sub(t0))
	r.N = int(want)
	r.Messages = n
	r.Lost = int(want - got.Load())
	return nil
}

// spread calls n distinct counters once each from c callers.
func spread(ctx context.Context, client *rivetclient.Client, prefix string, c, n int, r *result) error {
	var next atomic.Int64
	lats := make([][]time.Duration, c)
	var firstErr atomic.Value
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	meter.mark()
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				s := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := client.GetOrCreate("counter", rivet.Key{prefix, strconv.Itoa(i), nonce}).Call(cctx, "increment", 1)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				lats[g] = append(lats[g], time.Since(s))
			}
		})
	}
	wg.Wait()
	summarize(r, slices.Concat(lats...), time.Since(t0))
	err, _ := firstErr.Load().(error)
	return creationFailures(r, n, err)
}

// creationFailures records calls that failed to create their actor: they
// count as lost and the first error goes into the note. Only a run in
// which nothing succeeded is an error.
func creationFailures(r *result, n int, first error) error {
	r.Lost = n - r.OK
	if first == nil {
		return nil
	}
	r.Note = fmt.Sprintf("%d of %d calls failed; first error: %v", r.Lost, n, first)
	if r.OK == 0 {
		return fmt.Errorf("all %d calls failed: %w", n, first)
	}
	return nil
}

// cold measures n sequential first calls on new keys (each bounded by
// 20 s; failures are counted, not fatal).
func cold(ctx context.Context, client *rivetclient.Client, n int, r *result) error {
	lats := make([]time.Duration, 0, n)
	var first error
	meter.mark()
	t0 := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		s := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := client.GetOrCreate("counter", rivet.Key{"cold", strconv.Itoa(i), strconv.FormatInt(t0.UnixNano(), 36)}).Call(cctx, "increment", 1)
		cancel()
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		lats = append(lats, time.Since(s))
	}
	summarize(r, lats, time.Since(t0))
	return creationFailures(r, n, first)
}

// wake creates n actors, puts each to sleep, then measures one call each.
func wake(ctx context.Context, client *rivetclient.Client, endpoint string, n int, r *result) error {
	hs := make([]*rivetclient.Handle, n)
	for i := range hs {
		h := client.GetOrCreate("counter", rivet.Key{"wake", strconv.Itoa(i), strconv.FormatInt(time.Now().UnixNano(), 36)})
		id, err := h.ID(ctx)
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/actors/"+id+"/sleep?namespace=default", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("sleep %s: %s", id, resp.Status)
		}
		hs[i] = client.GetForID("counter", id)
	}
	lats := make([]time.Duration, 0, n)
	meter.mark()
	t0 := time.Now()
	for _, h := range hs {
		s := time.Now()
		if _, err := h.Call(ctx, "getCount"); err != nil {
			return err
		}
		lats = append(lats, time.Since(s))
	}
	summarize(r, lats, time.Since(t0))
	return nil
}
