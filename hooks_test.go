package rivet_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

type hookState struct {
	Count int `json:"count"`
	Slept int `json:"slept"`
}

type hookCtx = rivet.Context[hookState, rivet.None, rivet.None]

const (
	hookLimit = 50 * time.Millisecond
	hookSleep = time.Minute
)

// block is what a stuck hook does: wait for its context to end (polite),
// or ignore it and wait for release, closed when the test ends (rude).
func block(ctx context.Context, rude bool, release <-chan struct{}) {
	if rude {
		<-release
		return
	}
	<-ctx.Done()
}

// stuckDef is an actor whose hook named hook blocks (see block) while
// stuck is set or when the connection's params are "stuck". Every hook
// has a short time limit.
func stuckDef(hook string, rude bool, stuck *atomic.Bool, release <-chan struct{}) *rivet.Actor[hookState, rivet.None, rivet.None] {
	on := func(c *hookCtx, name string) {
		if hook != name {
			return
		}
		var p string
		if c.Conn != nil {
			_ = c.Conn.Params().Decode(&p)
		}
		if stuck.Load() || p == "stuck" {
			c.State.Count += 100 // never committed: the turn is dropped
			block(c.Context(), rude, release)
		}
	}
	params := func(c *hookCtx, v rivet.Value) {
		var p string
		_ = v.Decode(&p)
		if p == "stuck" {
			c.State.Count += 100
			block(c.Context(), rude, release)
		}
	}
	return rivet.NewActor("stuck", rivet.Options[hookState, rivet.None, rivet.None]{
		SleepTimeout:           hookSleep,
		CreateVarsTimeout:      hookLimit,
		OnBeforeConnectTimeout: hookLimit,
		CreateConnStateTimeout: hookLimit,
		OnConnectTimeout:       hookLimit,
		SleepGracePeriod:       hookLimit,
		CreateVars: func(c *hookCtx) (rivet.None, error) {
			on(c, "createVars")
			return rivet.None{}, nil
		},
		OnBeforeConnect: func(c *hookCtx, p rivet.Value) error {
			if hook == "onBeforeConnect" {
				params(c, p)
			}
			return nil
		},
		CreateConnState: func(c *hookCtx, p rivet.Value) (rivet.None, error) {
			if hook == "createConnState" {
				params(c, p)
			}
			return rivet.None{}, nil
		},
		OnConnect: func(c *hookCtx, _ *rivet.Conn[rivet.None]) error {
			on(c, "onConnect")
			return nil
		},
		OnSleep: func(c *hookCtx) error {
			c.State.Slept++
			on(c, "onSleep")
			return nil
		},
		OnDestroy: func(c *hookCtx) error {
			on(c, "onDestroy")
			return nil
		},
	}).
		Action("inc", func(c *hookCtx) int { c.State.Count++; return c.State.Count }).
		Action("get", func(c *hookCtx) hookState { return *c.State }).
		Action("sleep", func(c *hookCtx) { c.Sleep() }).
		Action("destroy", func(c *hookCtx) { c.Destroy() })
}

// wantTimedOut checks that err is actor.callback_timed_out naming hook.
func wantTimedOut(t *testing.T, err error, hook string) {
	t.Helper()
	var e *rivet.Error
	if !errors.Is(err, rivet.ErrCallbackTimedOut) || !errors.As(err, &e) {
		t.Fatalf("got %v, want actor.callback_timed_out", err)
	}
	md, _ := e.Metadata.(map[string]any)
	if md["callback_name"] != hook {
		t.Fatalf("metadata %v, want callback_name %q", e.Metadata, hook)
	}
}

// A connection hook or CreateVars that does not return in time fails its
// caller with actor.callback_timed_out, whether it heeds its context or
// not; the actor then answers the next call from its durable state (the
// stuck turn's change is dropped) and still falls asleep when idle.
func TestHookTimeouts(t *testing.T) {
	for _, hook := range []string{"onBeforeConnect", "createConnState", "onConnect", "createVars"} {
		for _, rude := range []bool{false, true} {
			name := hook + "/polite"
			if rude {
				name = hook + "/ignores-context"
			}
			t.Run(name, func(t *testing.T) {
				ctx := ctxT(t)
				release := make(chan struct{})
				var stuck atomic.Bool
				k := kit(t, newMem(), stuckDef(hook, rude, &stuck, release))
				t.Cleanup(func() { close(release) })
				h := k.Client.GetOrCreate("stuck", nil)
				id := must[string](t)(h.ID(ctx))
				if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 1 {
					t.Fatalf("inc = %d", got)
				}

				if hook == "createVars" {
					// CreateVars runs when the actor starts: put it to
					// sleep, then wake it with a stuck CreateVars.
					must[rivet.Value](t)(h.Call(ctx, "sleep"))
					waitFor(t, func() bool { return !k.Awake(id) })
					stuck.Store(true)
					_, err := h.Call(ctx, "inc")
					wantTimedOut(t, err, hook)
					stuck.Store(false)
				} else {
					sh := k.Client.GetOrCreate("stuck", nil, rivet.WithParams("stuck"))
					_, err := sh.Call(ctx, "inc") // a stateless call runs the connection hooks
					wantTimedOut(t, err, hook)
					_, err = sh.Connect(ctx)
					wantTimedOut(t, err, hook)
				}

				// The actor is not wedged, and restarted from durable state.
				if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 2 {
					t.Fatalf("inc after the timeout = %d, want 2", got)
				}
				// It still falls asleep when idle.
				k.Advance(2 * hookSleep)
				waitFor(t, func() bool { k.Advance(2 * hookSleep); return !k.Awake(id) })
				if got := must[hookState](t)(rivet.Call[hookState](ctx, h, "get")); got.Count != 2 || got.Slept == 0 {
					t.Fatalf("state after sleep = %+v", got)
				}
			})
		}
	}
}

