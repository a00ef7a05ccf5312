package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// safe is a counter whose OnAuth admits a caller only with the token of
// the actor's own namespace ("tok-" + namespace): the way a server that
// gives each tenant a namespace keeps tenants apart.
func newSafe(seen func(ns, token string)) *rivet.Actor[count, rivet.None, rivet.None] {
	return rivet.NewActor("safe", rivet.Opts[count]{
		OnAuth: func(a *rivet.AuthContext, _ rivet.Value) (any, error) {
			seen(a.Namespace, a.Token)
			if a.Token != "tok-"+a.Namespace {
				return nil, rivet.Forbidden("wrong tenant")
			}
			return nil, nil
		},
	}).
		Action("increment", func(c *rivet.Ctx[count], n int) int { c.State.Count += n; return c.State.Count }).
		Action("getCount", func(c *rivet.Ctx[count]) int { return c.State.Count })
}

// TestPathTricksReachNoOtherActor sends requests that try to reach an
// actor of another namespace, another key or a destroyed actor through
// the tricks of path and query parsing: dot segments, percent-encoded
// slashes and dots, double encoding, NUL and control bytes, unicode
// normalisation twins, long and empty segments, key arrays vs strings,
// ids of another namespace's actor or of a destroyed actor, a name in the
// id position, over HTTP and WebSocket and the header-routed forms. Each
// one tries to add 1000 to the victims; none may: every refusal is a
// structured error, the victims' counts are unchanged at the end, and
// OnAuth saw the namespace of the actor reached, never the one the
// attacker named, and the token the caller presented.
func TestPathTricksReachNoOtherActor(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	safe := newSafe(func(ns, token string) { mu.Lock(); seen = append(seen, ns+" "+token); mu.Unlock() })
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter, safe), &rivet.Config{
		Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
		Gateway: rivet.GatewayConfig{Namespaces: []string{"tenant-a", "tenant-b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	ctx := t.Context()
	base := srv.URL

	// The victims, set up by trusted in-process code: in tenant-a, a
	// public counter (no OnAuth: its address is its only protection) at
	// key ["victim", "café"] and a safe at key ["victim"]; a destroyed
	// counter whose id an attacker kept.
	a := rt.Client().Namespace("tenant-a")
	victimKey := rivet.Key{"victim", "caf\u00e9"}
	pub := a.GetOrCreate("counter", victimKey)
	sf := a.GetOrCreate("safe", rivet.Key{"victim"})
	for _, h := range []*rivet.Handle{pub, sf} {
		if _, err := h.Call(ctx, "increment", 42); err != nil {
			t.Fatal(err)
		}
	}
	pubID, _ := pub.ID(ctx)
	safeID, _ := sf.ID(ctx)
	gone := a.GetOrCreate("counter", rivet.Key{"gone"})
	goneID, err := gone.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Destroy(ctx); err != nil {
		t.Fatal(err)
	}

	q := func(ns, key string) string {
		return "?rvt-namespace=" + ns + "&rvt-method=getOrCreate&rvt-pool=default&rvt-key=" + key
	}
	vk := "victim,caf%C3%A9" // the victim's exact address, the only one that reaches it
	tricks := []string{
		// Namespace tricks on the victim's exact name and key.
		"/gateway/counter/action/increment" + q("tenant-a%00", vk),
		"/gateway/counter/action/increment" + q("tenant-a%20", vk),
		"/gateway/counter/action/increment" + q("Tenant-A", vk),
		"/gateway/counter/action/increment" + q("tenant-a%0A", vk),
		"/gateway/counter/action/increment" + q("%2574enant-a", vk),                         // double encoding
		"/gateway/counter/action/increment" + q("%EF%BD%94enant-a", vk),                     // fullwidth t (NFKC twin)
		"/gateway/counter/action/increment" + q("tenant-a%E2%80%8B", vk),                    // zero-width space
		"/gateway/counter/action/increment" + q("tenant-b", vk) + "&rvt-namespace=tenant-a", // duplicate
		"/gateway/counter/action/increment" + q("tenant-b", vk) + "&RVT-NAMESPACE=tenant-a",
		"/gateway/counter/action/increment" + q("tenant-b/../tenant-a", vk),
		"/gateway/counter/action/increment" + q("tenant-b%2F..%2Ftenant-a", vk),
		"/gateway/counter/action/increment" + q("tenant-b", vk), // same key, other namespace: another actor
		"/gateway/counter/action/increment" + q("", vk),
		"/gateway/counter/action/increment" + q(strings.Repeat("a", 5000), vk),
		// Key tricks in the victim's own namespace: every twin is another
		// actor.
		"/gateway/counter/action/increment" + q("tenant-a", "victim,cafe%CC%81"), // NFD twin of é
		"/gateway/counter/action/increment" + q("tenant-a", "victim,caf%C3%A9%00"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim,caf%C3%A9,"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim%2Ccaf%C3%A9%2C"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim/caf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim%2Fcaf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim\\,caf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim,caf%25C3%25A9"), // double encoding
		"/gateway/counter/action/increment" + q("tenant-a", ",victim,caf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim,.,caf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim,..,victim,caf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", "VICTIM,CAF%C3%89"),
		"/gateway/counter/action/increment" + q("tenant-a", "victim+,caf%C3%A9"),
		"/gateway/counter/action/increment" + q("tenant-a", strings.Repeat("v", 2000)),
		"/gateway/counter/action/increment" + q("tenant-a", ""),
		// Name tricks.
		"/gateway/count%65r%00/action/increment" + q("tenant-a", vk),
		"/gateway/counter%2F..%2Fcounter/action/increment" + q("tenant-a", vk),
		"/gateway/..%2Fcounter/action/increment" + q("tenant-a", vk),
		"/gateway/COUNTER/action/increment" + q("tenant-a", vk),
		"/gateway/safe/../counter/action/increment" + q("tenant-b", vk),
		// Ids: a destroyed actor's, a name in the id position, dot
		// segments and encoded separators around ids.
		"/gateway/" + goneID + "/action/increment",
		"/gateway/" + strings.ToUpper(goneID) + "/action/increment",
		"/gateway/counter/action/increment",
		"/gateway/x/../" + pubID + "/action/increment",
		"/gateway/%2E%2E/" + pubID + "/action/increment",
		"/gateway/" + goneID + "%2F..%2F" + pubID + "/action/increment",
		"/gateway/" + goneID + "/../" + pubID + "/action/increment",
		"/gateway/" + pubID + "%00/action/increment",
		"/gateway/" + pubID + "%20/action/increment",
		"/gateway/" + url.PathEscape(pubID+"/x") + "/action/increment",
		"/gateway/" + goneID + "/action/increment/..%2F..%2F..%2F" + pubID + "/action/increment",
		"/gateway/" + strings.Repeat("x", 100000) + "/action/increment",
		"/gateway//" + pubID + "/action/increment",
		// The safe's id from tenant-b's caller: OnAuth sees tenant-a.
		"/gateway/" + safeID + "/action/increment",
		"/gateway/" + safeID + "@tok-tenant-b/action/increment",
		"/gateway/" + safeID + "/action/increment?rvt-token=tok-tenant-a", // a query-form param does not make a direct path a query path with another namespace
		"/gateway/" + safeID + "/action/increment?rvt-namespace=tenant-b&rvt-method=get",
		"/gateway/safe/action/increment" + q("tenant-a", "victim"),
	}
	hdr := map[string]string{"X-Rivet-Encoding": "json", "X-Rivet-Token": "tok-tenant-b"}
	for _, p := range tricks {
		resp, m := do(t, "POST", base+p, `{"args":[1000]}`, hdr)
		if resp.StatusCode == 200 && len(p) < 200 {
			t.Logf("%s -> %v (another actor)", p, m["output"])
		}
		if resp.StatusCode != 200 && (m["group"] == nil || m["code"] == nil) && resp.StatusCode != 414 && resp.StatusCode != 431 {
			t.Errorf("%.120s: %d without a structured error: %v", p, resp.StatusCode, m)
		}
		if out, _ := m["output"].(float64); out == 1042 {
			t.Errorf("%.120s reached a victim: %v", p, m)
		}
	}
	// The header-routed forms (x-rivet-actor, subprotocols) with the
	// victims' ids and twins of them.
	for _, id := range []string{goneID, safeID, pubID + "%00", "../" + pubID, pubID + "/.."} {
		req, _ := http.NewRequest("POST", base+"/request/x", strings.NewReader(""))
		req.Header.Set("X-Rivet-Target", "actor")
		req.Header.Set("X-Rivet-Actor", id)
		req.Header.Set("X-Rivet-Token", "tok-tenant-b")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("header-routed request to %q: 200 %s", id, b)
		}
	}

	// WebSocket: a connection through each trick, then an action.
	wsTricks := []struct {
		path   string
		protos []string
	}{
		{"/gateway/counter/connect" + q("%2574enant-a", vk), nil},
		{"/gateway/counter/connect" + q("tenant-a", "victim,cafe%CC%81"), nil},
		{"/gateway/counter/connect" + q("tenant-a", "victim%2Fcaf%C3%A9"), nil},
		{"/gateway/" + goneID + "/connect", nil},
		{"/gateway/x/../" + pubID + "/connect", nil},
		{"/gateway/" + goneID + "%2F..%2F" + pubID + "/connect", nil},
		{"/gateway/" + safeID + "/connect", []string{"rivet_token.tok-tenant-b"}},
		{"/gateway/" + safeID + "@tok-tenant-b/connect", nil},
		{"/connect", []string{"rivet_target.actor", "rivet_actor." + safeID, "rivet_token.tok-tenant-b"}},
		{"/connect", []string{"rivet_target.actor", "rivet_actor." + goneID}},
		{"/connect", []string{"rivet_target.actor", "rivet_actor." + url.PathEscape("../"+pubID)}},
		{"/gateway/safe/connect" + q("tenant-a", "victim") + "&rvt-token=tok-tenant-b", nil},
	}
	for _, tc := range wsTricks {
		if out, ok := wsIncrement(t, base, tc.path, tc.protos); ok && out == 1042 {
			t.Errorf("WebSocket %s %v reached a victim", tc.path, tc.protos)
		}
	}

	// The victims are untouched.
	for _, h := range []*rivet.Handle{pub, sf} {
		if n, err := rivet.Call[int](ctx, h, "getCount"); err != nil || n != 42 {
			t.Fatalf("a victim's count is %d (%v), want 42", n, err)
		}
	}
	// OnAuth saw tenant-a (the actor's namespace) for every request that
	// reached the safe, never tenant-b; and the token each presented.
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("OnAuth of the safe never ran")
	}
	for _, s := range seen {
		if s != "tenant-a tok-tenant-b" && s != "tenant-a tok-tenant-a" {
			t.Errorf("OnAuth saw %q, want namespace tenant-a and the presented token", s)
		}
	}
	// The right token through each place the client puts it is admitted.
	for _, tc := range []struct {
		path string
		hdr  map[string]string
	}{
		{"/gateway/" + safeID + "@tok-tenant-a/action/getCount", nil},
		{"/gateway/safe/action/getCount" + q("tenant-a", "victim") + "&rvt-token=tok-tenant-a", nil},
		{"/gateway/" + safeID + "/action/getCount", map[string]string{"X-Rivet-Token": "tok-tenant-a"}},
	} {
		mu.Unlock()
		resp, m := do(t, "POST", base+tc.path, `{"args":[]}`, tc.hdr)
		mu.Lock()
		if resp.StatusCode != 200 || m["output"] != 42.0 {
			t.Errorf("%s with the right token: %d %v", tc.path, resp.StatusCode, m)
		}
	}
}

// wsIncrement opens a connection at path and, if it opens, calls
// increment(1000) on it; it returns the result and whether the call
// succeeded.
func wsIncrement(t *testing.T, base, path string, protos []string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+path,
		&websocket.DialOptions{Subprotocols: append([]string{"rivet", "rivet_encoding.json"}, protos...)})
	if err != nil {
		return 0, false // refused at the upgrade
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"Init"`) {
		return 0, false
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1,"name":"increment","args":[1000]}}}`)); err != nil {
		return 0, false
	}
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return 0, false
		}
		var m struct {
			Body struct {
				Tag string `json:"tag"`
				Val struct {
					Output float64 `json:"output"`
				} `json:"val"`
			} `json:"body"`
		}
		if json.Unmarshal(msg, &m) == nil && m.Body.Tag == "ActionResponse" {
			return m.Body.Val.Output, true
		}
		if m.Body.Tag == "Error" {
			return 0, false
		}
	}
}
