package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// vaultState is the state of an actor nobody may reach over the network.
type vaultState struct {
	Secret string `json:"secret"`
}

// vaultView is what the in-process client reads back after the sweep.
type vaultView struct {
	Secret string `json:"secret"`
	KV     string `json:"kv"`
	Alarms int    `json:"alarms"`
}

// newVault defines "vault": its OnAuth refuses every caller, and it
// counts the times it went to sleep and its hooks were entered.
func newVault(sleeps, entered *atomic.Int32) *rivet.Actor[vaultState, rivet.None, rivet.None] {
	return rivet.NewActor("vault", rivet.Opts[vaultState]{
		SleepTimeout: time.Hour,
		OnAuth: func(a *rivet.AuthContext, params rivet.Value) (any, error) {
			return nil, rivet.Unauthorized("nobody may")
		},
		OnSleep: func(c *rivet.Ctx[vaultState]) error { sleeps.Add(1); return nil },
		OnRequest: func(c *rivet.Ctx[vaultState], w http.ResponseWriter, r *http.Request) error {
			entered.Add(1)
			_, err := io.WriteString(w, c.State.Secret)
			return err
		},
		OnWebSocket: func(c *rivet.Ctx[vaultState], ws *rivet.WebSocket[vaultState, rivet.None, rivet.None]) error {
			entered.Add(1)
			return ws.SendText(c.State.Secret)
		},
		OnBeforeConnect: func(c *rivet.Ctx[vaultState], params rivet.Value) error { entered.Add(1); return nil },
		CanPublish:      func(c *rivet.Ctx[vaultState], queue string) (bool, error) { entered.Add(1); return true, nil },
	}).Queues(rivet.Queue[int]("jobs")).
		Action("fill", func(c *rivet.Ctx[vaultState]) error {
			c.State.Secret = "gold"
			if err := c.KV().Put(rivet.K("k"), "v"); err != nil {
				return err
			}
			_, err := c.Schedule().After(time.Hour, "read")
			return err
		}).
		Action("read", func(c *rivet.Ctx[vaultState]) (vaultView, error) {
			entered.Add(1)
			var kv string
			if _, err := c.KV().Get(rivet.K("k"), &kv); err != nil {
				return vaultView{}, err
			}
			return vaultView{Secret: c.State.Secret, KV: kv, Alarms: len(c.Schedule().List())}, nil
		})
}

// sweepRequest is one request of the auth sweep.
type sweepRequest struct {
	method, path, body string
	header             map[string]string
	ws                 bool     // a WebSocket upgrade
	protocols          []string // its subprotocols
}

