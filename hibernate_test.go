package rivet_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettest"
)

type hibConnState struct {
	Name  string `json:"name"`
	Bumps int    `json:"bumps"`
}

// hibCounts counts hook runs of hibDef.
type hibCounts struct {
	beforeConnect, createConnState, connect, disconnect, sleep, start atomic.Int32
	lastDisconnect                                                    atomic.Value // hibConnState
}

const hibSleep = 10 * time.Second

func hibDef(n *hibCounts, keepAwake bool) *rivet.Actor[struct{ Pings int }, hibConnState, rivet.None] {
	type S = struct{ Pings int }
	type Ctx = rivet.Context[S, hibConnState, rivet.None]
	return rivet.NewActor("hib", rivet.Options[S, hibConnState, rivet.None]{
		SleepTimeout:            hibSleep,
		KeepAwakeWhileConnected: keepAwake,
		// The hooks count only named connections: stateless calls
		// (no params) run them too.
		OnBeforeConnect: func(_ *Ctx, p rivet.Value) error {
			var name string
			if _ = p.Decode(&name); name != "" {
				n.beforeConnect.Add(1)
			}
			return nil
		},
		CreateConnState: func(_ *Ctx, p rivet.Value) (hibConnState, error) {
			var name string
			if _ = p.Decode(&name); name != "" {
				n.createConnState.Add(1)
			}
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
				n.lastDisconnect.Store(*c.State)
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
		}).
		Action("names", func(c *Ctx) []string {
			var out []string
			for _, cn := range c.Conns() {
				out = append(out, cn.State.Name)
				cn.State.Bumps += 10 // changed through Conns: persisted too
			}
			return out
		})
}

// A connected client with an event subscription survives its actor's
// sleep: the actor leaves memory (onSleep runs) while the connection stays
// open; the next call wakes it with the connection rebuilt (state and
// subscriptions) without running the connect hooks again, and events
// broadcast after the wake reach it.
func TestConnectionHibernates(t *testing.T) {
	ctx := ctxT(t)
	var n hibCounts
	k := kit(t, rivetmem.New(), hibDef(&n, false))
	h := k.Client.GetOrCreate("hib", nil, rivet.WithParams("ada"))
	id := must[string](t)(h.ID(ctx))
	conn := must[*rivet.Connection](t)(h.Connect(ctx))
	news := make(chan int, 16)
	rivet.OnEvent(conn, "news", func(v int) { news <- v })
	if got := must[rivet.Value](t)(conn.Call(ctx, "bump")); decodeAs[hibConnState](t, got) != (hibConnState{Name: "ada", Bumps: 1}) {
		t.Fatalf("bump = %s", got)
	}

	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })
	if n.sleep.Load() != 1 {
		t.Fatalf("onSleep ran %d times, want 1", n.sleep.Load())
	}
	if p := k.Runtime.Engine().Parked(); p != 1 {
		t.Fatalf("%d connections kept open for sleeping actors, want 1", p)
	}

	// A call from another client wakes the actor; its broadcast reaches
	// the hibernated connection.
	if got := must[int](t)(rivet.Call[int](ctx, k.Client.GetOrCreate("hib", nil), "ping")); got != 1 {
		t.Fatalf("ping = %d", got)
	}
	select {
	case v := <-news:
		if v != 1 {
			t.Fatalf("news = %d, want 1", v)
		}
	case <-ctx.Done():
		t.Fatal("no event after the wake")
	}
	if got := decodeAs[hibConnState](t, must[rivet.Value](t)(conn.Call(ctx, "bump"))); got != (hibConnState{Name: "ada", Bumps: 2}) {
		t.Fatalf("bump after wake = %+v, want the state kept through sleep", got)
	}
	if a, b, c := n.beforeConnect.Load(), n.createConnState.Load(), n.connect.Load(); a != 1 || b != 1 || c != 1 {
		t.Fatalf("connect hooks ran %d/%d/%d times, want once each", a, b, c)
	}
	if n.start.Load() != 2 {
		t.Fatalf("onStart ran %d times, want 2", n.start.Load())
	}

	// Sleep again; the connection's own call wakes the actor.
	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })
	if got := decodeAs[hibConnState](t, must[rivet.Value](t)(conn.Call(ctx, "bump"))); got.Bumps != 3 {
		t.Fatalf("bump after second wake = %+v", got)
	}
	// State changed through Conns() is kept too.
	must[rivet.Value](t)(k.Client.GetOrCreate("hib", nil).Call(ctx, "names"))
	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })

	// Closing while asleep wakes the actor for onDisconnect, which sees
	// the restored state; the record is gone.
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n.disconnect.Load() != 1 {
		t.Fatalf("onDisconnect ran %d times, want 1", n.disconnect.Load())
	}
	if got := n.lastDisconnect.Load().(hibConnState); got != (hibConnState{Name: "ada", Bumps: 13}) {
		t.Fatalf("onDisconnect saw %+v", got)
	}
	// The disconnect turn's commit is not awaited by Close.
	waitFor(t, func() bool { return len(connRecords(t, k.Driver, id)) == 0 })
	if k.Runtime.Engine().Parked() != 0 {
		t.Fatal("a closed connection is still parked")
	}
}

