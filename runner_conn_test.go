package rivet_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

// watcher is what the watcher actor's connection saw; the connection
// itself lives in the process (a Go value), not in the actor's state.
type watcher struct {
	mu   sync.Mutex
	conn *rivet.Connection
	news []int
}

func (w *watcher) seen() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.news)
}

// watcherDef connects to an enghib actor through its own client and
// records the "news" events it receives; "bump" calls over that socket.
func watcherDef(w *watcher) *rivet.Actor[struct{}, rivet.None, rivet.None] {
	return rivet.NewActor("watcher", rivet.Opts[struct{}]{}).
		Action("hello", func(*rivet.Ctx[struct{}]) string { return "hi" }).
		Action("watch", func(c *rivet.Ctx[struct{}], id string) (string, error) {
			conn, err := c.Client().GetForID("enghib", id, rivet.WithParams("watcher")).Connect(c.Context())
			if err != nil {
				return "", err
			}
			rivet.OnEvent(conn, "news", func(n int) {
				w.mu.Lock()
				w.news = append(w.news, n)
				w.mu.Unlock()
			})
			w.mu.Lock()
			w.conn = conn
			w.mu.Unlock()
			return conn.ID(), nil
		}).
		Action("bump", func(c *rivet.Ctx[struct{}]) (int, error) {
			w.mu.Lock()
			conn := w.conn
			w.mu.Unlock()
			v, err := conn.Call(c.Context(), "bump")
			if err != nil {
				return 0, err
			}
			var st hibConnState
			if err := v.Decode(&st); err != nil {
				return 0, err
			}
			return st.Bumps, nil
		})
}

// TestEngineRunnerActorConnects: in runner mode Handle.Connect from an
// actor goes through the engine (the client connection of rivetclient),
// so actor A on one runner holds a connection to actor B on the other:
// with params (B's connection state), B's events, calls over the socket;
// and the connection survives B sleeping (hibernated by the engine: same
// connection, no connect hook run again) and B moving to the other
// runner when its first runner stops.
func TestEngineRunnerActorConnects(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	var n engHibCounts
	w := &watcher{}
	defs := []rivet.Definition{engHibDef(&n), watcherDef(w)}
	p := startRunnerOf(t, eng, defs...)
	if _, out := engineCall(t, eng, "enghib", "b", "ping"); out["output"] != float64(1) {
		t.Fatalf("ping b: %v", out)
	}
	bID, _ := engineActorIDOf(t, eng, "enghib", "b")
	if !p.Runtime().Engine().Awake(bID) {
		t.Fatal("b is not on runner p")
	}
	q := startRunnerOf(t, eng, defs...)
	t.Cleanup(func() { // before the runners stop
		w.mu.Lock()
		conn := w.conn
		w.mu.Unlock()
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = conn.Close(ctx)
		}
	})
	var a string
	for i := range 8 {
		k := "a" + string(rune('1'+i))
		engineCall(t, eng, "watcher", k, "hello")
		id, _ := engineActorIDOf(t, eng, "watcher", k)
		if q.Runtime().Engine().Awake(id) {
			a = k
			break
		}
	}
	if a == "" {
		t.Fatal("the engine placed no watcher on runner q")
	}

	// A on q connects to B on p: the connect hooks ran with A's params.
	if _, out := engineCall(t, eng, "watcher", a, "watch", bID); out["output"] == nil || out["output"] == "" {
		t.Fatalf("watch: %v", out)
	}
	if got := n.connect.Load(); got != 1 {
		t.Fatalf("connect hooks: %d, want 1", got)
	}
	// A call over the socket sees the connection's state (made from the
	// params); it also orders after the subscription sent before it.
	if _, out := engineCall(t, eng, "watcher", a, "bump"); out["output"] != float64(1) {
		t.Fatalf("bump: %v", out)
	}
	engineCall(t, eng, "enghib", "b", "ping")
	waitEngine(t, "A to receive B's event", func() bool { return slices.Contains(w.seen(), 2) })

	// B sleeps with the connection open; the engine keeps the socket.
	waitEngine(t, "b to sleep", func() bool {
		return n.sleep.Load() >= 1 && !p.Runtime().Engine().Awake(bID) && !q.Runtime().Engine().Awake(bID)
	})
	// A's call over the socket wakes B, on the same connection (its state
	// kept), and B's events still reach A.
	if _, out := engineCall(t, eng, "watcher", a, "bump"); out["output"] != float64(2) {
		t.Fatalf("bump after sleep: %v", out)
	}
	engineCall(t, eng, "enghib", "b", "ping")
	waitEngine(t, "A to receive B's event after its sleep", func() bool { return slices.Contains(w.seen(), 3) })

	// p stops: B (created there) now runs on q, reached through the
	// engine as before.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("stop p: %v", err)
	}
	engineCall(t, eng, "enghib", "b", "ping")
	waitEngine(t, "A to receive B's event after the move", func() bool { return slices.Contains(w.seen(), 4) })
	if !q.Runtime().Engine().Awake(bID) {
		t.Fatal("b is not on runner q after p stopped")
	}
	_, out := engineCall(t, eng, "watcher", a, "bump")
	// At most one reconnect (the client's, as the official client does);
	// without one the connection kept its state.
	switch c := n.connect.Load(); {
	case c == 1 && out["output"] != float64(3):
		t.Fatalf("bump after the move: %v, want 3 (same connection)", out)
	case c == 2 && out["output"] == nil:
		t.Fatalf("bump after the move and a reconnect: %v", out)
	case c > 2:
		t.Fatalf("connect hooks: %d, want at most one reconnect", c)
	}
	if got := w.seen(); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("events A received: %v, want [2 3 4] (each once, in order)", got)
	}
	t.Logf("connect hooks run: %d", n.connect.Load())
}
