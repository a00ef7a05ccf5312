package rivet_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// gatedDriver is a memory driver whose commits can be held (to observe the
// output gate) or failed (to observe recovery).
type gatedDriver struct {
	*rivetmem.Driver
	mu       sync.Mutex
	hold     chan struct{} // non-nil: Commit waits for it to close
	entered  chan struct{}
	failNext atomic.Int32
	commits  atomic.Int64
}

func (d *gatedDriver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	d.mu.Lock()
	hold, entered := d.hold, d.entered
	d.mu.Unlock()
	if hold != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-hold
	}
	if d.failNext.Add(-1) >= 0 {
		return errors.New("injected I/O error")
	}
	d.commits.Add(int64(len(batch)))
	return d.Driver.Commit(ctx, batch)
}

func (d *gatedDriver) holdCommits() (release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hold = make(chan struct{})
	d.entered = make(chan struct{}, 1)
	h := d.hold
	return func() {
		d.mu.Lock()
		d.hold = nil
		d.mu.Unlock()
		close(h)
	}
}

type seenState struct {
	Count int `json:"count"`
}

type seenVars struct{ turns *atomic.Int64 }

func seenDef(turns *atomic.Int64) *rivet.Actor[seenState, rivet.None, seenVars] {
	return rivet.NewActor("seen", rivet.Options[seenState, rivet.None, seenVars]{Vars: seenVars{turns: turns}}).
		Action("increment", func(c *rivet.Context[seenState, rivet.None, seenVars]) int {
			c.Vars.turns.Add(1)
			c.State.Count++
			return c.State.Count
		}).
		Action("get", func(c *rivet.Context[seenState, rivet.None, seenVars]) int {
			c.Vars.turns.Add(1)
			return c.State.Count
		})
}

func startOn(t *testing.T, d rivetdriver.Driver, defs ...rivet.Definition) *rivet.Runtime {
	t.Helper()
	rt, err := rivet.Start(context.Background(), mustRegistry(t, defs...), &rivet.Config{Driver: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background()) })
	return rt
}

// TestOutputGateAndPipelining: a result is not released before its commit
// is durable, yet the actor keeps running turns while earlier commits are
// in flight.
func TestOutputGateAndPipelining(t *testing.T) {
	ctx := ctxT(t)
	d := &gatedDriver{Driver: rivetmem.New()}
	var turns atomic.Int64
	rt := startOn(t, d, seenDef(&turns))
	h := rt.Client().GetOrCreate("seen", rivet.Key{"g"})
	must[int](t)(rivet.Call[int](ctx, h, "increment"))

	release := d.holdCommits()
	results := make(chan int, 3)
	for range 3 {
		go func() {
			v, err := rivet.Call[int](ctx, h, "increment")
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	// All three turns run although the first commit is not durable.
	waitFor(t, func() bool { return turns.Load() == 4 })
	// A read-only turn that saw uncommitted state is held too.
	reads := make(chan int, 1)
	go func() {
		v, _ := rivet.Call[int](ctx, h, "get")
		reads <- v
	}()
	waitFor(t, func() bool { return turns.Load() == 5 })
	select {
	case v := <-results:
		t.Fatalf("result %d released before its commit was durable", v)
	case v := <-reads:
		t.Fatalf("read of uncommitted state (%d) released before commit", v)
	default:
	}
	release()
	sum := 0
	for range 3 {
		sum += <-results
	}
	if sum != 2+3+4 {
		t.Fatalf("results sum %d, want 9", sum)
	}
	if v := <-reads; v != 4 {
		t.Fatalf("read = %d, want 4", v)
	}
}

// TestCommitFailureRestartsFromDurableState: when a commit fails, its
// caller gets an error, later turns built on it fail too, and the actor
// restarts from what is durable.
func TestCommitFailureRestartsFromDurableState(t *testing.T) {
	ctx := ctxT(t)
	d := &gatedDriver{Driver: rivetmem.New()}
	var turns atomic.Int64
	rt := startOn(t, d, seenDef(&turns))
	h := rt.Client().GetOrCreate("seen", rivet.Key{"f"})
	must[int](t)(rivet.Call[int](ctx, h, "increment")) // durable: 1

	d.failNext.Store(1)
	if _, err := h.Call(ctx, "increment"); !errors.Is(err, rivet.ErrCommitFailed) {
		t.Fatalf("call whose commit failed: %v, want commit_failed", err)
	}
	// The failed increment is gone: the actor restarted from count 1.
	if got := must[int](t)(rivet.Call[int](ctx, h, "increment")); got != 2 {
		t.Fatalf("after failure increment = %d, want 2", got)
	}
	if got := must[int](t)(rivet.Call[int](ctx, h, "get")); got != 2 {
		t.Fatalf("get = %d, want 2", got)
	}
}

// TestGroupCommitAndChangeDetection: concurrent turns of many actors share
// driver calls, and turns that change nothing write nothing.
func TestGroupCommitAndChangeDetection(t *testing.T) {
	ctx := ctxT(t)
	d := &gatedDriver{Driver: rivetmem.New()}
	var turns atomic.Int64
	rt := startOn(t, d, seenDef(&turns))
	const actors = 20
	hs := make([]*rivet.Handle, actors)
	for i := range hs {
		hs[i] = rt.Client().GetOrCreate("seen", rivet.Key{string(rune('a' + i))})
		must[int](t)(rivet.Call[int](ctx, hs[i], "increment"))
	}
	m := rt.Engine().Metrics()
	commits0, batches0, submitted0 := m.Commits.Load(), m.Batches.Load(), m.Submitted.Load()
	release := d.holdCommits()
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Go(func() { must[int](t)(rivet.Call[int](ctx, h, "increment")) })
	}
	<-d.entered // the first batch is in the driver; the rest queue behind it
	// Every commit is queued (a turn counts itself before its commit is
	// submitted, so the turn count alone would race).
	waitFor(t, func() bool { return m.Submitted.Load()-submitted0 == actors })
	release()
	wg.Wait()
	commits, batches := m.Commits.Load()-commits0, m.Batches.Load()-batches0
	if commits != actors {
		t.Fatalf("commits = %d, want %d", commits, actors)
	}
	if batches > 2 {
		t.Fatalf("%d commits took %d batches; want them grouped into at most 2", commits, batches)
	}
	before := m.Commits.Load()
	for _, h := range hs {
		must[int](t)(rivet.Call[int](ctx, h, "get"))
	}
	if m.Commits.Load() != before {
		t.Fatal("read-only turns wrote commits")
	}
}