// With KeepAwakeWhileConnected an open connection keeps the actor awake,
// as in RivetKit.
func TestKeepAwakeWhileConnected(t *testing.T) {
	ctx := ctxT(t)
	var n hibCounts
	k := kit(t, rivetmem.New(), hibDef(&n, true))
	h := k.Client.GetOrCreate("hib", nil, rivet.WithParams("bo"))
	id := must[string](t)(h.ID(ctx))
	conn := must[*rivet.Connection](t)(h.Connect(ctx))
	for range 5 {
		k.Advance(2 * hibSleep)
	}
	if !k.Awake(id) || n.sleep.Load() != 0 {
		t.Fatal("a connected actor slept despite KeepAwakeWhileConnected")
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })
}

// Connection records are written in the turn that changed the connection
// and survive a restart; a record whose socket did not come back is
// disconnected (onDisconnect with the stored state) when the actor next
// wakes, and deleted.
func TestConnectionRecordsSurviveRestart(t *testing.T) {
	ctx := ctxT(t)
	d := rivetmem.New()
	var n hibCounts
	reg := mustRegistry(t, hibDef(&n, false))
	k1 := rivettest.New(t, reg, rivettest.WithDriver(d))
	h := k1.Client.GetOrCreate("hib", nil, rivet.WithParams("cy"))
	id := must[string](t)(h.ID(ctx))
	conn := must[*rivet.Connection](t)(h.Connect(ctx))
	conn.On("news", func(rivet.Args) {})
	must[rivet.Value](t)(conn.Call(ctx, "bump"))
	recs := connRecords(t, d, id)
	if len(recs) != 1 || len(recs[0].Subs) != 1 || recs[0].Subs[0] != "news" {
		t.Fatalf("records = %+v, want one with the subscription", recs)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := k1.Runtime.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if n.disconnect.Load() != 0 {
		t.Fatal("onDisconnect ran at shutdown")
	}

	k2 := rivettest.New(t, reg, rivettest.WithDriver(d))
	must[int](t)(rivet.Call[int](ctx, k2.Client.GetOrCreate("hib", nil), "ping"))
	if n.disconnect.Load() != 1 {
		t.Fatalf("onDisconnect ran %d times after the wake, want 1", n.disconnect.Load())
	}
	if got := n.lastDisconnect.Load().(hibConnState); got != (hibConnState{Name: "cy", Bumps: 1}) {
		t.Fatalf("onDisconnect saw %+v, want the stored state", got)
	}
	waitFor(t, func() bool { return len(connRecords(t, d, id)) == 0 })
}

func connRecords(t *testing.T, d rivetdriver.Driver, id string) []engine.ConnRecord {
	t.Helper()
	rows, err := d.KVList(context.Background(), id, rivetdriver.ListOptions{Prefix: []byte{0xff, 'c'}})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]engine.ConnRecord, 0, len(rows))
	for _, r := range rows {
		rec, err := engine.DecodeConnRecord(r.Key, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func decodeAs[T any](t *testing.T, v rivet.Value) T {
	t.Helper()
	var out T
	if err := v.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A raw WebSocket with CanHibernateWebSocket lets its actor sleep; its
// next message wakes the actor (OnStart runs, OnWebSocket does not) and is
// handled by the handler registered before the sleep. A close while asleep
// wakes it for OnClose.
func TestRawWebSocketHibernates(t *testing.T) {
	ctx := ctxT(t)
	type S struct{ Starts, Opens, Closes, Sleeps int }
	type Ctx = rivet.Ctx[S]
	def := rivet.NewActor("rawhib", rivet.Opts[S]{
		SleepTimeout: hibSleep,
		CanHibernateWebSocketFunc: func(r *http.Request) bool {
			return r.URL.Query().Get("hibernate") == "yes"
		},
		OnStart: func(c *Ctx) error { c.State.Starts++; return nil },
		OnSleep: func(c *Ctx) error { c.State.Sleeps++; return nil },
		OnWebSocket: func(c *Ctx, ws *rivet.WebSocket[S, rivet.None, rivet.None]) error {
			c.State.Opens++
			ws.OnMessage(func(c *Ctx, m rivet.WebSocketMessage) error {
				return ws.SendText(fmt.Sprintf("%s starts=%d opens=%d", m.Data, c.State.Starts, c.State.Opens))
			})
			ws.OnClose(func(c *Ctx) { c.State.Closes++ })
			return nil
		},
	}).Action("get", func(c *Ctx) S { return *c.State })
	k := kit(t, rivetmem.New(), def)
	srv := httptest.NewServer(k.Runtime.Handler())
	defer srv.Close()
	h := k.Client.GetOrCreate("rawhib", nil)
	id := must[string](t)(h.ID(ctx))
	dial := func(q string) *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/gateway/"+id+"/websocket/?"+q, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	say := func(ws *websocket.Conn, msg string) string {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// Without the opt-in a raw WebSocket keeps the actor awake.
	plain := dial("hibernate=no")
	say(plain, "hi")
	for range 3 {
		k.Advance(2 * hibSleep)
	}
	if !k.Awake(id) {
		t.Fatal("slept with a raw WebSocket that cannot hibernate")
	}
	plain.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })

	ws := dial("hibernate=yes")
	if got := say(ws, "a"); got != "a starts=2 opens=2" {
		t.Fatalf("reply %q", got)
	}
	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })
	if got := say(ws, "b"); got != "b starts=3 opens=2" {
		t.Fatalf("reply after the wake %q, want the old handler on a new incarnation", got)
	}
	waitFor(t, func() bool { k.Advance(2 * hibSleep); return !k.Awake(id) })
	ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { return k.Runtime.Engine().Parked() == 0 })
	if got := must[rivet.Value](t)(h.Call(ctx, "get")); decodeAs[S](t, got).Closes != 2 {
		t.Fatalf("state %s: OnClose did not run for the hibernated socket", got)
	}
}