// TestEveryRouteRunsOnAuth sends every route of /openapi.json, in every
// addressing form, to an actor whose OnAuth refuses everyone. Each one
// that reaches or reveals an actor must answer 401 auth.unauthorized
// (HTTP) or close 1011 "auth.unauthorized" (WebSocket) and change
// nothing: state, KV and alarms intact, the actor not put to sleep, no
// other actor created, no hook of the actor entered. A route added to the
// document without a case here fails the test.
func TestEveryRouteRunsOnAuth(t *testing.T) {
	var sleeps, entered atomic.Int32
	vault := newVault(&sleeps, &entered)
	const adminToken = "admin-secret"
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(vault), &rivet.Config{
		Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
		Inspector: rivet.InspectorConfig{Token: adminToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	ctx := t.Context()

	// The actor, created and filled by trusted in-process code.
	h := rt.Client().GetOrCreate("vault", rivet.Key{"k"})
	if _, err := h.Call(ctx, "fill"); err != nil {
		t.Fatal(err)
	}
	id, err := h.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entered.Store(0)

	base := srv.URL
	doc, router := loadSpec(t, base)
	c := conformance{t: t, base: base, router: router}

	// How each documented route is sent. {actor} has two forms: the id
	// (direct) and the name with rvt-* parameters (query, get and
	// getOrCreate of a key that must stay uncreated).
	byID := "/gateway/" + id
	withToken := "/gateway/" + id + "@tok"
	forms := []string{byID, withToken, "/gateway/vault"}
	rvt := map[string][]string{
		byID:             {""},
		withToken:        {""},
		"/gateway/vault": {"rvt-namespace=default&rvt-method=get&rvt-key=k", "rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=new"},
	}
	gateway := func(method, tail string, ws bool) []sweepRequest {
		var out []sweepRequest
		for _, f := range forms {
			for _, q := range rvt[f] {
				p := f + tail
				if q != "" && strings.Contains(p, "?") {
					p += "&" + q
				} else if q != "" {
					p += "?" + q
				}
				r := sweepRequest{method: method, path: p, ws: ws}
				if ws {
					r.protocols = []string{"rivet", "rivet_encoding.json"}
				}
				if strings.Contains(tail, "/action/") {
					r.body = `{"args":[]}`
				}
				if strings.Contains(tail, "/queue/") {
					r.body = `{"body":1,"wait":false}`
				}
				out = append(out, r)
			}
		}
		return out
	}
	header := map[string]string{"X-Rivet-Target": "actor", "X-Rivet-Actor": id}
	cases := map[string]func(method string) []sweepRequest{
		"/actors": func(m string) []sweepRequest {
			if m == "GET" {
				return []sweepRequest{
					{method: m, path: "/actors?namespace=default&name=vault&key=k"},
					{method: m, path: "/actors?namespace=default&name=vault&key=nokey"},
					{method: m, path: "/actors?namespace=default&name=vault"},
					{method: m, path: "/actors?namespace=default"},
					{method: m, path: "/actors?namespace=default&actor_ids=" + id},
				}
			}
			return []sweepRequest{{method: m, path: "/actors?namespace=default", body: `{"name":"vault","key":"new"}`}}
		},
		"/actors/{actor_id}": func(m string) []sweepRequest {
			return []sweepRequest{{method: m, path: "/actors/" + id + "?namespace=default"}, {method: m, path: "/actors/" + id}}
		},
		"/actors/{actor_id}/sleep": func(m string) []sweepRequest {
			return []sweepRequest{{method: m, path: "/actors/" + id + "/sleep?namespace=default"}, {method: m, path: "/actors/" + id + "/sleep"}}
		},
		"/gateway/{actor}/action/{action}": func(m string) []sweepRequest { return gateway(m, "/action/read", false) },
		"/gateway/{actor}/queue/{queue}":   func(m string) []sweepRequest { return gateway(m, "/queue/jobs", false) },
		"/gateway/{actor}/connect":         func(m string) []sweepRequest { return gateway(m, "/connect", true) },
		"/gateway/{actor}/request":         func(m string) []sweepRequest { return gateway(m, "/request", false) },
		"/gateway/{actor}/request/{path}":  func(m string) []sweepRequest { return gateway(m, "/request/x?y=1", false) },
		"/gateway/{actor}/websocket/{path}": func(m string) []sweepRequest {
			rs := gateway(m, "/websocket/x", true)
			for i := range rs {
				rs[i].protocols = nil // a raw WebSocket: any subprotocols
			}
			return rs
		},
		"/connect": func(m string) []sweepRequest {
			return []sweepRequest{{method: m, path: "/connect", ws: true, protocols: []string{"rivet", "rivet_encoding.json", "rivet_target.actor", "rivet_actor." + id}}}
		},
		"/request/{path}": func(m string) []sweepRequest {
			return []sweepRequest{{method: m, path: "/request/x", header: header}}
		},
		"/websocket/{path}": func(m string) []sweepRequest {
			return []sweepRequest{{method: m, path: "/websocket/x", ws: true, protocols: []string{"rivet_target.actor", "rivet_actor." + id}}}
		},
	}
	// Routes that reach no actor and reveal none.
	noActor := []string{"/metadata", "/health", "/devtools/mod.js", "/metrics", "/openapi.json"}

	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	covered := map[string]bool{}
	for _, p := range paths {
		item := doc.Paths.Value(p)
		for method := range item.Operations() {
			switch {
			case slices.Contains(noActor, p):
				continue
			case strings.HasPrefix(p, "/inspector/"):
				// The admin API keeps its own rule: the admin token.
				path := strings.NewReplacer("{id}", id, "{name}", "read").Replace(p)
				resp, m := do(t, method, base+path, "", nil)
				if resp.StatusCode != 401 || m["code"] != "unauthorized" {
					t.Errorf("%s %s without the admin token: %d %v", method, path, resp.StatusCode, m)
				}
				continue
			}
			build, ok := cases[p]
			if !ok {
				t.Errorf("%s %s is a documented route with no case in this sweep: add one", method, p)
				continue
			}
			covered[p] = true
			for _, r := range build(method) {
				sweep(t, c, r)
			}
		}
	}
	for p := range cases {
		if !covered[p] {
			t.Errorf("the sweep has a case for %s, which the document no longer lists", p)
		}
	}

	// Nothing changed: the actor ran no hook for a refused caller, holds
	// its state, KV and alarm, never slept, and no actor was created.
	if n := entered.Load(); n != 0 {
		t.Fatalf("the actor's hooks ran %d times for refused callers", n)
	}
	v, err := rivet.Call[vaultView](ctx, h, "read")
	if err != nil {
		t.Fatal(err)
	}
	if v != (vaultView{Secret: "gold", KV: "v", Alarms: 1}) {
		t.Fatalf("after the sweep the actor holds %+v", v)
	}
	if n := sleeps.Load(); n != 0 {
		t.Fatalf("the actor slept %d times", n)
	}
	if _, err := rt.Client().Get("vault", rivet.Key{"new"}).ID(ctx); !errors.Is(err, rivet.ErrActorNotFound) {
		t.Fatalf("a refused getOrCreate or create made an actor: %v", err)
	}

	// The admin token (operators' tools: rivet actors …) passes the REST
	// API's auth, and nothing else.
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	resp, m := do(t, "GET", base+"/actors?namespace=default&name=vault", "", admin)
	if acts, _ := m["actors"].([]any); resp.StatusCode != 200 || len(acts) != 1 {
		t.Fatalf("list with the admin token: %d %v", resp.StatusCode, m)
	}
	resp, m = do(t, "POST", base+"/gateway/"+id+"/action/read", `{"args":[]}`, admin)
	if resp.StatusCode != 401 {
		t.Fatalf("the admin token opened the gateway: %d %v", resp.StatusCode, m)
	}
}

// sweep sends one request and checks that it was refused by OnAuth.
func sweep(t *testing.T, c conformance, r sweepRequest) {
	t.Helper()
	if r.ws {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.base, "http")+r.path, &websocket.DialOptions{Subprotocols: r.protocols})
		if err != nil {
			t.Errorf("WS %s: %v", r.path, err)
			return
		}
		defer ws.CloseNow()
		for {
			typ, msg, err := ws.Read(ctx)
			if err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusInternalError || ce.Reason != "auth.unauthorized" {
					t.Errorf("WS %s: closed with %v, want 1011 auth.unauthorized", r.path, err)
				}
				return
			}
			// Only the protocol's Error message may come first.
			if typ != websocket.MessageText || !strings.Contains(string(msg), `"unauthorized"`) {
				t.Errorf("WS %s: got %s before the refusal", r.path, msg)
			}
		}
	}
	u, _ := url.Parse(r.path)
	m := c.run(r.method, r.path, r.body, r.header, http.StatusUnauthorized, true)
	if m["group"] != "auth" || m["code"] != "unauthorized" || m["message"] != "nobody may" {
		t.Errorf("%s %s: %v, want auth.unauthorized from OnAuth", r.method, u, m)
	}
}

