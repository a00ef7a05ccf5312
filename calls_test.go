package rivet_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

// Call cycles and async actions (docs/concepts/calls.md).

// cycleEndpoint is the server the "net" actions call through, set by the
// test that serves them (over HTTP, with rivetclient).
var cycleEndpoint atomic.Pointer[string]

func callNet(ctx context.Context, name, key, action string, args ...any) (int, error) {
	c := rivetclient.New(*cycleEndpoint.Load())
	return rivetclient.Call[int](ctx, c.GetOrCreate(name, rivet.Key{key}), action, args...)
}

var cycA = rivet.NewActor("cycA", rivet.Opts[cycState]{}).
	Action("get", func(c *rivet.Ctx[cycState]) int { return c.State.Count }).
	// A -> B -> A, in a turn: a cycle.
	Action("viaB", func(c *rivet.Ctx[cycState], key string) (int, error) {
		return rivet.Call[int](c.Context(), c.Client().GetOrCreate("cycB", rivet.Key{key}), "callA", c.Key()[0])
	}).
	// A -> A, in a turn: a cycle.
	Action("self", func(c *rivet.Ctx[cycState]) (int, error) {
		return rivet.Call[int](c.Context(), c.Client().GetOrCreate("cycA", c.Key()), "get")
	}).
	// A -> B -> A over HTTP: a cycle found through the call-chain header.
	Action("viaBNet", func(c *rivet.Ctx[cycState], key string) (int, error) {
		return callNet(c.Context(), "cycB", key, "callANet", c.Key()[0])
	}).
	// A -> B -> A from an async action: A is not held, so B's call runs.
	Action("viaBAsync", func(a *rivet.Async[cycState], key string) (int, error) {
		if err := a.Turn(func(c *rivet.Ctx[cycState]) error { c.State.Count = 7; return nil }); err != nil {
			return 0, err
		}
		return rivet.Call[int](a.Context(), a.Client().GetOrCreate("cycB", rivet.Key{key}), "callA", a.Key()[0])
	})

var cycB = rivet.NewActor("cycB", rivet.Opts[cycState]{}).
	Action("callA", func(c *rivet.Ctx[cycState], key string) (int, error) {
		return rivet.Call[int](c.Context(), c.Client().GetOrCreate("cycA", rivet.Key{key}), "get")
	}).
	Action("callANet", func(c *rivet.Ctx[cycState], key string) (int, error) {
		return callNet(c.Context(), "cycA", key, "get")
	})

// TestCallCycleFailsAtOnce: A -> B -> A and A -> A from inside a turn fail
// at once with actor.call_cycle naming the cycle (they used to hang until
// the action timeout); the actors keep serving.
func TestCallCycleFailsAtOnce(t *testing.T) {
	t.Parallel()
	k := kit(t, newMem(), cycA, cycB)
	ctx := ctxT(t) // far shorter than the 60 s action timeout
	a := k.Client.GetOrCreate("cycA", rivet.Key{"a"})

	_, err := rivet.Call[int](ctx, a, "viaB", "b")
	if !errors.Is(err, rivet.ErrCallCycle) || !strings.Contains(err.Error(), "cycA[a] -> cycB[b] -> cycA[a]") {
		t.Fatalf("A -> B -> A: %v", err)
	}
	_, err = rivet.Call[int](ctx, a, "self")
	if !errors.Is(err, rivet.ErrCallCycle) || !strings.Contains(err.Error(), "cycA[a] -> cycA[a]") {
		t.Fatalf("A -> A: %v", err)
	}
	var re *rivet.Error
	if !errors.As(err, &re) || re.Metadata == nil {
		t.Fatalf("no metadata: %#v", err)
	}
	if n := must[int](t)(rivet.Call[int](ctx, a, "get")); n != 0 {
		t.Fatalf("get after cycles: %d", n)
	}
}

