package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettype"
)

// blocker is an actor whose "block" action holds the actor until the test
// releases it and whose "inc" counts the calls that ran.
func blocker(entered chan<- struct{}, release <-chan struct{}) hooked {
	return hooked{actions: map[string]func(*Turn, *uint64) (any, error){
		"block": func(_ *Turn, n *uint64) (any, error) {
			entered <- struct{}{}
			<-release
			return *n, nil
		},
		"inc":  func(_ *Turn, n *uint64) (any, error) { *n++; return *n, nil },
		"read": func(_ *Turn, n *uint64) (any, error) { return *n, nil },
	}}
}

func startWith(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.Driver = rivetmem.New()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

func callCtx(ctx context.Context, e *Engine, id, action string) (uint64, error) {
	out, err := e.Call(ctx, id, nil, nil, action, nil, func(v any) ([]byte, error) { return counter(v.(uint64)), nil }, 0)
	if err != nil {
		return 0, err
	}
	return decodeCounter(out), nil
}

func decodeCounter(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

// queued waits until the actor's mailbox holds n jobs.
func queued(t *testing.T, e *Engine, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.mu.Lock()
		h := e.mu.hosts[id]
		e.mu.Unlock()
		l := 0
		if h != nil {
			h.mb.mu.Lock()
			l = len(h.mb.items)
			h.mb.mu.Unlock()
		}
		if l == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailbox of %s holds %d jobs, want %d", id, l, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdActor starts "block" on the actor and returns once it runs; the
// returned func releases it and waits for its answer.
func holdActor(t *testing.T, e *Engine, id string, entered <-chan struct{}, release chan<- struct{}) func() {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := callCtx(context.Background(), e, id, "block")
		done <- err
	}()
	<-entered
	return func() {
		close(release)
		if err := <-done; err != nil {
			t.Errorf("block: %v", err)
		}
	}
}

// A call whose caller gave up (context canceled) or ran out of time
// while it waited in the mailbox never runs: the mutation it carries is
// not applied, and the calls of callers still waiting run in order.
func TestShedCallsOfGoneCallers(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	e := startWith(t, Config{Behaviors: []Behavior{blocker(entered, release)}})
	ctx := context.Background()
	rec, _, err := e.Create(ctx, "default", "hooked", []string{"x"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	unblock := holdActor(t, e, rec.ID, entered, release)

	// 5 callers that will give up, 1 whose deadline passes, 3 that wait.
	var wg sync.WaitGroup
	gone, cancelGone := context.WithCancel(ctx)
	errs := make(chan error, 9)
	for i := range 9 {
		if i < 5 {
			wg.Go(func() { _, err := callCtx(gone, e, rec.ID, "inc"); errs <- err })
		} else if i == 5 {
			wg.Go(func() {
				_, err := e.Call(ctx, rec.ID, nil, nil, "inc", nil, func(v any) ([]byte, error) { return counter(v.(uint64)), nil }, 50*time.Millisecond)
				errs <- err
			})
		} else {
			wg.Go(func() { _, err := callCtx(ctx, e, rec.ID, "inc"); errs <- err })
		}
	}
	queued(t, e, rec.ID, 9)
	cancelGone()
	// Wait until the timed call's deadline has passed.
	for i := 0; i < 6; i++ {
		if err := <-errs; !errors.Is(err, context.Canceled) && !errors.Is(err, rivettype.ErrActionTimedOut) {
			t.Fatalf("a caller that gave up got %v", err)
		}
	}
	unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a waiting caller got %v", err)
		}
	}
	n, err := callCtx(ctx, e, rec.ID, "read")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("count = %d: the actor ran %d calls, want only the 3 whose callers waited", n, n)
	}
}

// A call that waited longer than MaxQueueTime fails with actor.overloaded
// without running; a call that arrives when the estimated wait (calls
// ahead × recent time per call) exceeds MaxQueueTime is refused at once.
func TestMaxQueueTime(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	const maxWait = 100 * time.Millisecond
	e := startWith(t, Config{Behaviors: []Behavior{blocker(entered, release)}, MaxQueueTime: maxWait})
	ctx := context.Background()
	rec, _, err := e.Create(ctx, "default", "hooked", []string{"x"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// Make the recent time per job short: an idle actor's calls are fast.
	for range 4 {
		if _, err := callCtx(ctx, e, rec.ID, "read"); err != nil {
			t.Fatal(err)
		}
	}
	unblock := holdActor(t, e, rec.ID, entered, release)
	waited := make(chan error, 1)
	go func() { _, err := callCtx(ctx, e, rec.ID, "inc"); waited <- err }()
	queued(t, e, rec.ID, 1)
	start := time.Now()
	for time.Since(start) <= 2*maxWait {
		time.Sleep(10 * time.Millisecond)
	}
	unblock() // "block" ran for more than 2×maxWait: the estimate is now long
	err = <-waited
	if !errors.Is(err, rivettype.ErrMailboxFull) {
		t.Fatalf("call that waited past max_queue_time: %v, want actor.overloaded", err)
	}
	t.Log(err)
	if n, _ := callCtx(ctx, e, rec.ID, "read"); n != 0 {
		t.Fatalf("the shed call ran: count %d", n)
	}

	if got := e.Metrics().Shed.Load(); got != 1 {
		t.Fatalf("shed = %d, want 1", got)
	}
}

// mailboxOf returns the actor's mailbox (its host must exist).
func (e *Engine) mailboxOf(id string) *mailbox {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.hosts[id].mb
}

// Admission by estimated wait: a call that would wait longer than
// MaxQueueTime (calls ahead × recent time per job) is refused at once,
// before it is queued; an idle actor admits a call whatever its recent
// time per job.
func TestMaxQueueTimeAdmission(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	e := startWith(t, Config{Behaviors: []Behavior{blocker(entered, release)}, MaxQueueTime: time.Second})
	ctx := context.Background()
	rec, _, err := e.Create(ctx, "default", "hooked", []string{"x"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := callCtx(ctx, e, rec.ID, "read"); err != nil {
		t.Fatal(err)
	}
	mb := e.mailboxOf(rec.ID)
	unblock := holdActor(t, e, rec.ID, entered, release)
	// Recent calls took 400 ms each (set here rather than waited for).
	mb.perJob.Store(int64(400 * time.Millisecond))
	var wg sync.WaitGroup
	for range 3 { // 0, 1 and 2 calls ahead: 0, 400 and 800 ms ≤ 1 s
		wg.Go(func() {
			if _, err := callCtx(ctx, e, rec.ID, "inc"); err != nil {
				t.Errorf("admitted call: %v", err)
			}
		})
	}
	queued(t, e, rec.ID, 3)
	mb.perJob.Store(int64(400 * time.Millisecond))
	start := time.Now()
	_, err = callCtx(ctx, e, rec.ID, "inc") // 3 ahead: 1.2 s > 1 s
	if !errors.Is(err, rivettype.ErrMailboxFull) || !strings.Contains(err.Error(), "max_queue_time") {
		t.Fatalf("call estimated to wait 1.2 s: %v, want actor.overloaded naming max_queue_time", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Logf("refusal took %s (loaded machine?)", d)
	}
	queued(t, e, rec.ID, 3) // the refused call was never queued
	unblock()
	wg.Wait()
	if n, err := callCtx(ctx, e, rec.ID, "read"); err != nil || n != 3 {
		t.Fatalf("count = %d, %v; want the 3 admitted calls only", n, err)
	}
	if got := e.Metrics().Refused.Load(); got != 1 {
		t.Fatalf("refused = %d, want 1", got)
	}
}

// A hot actor cannot starve the rest: while one actor is saturated by
// callers running CPU-bound turns (its mailbox never empties), calls to
// other actors still complete, each within the hot phase; their latency
// is logged.
func TestHotActorDoesNotStarveOthers(t *testing.T) {
	spin := func(_ *Turn, n *uint64) (any, error) {
		for s := time.Now(); time.Since(s) < time.Millisecond; {
		}
		*n++
		return *n, nil
	}
	b := hooked{actions: map[string]func(*Turn, *uint64) (any, error){
		"spin": spin,
		"inc":  func(_ *Turn, n *uint64) (any, error) { *n++; return *n, nil },
	}}
	e := startWith(t, Config{Behaviors: []Behavior{b}, MaxQueueTime: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := func(k string) string {
		rec, _, err := e.Create(ctx, "default", "hooked", []string{k}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	hot := id("hot")
	cold := make([]string, 10)
	for i := range cold {
		cold[i] = id(string(rune('a' + i)))
	}
	hotCtx, stopHot := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopHot()
	const callers = 64
	for range callers {
		wg.Go(func() {
			for hotCtx.Err() == nil {
				_, _ = callCtx(hotCtx, e, hot, "spin")
			}
		})
	}
	// The hot actor is saturated: most of its callers are waiting.
	for e.Metrics().Waiting.Load() < callers/2 {
		if ctx.Err() != nil {
			t.Fatal("the hot actor never saturated")
		}
		time.Sleep(time.Millisecond)
	}
	var lats []time.Duration
	for i := range 50 {
		s := time.Now()
		if _, err := callCtx(ctx, e, cold[i%len(cold)], "inc"); err != nil {
			t.Fatal(err)
		}
		lats = append(lats, time.Since(s))
		if w := e.Metrics().Waiting.Load(); w < callers/4 {
			t.Fatalf("the hot actor's backlog fell to %d: the other calls were not measured under its load", w)
		}
	}
	stopHot()
	slices.Sort(lats)
	t.Logf("50 calls to 10 other actors while one actor had a backlog of ~%d CPU-bound calls: p50 %s, p99 %s, max %s", callers, lats[len(lats)/2], lats[len(lats)*99/100], lats[len(lats)-1])
}
