package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// serveHeaders starts a runtime whose "hdrs" actor answers raw requests
// with a custom header, X-Request-Id.
func serveHeaders(t *testing.T, gw rivet.GatewayConfig) string {
	t.Helper()
	hdrs := rivet.NewActor("hdrs", rivet.Opts[page]{
		OnRequest: func(_ *rivet.Ctx[page], w http.ResponseWriter, _ *http.Request) error {
			w.Header().Set("X-Request-Id", "r1")
			w.Header().Set("Content-Type", "text/plain")
			_, err := io.WriteString(w, "ok")
			return err
		},
	})
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter, hdrs), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	return srv.URL
}

// TestCORSExposeHeaders: a credentialed answer names the headers a page
// may read (browsers take "*" literally there); one without credentials
// may say "*"; a configured list replaces both.
func TestCORSExposeHeaders(t *testing.T) {
	base := serveHeaders(t, rivet.GatewayConfig{})
	raw := base + "/gateway/hdrs/request/x" + query
	resp, _ := do(t, "GET", raw, "", map[string]string{"Origin": "http://localhost:5173"})
	if resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Expose-Headers") != "X-Request-Id" {
		t.Fatalf("credentialed: %v", resp.Header)
	}
	resp, _ = do(t, "GET", raw, "", map[string]string{"Origin": "https://other.example"})
	if resp.Header.Get("Access-Control-Allow-Credentials") != "" || resp.Header.Get("Access-Control-Expose-Headers") != "*" {
		t.Fatalf("without credentials: %v", resp.Header)
	}
	// The gateway's own headers are named too.
	resp, _ = do(t, "POST", base+"/gateway/counter/action/increment"+query, `{"args":[1]}`, map[string]string{"Origin": "http://localhost:5173"})
	if v := resp.Header.Get("Access-Control-Expose-Headers"); v != "X-Rivet-Actor" {
		t.Fatalf("action answer exposes %q", v)
	}
	// A preflight's answer has only safelisted headers: nothing to name.
	resp, _ = do(t, "OPTIONS", base+"/gateway/counter/action/increment"+query, "", map[string]string{"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"})
	if v, ok := resp.Header["Access-Control-Expose-Headers"]; ok {
		t.Fatalf("preflight exposes %q", v)
	}

	base = serveHeaders(t, rivet.GatewayConfig{CORSOptions: rivet.CORSOptions{ExposeHeaders: []string{"X-Request-Id", "X-Other"}}})
	resp, _ = do(t, "GET", base+"/gateway/hdrs/request/x"+query, "", map[string]string{"Origin": "http://localhost:5173"})
	if resp.Header.Get("Access-Control-Expose-Headers") != "X-Request-Id, X-Other" {
		t.Fatalf("configured: %v", resp.Header)
	}
}

// TestCORSOptions: RivetKit's cors options: an origin function, methods,
// headers, credentials and max age.
func TestCORSOptions(t *testing.T) {
	allow := func(origin string, r *http.Request) bool {
		return strings.HasSuffix(origin, ".good.example") && r != nil
	}
	base := serveHeaders(t, rivet.GatewayConfig{
		AllowedOrigins: []string{"https://listed.example"},
		CORSOptions: rivet.CORSOptions{
			AllowOrigin:  allow,
			AllowMethods: []string{"GET", "POST"},
			AllowHeaders: []string{"Content-Type", "X-Rivet-Encoding"},
			MaxAge:       10 * time.Minute,
		},
	})
	preflight := func(origin string) *http.Response {
		t.Helper()
		resp, _ := do(t, "OPTIONS", base+"/gateway/counter/action/increment"+query, "", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-custom",
		})
		return resp
	}
	for _, origin := range []string{"https://a.good.example", "https://listed.example"} {
		h := preflight(origin).Header
		if h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Credentials") != "true" ||
			h.Get("Access-Control-Allow-Methods") != "GET, POST" || h.Get("Access-Control-Allow-Headers") != "Content-Type, X-Rivet-Encoding" ||
			h.Get("Access-Control-Max-Age") != "600" {
			t.Fatalf("%s: %v", origin, h)
		}
	}
	// The function refuses: refused, localhost too (as with a list).
	for _, origin := range []string{"https://evil.example", "http://localhost:5173"} {
		if resp, m := do(t, "POST", base+"/gateway/counter/action/increment"+query, `{"args":[1]}`, map[string]string{"Origin": origin}); resp.StatusCode != 403 || m["code"] != "forbidden_origin" {
			t.Fatalf("%s: %d %v", origin, resp.StatusCode, m)
		}
	}

	// The function alone, without credentials: allowed origins lose
	// their cookies; a negative max age leaves the header out.
	var mu sync.Mutex
	var seen string
	base = serveHeaders(t, rivet.GatewayConfig{CORSOptions: rivet.CORSOptions{
		AllowOrigin: func(origin string, r *http.Request) bool {
			mu.Lock()
			seen = r.Header.Get("Cookie")
			mu.Unlock()
			return origin == "https://app.example"
		},
		NoCredentials: true,
		MaxAge:        -1,
	}})
	resp := preflight("https://app.example")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Credentials") != "" || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("no credentials: %d %v", resp.StatusCode, resp.Header)
	}
	if _, ok := resp.Header["Access-Control-Max-Age"]; ok {
		t.Fatalf("negative max age sent %v", resp.Header)
	}
	_, _ = do(t, "POST", base+"/gateway/counter/action/increment"+query, `{"args":[1]}`, map[string]string{"Origin": "https://app.example", "Cookie": "session=1"})
	mu.Lock()
	defer mu.Unlock()
	if seen != "session=1" {
		t.Fatalf("the origin function saw cookie %q", seen)
	}
}

// TestCORSNoCredentialsDropsCookies: with NoCredentials, the cookies of an
// allowed origin's request reach no hook.
func TestCORSNoCredentialsDropsCookies(t *testing.T) {
	got := make(chan string, 1)
	jar := rivet.NewActor("jar", rivet.Opts[page]{
		OnRequest: func(_ *rivet.Ctx[page], _ http.ResponseWriter, r *http.Request) error {
			got <- r.Header.Get("Cookie")
			return nil
		},
	})
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(jar), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
		Gateway: rivet.GatewayConfig{AllowedOrigins: []string{"https://app.example"}, CORSOptions: rivet.CORSOptions{NoCredentials: true}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	defer func() { srv.Close(); _ = rt.Stop(context.Background()) }()
	resp, _ := do(t, "GET", srv.URL+"/gateway/jar/request/"+query, "", map[string]string{"Origin": "https://app.example", "Cookie": "session=1"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c := <-got; c != "" {
		t.Fatalf("OnRequest saw cookie %q", c)
	}
}