// TestCallCycleOverHTTP: the call chain travels in X-Rivet-Call-Chain,
// so a cycle through the gateway (rivetclient calls from actions) fails
// at once too.
func TestCallCycleOverHTTP(t *testing.T) {
	k := kit(t, newMem(), cycA, cycB)
	srv := httptest.NewServer(k.Runtime.Handler())
	t.Cleanup(srv.Close)
	cycleEndpoint.Store(&srv.URL)
	_, err := rivet.Call[int](ctxT(t), k.Client.GetOrCreate("cycA", rivet.Key{"n"}), "viaBNet", "n")
	if !errors.Is(err, rivet.ErrCallCycle) || !strings.Contains(err.Error(), "call_cycle") {
		t.Fatalf("A -> B -> A over HTTP: %v", err)
	}
}

// TestAsyncActionCallsBack: an async action does not hold its actor, so
// A -> B -> A runs, and B sees what A's turn committed.
func TestAsyncActionCallsBack(t *testing.T) {
	t.Parallel()
	k := kit(t, newMem(), cycA, cycB)
	n, err := rivet.Call[int](ctxT(t), k.Client.GetOrCreate("cycA", rivet.Key{"x"}), "viaBAsync", "y")
	if err != nil || n != 7 {
		t.Fatalf("A -> B -> A from an async action: %d, %v", n, err)
	}
}

type cycState struct {
	Count int `json:"count"`
}

// slowGate releases the "slow" async action's outside work, per key.
var slowGates = struct {
	started, release chan struct{}
}{make(chan struct{}, 1), make(chan struct{})}

var slowActor = rivet.NewActor("slowAsync", rivet.Opts[cycState]{}).
	Action("get", func(c *rivet.Ctx[cycState]) int { return c.State.Count }).
	Action("inc", func(c *rivet.Ctx[cycState]) int { c.State.Count++; return c.State.Count }).
	// slow adds 10, waits outside the actor, then adds 100 to whatever
	// the count is then.
	Action("slow", func(a *rivet.Async[cycState]) (int, error) {
		if err := a.Turn(func(c *rivet.Ctx[cycState]) error { c.State.Count += 10; return nil }); err != nil {
			return 0, err
		}
		slowGates.started <- struct{}{}
		select {
		case <-slowGates.release:
		case <-a.Context().Done():
			return 0, a.Context().Err()
		}
		var n int
		err := a.Turn(func(c *rivet.Ctx[cycState]) error { c.State.Count += 100; n = c.State.Count; return nil })
		return n, err
	}).
	Action("bad", func(a *rivet.Async[cycState], n int) (int, error) {
		err := a.Turn(func(c *rivet.Ctx[cycState]) error {
			c.State.Count += 1000
			return rivet.UserError("no", rivet.WithCode("nope"))
		})
		return 0, err
	})

// TestAsyncActionFreesActor: while an async action waits outside its
// actor, other callers get answers and see what its first turn committed;
// its next turn sees their changes; a failed turn rolls back only itself.
func TestAsyncActionFreesActor(t *testing.T) {
	t.Parallel()
	k := kit(t, newMem(), slowActor)
	ctx := ctxT(t)
	h := k.Client.GetOrCreate("slowAsync", rivet.Key{"s"})
	done := make(chan error, 1)
	var got int
	go func() {
		var err error
		got, err = rivet.Call[int](ctx, h, "slow")
		done <- err
	}()
	<-slowGates.started
	if n := must[int](t)(rivet.Call[int](ctx, h, "get")); n != 10 {
		t.Fatalf("another caller during the await sees %d, want 10 (the first turn, committed)", n)
	}
	if n := must[int](t)(rivet.Call[int](ctx, h, "inc")); n != 11 {
		t.Fatalf("inc during the await: %d", n)
	}
	close(slowGates.release)
	if err := <-done; err != nil || got != 111 {
		t.Fatalf("slow: %d, %v; want 111", got, err)
	}
	_, err := rivet.Call[int](ctx, h, "bad", 1)
	if !errors.Is(err, &rivet.Error{Group: "user", Code: "nope"}) {
		t.Fatalf("bad: %v", err)
	}
	if n := must[int](t)(rivet.Call[int](ctx, h, "get")); n != 111 {
		t.Fatalf("after a failed turn: %d, want 111", n)
	}
}

