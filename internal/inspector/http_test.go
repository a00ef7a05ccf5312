package inspector_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func TestAuthWithoutTokenIsLoopbackOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	// Through the loopback server: open.
	code, body := b.do(t, "GET", "/inspector/actors", "", "")
	if code != http.StatusOK {
		t.Fatalf("loopback without token: %d %v", code, body)
	}
	h := b.rt.Handler()
	for _, tc := range []struct{ remote, host, header, value string }{
		{"127.0.0.1:5000", "127.0.0.1:6420", "X-Forwarded-For", "203.0.113.7"}, // through a local reverse proxy
		{"127.0.0.1:5000", "127.0.0.1:6420", "Forwarded", "for=203.0.113.7"},   // same, RFC 7239
		{"127.0.0.1:5000", "127.0.0.1:6420", "X-Real-Ip", "203.0.113.7"},       // same, nginx style
		{"127.0.0.1:5000", "127.0.0.1:6420", "Origin", "https://evil.example"}, // another site's page in a local browser
		{"203.0.113.7:5000", "127.0.0.1:6420", "", ""},                         // remote client
		{"127.0.0.1:5000", "evil.example.com", "", ""},                         // DNS rebinding
		{"[2001:db8::1]:5000", "[::1]:6420", "", ""},                           // remote IPv6
		{"10.0.0.2:5000", "localhost:6420", "", ""},                            // LAN client
		{"127.0.0.1:5000", "evil.example.com:6420", "", ""},                    // rebinding with port
		{"192.168.1.5:5000", "my-laptop.localdomain:80", "", ""},               // LAN by name
	} {
		req := httptest.NewRequest("GET", "/inspector/actors", nil)
		req.RemoteAddr, req.Host = tc.remote, tc.host
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var e map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusForbidden || e["group"] != "auth" || e["code"] != "forbidden" ||
			!strings.Contains(e["message"].(string), "RIVET_ADMIN_TOKEN") {
			t.Errorf("remote %s host %s %s %q: %d %s; want 403 auth.forbidden naming RIVET_ADMIN_TOKEN", tc.remote, tc.host, tc.header, tc.value, rec.Code, rec.Body)
		}
	}
	// The UI page itself holds no data and is served to anyone.
	req := httptest.NewRequest("GET", "/ui/", nil)
	req.RemoteAddr = "203.0.113.7:5000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Rivet") {
		t.Fatalf("/ui/: %d", rec.Code)
	}
}

