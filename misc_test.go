package rivet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type bgState struct {
	Done []string `json:"done"`
}

var bgDef = rivet.NewActor("bg", rivet.Opts[bgState]{SleepTimeout: time.Second}).
	Action("work", func(c *rivet.Ctx[bgState], what string) {
		c.RunInBackground(func(bg *rivet.Background[bgState, rivet.None, rivet.None]) {
			// Slow I/O outside the turn, then re-enter with a new turn.
			<-gateFor(what)
			if err := bg.Enter(func(c *rivet.Ctx[bgState]) error {
				c.State.Done = append(c.State.Done, what)
				return nil
			}); err != nil {
				panic(err)
			}
		})
	}).
	Action("done", func(c *rivet.Ctx[bgState]) []string { return c.State.Done }).
	Action("callOther", func(c *rivet.Ctx[bgState], key string) (int, error) {
		return rivet.Call[int](c.Context(), c.Client().GetOrCreate("counter", rivet.Key{key}), "increment", 10)
	}).
	Action("noop", func(c *rivet.Ctx[bgState]) {})

// gates are channels background work waits on, by name; tests make a
// fresh one per run with newGate.
var gates sync.Map

func gateFor(name string) chan struct{} {
	g, _ := gates.Load(name)
	return g.(chan struct{})
}

func newGate(t *testing.T) (name string, open func()) {
	name = t.Name()
	g := make(chan struct{})
	gates.Store(name, g)
	return name, func() { close(g) }
}

func TestBackgroundWorkKeepsAwakeAndReenters(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), bgDef, counterDef)
	h := k.Client.GetOrCreate("bg", rivet.Key{"a"})
	gate, open := newGate(t)
	must[rivet.Value](t)(h.Call(ctx, "work", gate))
	id := must[string](t)(h.ID(ctx))
	k.Advance(time.Hour)
	if !k.Awake(id) {
		t.Fatal("actor slept while background work was running")
	}
	open()
	waitFor(t, func() bool {
		got, err := rivet.Call[[]string](ctx, h, "done")
		return err == nil && slices.Equal(got, []string{gate})
	})
	waitFor(t, func() bool { k.Advance(2 * time.Second); return !k.Awake(id) })
}

func TestActorToActorCall(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), bgDef, counterDef)
	got := must[int](t)(rivet.Call[int](ctx, k.Client.GetOrCreate("bg", rivet.Key{"a"}), "callOther", "z"))
	if got != 10 {
		t.Fatalf("callOther = %d", got)
	}
	if got := must[int](t)(rivet.Call[int](ctx, k.Client.GetOrCreate("counter", rivet.Key{"z"}), "getCount")); got != 10 {
		t.Fatalf("counter = %d", got)
	}
}

var slowDef = rivet.NewActor("slowpoke", rivet.Opts[struct{}]{ActionTimeout: 50 * time.Millisecond}).
	Action("slow", func(c *rivet.Ctx[struct{}]) error {
		<-c.Context().Done()
		return c.Context().Err()
	}).
	Action("fast", func(c *rivet.Ctx[struct{}]) int { return 1 })

func TestActionTimeout(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), slowDef)
	h := k.Client.GetOrCreate("slowpoke", nil)
	if _, err := h.Call(ctx, "slow"); !errors.Is(err, rivet.ErrActionTimedOut) {
		t.Fatalf("slow: %v, want action_timed_out", err)
	}
	// The actor is still usable.
	if got := must[int](t)(rivet.Call[int](ctx, h, "fast")); got != 1 {
		t.Fatal(got)
	}
}

type stopState struct {
	Slept int `json:"slept"`
}

var stopDef = rivet.NewActor("stopper", rivet.Opts[stopState]{
	OnSleep: func(c *rivet.Ctx[stopState]) error { c.State.Slept++; return nil },
}).Action("slept", func(c *rivet.Ctx[stopState]) int { return c.State.Slept })

func TestGracefulShutdownRunsOnSleepAndCommits(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		rt := startOn(t, open(t), stopDef)
		h := rt.Client().GetOrCreate("stopper", nil)
		must[int](t)(rivet.Call[int](ctx, h, "slept"))
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Call(ctx, "slept"); !errors.Is(err, rivet.ErrStopping) {
			t.Fatalf("call after Stop: %v, want stopping", err)
		}
		rt2 := startOn(t, open(t), stopDef) // the embedded store is reopened
		if got := must[int](t)(rivet.Call[int](ctx, rt2.Client().GetOrCreate("stopper", nil), "slept")); got != 1 {
			t.Fatalf("onSleep's change after restart = %d, want 1", got)
		}
	})
}

type saveState struct {
	Step int `json:"step"`
}