// connSeen records, per key, whether an async action's turns had the
// caller's connection, and its disconnects.
var connSeen = struct {
	inTurn      chan bool
	disconnects chan string
}{make(chan bool, 8), make(chan string, 8)}

var hooked = rivet.NewActor("asyncHooked", rivet.Opts[cycState]{
	OnConnect:    func(c *rivet.Ctx[cycState], _ *rivet.Conn[rivet.None]) error { return nil },
	OnDisconnect: func(c *rivet.Ctx[cycState], _ *rivet.Conn[rivet.None]) { connSeen.disconnects <- "disconnect" },
}).Action("work", func(a *rivet.Async[cycState], n int) (int, error) {
	for range 2 {
		if err := a.Turn(func(c *rivet.Ctx[cycState]) error {
			connSeen.inTurn <- c.Conn != nil
			c.State.Count += n
			return nil
		}); err != nil {
			return 0, err
		}
	}
	var out int
	return out, a.Turn(func(c *rivet.Ctx[cycState]) error { out = c.State.Count; return nil })
})

// TestAsyncActionOverHTTP: an async action called through the gateway
// (rivetclient, a stateless call with connection hooks) has its caller's
// connection in every turn, which disconnects once, after the action.
func TestAsyncActionOverHTTP(t *testing.T) {
	t.Parallel()
	k := kit(t, newMem(), hooked)
	srv := httptest.NewServer(k.Runtime.Handler())
	t.Cleanup(srv.Close)
	c := rivetclient.New(srv.URL)
	n, err := rivetclient.Call[int](ctxT(t), c.GetOrCreate("asyncHooked", rivet.Key{"h"}), "work", 3)
	if err != nil || n != 6 {
		t.Fatalf("work: %d, %v", n, err)
	}
	for range 2 {
		if !<-connSeen.inTurn {
			t.Fatal("an async turn had no connection")
		}
	}
	if ev := <-connSeen.disconnects; ev != "disconnect" {
		t.Fatal(ev)
	}
	select {
	case <-connSeen.disconnects:
		t.Fatal("disconnected twice")
	default:
	}
}

var sleepyErr = make(chan error, 1)

var sleepy = rivet.NewActor("asyncSleepy", rivet.Opts[cycState]{}).
	Action("get", func(c *rivet.Ctx[cycState]) int { return c.State.Count }).
	Action("sleepMidway", func(a *rivet.Async[cycState]) (int, error) {
		if err := a.Turn(func(c *rivet.Ctx[cycState]) error { c.State.Count = 1; c.Sleep(); return nil }); err != nil {
			sleepyErr <- fmt.Errorf("first turn: %w", err)
			return 0, err
		}
		<-a.Context().Done() // the actor stops: the action's context ends
		err := a.Turn(func(c *rivet.Ctx[cycState]) error { c.State.Count = 2; return nil })
		sleepyErr <- err
		return 0, err
	})

// TestAsyncActionActorSleeps: an actor put to sleep during an async
// action cancels its context; its later turns fail, the turns before stay
// committed, and the next call wakes the actor with them.
func TestAsyncActionActorSleeps(t *testing.T) {
	t.Parallel()
	k := kit(t, newMem(), sleepy)
	ctx := ctxT(t)
	h := k.Client.GetOrCreate("asyncSleepy", rivet.Key{"z"})
	if _, err := rivet.Call[int](ctx, h, "sleepMidway"); err == nil {
		t.Fatal("sleepMidway succeeded after its actor stopped")
	}
	if err := <-sleepyErr; err == nil || strings.HasPrefix(err.Error(), "first turn") {
		t.Fatalf("second turn: %v", err)
	}
	if n := must[int](t)(rivet.Call[int](ctx, h, "get")); n != 1 {
		t.Fatalf("after the wake: %d, want 1", n)
	}
}
