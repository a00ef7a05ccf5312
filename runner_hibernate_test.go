package rivet_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/rivetclient"
)

// engHibCounts counts the hook runs of engHibDef.
type engHibCounts struct {
	connect, disconnect, sleep, start atomic.Int32
}

func engHibDef(n *engHibCounts) *rivet.Actor[struct{ Pings int }, hibConnState, rivet.None] {
	type S = struct{ Pings int }
	type Ctx = rivet.Context[S, hibConnState, rivet.None]
	return rivet.NewActor("enghib", rivet.Options[S, hibConnState, rivet.None]{
		SleepTimeout: 500 * time.Millisecond,
		CreateConnState: func(_ *Ctx, p rivet.Value) (hibConnState, error) {
			var name string
			_ = p.Decode(&name)
			return hibConnState{Name: name}, nil
		},
		OnConnect: func(_ *Ctx, c *rivet.Conn[hibConnState]) error {
			if c.State.Name != "" {
				n.connect.Add(1)
			}
			return nil
		},
		OnDisconnect: func(_ *Ctx, c *rivet.Conn[hibConnState]) {
			if c.State.Name != "" {
				n.disconnect.Add(1)
			}
		},
		OnSleep: func(*Ctx) error { n.sleep.Add(1); return nil },
		OnStart: func(*Ctx) error { n.start.Add(1); return nil },
	}).
		Action("bump", func(c *Ctx) (hibConnState, error) {
			c.Conn.State.Bumps++
			return *c.Conn.State, nil
		}).
		Action("ping", func(c *Ctx) int {
			c.State.Pings++
			c.Broadcast("news", c.State.Pings)
			return c.State.Pings
		})
}

// TestEngineRunnerHibernation: through the Rivet Engine, an actor whose
// only activity is an open connection sleeps (onSleep runs, it leaves the
// runner's memory) while the engine keeps the client's socket. The
// connection survives with its id, state and subscriptions, without the
// connect hooks running again: events broadcast after the wake reach it,
// an action it sends while the actor sleeps wakes the actor and is
// handled exactly once, and when the actor wakes on another runner (the
// first one stopped meanwhile) that runner rebuilds the connection from
// its record.
func TestEngineRunnerHibernation(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	var n engHibCounts
	def := engHibDef(&n)
	a := startRunnerOf(t, eng, def)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithEncoding("bare"))
	defer cl.Close()
	h := cl.GetOrCreate("enghib", rivet.Key{"h"}, rivetclient.WithParams("ada"))
	conn := h.Connect()
	defer conn.Close()
	var mu sync.Mutex
	var news []int
	var statuses []rivetclient.Status
	conn.OnStatus(func(s rivetclient.Status) { mu.Lock(); statuses = append(statuses, s); mu.Unlock() })
	conn.On("news", func(args rivet.Args) {
		var v int
		if args.Decode(0, &v) == nil {
			mu.Lock()
			news = append(news, v)
			mu.Unlock()
		}
	})
	bump := func(want int) {
		t.Helper()
		v, err := conn.Call(ctx, "bump")
		if err != nil {
			t.Fatalf("bump: %v", err)
		}
		var got hibConnState
		if err := v.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got != (hibConnState{Name: "ada", Bumps: want}) {
			t.Fatalf("bump = %+v, want Bumps %d (each bump handled once, state kept)", got, want)
		}
	}
	bump(1)
	connID := conn.ID()
	id, _ := engineActorIDOf(t, eng, "enghib", "h")
	asleep := func(sleeps int32) func() bool {
		return func() bool {
			if n.sleep.Load() < sleeps {
				return false
			}
			_, act := engineActorIDOf(t, eng, "enghib", "h")
			return act["sleep_ts"] != nil
		}
	}

	// The open connection does not keep the actor awake.
	waitEngine(t, "the connected actor asleep", asleep(1))
	if a.Runtime().Engine().Awake(id) {
		t.Fatal("the actor is asleep in the engine but still in the runner's memory")
	}
	// A call from another client wakes it; its broadcast reaches the
	// hibernated connection.
	if _, out := engineCall(t, eng, "enghib", "h", "ping"); out["output"] != float64(1) {
		t.Fatalf("ping: %v", out)
	}
	waitEngine(t, "the event on the hibernated connection", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(news) == 1 && news[0] == 1
	})
	bump(2)

	// Asleep again: the connection's own action wakes the actor and is
	// handled once.
	waitEngine(t, "the actor asleep again", asleep(2))
	bump(3)

	// The actor wakes on another runner: B rebuilds the connection from
	// its record.
	waitEngine(t, "the actor asleep a third time", asleep(3))
	b := startRunnerOf(t, eng, def)
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := a.Stop(sctx); err != nil {
		t.Fatalf("stop runner A: %v", err)
	}
	scancel()
	bump(4)
	if !b.Runtime().Engine().Awake(id) {
		t.Fatal("the actor woke, but not on runner B")
	}
	if _, out := engineCall(t, eng, "enghib", "h", "ping"); out["output"] != float64(2) {
		t.Fatalf("ping on B: %v", out)
	}
	waitEngine(t, "the event on the connection restored by B", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(news) == 2 && news[1] == 2
	})
	bump(5)

	if got := conn.ID(); got != connID {
		t.Fatalf("connection id %q after the moves, want %q", got, connID)
	}
	if c, d := n.connect.Load(), n.disconnect.Load(); c != 1 || d != 0 {
		t.Fatalf("onConnect ran %d times and onDisconnect %d times, want 1 and 0", c, d)
	}
	mu.Lock()
	t.Logf("connection statuses %v; onStart ran %d times, onSleep %d", statuses, n.start.Load(), n.sleep.Load())
	mu.Unlock()
	_ = fmt.Sprint()
}