// Over the wire a connection hook's timeout reaches the client as
// actor.callback_timed_out.
func TestHookTimeoutOverHTTP(t *testing.T) {
	ctx := ctxT(t)
	release := make(chan struct{})
	var stuck atomic.Bool
	k := kit(t, newMem(), stuckDef("onConnect", true, &stuck, release))
	t.Cleanup(func() { close(release) })
	srv := httptest.NewServer(k.Runtime.Handler())
	t.Cleanup(srv.Close)
	c := rivetclient.New(srv.URL)
	t.Cleanup(func() { _ = c.Close() })
	_, err := c.GetOrCreate("stuck", nil, rivetclient.WithParams("stuck")).Call(ctx, "inc")
	wantTimedOut(t, err, "onConnect")
	if got := must[int](t)(rivetclient.Call[int](ctx, c.GetOrCreate("stuck", nil), "inc")); got != 1 {
		t.Fatalf("inc after the timeout = %d, want 1", got)
	}
}

// OnSleep and OnDestroy are bounded by SleepGracePeriod: a stuck one does
// not keep the actor in memory, and its changes are not kept.
func TestStopHookTimeouts(t *testing.T) {
	for _, rude := range []bool{false, true} {
		t.Run(map[bool]string{false: "polite", true: "ignores-context"}[rude], func(t *testing.T) {
			ctx := ctxT(t)
			release := make(chan struct{})
			var stuck atomic.Bool
			stuck.Store(true)
			k := kit(t, newMem(), stuckDef("onSleep", rude, &stuck, release))
			t.Cleanup(func() { close(release) })
			h := k.Client.GetOrCreate("stuck", nil)
			id := must[string](t)(h.ID(ctx))
			must[int](t)(rivet.Call[int](ctx, h, "inc"))
			k.Advance(2 * hookSleep) // falls asleep despite OnSleep
			waitFor(t, func() bool { return !k.Awake(id) })
			stuck.Store(false)
			if got := must[hookState](t)(rivet.Call[hookState](ctx, h, "get")); got != (hookState{Count: 1}) {
				t.Fatalf("state after a timed-out OnSleep = %+v, want its changes dropped", got)
			}
		})
	}

	ctx := ctxT(t)
	release := make(chan struct{})
	var stuck atomic.Bool
	stuck.Store(true)
	k := kit(t, newMem(), stuckDef("onDestroy", true, &stuck, release))
	t.Cleanup(func() { close(release) })
	h := k.Client.GetOrCreate("stuck", nil)
	id := must[string](t)(h.ID(ctx))
	must[rivet.Value](t)(h.Call(ctx, "destroy"))
	if _, err := k.Client.GetForID("stuck", id).Call(ctx, "get"); !errors.Is(err, rivet.ErrActorNotFound) {
		t.Fatalf("after a stuck OnDestroy: %v, want actor.not_found", err)
	}
}

type runState struct {
	Runs  int `json:"runs"`
	Ticks int `json:"ticks"`
}

type runBg = rivet.Background[runState, rivet.None, rivet.None]

// runDef's Run handler counts its starts, then ticks each time tick
// receives until its context is canceled; it reports how it ended on
// ended.
func runDef(tick <-chan struct{}, ended chan<- error, fail error) *rivet.Actor[runState, rivet.None, rivet.None] {
	return rivet.NewActor("runner", rivet.Opts[runState]{
		SleepTimeout:     time.Minute,
		SleepGracePeriod: time.Second,
		Run: func(bg *runBg) error {
			if err := bg.Enter(func(c *rivet.Ctx[runState]) error { c.State.Runs++; return nil }); err != nil {
				ended <- err
				return err
			}
			if fail != nil {
				ended <- fail
				if fail.Error() == "panic" {
					panic("run handler exploded")
				}
				return fail
			}
			for {
				select {
				case <-bg.Context().Done():
					ended <- bg.Context().Err()
					return bg.Context().Err()
				case <-tick:
					if err := bg.Enter(func(c *rivet.Ctx[runState]) error { c.State.Ticks++; return nil }); err != nil {
						ended <- err
						return err
					}
				}
			}
		},
	}).
		Action("get", func(c *rivet.Ctx[runState]) runState { return *c.State }).
		Action("sleep", func(c *rivet.Ctx[runState]) { c.Sleep() })
}

