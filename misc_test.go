package rivet_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
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

var gates = map[string]chan struct{}{"x": make(chan struct{})}

func gateFor(what string) chan struct{} { return gates[what] }

func TestBackgroundWorkKeepsAwakeAndReenters(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), bgDef, counterDef)
	h := k.Client.GetOrCreate("bg", rivet.Key{"a"})
	must[rivet.Value](t)(h.Call(ctx, "work", "x"))
	id := must[string](t)(h.ID(ctx))
	k.Advance(time.Hour)
	if !k.Awake(id) {
		t.Fatal("actor slept while background work was running")
	}
	close(gates["x"])
	waitFor(t, func() bool {
		got, err := rivet.Call[[]string](ctx, h, "done")
		return err == nil && slices.Equal(got, []string{"x"})
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
	ctx := ctxT(t)
	d := newMem()
	rt := startOn(t, d, stopDef)
	h := rt.Client().GetOrCreate("stopper", nil)
	must[int](t)(rivet.Call[int](ctx, h, "slept"))
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Call(ctx, "slept"); !errors.Is(err, rivet.ErrStopping) {
		t.Fatalf("call after Stop: %v, want stopping", err)
	}
	rt2 := startOn(t, d, stopDef)
	if got := must[int](t)(rivet.Call[int](ctx, rt2.Client().GetOrCreate("stopper", nil), "slept")); got != 1 {
		t.Fatalf("onSleep's change after restart = %d, want 1", got)
	}
	_ = context.Background
}
