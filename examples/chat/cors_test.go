package chat_test

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
	"github.com/rivetgo/rivet/internal/browsertest"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// crossOrigin serves the chat page from one origin and its actors from
// another: the page's bundle is served with window.location.origin (the
// endpoint it gives createRivetKit) replaced by the gateway's URL, as an
// app deployed apart from its server would be built.
// gw gets the page's origin.
func crossOrigin(t *testing.T, appHost string, gw func(appOrigin string) rivet.GatewayConfig) (app, gateway string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	app = "http://" + appHost + ":" + port
	x, err := examples.Lookup("chat")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(x.Definitions()...),
		&rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw(app)})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(rt.Handler())
	site := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		b, err := fs.ReadFile(x.Web, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		switch path.Ext(name) {
		case ".js":
			w.Header().Set("Content-Type", "text/javascript")
			b = []byte(strings.ReplaceAll(string(b), "window.location.origin", jsString(api.URL)))
		case ".css":
			w.Header().Set("Content-Type", "text/css")
		default:
			w.Header().Set("Content-Type", "text/html")
		}
		_, _ = w.Write(b)
	}))
	site.Listener.Close()
	site.Listener = l
	site.Start()
	t.Cleanup(func() {
		api.CloseClientConnections()
		site.Close()
		api.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Stop(ctx)
	})
	return app, api.URL
}

// TestChatCrossOrigin: @rivetkit/react in a page of another origin. The
// official client fetches /metadata with credentials: "include", which a
// browser completes only if the answer allows credentials. A development
// page on localhost works by default; a page of another site works once
// its origin is allowed, and without that the browser refuses the
// client's first request.
func TestChatCrossOrigin(t *testing.T) {
	// app.test is another site: the browser resolves it to this machine.
	browser := browsertest.Start(t, 900, 700, chromedp.Flag("host-resolver-rules", "MAP app.test 127.0.0.1"))

	byDefault := func(string) rivet.GatewayConfig { return rivet.GatewayConfig{} }
	allowed := func(app string) rivet.GatewayConfig { return rivet.GatewayConfig{AllowedOrigins: []string{app}} }

	t.Run("localhost by default", func(t *testing.T) {
		app, _ := crossOrigin(t, "localhost", byDefault)
		p := tab(t, browser, "dev")
		p.join(t, app, "dev", "cross")
		p.send(t, "from localhost")
		p.waitMessages(t, "dev: from localhost")
	})
	t.Run("another site, allowed", func(t *testing.T) {
		app, _ := crossOrigin(t, "app.test", allowed)
		p := tab(t, browser, "site")
		p.join(t, app, "site", "cross")
		p.send(t, "from app.test")
		p.waitMessages(t, "site: from app.test")
		p.screenshot(t, "chat-cross-origin.png")
	})
	t.Run("another site, not allowed", func(t *testing.T) {
		app, gateway := crossOrigin(t, "app.test", byDefault)
		p := tab(t, browser, "site")
		// What the client does first, from the page itself.
		probe := `fetch(` + jsString(gateway+"/metadata?namespace=default") + `, {credentials: "include"}).then(r => "answered " + r.status, e => "refused: " + e)`
		p.do(t, chromedp.Navigate(app))
		got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](probe, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, "refused") {
			t.Fatalf("a credentialed request of another site: %s", got)
		}
		// Without credentials it may call (public actors stay public).
		probe = `fetch(` + jsString(gateway+"/metadata?namespace=default") + `).then(r => "answered " + r.status, e => "refused: " + e)`
		if got, err = chromedp.Run(p.ctx, chromedp.Evaluate[string](probe, chromedp.EvalAwaitPromise)); err != nil || got != "answered 200" {
			t.Fatalf("an uncredentialed request of another site: %s %v", got, err)
		}
	})
}