// Run starts after every start, keeps the actor awake while it runs, is
// canceled when the actor sleeps (which waits for it), and starts again
// on the next wake.
func TestRunHandler(t *testing.T) {
	ctx := ctxT(t)
	tick, ended := make(chan struct{}), make(chan error, 4)
	k := kit(t, newMem(), runDef(tick, ended, nil))
	h := k.Client.GetOrCreate("runner", nil)
	id := must[string](t)(h.ID(ctx))
	tick <- struct{}{} // Run started and is waiting for ticks
	waitFor(t, func() bool { return must[runState](t)(rivet.Call[runState](ctx, h, "get")).Ticks == 1 })
	k.Advance(time.Hour)
	if !k.Awake(id) {
		t.Fatal("the actor slept while its Run handler was running")
	}
	must[rivet.Value](t)(h.Call(ctx, "sleep"))
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v, want its context canceled", err)
	}
	waitFor(t, func() bool { return !k.Awake(id) })
	waitFor(t, func() bool { return must[runState](t)(rivet.Call[runState](ctx, h, "get")).Runs == 2 })
}

// Enter from a Run handler whose actor is stopping returns the canceled
// context's error, not core.internal_error.
func TestRunHandlerEnterAfterStop(t *testing.T) {
	ctx := ctxT(t)
	ended := make(chan error, 1)
	k := kit(t, newMem(), rivet.NewActor("runner", rivet.Opts[runState]{
		SleepTimeout: time.Minute,
		Run: func(bg *runBg) error {
			<-bg.Context().Done()
			err := bg.Enter(func(c *rivet.Ctx[runState]) error { c.State.Ticks++; return nil })
			ended <- err
			return err
		},
	}).Action("sleep", func(c *rivet.Ctx[runState]) { c.Sleep() }))
	h := k.Client.GetOrCreate("runner", nil)
	must[rivet.Value](t)(h.Call(ctx, "sleep"))
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("Enter after the stop returned %v, want context.Canceled", err)
	}
}

// A Run handler that fails or panics is logged; the actor goes on and
// sleeps when idle.
func TestRunHandlerFails(t *testing.T) {
	for _, fail := range []string{"boom", "panic"} {
		t.Run(fail, func(t *testing.T) {
			ctx := ctxT(t)
			ended := make(chan error, 4)
			k := kit(t, newMem(), runDef(nil, ended, errors.New(fail)))
			h := k.Client.GetOrCreate("runner", nil)
			id := must[string](t)(h.ID(ctx))
			<-ended
			waitFor(t, func() bool { k.Advance(2 * time.Minute); return !k.Awake(id) })
			if got := must[runState](t)(rivet.Call[runState](ctx, h, "get")); got.Runs != 1 {
				t.Fatalf("state = %+v", got)
			}
		})
	}
}

type waitState struct {
	Done int `json:"done"`
}

// WaitUntil does not keep the actor awake, but the actor waits for it
// (its context canceled) when it falls asleep; work that ignores the
// cancellation holds the stop only for SleepGracePeriod.
func TestWaitUntil(t *testing.T) {
	ctx := ctxT(t)
	ended := make(chan error, 1)
	release := make(chan struct{})
	def := rivet.NewActor("waiter", rivet.Opts[waitState]{SleepTimeout: time.Minute, SleepGracePeriod: 50 * time.Millisecond}).
		Action("polite", func(c *rivet.Ctx[waitState]) {
			c.WaitUntil(func(ctx context.Context) error {
				<-ctx.Done()
				ended <- ctx.Err()
				return nil
			})
		}).
		Action("rude", func(c *rivet.Ctx[waitState]) {
			c.WaitUntil(func(context.Context) error { <-release; return nil })
		})
	k := kit(t, newMem(), def)
	t.Cleanup(func() { close(release) }) // before the runtime stops, which waits for it
	h := k.Client.GetOrCreate("waiter", nil)
	id := must[string](t)(h.ID(ctx))
	must[rivet.Value](t)(h.Call(ctx, "polite"))
	k.Advance(2 * time.Minute) // returns once the actor has slept
	if k.Awake(id) {
		t.Fatal("WaitUntil work kept the actor awake")
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	default:
		t.Fatal("the actor slept without waiting for its WaitUntil work")
	}
	must[rivet.Value](t)(h.Call(ctx, "rude"))
	k.Advance(2 * time.Minute)
	if k.Awake(id) {
		t.Fatal("WaitUntil work that ignores its context kept the actor awake")
	}
}

