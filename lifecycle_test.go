package rivet_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type lcState struct {
	Count  int      `json:"count"`
	Starts int      `json:"starts"`
	Events []string `json:"events"`
}

type lcVars struct {
	Started time.Time
	Calls   int
}

// lifecycle records every hook into state (so it is observable after sleep)
// and into a shared log (for hooks whose state changes cannot be seen).
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

type connState struct {
	User string `json:"user"`
}

type connParams struct {
	User  string `json:"user"`
	Token string `json:"token"`
}

func lifecycleDef(rec *recorder) *rivet.Actor[lcState, connState, lcVars] {
	return rivet.NewActor("lifecycle", rivet.Options[lcState, connState, lcVars]{
		CreateState: func(c *rivet.Context[lcState, connState, lcVars], input rivet.Value) (lcState, error) {
			var in struct{ Start int }
			if err := input.Decode(&in); err != nil {
				return lcState{}, err
			}
			rec.add("createState")
			return lcState{Count: in.Start}, nil
		},
		OnCreate: func(c *rivet.Context[lcState, connState, lcVars], input rivet.Value) error {
			rec.add("onCreate")
			return nil
		},
		CreateVars: func(c *rivet.Context[lcState, connState, lcVars]) (lcVars, error) {
			return lcVars{Started: c.Now()}, nil
		},
		OnStart: func(c *rivet.Context[lcState, connState, lcVars]) error {
			rec.add("onStart")
			c.State.Starts++
			return nil
		},
		OnSleep: func(c *rivet.Context[lcState, connState, lcVars]) error {
			rec.add("onSleep")
			return nil
		},
		OnStateChange: func(c *rivet.Context[lcState, connState, lcVars], s *lcState) {
			rec.add("onStateChange")
		},
		OnBeforeConnect: func(c *rivet.Context[lcState, connState, lcVars], params rivet.Value) error {
			var p connParams
			if err := params.Decode(&p); err != nil {
				return err
			}
			rec.add("onBeforeConnect")
			if p.Token == "bad" {
				return rivet.UserError("forbidden token", rivet.WithCode("forbidden"))
			}
			return nil
		},
		CreateConnState: func(c *rivet.Context[lcState, connState, lcVars], params rivet.Value) (connState, error) {
			var p connParams
			if err := params.Decode(&p); err != nil {
				return connState{}, err
			}
			return connState{User: p.User}, nil
		},
		OnConnect: func(c *rivet.Context[lcState, connState, lcVars], conn *rivet.Conn[connState]) error {
			rec.add("onConnect:" + conn.State.User)
			return nil
		},
		OnDisconnect: func(c *rivet.Context[lcState, connState, lcVars], conn *rivet.Conn[connState]) {
			rec.add("onDisconnect:" + conn.State.User)
		},
		OnBeforeActionResponse: func(c *rivet.Context[lcState, connState, lcVars], action string, args rivet.Args, out any) (any, error) {
			if action == "wrapped" {
				var who string
				if err := args.Decode(0, &who); err != nil {
					return nil, err
				}
				return map[string]any{"wrapped": out, "who": who, "argc": args.Len()}, nil
			}
			return out, nil
		},
		OnDestroy: func(c *rivet.Context[lcState, connState, lcVars]) error {
			rec.add("onDestroy")
			return nil
		},
		SleepTimeout: time.Minute,
	}).
		Action("increment", func(c *rivet.Context[lcState, connState, lcVars], n int) int {
			c.State.Count += n
			c.Vars.Calls++
			c.Broadcast("count", c.State.Count)
			return c.State.Count
		}).
		Action("get", func(c *rivet.Context[lcState, connState, lcVars]) lcState { return *c.State }).
		Action("calls", func(c *rivet.Context[lcState, connState, lcVars]) int { return c.Vars.Calls }).
		Action("whoami", func(c *rivet.Context[lcState, connState, lcVars]) string {
			if c.Conn == nil {
				return ""
			}
			return c.Conn.State.User
		}).
		Action("conns", func(c *rivet.Context[lcState, connState, lcVars]) []string {
			var out []string
			for _, conn := range c.Conns() {
				out = append(out, conn.State.User)
			}
			return out
		}).
		Action("whisper", func(c *rivet.Context[lcState, connState, lcVars], to, msg string) error {
			for _, conn := range c.Conns() {
				if conn.State.User == to {
					return conn.Send("whisper", msg)
				}
			}
			return rivet.UserError("no such user")
		}).
		Action("kick", func(c *rivet.Context[lcState, connState, lcVars], who string) {
			for _, conn := range c.Conns() {
				if conn.State.User == who {
					conn.Disconnect("kicked")
				}
			}
		}).
		Action("wrapped", func(c *rivet.Context[lcState, connState, lcVars], who string, n int) int { return n }).
		Action("meta", func(c *rivet.Context[lcState, connState, lcVars]) map[string]any {
			return map[string]any{"id": c.ActorID(), "name": c.Name(), "key": c.Key(), "region": c.Region()}
		}).
		Action("sleepNow", func(c *rivet.Context[lcState, connState, lcVars]) { c.Sleep() }).
		Action("destroyNow", func(c *rivet.Context[lcState, connState, lcVars]) { c.Destroy() })
}

