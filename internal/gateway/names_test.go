package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// A name where an actor id belongs gets an answer that says how the path
// was read and how to address an actor by name and key.
func TestNameInIDPositionExplains(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	resp, m := do(t, "POST", base+"/gateway/counter/action/increment", `{"args":[1]}`, nil)
	msg, _ := m["message"].(string)
	if resp.StatusCode != 404 || m["group"] != "actor" || m["code"] != "not_found" ||
		!strings.Contains(msg, "Actor counter was not found") || !strings.Contains(msg, "read as an actor id") ||
		!strings.Contains(msg, "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=KEY") ||
		!strings.Contains(msg, "rvt-method=getOrCreate&rvt-pool=default") {
		t.Fatalf("name as id: %d %v", resp.StatusCode, m)
	}
	// The advice works.
	resp, m = do(t, "POST", base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k", `{"args":[1]}`, nil)
	if resp.StatusCode != 200 || m["output"] != 1.0 {
		t.Fatalf("following the advice: %d %v", resp.StatusCode, m)
	}
	// An id sent in x-rivet-actor was not read from the path: no advice
	// about the path.
	resp, m = do(t, "GET", base+"/request/x", "", map[string]string{"X-Rivet-Target": "actor", "X-Rivet-Actor": "nope"})
	if msg, _ := m["message"].(string); resp.StatusCode != 404 || strings.Contains(msg, "path segment") {
		t.Fatalf("header-routed unknown id: %d %v", resp.StatusCode, m)
	}
}

// Whatever a client names is bounded: oversized values are refused with
// a clear error before anything is stored, and no error message repeats
// more than a short prefix of what was sent.
func TestClientNamedValuesAreBounded(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	if resp, m := do(t, "POST", base+"/gateway/counter/action/increment"+query, `{"args":[1]}`, nil); resp.StatusCode != 200 {
		t.Fatalf("setup: %d %v", resp.StatusCode, m)
	}
	big := strings.Repeat("x", 20<<10)
	bigParams := `{"token":"` + big + `"}`
	for _, r := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
	}{
		{"namespace", "POST", "/gateway/counter/action/increment?rvt-namespace=" + big + "&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k", `{"args":[1]}`, nil, 400, "query_invalid_params"},
		{"rest namespace", "GET", "/actors?namespace=" + big, "", nil, 400, "invalid"},
		{"actor name", "POST", "/gateway/" + big + "/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k", `{"args":[1]}`, nil, 400, "not_registered"},
		{"rest actor name", "PUT", "/actors", `{"name":"` + big + `","key":"k"}`, nil, 400, "not_registered"},
		{"actor id", "POST", "/gateway/" + big + "/action/increment", `{"args":[1]}`, nil, 404, "not_found"},
		{"rest actor id", "DELETE", "/actors/" + big, "", nil, 404, "not_found"},
		{"key", "POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=" + big, `{"args":[1]}`, nil, 400, "invalid_key"},
		{"rest key", "PUT", "/actors", `{"name":"counter","key":"` + big + `"}`, nil, 400, "invalid_key"},
		{"lookup key", "GET", "/actors?name=counter&key=" + big, "", nil, 400, "invalid_key"},
		{"token", "POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k&rvt-token=" + big, `{"args":[1]}`, nil, 400, "query_invalid_params"},
		{"region", "POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k&rvt-region=" + big, `{"args":[1]}`, nil, 400, "query_invalid_params"},
		{"unknown rvt", "POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-" + big + "=1", `{"args":[1]}`, nil, 400, "query_invalid_params"},
		{"conn params", "POST", "/gateway/counter/action/increment" + query, `{"args":[1]}`, map[string]string{"X-Rivet-Conn-Params": bigParams}, 400, "invalid_request"},
		{"rest conn params", "PUT", "/actors", `{"name":"counter","key":"k"}`, map[string]string{"X-Rivet-Conn-Params": bigParams}, 400, "invalid_request"},
		{"actor ids", "GET", "/actors?actor_ids=" + strings.Repeat("a,", 1001), "", nil, 400, "invalid_request"},
		{"unknown path", "GET", "/" + big, "", nil, 404, "no_route"},
		{"unknown gateway path", "GET", "/gateway/" + big, "", nil, 404, "not_found"},
		{"unknown actor route", "POST", "/gateway/counter/" + big + query, "", nil, 404, "not_found"},
		{"unknown action", "POST", "/gateway/counter/action/" + big + query, `{"args":[]}`, nil, 404, "action_not_found"},
		{"origin", "POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=k", `{"args":[1]}`, map[string]string{"Origin": "https://" + big}, 0, ""},
	} {
		resp, m := do(t, r.method, base+r.path, r.body, r.hdr)
		msg, _ := m["message"].(string)
		if r.status != 0 && (resp.StatusCode != r.status || m["code"] != r.code) {
			t.Errorf("%s: %d %v, want %d %s", r.name, resp.StatusCode, clipped(m), r.status, r.code)
		}
		if len(msg) > 600 || resp.ContentLength > 1000 {
			t.Errorf("%s: the answer repeats the input (%d bytes): %.200s", r.name, resp.ContentLength, msg)
		}
		for k, v := range resp.Header {
			if k != "Access-Control-Allow-Origin" && len(strings.Join(v, "")) > 1000 {
				t.Errorf("%s: header %s repeats the input", r.name, k)
			}
		}
	}
	// None of it made an actor (counter/k is the setup's).
	_, m := do(t, "GET", base+"/actors?namespace=default", "", nil)
	if acts, _ := m["actors"].([]any); len(acts) != 1 {
		t.Fatalf("refused requests created %d actors", len(acts)-1)
	}
	if resp, _ := do(t, "GET", base+"/health", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatal("server unhealthy")
	}
}

func clipped(m map[string]any) map[string]any {
	if s, ok := m["message"].(string); ok && len(s) > 200 {
		m["message"] = s[:200] + "…"
	}
	return m
}

// Oversized connection params in a WebSocket subprotocol refuse the
// connection with the protocol's error.
func TestConnParamsOverWebSocketAreBounded(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	params := url.PathEscape(`{"token":"` + strings.Repeat("x", 20<<10) + `"}`)
	c := dial(t, base, "/gateway/counter/connect"+query, "rivet", "rivet_encoding.json", "rivet_conn_params."+params)
	defer c.CloseNow()
	code, reason := readUntilClose(t, c)
	if code != websocket.StatusInternalError || reason != "actor.invalid_request" {
		t.Fatalf("closed with %d %q", code, reason)
	}
}

// A panic in OnAuth is an internal error, not a dropped connection.
func TestOnAuthPanicIsAnError(t *testing.T) {
	boom := rivet.NewActor("boom", rivet.Opts[vaultState]{
		OnAuth: func(a *rivet.AuthContext, params rivet.Value) (any, error) { panic("auth bug") },
	}).Action("a", func(c *rivet.Ctx[vaultState]) {})
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(boom), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	resp, m := do(t, "POST", srv.URL+"/gateway/boom/action/a"+query, `{"args":[]}`, nil)
	if resp.StatusCode != 500 || m["code"] != "internal_error" || strings.Contains(fmt.Sprint(m), "auth bug") {
		t.Fatalf("panicking OnAuth: %d %v", resp.StatusCode, m)
	}
}