// A hook that ignores its timeout and goes on after the actor moved on
// has no effect: its KV writes, broadcasts and state changes go nowhere,
// and it does not race the actor's next incarnation.
func TestAbandonedHookHasNoEffect(t *testing.T) {
	ctx := ctxT(t)
	release, finished := make(chan struct{}), make(chan error, 1)
	def := rivet.NewActor("zombie", rivet.Opts[hookState]{
		OnConnectTimeout: hookLimit,
		OnConnect: func(c *rivet.Ctx[hookState], conn *rivet.Conn[rivet.None]) error {
			var p string
			_ = conn.Params().Decode(&p)
			if p != "stuck" {
				return nil
			}
			<-release // ignores c.Context()
			c.State.Count = 1000
			c.Broadcast("zombie")
			_ = conn.Send("zombie")
			finished <- c.KV().Put(rivet.K("zombie"), []byte("x"))
			return nil
		},
	}).
		Action("inc", func(c *rivet.Ctx[hookState]) int { c.State.Count++; return c.State.Count }).
		Action("zombie", func(c *rivet.Ctx[hookState]) (bool, error) {
			var v []byte
			return c.KV().Get(rivet.K("zombie"), &v)
		})
	k := kit(t, newMem(), def)
	h := k.Client.GetOrCreate("zombie", nil)
	if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 1 {
		t.Fatal(got)
	}
	_, err := k.Client.GetOrCreate("zombie", nil, rivet.WithParams("stuck")).Call(ctx, "inc")
	wantTimedOut(t, err, "onConnect")
	if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 2 {
		t.Fatalf("inc = %d, want 2", got)
	}
	close(release)
	if err := <-finished; !errors.Is(err, rivet.ErrCallbackTimedOut) {
		t.Fatalf("KV put of an abandoned hook: %v, want actor.callback_timed_out", err)
	}
	if must[bool](t)(rivet.Call[bool](ctx, h, "zombie")) {
		t.Fatal("an abandoned hook's KV write was committed")
	}
	if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 3 {
		t.Fatalf("inc = %d, want 3: an abandoned hook changed the state", got)
	}
}

// OnDisconnect is bounded by OnConnectTimeout, as in RivetKit: a stuck
// one does not wedge the actor.
func TestOnDisconnectTimeout(t *testing.T) {
	ctx := ctxT(t)
	release := make(chan struct{})
	def := rivet.NewActor("leaver", rivet.Opts[hookState]{
		SleepTimeout:     hookSleep,
		OnConnectTimeout: hookLimit,
		OnDisconnect: func(c *rivet.Ctx[hookState], conn *rivet.Conn[rivet.None]) {
			var p string
			if _ = conn.Params().Decode(&p); p == "stuck" {
				c.State.Count += 100
				<-release // ignores c.Context()
			}
		},
	}).Action("inc", func(c *rivet.Ctx[hookState]) int { c.State.Count++; return c.State.Count })
	k := kit(t, newMem(), def)
	t.Cleanup(func() { close(release) })
	h := k.Client.GetOrCreate("leaver", nil)
	id := must[string](t)(h.ID(ctx))
	conn := must[*rivet.Connection](t)(k.Client.GetOrCreate("leaver", nil, rivet.WithParams("stuck")).Connect(ctx))
	if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 1 {
		t.Fatal(got)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := must[int](t)(rivet.Call[int](ctx, h, "inc")); got != 2 {
		t.Fatalf("inc after a stuck OnDisconnect = %d, want 2", got)
	}
	waitFor(t, func() bool { k.Advance(2 * hookSleep); return !k.Awake(id) })
}

// A bounded hook may call runtime methods that run user code which calls
// runtime methods again: SaveState runs OnStateChange, which broadcasts.
func TestGuardedHookNestedCalls(t *testing.T) {
	ctx := ctxT(t)
	def := rivet.NewActor("nested", rivet.Opts[hookState]{
		OnStateChange: func(c *rivet.Ctx[hookState], s *hookState) { c.Broadcast("changed", s.Count) },
		OnConnect: func(c *rivet.Ctx[hookState], _ *rivet.Conn[rivet.None]) error {
			c.State.Count++
			return c.SaveState()
		},
	}).Action("get", func(c *rivet.Ctx[hookState]) int { return c.State.Count })
	k := kit(t, newMem(), def)
	h := k.Client.GetOrCreate("nested", nil)
	conn := must[*rivet.Connection](t)(h.Connect(ctx))
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if got := must[int](t)(rivet.Call[int](ctx, h, "get")); got < 1 {
		t.Fatalf("count = %d", got)
	}
}