// TestIntentsPerRoute pins what OnAuth is told on each route (the table
// of docs/concepts/auth.md).
func TestIntentsPerRoute(t *testing.T) {
	var last atomic.Value
	rec := rivet.NewActor("rec", rivet.Opts[vaultState]{
		OnAuth: func(a *rivet.AuthContext, params rivet.Value) (any, error) {
			var s []string
			for _, i := range a.Intents {
				s = append(s, string(i))
			}
			last.Store(strings.Join(s, ","))
			return nil, nil
		},
		OnRequest: func(c *rivet.Ctx[vaultState], w http.ResponseWriter, r *http.Request) error { return nil },
		OnWebSocket: func(c *rivet.Ctx[vaultState], ws *rivet.WebSocket[vaultState, rivet.None, rivet.None]) error {
			return nil
		},
	}).Action("a", func(c *rivet.Ctx[vaultState]) {})
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(rec), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	base := srv.URL
	_, m := do(t, "PUT", base+"/actors", `{"name":"rec","key":"k"}`, nil)
	id := m["actor"].(map[string]any)["actor_id"].(string)
	q := "?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k"
	for _, c := range []struct {
		method, path, body, want string
		ws                       bool
	}{
		{method: "PUT", path: "/actors", body: `{"name":"rec","key":"k"}`, want: "get,create"},
		{method: "POST", path: "/actors", body: `{"name":"rec","key":"k2"}`, want: "create"},
		{method: "GET", path: "/actors?name=rec&key=k", want: "get"},
		{method: "GET", path: "/actors?name=rec", want: "get"},
		{method: "GET", path: "/actors?actor_ids=" + id, want: "get"},
		{method: "POST", path: "/actors/" + id + "/sleep", want: "get,sleep"},
		{method: "POST", path: "/gateway/" + id + "/action/a", body: `{"args":[]}`, want: "get,action"},
		{method: "POST", path: "/gateway/rec/action/a" + q, body: `{"args":[]}`, want: "get,create,action"},
		{method: "POST", path: "/gateway/rec/action/a?rvt-namespace=default&rvt-method=get&rvt-key=k", body: `{"args":[]}`, want: "get,action"},
		{method: "GET", path: "/gateway/" + id + "/request/x", want: "get,action"},
		{path: "/gateway/" + id + "/connect", ws: true, want: "get,connect"},
		{path: "/gateway/rec/connect" + q, ws: true, want: "get,create,connect"},
		{path: "/gateway/" + id + "/websocket/x", ws: true, want: "get,connect"},
		{method: "DELETE", path: "/actors/" + id, want: "get,destroy"},
	} {
		last.Store("")
		if c.ws {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+c.path, &websocket.DialOptions{Subprotocols: []string{"rivet"}})
			if err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
			// The upgrade is accepted before OnAuth runs: wait for it.
			for last.Load() == "" && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			ws.CloseNow()
			cancel()
		} else if resp, m := do(t, c.method, base+c.path, c.body, nil); resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %v", c.method, c.path, resp.StatusCode, m)
		}
		if got := last.Load(); got != c.want {
			t.Errorf("%s %s: intents %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