func TestSleepWakeKeepsStateAndRunsHooks(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		rec := &recorder{}
		k := kit(t, open(t), lifecycleDef(rec))
		h := k.Client.GetOrCreate("lifecycle", rivet.Key{"s"}, rivet.WithInput(map[string]int{"Start": 10}))
		if got := must[int](t)(rivet.Call[int](ctx, h, "increment", 1)); got != 11 {
			t.Fatalf("increment = %d, want 11 (input applied)", got)
		}
		id := must[string](t)(h.ID(ctx))
		if !k.Awake(id) {
			t.Fatal("actor not awake after a call")
		}
		k.Advance(59 * time.Second)
		if !k.Awake(id) {
			t.Fatal("actor slept before its timeout")
		}
		k.Advance(2 * time.Second)
		if k.Awake(id) {
			t.Fatal("actor still awake after its sleep timeout")
		}
		// Waking: state intact, vars fresh, onStart ran again.
		st := must[lcState](t)(rivet.Call[lcState](ctx, h, "get"))
		if st.Count != 11 || st.Starts != 2 {
			t.Fatalf("after wake state = %+v, want count 11 starts 2", st)
		}
		if calls := must[int](t)(rivet.Call[int](ctx, h, "calls")); calls != 0 {
			t.Fatalf("vars survived sleep: calls = %d", calls)
		}
		want := []string{"createState", "onCreate", "onStart", "onStateChange", "onSleep", "onStart", "onStateChange"}
		var got []string
		for _, e := range rec.snapshot() {
			if !strings.HasPrefix(e, "onBeforeConnect") && !strings.HasPrefix(e, "onConnect") && !strings.HasPrefix(e, "onDisconnect") {
				got = append(got, e)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("hooks = %v\nwant    %v", got, want)
		}
		// Explicit sleep.
		must[struct{}](t)(struct{}{}, func() error { _, err := h.Call(ctx, "sleepNow"); return err }())
		if k.Awake(id) {
			t.Fatal("c.Sleep() did not put the actor to sleep")
		}
	})
}