// saveDef's "twoSteps" makes step 1 durable with SaveState, reports it,
// waits, then sets step 2 and fails or succeeds as told.
func saveDef(saved chan<- int, proceed <-chan struct{}) *rivet.Actor[saveState, rivet.None, rivet.None] {
	return rivet.NewActor("saver", rivet.Opts[saveState]{}).
		Action("twoSteps", func(c *rivet.Ctx[saveState], fail bool) error {
			c.State.Step = 1
			if err := c.KV().Put(rivet.K("step"), 1); err != nil {
				return err
			}
			if err := c.SaveState(); err != nil {
				return err
			}
			saved <- c.State.Step
			<-proceed
			c.State.Step = 2
			if fail {
				return rivet.UserError("step 2 failed")
			}
			return nil
		}).
		Action("step", func(c *rivet.Ctx[saveState]) (int, error) {
			var kv int
			if _, err := c.KV().Get(rivet.K("step"), &kv); err != nil {
				return 0, err
			}
			if kv != 1 {
				return 0, fmt.Errorf("kv step = %d", kv)
			}
			return c.State.Step, nil
		})
}

// SaveState commits mid-turn: it waits for durability, and what it saved
// survives the rest of the turn failing.
func TestSaveState(t *testing.T) {
	ctx := ctxT(t)
	d := &gatedDriver{Driver: rivetmem.New()}
	saved, proceed := make(chan int, 1), make(chan struct{})
	rt := startOn(t, d, saveDef(saved, proceed))
	h := rt.Client().GetOrCreate("saver", nil)
	must[string](t)(h.ID(ctx))

	release := d.holdCommits()
	errc := make(chan error, 1)
	go func() {
		_, err := h.Call(ctx, "twoSteps", true)
		errc <- err
	}()
	<-d.entered // SaveState's commit reached the store...
	select {
	case <-saved:
		t.Fatal("SaveState returned before its commit was durable")
	default:
	}
	release() // ...and returns once it is durable.
	if got := <-saved; got != 1 {
		t.Fatalf("saved step %d", got)
	}
	close(proceed)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "step 2 failed") {
		t.Fatalf("twoSteps: %v, want the user error", err)
	}
	// The failure rolled back step 2 only.
	if got := must[int](t)(rivet.Call[int](ctx, h, "step")); got != 1 {
		t.Fatalf("step after a failure past SaveState = %d, want 1", got)
	}
	// And step 1 is durable: a new runtime on the same store sees it.
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rt2 := startOn(t, d.Driver, saveDef(saved, proceed))
	if got := must[int](t)(rivet.Call[int](ctx, rt2.Client().GetOrCreate("saver", nil), "step")); got != 1 {
		t.Fatalf("step after restart = %d, want 1", got)
	}
}

var keepDef = rivet.NewActor("keeper", rivet.Opts[struct{}]{SleepTimeout: time.Second}).
	Action("start", func(c *rivet.Ctx[struct{}], key string) {
		c.KeepAwake(func(ctx context.Context) error {
			select {
			case <-gateFor(key):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})

// KeepAwake keeps the actor awake until its work returns; then it sleeps.
func TestKeepAwake(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), keepDef)
	h := k.Client.GetOrCreate("keeper", nil)
	gate, open := newGate(t)
	must[rivet.Value](t)(h.Call(ctx, "start", gate))
	id := must[string](t)(h.ID(ctx))
	k.Advance(time.Hour)
	if !k.Awake(id) {
		t.Fatal("actor slept while KeepAwake work was running")
	}
	open()
	waitFor(t, func() bool { k.Advance(2 * time.Second); return !k.Awake(id) })
}

type abortState struct {
	Aborted int `json:"aborted"`
}

// abortDef's background task waits for the actor to stop.
func abortDef(aborted chan<- string) *rivet.Actor[abortState, rivet.None, rivet.None] {
	return rivet.NewActor("aborter", rivet.Opts[abortState]{}).
		Action("start", func(c *rivet.Ctx[abortState], label string) {
			c.RunInBackground(func(bg *rivet.Background[abortState, rivet.None, rivet.None]) {
				<-bg.Context().Done()
				aborted <- label
			})
		}).
		Action("sleep", func(c *rivet.Ctx[abortState]) { c.Sleep() }).
		Action("destroy", func(c *rivet.Ctx[abortState]) { c.Destroy() })
}

// Background work is aborted (its context canceled) when its actor sleeps
// or is destroyed, and finishing it does not wake the actor again.
func TestBackgroundAbortedWhenActorStops(t *testing.T) {
	ctx := ctxT(t)
	aborted := make(chan string, 2)
	k := kit(t, newMem(), abortDef(aborted))
	h := k.Client.GetOrCreate("aborter", nil)
	id := must[string](t)(h.ID(ctx))
	must[rivet.Value](t)(h.Call(ctx, "start", "sleep"))
	must[rivet.Value](t)(h.Call(ctx, "sleep"))
	if got := <-aborted; got != "sleep" {
		t.Fatal(got)
	}
	waitFor(t, func() bool { return !k.Awake(id) })
	must[rivet.Value](t)(h.Call(ctx, "start", "destroy"))
	must[rivet.Value](t)(h.Call(ctx, "destroy"))
	if got := <-aborted; got != "destroy" {
		t.Fatal(got)
	}
}
