package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func do(t *testing.T, method, url string, body string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp, m
}

func TestMetadataAndCORS(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	resp, m := do(t, "GET", base+"/metadata?namespace=default", "", nil)
	if resp.StatusCode != 200 || m["runtime"] != "rivetgo" || m["clientEndpoint"] != nil {
		t.Fatalf("metadata: %d %v", resp.StatusCode, m)
	}
	preflight := func(base, origin string) http.Header {
		t.Helper()
		resp, _ := do(t, "OPTIONS", base+"/gateway/counter/action/increment"+query, "", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type,x-rivet-encoding,x-rivet-conn-params",
		})
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != origin ||
			h.Get("Access-Control-Allow-Headers") != "content-type,x-rivet-encoding,x-rivet-conn-params" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("preflight from %s: %d %v", origin, resp.StatusCode, h)
		}
		return h
	}
	// Without an allow-list: local development pages and the server's own
	// pages get credentials (the official client sends credentials:
	// "include" on /metadata and /actors), other origins may call
	// without them.
	for _, origin := range []string{"http://localhost:5173", "http://127.0.0.1:3000", "http://app.localhost", base} {
		if h := preflight(base, origin); h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("%s: no credentials: %v", origin, h)
		}
	}
	if h := preflight(base, "https://app.example"); h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("a foreign origin got credentials by default: %v", h)
	}
	resp, _ = do(t, "POST", base+"/gateway/counter/action/increment"+query, `{"args":[1]}`, map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("actual request: %d %v", resp.StatusCode, resp.Header)
	}

	// With an allow-list, listed origins and the server's own pages get
	// credentials, others (localhost too) are refused.
	base = serve(t, rivet.GatewayConfig{AllowedOrigins: []string{"https://good.example"}})
	for _, origin := range []string{"https://good.example", base} {
		if h := preflight(base, origin); h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("allowed origin %s: %v", origin, h)
		}
	}
	if resp, m := do(t, "GET", base+"/metadata", "", map[string]string{"Origin": "http://localhost:5173"}); resp.StatusCode != 403 {
		t.Fatalf("localhost with an allow-list: %d %v", resp.StatusCode, m)
	}
	resp, m = do(t, "POST", base+"/gateway/counter/action/increment"+query, `{"args":[1]}`, map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != 403 || m["code"] != "forbidden_origin" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", resp.StatusCode, m)
	}
	// "*": every origin, with credentials (RivetKit's engine).
	base = serve(t, rivet.GatewayConfig{AllowedOrigins: []string{"*"}})
	if h := preflight(base, "https://any.example"); h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("*: %v", h)
	}
}

// cookieState is unused: cookieJar's actor only reports what OnAuth saw.
type cookieState struct{}