func TestConnectionsEventsAndHooks(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		rec := &recorder{}
		k := kit(t, open(t), lifecycleDef(rec))
		room := func(p connParams) *rivet.Handle {
			return k.Client.GetOrCreate("lifecycle", rivet.Key{"room"}, rivet.WithParams(p))
		}
		if _, err := room(connParams{User: "eve", Token: "bad"}).Connect(ctx); err == nil {
			t.Fatal("onBeforeConnect rejection did not reject")
		} else if e := new(rivet.Error); !errors.As(err, &e) || e.Code != "forbidden" {
			t.Fatalf("rejection error = %v", err)
		}
		alice := must[*rivet.Connection](t)(room(connParams{User: "alice"}).Connect(ctx))
		bob := must[*rivet.Connection](t)(room(connParams{User: "bob"}).Connect(ctx))

		aliceCounts := make(chan int, 10)
		rivet.OnEvent(alice, "count", func(n int) { aliceCounts <- n })
		bobWhispers := make(chan string, 10)
		rivet.OnEvent(bob, "whisper", func(s string) { bobWhispers <- s })

		// Stateful calls run as the connection.
		if who := must[string](t)(rivet.Call[string](ctx, room(connParams{}), "whoami")); who != "" {
			t.Fatalf("stateless call sees conn user %q", who)
		}
		v := must[rivet.Value](t)(bob.Call(ctx, "whoami"))
		var who string
		_ = v.Decode(&who)
		if who != "bob" {
			t.Fatalf("bob's call sees %q", who)
		}
		users := must[[]string](t)(rivet.Call[[]string](ctx, room(connParams{}), "conns"))
		if !slices.Equal(users, []string{"alice", "bob"}) {
			t.Fatalf("conns = %v", users)
		}
		// Broadcast reaches only subscribers: alice subscribed to count.
		must[rivet.Value](t)(bob.Call(ctx, "increment", 3))
		select {
		case n := <-aliceCounts:
			if n != 3 {
				t.Fatalf("alice got count %d", n)
			}
		case <-ctx.Done():
			t.Fatal("alice never got the broadcast")
		}
		// conn.Send reaches one connection, subscribed.
		must[rivet.Value](t)(alice.Call(ctx, "whisper", "bob", "psst"))
		if got := <-bobWhispers; got != "psst" {
			t.Fatalf("bob got %q", got)
		}
		// Kick closes bob's connection from the actor side.
		closed := make(chan string, 1)
		bob.OnClose(func(r string) { closed <- r })
		must[rivet.Value](t)(alice.Call(ctx, "kick", "bob"))
		if r := <-closed; r != "kicked" {
			t.Fatalf("close reason %q", r)
		}
		if err := alice.Close(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			log := rec.snapshot()
			return slices.Contains(log, "onDisconnect:alice") && slices.Contains(log, "onDisconnect:bob")
		})
		// Stateless calls run the connection hooks on a temporary
		// connection.
		n := countOf(rec.snapshot(), "onBeforeConnect")
		must[int](t)(rivet.Call[int](ctx, room(connParams{User: "tmp"}), "increment", 1))
		if got := countOf(rec.snapshot(), "onBeforeConnect"); got != n+1 {
			t.Fatalf("stateless call ran onBeforeConnect %d times", got-n)
		}
		if !slices.Contains(rec.snapshot(), "onDisconnect:tmp") {
			t.Fatal("temporary connection was not disconnected")
		}
	})
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or 10s pass; why, if given, explains
// the failure.
func waitFor(t *testing.T, cond func() bool, why ...func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "condition not reached within 10s"
			for _, w := range why {
				msg += ": " + w()
			}
			t.Fatal(msg)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBeforeActionResponseAndMetadata(t *testing.T) {
	ctx := ctxT(t)
	rec := &recorder{}
	k := kit(t, rivetmem.New(), lifecycleDef(rec))
	h := k.Client.GetOrCreate("lifecycle", rivet.Key{"x", "y"})
	// The hook sees the action's arguments as the caller sent them.
	type wrapped struct {
		Wrapped int    `json:"wrapped"`
		Who     string `json:"who"`
		Argc    int    `json:"argc"`
	}
	got := must[wrapped](t)(rivet.Call[wrapped](ctx, h, "wrapped", "ann", 7))
	if got != (wrapped{Wrapped: 7, Who: "ann", Argc: 2}) {
		t.Fatalf("wrapped = %+v, want the output 7 and the arguments (ann, 7)", got)
	}
	var md struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Key    []string `json:"key"`
		Region string   `json:"region"`
	}
	v := must[rivet.Value](t)(h.Call(ctx, "meta"))
	if err := v.Decode(&md); err != nil {
		t.Fatal(err)
	}
	if md.ID != must[string](t)(h.ID(ctx)) || md.Name != "lifecycle" || !slices.Equal(md.Key, []string{"x", "y"}) {
		t.Fatalf("metadata = %+v", md)
	}
}

