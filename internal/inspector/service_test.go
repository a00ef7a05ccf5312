package inspector_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/inspector"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivettype"
)

func TestServiceListAndSearch(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	ids := map[string]string{}
	for _, k := range []string{"alpha", "beta", "gamma-1", "gamma-2"} {
		ids[k], _ = b.actor(t, k)
	}

	all, err := b.svc.ListActors(ctx, inspector.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Actors) != 4 || all.Next != "" {
		t.Fatalf("listed %d actors (next %q), want 4 and no next page", len(all.Actors), all.Next)
	}

	found, err := b.svc.ListActors(ctx, inspector.ListOptions{Q: "GAMMA"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Actors) != 2 {
		t.Fatalf("q=GAMMA found %d actors, want 2", len(found.Actors))
	}
	for _, a := range found.Actors {
		if !strings.HasPrefix(a.KeyString, "gamma") || a.Name != "counter" || !a.Awake {
			t.Errorf("unexpected match %+v", a)
		}
	}

	exact, err := b.svc.ListActors(ctx, inspector.ListOptions{Key: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(exact.Actors) != 1 || exact.Actors[0].ID != ids["beta"] {
		t.Fatalf("key=beta: %+v", exact.Actors)
	}

	none, err := b.svc.ListActors(ctx, inspector.ListOptions{Name: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(none.Actors) != 0 {
		t.Fatalf("name=nope listed %d actors", len(none.Actors))
	}

	// Pages of 3 then 1 cover every actor once.
	p1, err := b.svc.ListActors(ctx, inspector.ListOptions{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Actors) != 3 || p1.Next == "" {
		t.Fatalf("page 1: %d actors, next %q", len(p1.Actors), p1.Next)
	}
	p2, err := b.svc.ListActors(ctx, inspector.ListOptions{Limit: 3, After: p1.Next})
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Actors) != 1 || p2.Next != "" {
		t.Fatalf("page 2: %d actors, next %q", len(p2.Actors), p2.Next)
	}
	seen := map[string]bool{}
	for _, a := range append(p1.Actors, p2.Actors...) {
		seen[a.ID] = true
	}
	if len(seen) != 4 {
		t.Fatalf("pages covered %d distinct actors, want 4", len(seen))
	}
}

// The same name and key in two namespaces are two actors: the listing
// says which namespace each is in, and filters by namespace.
func TestServiceNamespaces(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	def, _ := b.actor(t, "lobby")
	stg, err := b.rt.Client().Namespace("staging").GetOrCreate("counter", rivet.Key{"lobby"}).ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.svc.ListActors(ctx, inspector.ListOptions{Key: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range all.Actors {
		got[a.ID] = a.Namespace
	}
	if len(got) != 2 || got[def] != "default" || got[stg] != "staging" {
		t.Fatalf("listing: %+v", all.Actors)
	}
	code, out := b.do(t, "GET", "/inspector/actors?namespace=staging", "", "")
	acts, _ := out["actors"].([]any)
	if code != 200 || len(acts) != 1 || acts[0].(map[string]any)["namespace"] != "staging" || acts[0].(map[string]any)["id"] != stg {
		t.Fatalf("namespace filter: %d %v", code, out)
	}
	code, out = b.do(t, "GET", "/inspector/actors/"+stg, "", "")
	if code != 200 || out["namespace"] != "staging" {
		t.Fatalf("detail: %d %v", code, out)
	}
}

func TestServiceActorDetail(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, h := b.actor(t, "detail")
	call(t, h, "increment", 5)
	call(t, h, "remind", 3600)
	conn, err := b.rt.Client().GetOrCreate("counter", rivet.Key{"detail"}, rivet.WithParams(map[string]string{"user": "ada"})).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	unsub := conn.On("newCount", func(rivet.Args) {})
	defer unsub()
	if _, err := conn.Call(ctx, "increment", 2); err != nil {
		t.Fatal(err)
	}

	d, err := b.svc.Actor(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id || d.Name != "counter" || d.KeyString != "detail" || !d.Awake {
		t.Fatalf("summary: %+v", d.ActorSummary)
	}
	var st counterState
	if err := json.Unmarshal(d.State, &st); err != nil || st.Count != 7 {
		t.Fatalf("state %s (%v), want count 7", d.State, err)
	}
	if len(d.Connections) != 1 {
		t.Fatalf("%d connections, want 1", len(d.Connections))
	}
	c := d.Connections[0]
	if string(c.Params) != `{"user":"ada"}` || string(c.State) != `{"user":"ada"}` {
		t.Errorf("connection params %s, state %s; want user ada in both", c.Params, c.State)
	}
	if len(c.Subscriptions) != 1 || c.Subscriptions[0] != "newCount" {
		t.Errorf("subscriptions %v, want [newCount]", c.Subscriptions)
	}
	if len(d.Alarms) != 1 || d.Alarms[0].Action != "increment" || string(d.Alarms[0].Args) != "[1]" {
		t.Errorf("alarms %+v, want one increment(1)", d.Alarms)
	}
	var names []string
	for _, e := range d.Events {
		names = append(names, e.Name+string(e.Args))
	}
	if strings.Join(names, " ") != "newCount[5] stateChanged[5] newCount[7] stateChanged[7]" {
		t.Errorf("events %v", names)
	}

	logs, err := b.svc.Logs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Message != "incremented" || logs[0].Level != "INFO" ||
		len(logs[0].Attrs) != 1 || logs[0].Attrs[0] != (inspector.LogAttrKV{Key: "by", Value: "5"}) {
		t.Fatalf("logs %+v, want two 'incremented' lines with by=5 first", logs)
	}
}

func TestServiceStateOfSleepingActorDoesNotWakeIt(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, h := b.actor(t, "sleepy")
	call(t, h, "increment", 3)
	if err := b.rt.Engine().Sleep(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err := b.svc.State(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Awake || string(st.State) != `{"count":3,"tags":[]}` {
		t.Fatalf("state %s awake %v; want count 3 read from the store", st.State, st.Awake)
	}
	d, err := b.svc.Actor(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Awake || b.rt.Engine().Awake(id) {
		t.Fatal("inspecting a sleeping actor woke it")
	}
}

func TestServiceMissingAndDestroyedActors(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	_, err := b.svc.State(ctx, "nosuchactor")
	if !errors.Is(err, rivettype.ErrActorNotFound) {
		t.Fatalf("unknown actor: %v, want actor.not_found", err)
	}
	id, h := b.actor(t, "doomed")
	if err := h.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = b.svc.Actor(ctx, id)
	if e, ok := rivettype.As(err); !ok || e.Code != "not_found" || !strings.Contains(e.Message, "destroyed") {
		t.Fatalf("destroyed actor: %v, want not_found saying it was destroyed", err)
	}
}

func TestServiceSetState(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, h := b.actor(t, "edit")
	call(t, h, "increment", 1)
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	seen := make(chan int, 10)
	unsub := rivet.OnEvent(conn, "stateChanged", func(n int) { seen <- n })
	defer unsub()
	// The subscription is in place once a call through the connection
	// returned.
	if _, err := conn.Call(ctx, "getCount"); err != nil {
		t.Fatal(err)
	}

	st, err := b.svc.SetState(ctx, id, json.RawMessage(`{"count": 41, "label": "edited", "tags": ["a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(st.State) != `{"count":41,"label":"edited","tags":["a"]}` {
		t.Fatalf("committed %s", st.State)
	}
	if n := <-seen; n != 41 {
		t.Fatalf("connected client saw stateChanged(%d), want 41", n)
	}
	// The edit is the actor's state: its next turn continues from it.
	n, err := rivet.Call[int](ctx, h, "increment", 1)
	if err != nil || n != 42 {
		t.Fatalf("increment after edit = %d, %v; want 42", n, err)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"count": "many"}`, "count"},
		{`{"count": 1, "colour": "red"}`, `no field "colour"`},
		{`[1, 2]`, "array"},
		{`{"count": 1.5}`, "at .count: expected an integer (Go int), got the number 1.5"},
		{`{"count": "many"}`, `at .count: expected an integer (Go int), got the string "many"`},
		{`{"count": `, "not valid JSON"},
		{``, "missing"},
	} {
		_, err := b.svc.SetState(ctx, id, json.RawMessage(tc.body))
		e, ok := rivettype.As(err)
		if !ok || e.Group != "inspector" || e.Code != "invalid_state" || !strings.Contains(e.Message, tc.want) {
			t.Errorf("SetState(%s) = %v; want inspector.invalid_state mentioning %q", tc.body, err, tc.want)
		}
	}
	after, err := b.svc.State(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(after.State) != `{"count":42,"label":"edited","tags":["a"]}` {
		t.Fatalf("rejected edits changed the state: %s", after.State)
	}
}

func TestServiceKV(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, h := b.actor(t, "kv")
	call(t, h, "putKV", "apple", "red")
	call(t, h, "putKV", "banana", "yellow")
	call(t, h, "putRaw", "blob", []byte{0xff, 0x00, 0x10})

	all, err := b.svc.KV(ctx, id, inspector.KVQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("%d entries, want 3", len(all))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{`["items"]`, []string{`["items","apple"]`, `["items","banana"]`}},
		{`["items","b"]`, nil},
		{`it`, []string{`["items","apple"]`, `["items","banana"]`}},
		{`raw`, []string{`["raw","blob"]`}},
		{`hex:02` + hexOf("items"), []string{`["items","apple"]`, `["items","banana"]`}},
		{`zzz`, nil},
	} {
		es, err := b.svc.KV(ctx, id, inspector.KVQuery{Prefix: tc.prefix})
		if err != nil {
			t.Fatalf("prefix %s: %v", tc.prefix, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Key)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("prefix %s: keys %v, want %v", tc.prefix, got, tc.want)
		}
	}
	es, _ := b.svc.KV(ctx, id, inspector.KVQuery{Prefix: `["items","apple"]`})
	if len(es) != 1 || es[0].KeyEncoding != "tuple" || string(es[0].Value) != `"red"` || es[0].ValueEncoding != "json" {
		t.Fatalf("apple entry %+v", es)
	}
	es, _ = b.svc.KV(ctx, id, inspector.KVQuery{Prefix: "raw"})
	if len(es) != 1 || es[0].ValueEncoding != "json" || string(es[0].Value) != `["$Uint8Array","/wAQ"]` {
		t.Fatalf("bytes entry %+v, want the tagged byte string", es)
	}
	if _, err := b.svc.KV(ctx, id, inspector.KVQuery{Prefix: "hex:zz"}); err == nil {
		t.Fatal("bad hex prefix accepted")
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

func TestServiceCallAction(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, _ := b.actor(t, "calls")
	out, err := b.svc.CallAction(ctx, id, "increment", json.RawMessage(`[4]`))
	if err != nil || string(out) != "4" {
		t.Fatalf("increment(4) = %s, %v", out, err)
	}
	out, err = b.svc.CallAction(ctx, id, "getCount", nil)
	if err != nil || string(out) != "4" {
		t.Fatalf("getCount() = %s, %v", out, err)
	}
	_, err = b.svc.CallAction(ctx, id, "boom", json.RawMessage(`[]`))
	if e, ok := rivettype.As(err); !ok || e.Code != "boom" || e.Message != "boom happened" {
		t.Fatalf("boom: %v, want the user error", err)
	}
	_, err = b.svc.CallAction(ctx, id, "nope", json.RawMessage(`[]`))
	if !errors.Is(err, rivettype.ErrActionNotFound) {
		t.Fatalf("unknown action: %v", err)
	}
	_, err = b.svc.CallAction(ctx, id, "increment", json.RawMessage(`["x"]`))
	if e, ok := rivettype.As(err); !ok || e.Code != "invalid_arguments" || !strings.Contains(e.Message, `argument 1: expected an integer (Go int), got the JSON string "x"`) {
		t.Fatalf("bad argument: %v", err)
	}
	_, err = b.svc.CallAction(ctx, id, "increment", json.RawMessage(`{"n":1}`))
	if e, ok := rivettype.As(err); !ok || e.Group != "inspector" {
		t.Fatalf("object arguments: %v", err)
	}
}

func TestServiceSleepingActorOnEmbeddedStore(t *testing.T) {
	t.Parallel()
	d, err := rivetembed.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter), &rivet.Config{
		Driver: d, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := rt.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	h := rt.Client().GetOrCreate("counter", rivet.Key{"disk"})
	call(t, h, "increment", 8)
	id, err := h.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Engine().Sleep(ctx, id); err != nil {
		t.Fatal(err)
	}
	svc := inspector.New(rt.Engine(), nil)
	st, err := svc.State(ctx, id)
	if err != nil || st.Awake || string(st.State) != `{"count":8,"tags":[]}` {
		t.Fatalf("state %s awake %v err %v", st.State, st.Awake, err)
	}
	if rt.Engine().Awake(id) {
		t.Fatal("reading the state woke the actor")
	}
	if err := h.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.State(ctx, id); !errors.Is(err, rivettype.ErrActorNotFound) {
		t.Fatalf("destroyed actor: %v", err)
	}
}