// Without an allow-list, the cookies a browser attaches to a request of a
// foreign page are not seen by OnAuth, on HTTP and WebSocket: a victim's
// session cannot be used by another site (cross-site request forgery).
func TestForeignOriginCookiesAreIgnored(t *testing.T) {
	jar := rivet.NewActor("jar", rivet.Opts[cookieState]{
		OnAuth: func(a *rivet.AuthContext, params rivet.Value) (any, error) {
			c, err := a.Request.Cookie("session")
			if err != nil {
				return nil, rivet.Unauthorized("no session")
			}
			return c.Value, nil
		},
	}).Action("whoami", func(c *rivet.Ctx[cookieState]) any { return c.Conn.Auth() })
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(jar), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	url := srv.URL + "/gateway/jar/action/whoami?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k"
	for origin, want := range map[string]int{"": 200, srv.URL: 200, "http://localhost:5173": 200, "https://evil.example": 401} {
		hdr := map[string]string{"Cookie": "session=ada"}
		if origin != "" {
			hdr["Origin"] = origin
		}
		resp, m := do(t, "POST", url, `{"args":[]}`, hdr)
		if resp.StatusCode != want || (want == 200 && m["output"] != "ada") {
			t.Errorf("origin %q: %d %v, want %d", origin, resp.StatusCode, m, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/gateway/jar/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k"
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"rivet", "rivet_encoding.json"}, HTTPHeader: http.Header{"Origin": {"https://evil.example"}, "Cookie": {"session=ada"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Refused: the Error message, then close 1011 auth.unauthorized.
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Reason != "auth.unauthorized" {
				t.Fatalf("a foreign page's WebSocket: %v", err)
			}
			break
		}
		if strings.Contains(string(msg), "Init") {
			t.Fatalf("a foreign page's WebSocket authenticated with the victim's cookie: %s", msg)
		}
	}
}

func TestActorsRESTAndNamespaces(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{Namespaces: []string{"ns1", "ns2"}})
	resp, m := do(t, "PUT", base+"/actors?namespace=ns1", `{"name":"counter","key":"a/b\\/c","runner_name_selector":"default","crash_policy":"sleep"}`, nil)
	actor, _ := m["actor"].(map[string]any)
	if resp.StatusCode != 200 || m["created"] != true || actor["name"] != "counter" || actor["key"] != `a/b\/c` {
		t.Fatalf("PUT: %d %v", resp.StatusCode, m)
	}
	id := actor["actor_id"].(string)
	if len(id) != 30 || strings.ContainsAny(id, "@/") {
		t.Fatalf("id %q", id)
	}
	_, m = do(t, "PUT", base+"/actors?namespace=ns1", `{"name":"counter","key":"a/b\\/c"}`, nil)
	if m["created"] != false || m["actor"].(map[string]any)["actor_id"] != id {
		t.Fatalf("second PUT: %v", m)
	}
	// The query gateway form of the same key reaches the same actor.
	_, m = do(t, "POST", base+"/gateway/counter/action/increment?rvt-namespace=ns1&rvt-method=get&rvt-key=a,b%2Fc", `{"args":[3]}`, nil)
	if m["output"] != 3.0 {
		t.Fatalf("query form: %v", m)
	}
	_, m = do(t, "POST", base+"/gateway/"+id+"/action/getCount", `{"args":[]}`, nil)
	if m["output"] != 3.0 {
		t.Fatalf("direct form: %v", m)
	}
	// Another namespace is another world.
	_, m = do(t, "GET", base+"/actors?namespace=ns2&name=counter&key=a%2Fb%5C%2Fc", "", nil)
	if acts, _ := m["actors"].([]any); len(acts) != 0 {
		t.Fatalf("ns2 sees ns1's actor: %v", m)
	}
	_, m = do(t, "GET", base+"/actors?namespace=ns1&name=counter&key=a%2Fb%5C%2Fc", "", nil)
	if acts, _ := m["actors"].([]any); len(acts) != 1 {
		t.Fatalf("lookup: %v", m)
	}
	// The REST routes by id honour the namespace too.
	for _, r := range [][2]string{{"POST", "/actors/" + id + "/sleep?namespace=ns2"}, {"DELETE", "/actors/" + id + "?namespace=ns2"}} {
		if resp, m := do(t, r[0], base+r[1], "", nil); resp.StatusCode != 404 || m["code"] != "not_found" {
			t.Fatalf("%s %s: %d %v", r[0], r[1], resp.StatusCode, m)
		}
	}
	if _, m = do(t, "GET", base+"/actors?namespace=ns2&actor_ids="+id, "", nil); len(m["actors"].([]any)) != 0 {
		t.Fatalf("ns2 lists ns1's actor by id: %v", m)
	}
	// create of a taken key; destroy; ids of destroyed actors are omitted.
	resp, m = do(t, "POST", base+"/actors?namespace=ns1", `{"name":"counter","key":"a/b\\/c"}`, nil)
	if resp.StatusCode != 400 || m["code"] != "duplicate_key" {
		t.Fatalf("duplicate: %d %v", resp.StatusCode, m)
	}
	if resp, _ = do(t, "DELETE", base+"/actors/"+id+"?namespace=ns1", "", nil); resp.StatusCode != 200 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	_, m = do(t, "GET", base+"/actors?namespace=ns1&actor_ids="+id, "", nil)
	if acts, _ := m["actors"].([]any); len(acts) != 0 {
		t.Fatalf("destroyed actor listed: %v", m)
	}
	resp, m = do(t, "POST", base+"/gateway/"+id+"/action/getCount", `{"args":[]}`, nil)
	if resp.StatusCode != 404 || m["code"] != "not_found" {
		t.Fatalf("destroyed actor: %d %v", resp.StatusCode, m)
	}
}

type authState struct {
	Seen []string `json:"seen"`
}

// A namespace the server does not list is refused everywhere, so that a
// typo cannot silently make a second, empty world; "*" allows any.
func TestUnknownNamespaceIsRefused(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{Namespaces: []string{"staging"}})
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/actors?namespace=stagng", `{"name":"counter","key":"a"}`},
		{"POST", "/actors?namespace=stagng", `{"name":"counter","key":"a"}`},
		{"GET", "/actors?namespace=stagng&name=counter&key=a", ""},
		{"GET", "/actors?namespace=stagng", ""},
		{"DELETE", "/actors/x?namespace=stagng", ""},
		{"POST", "/actors/x/sleep?namespace=stagng", ""},
		{"POST", "/gateway/counter/action/increment?rvt-namespace=stagng&rvt-method=getOrCreate&rvt-pool=default&rvt-key=a", `{"args":[1]}`},
		{"POST", "/gateway/counter/action/increment?rvt-namespace=stagng&rvt-method=get&rvt-key=a", `{"args":[1]}`},
	} {
		resp, m := do(t, r.method, base+r.path, r.body, nil)
		msg, _ := m["message"].(string)
		if resp.StatusCode != 400 || m["group"] != "namespace" || m["code"] != "not_found" || !strings.Contains(msg, `"stagng"`) || !strings.Contains(msg, "namespaces") {
			t.Errorf("%s %s: %d %v", r.method, r.path, resp.StatusCode, m)
		}
	}
	// A namespace name is bounded.
	long := strings.Repeat("n", 900)
	resp, m := do(t, "PUT", base+"/actors?namespace="+long, `{"name":"counter","key":"a"}`, nil)
	if msg, _ := m["message"].(string); resp.StatusCode != 400 || m["code"] != "invalid" || len(msg) > 300 {
		t.Fatalf("long namespace: %d %v", resp.StatusCode, m)
	}
	// The listed namespace and "default" work.
	for _, ns := range []string{"staging", "default"} {
		if resp, m := do(t, "POST", base+"/gateway/counter/action/increment?rvt-namespace="+ns+"&rvt-method=getOrCreate&rvt-pool=default&rvt-key=a", `{"args":[1]}`, nil); resp.StatusCode != 200 || m["output"] != 1.0 {
			t.Fatalf("namespace %s: %d %v", ns, resp.StatusCode, m)
		}
	}
	base = serve(t, rivet.GatewayConfig{Namespaces: []string{"*"}})
	if resp, m := do(t, "PUT", base+"/actors?namespace=ns-anything", `{"name":"counter","key":"a"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("namespaces *: %d %v", resp.StatusCode, m)
	}
}

func TestAuthHook(t *testing.T) {
	var mu sync.Mutex
	var intents [][]rivet.Intent
	guarded := rivet.NewActor("guarded", rivet.Opts[authState]{
		OnAuth: func(a *rivet.AuthContext, params rivet.Value) (any, error) {
			mu.Lock()
			intents = append(intents, a.Intents)
			mu.Unlock()
			if a.Request.Header.Get("Authorization") != "Bearer s3cret" {
				return nil, rivet.Unauthorized("a token is required")
			}
			return map[string]string{"user": "ada"}, nil
		},
	}).Action("whoami", func(c *rivet.Ctx[authState]) any { return c.Conn.Auth() })
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(guarded), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	defer func() { srv.Close(); _ = rt.Stop(context.Background()) }()

	url := srv.URL + "/gateway/guarded/action/whoami" + query
	resp, m := do(t, "POST", url, `{"args":[]}`, nil)
	if resp.StatusCode != 401 || m["group"] != "auth" || m["code"] != "unauthorized" {
		t.Fatalf("no token: %d %v", resp.StatusCode, m)
	}
	// Refused before any actor work: nothing was created.
	_, m = do(t, "GET", srv.URL+"/actors?namespace=default&name=guarded&key=k", "", nil)
	if acts, _ := m["actors"].([]any); len(acts) != 0 {
		t.Fatalf("a refused call created the actor: %v", m)
	}
	resp, m = do(t, "POST", url, `{"args":[]}`, map[string]string{"Authorization": "Bearer s3cret"})
	if out, _ := m["output"].(map[string]any); resp.StatusCode != 200 || out["user"] != "ada" {
		t.Fatalf("with token: %d %v", resp.StatusCode, m)
	}
	mu.Lock()
	defer mu.Unlock()
	last := intents[len(intents)-1]
	if len(last) != 3 || last[0] != rivet.IntentGet || last[1] != rivet.IntentCreate || last[2] != rivet.IntentAction {
		t.Fatalf("intents %v", last)
	}
}

type page struct{}

// Header and subprotocol routing (the client's skipReadyWait mode).
func TestHeaderRouting(t *testing.T) {
	web := rivet.NewActor("web", rivet.Opts[page]{
		OnRequest: func(c *rivet.Ctx[page], w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, "hello "+r.URL.Path+"?"+r.URL.RawQuery)
			return err
		},
	}).Action("ping", func(c *rivet.Ctx[page]) string { return "pong" })
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(web), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	defer func() { srv.Close(); _ = rt.Stop(context.Background()) }()
	_, m := do(t, "PUT", srv.URL+"/actors", `{"name":"web","key":"a"}`, nil)
	id := m["actor"].(map[string]any)["actor_id"].(string)

	req, _ := http.NewRequest("GET", srv.URL+"/request/api/hello?x=1", nil)
	req.Header.Set("X-Rivet-Target", "actor")
	req.Header.Set("X-Rivet-Actor", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello /api/hello?x=1" {
		t.Fatalf("header-routed request: %d %s", resp.StatusCode, b)
	}
	c := dial(t, srv.URL, "/connect", "rivet", "rivet_encoding.json", "rivet_target.actor", "rivet_actor."+id)
	defer c.CloseNow()
	if _, msg, err := c.Read(context.Background()); err != nil || !strings.Contains(string(msg), id) {
		t.Fatalf("subprotocol-routed connect: %s %v", msg, err)
	}
	// Without the headers, /request is no route.
	resp, m = do(t, "GET", srv.URL+"/request/api/hello", "", nil)
	if resp.StatusCode != 404 || m["code"] != "no_route" {
		t.Fatalf("unrouted: %d %v", resp.StatusCode, m)
	}
}

// GET /actors answers at most a page and a cursor to resume after it;
// following cursors lists every actor exactly once.
func TestListActorsPaginates(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	const n = 1001
	for i := range n {
		resp, _ := do(t, "POST", base+"/actors?namespace=default", `{"name":"counter","key":"k`+strconv.Itoa(i)+`"}`, map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 200 {
			t.Fatalf("create %d: %s", i, resp.Status)
		}
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		_, m := do(t, "GET", base+"/actors?namespace=default&name=counter&cursor="+cursor, "", nil)
		pages++
		for _, a := range m["actors"].([]any) {
			id := a.(map[string]any)["actor_id"].(string)
			if seen[id] {
				t.Fatalf("actor %s listed twice", id)
			}
			seen[id] = true
		}
		c, _ := m["pagination"].(map[string]any)["cursor"].(string)
		if c == "" {
			break
		}
		cursor = c
	}
	if len(seen) != n || pages != 2 {
		t.Fatalf("listed %d actors in %d pages, want %d in 2", len(seen), pages, n)
	}
}

// The runtime's in-process client and a network caller naming no
// namespace reach the same actor.
func TestInProcessClientSharesTheDefaultNamespace(t *testing.T) {
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	if _, err := rivet.Call[int](t.Context(), rt.Client().GetOrCreate("counter", rivet.Key{"shared"}), "increment", 7); err != nil {
		t.Fatal(err)
	}
	resp, m := do(t, "POST", srv.URL+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=shared", `{"args":[1]}`, nil)
	if resp.StatusCode != 200 || m["output"] != float64(8) {
		t.Fatalf("network call after the in-process one: %d %v", resp.StatusCode, m)
	}
}