func TestDestroy(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		rec := &recorder{}
		k := kit(t, open(t), lifecycleDef(rec))
		h := k.Client.GetOrCreate("lifecycle", rivet.Key{"d"})
		must[int](t)(rivet.Call[int](ctx, h, "increment", 5))
		id := must[string](t)(h.ID(ctx))
		byID := k.Client.GetForID("lifecycle", id)
		must[rivet.Value](t)(h.Call(ctx, "destroyNow"))
		if !slices.Contains(rec.snapshot(), "onDestroy") {
			t.Fatal("onDestroy did not run")
		}
		if _, err := byID.Call(ctx, "get"); !errors.Is(err, rivet.ErrActorNotFound) {
			t.Fatalf("call to destroyed id: %v, want not_found", err)
		}
		if _, err := k.Client.Get("lifecycle", rivet.Key{"d"}).Call(ctx, "get"); !errors.Is(err, rivet.ErrActorNotFound) {
			t.Fatalf("get of destroyed key: %v, want not_found", err)
		}
		st := must[lcState](t)(rivet.Call[lcState](ctx, k.Client.GetOrCreate("lifecycle", rivet.Key{"d"}), "get"))
		if st.Count != 0 {
			t.Fatalf("recreated actor has count %d, want fresh state", st.Count)
		}
		id2 := must[string](t)(k.Client.GetOrCreate("lifecycle", rivet.Key{"d"}).ID(ctx))
		if id2 == id {
			t.Fatal("destroyed id was reused")
		}
	})
}

func TestCreateAndGet(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, rivetmem.New(), counterDef)
	if _, err := k.Client.Get("counter", rivet.Key{"nope"}).Call(ctx, "getCount"); !errors.Is(err, rivet.ErrActorNotFound) {
		t.Fatalf("Get of missing actor: %v", err)
	}
	h := must[*rivet.Handle](t)(k.Client.Create(ctx, "counter", rivet.Key{"c"}))
	if _, err := k.Client.Create(ctx, "counter", rivet.Key{"c"}); !errors.Is(err, rivet.ErrDuplicateKey) {
		t.Fatalf("second Create: %v, want duplicate_key", err)
	}
	must[int](t)(rivet.Call[int](ctx, h, "increment", 4))
	if got := must[int](t)(rivet.Call[int](ctx, k.Client.Get("counter", rivet.Key{"c"}), "getCount")); got != 4 {
		t.Fatalf("Get sees %d", got)
	}
	// Namespaces isolate.
	if got := must[int](t)(rivet.Call[int](ctx, k.Client.Namespace("other").GetOrCreate("counter", rivet.Key{"c"}), "getCount")); got != 0 {
		t.Fatalf("other namespace sees %d", got)
	}
	// The empty key is a singleton.
	a := must[string](t)(k.Client.GetOrCreate("counter", nil).ID(ctx))
	b := must[string](t)(k.Client.GetOrCreate("counter", rivet.Key{}).ID(ctx))
	if a != b {
		t.Fatal("empty key is not a singleton")
	}
	_ = context.Background
}

var idleDef = rivet.NewActor("idler", rivet.Opts[struct{}]{SleepTimeout: time.Second}).
	Action("poke", func(c *rivet.Ctx[struct{}]) {})

// The sleep timeout counts from the last call, not from when the timer was
// armed: calls at 0, 0.75 s and 1.5 s put the actor to sleep at 2.5 s.
func TestSleepTimeoutCountsFromLastCall(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), idleDef)
	h := k.Client.GetOrCreate("idler", nil)
	id := must[string](t)(h.ID(ctx))
	for range 3 {
		must[rivet.Value](t)(h.Call(ctx, "poke"))
		k.Advance(750 * time.Millisecond)
		if !k.Awake(id) {
			t.Fatal("slept although called within its timeout")
		}
	}
	k.Advance(250 * time.Millisecond) // 1 s after the last call
	if k.Awake(id) {
		t.Fatal("still awake a full timeout after the last call")
	}
}