func TestAuthWithToken(t *testing.T) {
	t.Parallel()
	b := setup(t, "s3cret")
	id, _ := b.actor(t, "tok")
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "guess", http.StatusUnauthorized},
		{"prefix of token", "s3cre", http.StatusUnauthorized},
		{"right token", "s3cret", http.StatusOK},
	} {
		code, body := b.do(t, "GET", "/inspector/actors/"+id, tc.token, "")
		if code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, body, tc.want)
		}
		if tc.want == http.StatusUnauthorized && (body["group"] != "auth" || body["code"] != "unauthorized") {
			t.Errorf("%s: %v, want auth.unauthorized", tc.name, body)
		}
	}
	// A remote client with the token is served.
	req := httptest.NewRequest("GET", "/inspector/actors", nil)
	req.RemoteAddr = "203.0.113.7:5000"
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	b.rt.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("remote with token: %d %s", rec.Code, rec.Body)
	}
	// ?token= is accepted on the event stream only.
	code, _ := b.do(t, "GET", "/inspector/actors?token=s3cret", "", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("token in the query of a JSON endpoint: %d, want 401", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/inspector/actors/"+id+"/stream?token=s3cret", nil)
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream with ?token=: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, h := b.actor(t, "room", "1")
	call(t, h, "increment", 2)
	call(t, h, "remind", 600)
	call(t, h, "putKV", "k1", "v1")
	conn, err := b.rt.Client().GetOrCreate("counter", rivet.Key{"room", "1"}, rivet.WithParams(map[string]string{"user": "bo"})).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	get := func(path string) map[string]any {
		t.Helper()
		code, body := b.do(t, "GET", path, "", "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, code, body)
		}
		return body
	}
	list := get("/inspector/actors?q=room&name=counter&limit=10")
	actors := list["actors"].([]any)
	if len(actors) != 1 || actors[0].(map[string]any)["keyString"] != "room/1" {
		t.Fatalf("list: %v", list)
	}
	d := get("/inspector/actors/" + id)
	if d["id"] != id || d["awake"] != true || mustJSON(t, d["state"]) != `{"count":2,"tags":[]}` {
		t.Fatalf("detail: %v", d)
	}
	if st := get("/inspector/actors/" + id + "/state"); mustJSON(t, st["state"]) != `{"count":2,"tags":[]}` {
		t.Fatalf("state: %v", st)
	}
	cs := get("/inspector/actors/" + id + "/connections")["connections"].([]any)
	if len(cs) != 1 || mustJSON(t, cs[0].(map[string]any)["params"]) != `{"user":"bo"}` {
		t.Fatalf("connections: %v", cs)
	}
	as := get("/inspector/actors/" + id + "/alarms")["alarms"].([]any)
	if len(as) != 1 || as[0].(map[string]any)["action"] != "increment" {
		t.Fatalf("alarms: %v", as)
	}
	evs := get("/inspector/actors/" + id + "/events")["events"].([]any)
	if len(evs) != 2 || evs[0].(map[string]any)["name"] != "newCount" {
		t.Fatalf("events: %v", evs)
	}
	logs := get("/inspector/actors/" + id + "/logs")["logs"].([]any)
	if len(logs) != 1 || logs[0].(map[string]any)["message"] != "incremented" {
		t.Fatalf("logs: %v", logs)
	}
	kv := get("/inspector/actors/" + id + "/kv?prefix=" + `%5B%22items%22%5D` + "&limit=5")["entries"].([]any)
	if len(kv) != 1 || kv[0].(map[string]any)["key"] != `["items","k1"]` || kv[0].(map[string]any)["value"] != "v1" {
		t.Fatalf("kv: %v", kv)
	}

	code, out := b.do(t, "POST", "/inspector/actors/"+id+"/actions/increment", "", `{"args":[10]}`)
	if code != http.StatusOK || mustJSON(t, out["output"]) != "12" {
		t.Fatalf("action: %d %v", code, out)
	}
	code, out = b.do(t, "PUT", "/inspector/actors/"+id+"/state", "", `{"state":{"count":100,"tags":["x"]}}`)
	if code != http.StatusOK || mustJSON(t, out["state"]) != `{"count":100,"tags":["x"]}` {
		t.Fatalf("put state: %d %v", code, out)
	}

	for _, tc := range []struct {
		method, path, body string
		code               int
		group, errCode     string
	}{
		{"PUT", "/inspector/actors/" + id + "/state", `{"state":{"count":"x"}}`, 422, "inspector", "invalid_state"},
		{"PUT", "/inspector/actors/" + id + "/state", `{"state":`, 400, "inspector", "bad_request"},
		{"GET", "/inspector/actors/nosuch", "", 404, "actor", "not_found"},
		{"GET", "/inspector/actors/nosuch/state", "", 404, "actor", "not_found"},
		{"POST", "/inspector/actors/" + id + "/actions/nope", `{"args":[]}`, 404, "actor", "action_not_found"},
		{"POST", "/inspector/actors/" + id + "/actions/boom", `{"args":[]}`, 400, "user", "boom"},
		{"DELETE", "/inspector/actors/" + id, "", 405, "inspector", "method_not_allowed"},
		{"GET", "/inspector/actors/" + id + "/kv?limit=-1", "", 400, "inspector", "bad_request"},
		{"GET", "/inspector/things", "", 400, "inspector", "bad_request"},
	} {
		code, body := b.do(t, tc.method, tc.path, "", tc.body)
		if code != tc.code || body["group"] != tc.group || body["code"] != tc.errCode || body["message"] == "" {
			t.Errorf("%s %s: %d %v; want %d %s.%s", tc.method, tc.path, code, body, tc.code, tc.group, tc.errCode)
		}
	}
	if n, _ := rivet.Call[int](ctx, h, "getCount"); n != 100 {
		t.Fatalf("count after the rejected edits = %d, want 100", n)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data map[string]any
}

// openStream opens an actor's event stream and returns its events.
func openStream(t *testing.T, b *bundle, id string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/inspector/actors/"+id+"/stream", nil)
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", res.StatusCode)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer res.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			case line == "" && ev.name != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

// next returns the next stream event with one of the names.
func next(t *testing.T, evs <-chan sseEvent, names ...string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("stream ended while waiting for %v", names)
			}
			for _, n := range names {
				if ev.name == n {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %v", names)
		}
	}
}

func TestStreamDeliversChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	ctx := context.Background()
	id, h := b.actor(t, "live")
	evs := openStream(t, b, id)
	first := next(t, evs, "state")
	if mustJSON(t, first.data["state"]) != `{"count":0,"tags":[]}` {
		t.Fatalf("first state %v", first.data)
	}

	call(t, h, "increment", 3)
	// In the order they happened: the log line during the turn, then the
	// committed state, then the broadcast.
	lg := next(t, evs, "log")
	if lg.data["message"] != "incremented" {
		t.Fatalf("log %v", lg.data)
	}
	st := next(t, evs, "state")
	if mustJSON(t, st.data["state"]) != `{"count":3,"tags":[]}` {
		t.Fatalf("state after increment: %v", st.data)
	}
	ev := next(t, evs, "event")
	if ev.data["name"] != "newCount" || mustJSON(t, ev.data["args"]) != "[3]" {
		t.Fatalf("event %v", ev.data)
	}

	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := next(t, evs, "connections")
	if len(cs.data["connections"].([]any)) != 1 {
		t.Fatalf("connections %v", cs.data)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cs = next(t, evs, "connections")
	if len(cs.data["connections"].([]any)) != 0 {
		t.Fatalf("connections after close %v", cs.data)
	}

	// An edit through the API reaches the stream too.
	if _, err := b.svc.SetState(ctx, id, json.RawMessage(`{"count":9,"tags":[]}`)); err != nil {
		t.Fatal(err)
	}
	st = next(t, evs, "state")
	if mustJSON(t, st.data["state"]) != `{"count":9,"tags":[]}` {
		t.Fatalf("state after edit: %v", st.data)
	}

	if err := b.rt.Engine().Sleep(ctx, id); err != nil {
		t.Fatal(err)
	}
	if lc := next(t, evs, "lifecycle"); lc.data["status"] != "sleeping" {
		t.Fatalf("lifecycle %v", lc.data)
	}
}

func TestServeShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	id, _ := b.actor(t, "shutdown")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.rt.Serve(ctx, l) }()

	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", "http://"+l.Addr().String()+"/inspector/actors/"+id+"/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	if line, err := rd.ReadString('\n'); err != nil || line != "event: state\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Fatal(err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("Serve did not return: the open stream held the shutdown")
	}
	if _, err := io.ReadAll(rd); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

func TestDisabledInspectorIsNotRouted(t *testing.T) {
	t.Parallel()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter), &rivet.Config{
		Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
		Inspector: rivet.InspectorConfig{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Stop(context.Background())
	for _, p := range []string{"/ui/", "/inspector/actors"} {
		req := httptest.NewRequest("GET", p, nil)
		req.RemoteAddr = "127.0.0.1:5000"
		rec := httptest.NewRecorder()
		rt.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s with the inspector disabled: %d %s", p, rec.Code, rec.Body)
		}
	}
	if rt.Engine().Inspecting() {
		t.Error("the engine keeps inspector data while the inspector is disabled")
	}
}
