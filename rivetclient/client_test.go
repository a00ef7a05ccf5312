package rivetclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/fixtures"
	"github.com/rivetgo/rivet/rivetclient"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server serves the fixture registry over real HTTP.
func server(t *testing.T) (*rivet.Runtime, *httptest.Server) {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(fixtures.Definitions()...),
		// The tests use a namespace per encoding.
		&rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: rivet.GatewayConfig{Namespaces: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rt.Handler())
	srv.Listener = &trackingListener{Listener: srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	return rt, srv
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var encodings = []string{"bare", "cbor", "json"}

// eachEncoding runs f with a client per encoding, over the network and
// in-process.
func eachEncoding(t *testing.T, f func(t *testing.T, c *rivetclient.Client)) {
	rt, srv := server(t)
	for _, enc := range encodings {
		t.Run(enc, func(t *testing.T) {
			f(t, rivetclient.New(srv.URL, rivetclient.WithEncoding(enc), rivetclient.WithNamespace("ns-"+enc)))
		})
		t.Run(enc+"/in-process", func(t *testing.T) {
			c := rivetclient.InProcess(rt.Handler(), rivetclient.WithEncoding(enc), rivetclient.WithNamespace("ip-"+enc))
			defer c.Close()
			f(t, c)
		})
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantCode(t *testing.T, err error, group, code string) *rivet.Error {
	t.Helper()
	var e *rivet.Error
	if !errors.As(err, &e) || e.Group != group || e.Code != code {
		t.Fatalf("error %v, want %s.%s", err, group, code)
	}
	return e
}

func TestActionsAndHandles(t *testing.T) {
	eachEncoding(t, func(t *testing.T, c *rivetclient.Client) {
		ctx := ctxT(t)
		h := c.GetOrCreate("counter", rivet.Key{"a"})
		if n := must[int](t)(rivetclient.Call[int](ctx, h, "increment", 5)); n != 5 {
			t.Fatalf("increment = %d", n)
		}
		// The same key is the same actor, through get and by id.
		if n := must[int](t)(rivetclient.Call[int](ctx, c.Get("counter", rivet.Key{"a"}), "getCount")); n != 5 {
			t.Fatalf("get: %d", n)
		}
		id := must[string](t)(h.ID(ctx))
		if n := must[int](t)(rivetclient.Call[int](ctx, c.GetForID("counter", id), "increment", 1)); n != 6 {
			t.Fatalf("by id: %d", n)
		}
		if k := must[[]string](t)(rivetclient.Call[[]string](ctx, h, "getKey")); len(k) != 1 || k[0] != "a" {
			t.Fatalf("key %v", k)
		}
		// Another key, another actor; compound keys.
		if n := must[int](t)(rivetclient.Call[int](ctx, c.GetOrCreate("counter", rivet.Key{"a", "b/c"}), "getCount")); n != 0 {
			t.Fatalf("other key: %d", n)
		}
		// Dotted action names.
		if n := must[int](t)(rivetclient.Call[int](ctx, c.GetOrCreate("nestedActionActor", nil), "calculator.add", 3)); n != 3 {
			t.Fatalf("calculator.add = %d", n)
		}
		// get of a missing actor.
		_, err := c.Get("counter", rivet.Key{"missing"}).Call(ctx, "getCount")
		wantCode(t, err, "actor", "not_found")

		// create: a fresh actor with input; a second create of the key fails.
		ch := must[*rivetclient.Handle](t)(c.Create(ctx, "inputActor", rivet.Key{"in"}, rivetclient.WithInput(map[string]any{"name": "ada", "value": 42})))
		in := must[map[string]any](t)(rivetclient.Call[map[string]any](ctx, ch, "getInputs"))
		if in["initialInput"] == nil {
			t.Fatalf("inputs %v", in)
		}
		_, err = c.Create(ctx, "inputActor", rivet.Key{"in"})
		wantCode(t, err, "actor", "duplicate_key")

		// Destroy: later calls by id fail; getOrCreate makes a new actor.
		if err := h.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = c.GetForID("counter", id).Call(ctx, "getCount")
		wantCode(t, err, "actor", "not_found")
		if n := must[int](t)(rivetclient.Call[int](ctx, h, "getCount")); n != 0 {
			t.Fatalf("after destroy: %d", n)
		}
	})
}

func TestErrors(t *testing.T) {
	eachEncoding(t, func(t *testing.T, c *rivetclient.Client) {
		ctx := ctxT(t)
		h := c.GetOrCreate("errorHandlingActor", nil)
		_, err := h.Call(ctx, "throwSimpleError")
		if e := wantCode(t, err, "user", "user_error"); e.Message != "Simple error message" {
			t.Fatalf("message %q", e.Message)
		}
		_, err = h.Call(ctx, "throwDetailedError")
		e := wantCode(t, err, "user", "detailed_error")
		if md, _ := e.Metadata.(map[string]any); md["reason"] == nil {
			t.Fatalf("metadata %#v", e.Metadata)
		}
		_, err = h.Call(ctx, "throwInternalError")
		if e := wantCode(t, err, "core", "internal_error"); e.Message != "An internal error occurred" || strings.Contains(e.Error(), "This is an internal error") {
			t.Fatalf("internal error leaked: %v", e)
		}
		_, err = h.Call(ctx, "noSuchAction")
		wantCode(t, err, "actor", "action_not_found")
		_, err = c.GetOrCreate("noSuchActor", nil).Call(ctx, "x")
		wantCode(t, err, "actor", "not_registered")
		_, err = c.GetOrCreate("counter", nil).Call(ctx, "increment", "not a number")
		wantCode(t, err, "actor", "invalid_arguments")
		_, err = c.GetOrCreate("shortTimeoutActor", nil).Call(ctx, "slowAction")
		wantCode(t, err, "actor", "action_timed_out")
		// The actor still works.
		if s := must[string](t)(rivetclient.Call[string](ctx, h, "successfulAction")); s != "success" {
			t.Fatal(s)
		}
	})
}

func TestConnectionEventsAndState(t *testing.T) {
	eachEncoding(t, func(t *testing.T, c *rivetclient.Client) {
		ctx := ctxT(t)
		h := c.GetOrCreate("counter", rivet.Key{"events"})
		conn := h.Connect()
		defer conn.Close()
		got := make(chan int, 10)
		unsub := conn.On("newCount", func(a rivet.Args) {
			var n int
			_ = a.Decode(0, &n)
			got <- n
		})
		once := make(chan int, 10)
		conn.Once("newCount", func(a rivet.Args) {
			var n int
			_ = a.Decode(0, &n)
			once <- n
		})
		if n := must[int](t)(rivetclient.Call[int](ctx, conn, "increment", 2)); n != 2 {
			t.Fatalf("increment = %d", n)
		}
		if n := <-got; n != 2 {
			t.Fatalf("event %d", n)
		}
		// A stateless call broadcasts to the connection too.
		must[int](t)(rivetclient.Call[int](ctx, h, "increment", 3))
		if n := <-got; n != 5 {
			t.Fatalf("event %d", n)
		}
		if n := <-once; n != 2 || len(once) != 0 {
			t.Fatalf("once got %d (+%d)", n, len(once))
		}
		unsub()
		must[int](t)(rivetclient.Call[int](ctx, conn, "increment", 1))
		select {
		case n := <-got:
			t.Fatalf("event %d after unsubscribe", n)
		default:
		}

		// Connection params and state.
		p := c.GetOrCreate("counterWithParams", rivet.Key{"p"}, rivetclient.WithParams(map[string]string{"name": "ada"}))
		pc := p.Connect()
		defer pc.Close()
		must[int](t)(rivetclient.Call[int](ctx, pc, "increment", 1))
		inits := must[[]string](t)(rivetclient.Call[[]string](ctx, pc, "getInitializers"))
		if len(inits) == 0 || inits[len(inits)-1] != "ada" {
			t.Fatalf("initializers %v", inits)
		}
	})
}

func TestReconnectResubscribesAndQueues(t *testing.T) {
	ctx := ctxT(t)
	_, srv := server(t)
	c := rivetclient.New(srv.URL)
	h := c.GetOrCreate("counter", rivet.Key{"re"})
	conn := h.Connect()
	defer conn.Close()
	got := make(chan int, 10)
	conn.On("newCount", func(a rivet.Args) {
		var n int
		_ = a.Decode(0, &n)
		got <- n
	})
	must[int](t)(rivetclient.Call[int](ctx, conn, "increment", 1))
	<-got
	first := conn.ID()
	var mu sync.Mutex
	var statuses []rivetclient.Status
	lost := make(chan struct{})
	conn.OnStatus(func(s rivetclient.Status) {
		mu.Lock()
		statuses = append(statuses, s)
		mu.Unlock()
		if s == rivetclient.StatusDisconnected {
			select {
			case <-lost:
			default:
				close(lost)
			}
		}
	})
	srv.Listener.(*trackingListener).drop() // the network drops every socket
	<-lost
	// Calls made while reconnecting are queued and answered.
	if n := must[int](t)(rivetclient.Call[int](ctx, conn, "increment", 1)); n != 2 {
		t.Fatalf("after reconnect: %d", n)
	}
	if n := <-got; n != 2 {
		t.Fatalf("event after reconnect: %d (subscription not renewed?)", n)
	}
	if conn.ID() == first {
		t.Fatal("same connection id after reconnect")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) < 2 || statuses[len(statuses)-1] != rivetclient.StatusConnected {
		t.Fatalf("statuses %v", statuses)
	}
}

func TestConnectionRejected(t *testing.T) {
	ctx := ctxT(t)
	_, srv := server(t)
	c := rivetclient.New(srv.URL, rivetclient.WithEncoding("json"))
	conn := c.GetOrCreate("beforeConnectRejectActor", nil, rivetclient.WithParams(map[string]bool{"shouldReject": true})).Connect()
	defer conn.Close()
	errc := make(chan error, 4)
	conn.OnError(func(err error) {
		select {
		case errc <- err:
		default:
		}
	})
	_, err := conn.Call(ctx, "ping")
	if err == nil {
		t.Fatal("call on a rejected connection succeeded")
	}
	// A handler registered after the refusal still hears of it.
	late := make(chan error, 1)
	conn.OnError(func(err error) {
		select {
		case late <- err:
		default:
		}
	})
	for _, ch := range []chan error{errc, late} {
		select {
		case err := <-ch:
			var e *rivet.Error
			if !errors.As(err, &e) {
				t.Fatalf("OnError got %v", err)
			}
		case <-ctx.Done():
			t.Fatal("no OnError")
		}
	}
}

func TestRawHTTPAndWebSocket(t *testing.T) {
	eachEncoding(t, func(t *testing.T, c *rivetclient.Client) {
		ctx := ctxT(t)
		h := c.GetOrCreate("rawHttpActor", rivet.Key{"r"})
		resp := must[*http.Response](t)(h.Fetch(ctx, "GET", "/api/hello", nil, nil))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello from actor!") {
			t.Fatalf("hello: %d %s", resp.StatusCode, body)
		}
		resp = must[*http.Response](t)(h.Fetch(ctx, "POST", "/api/echo", strings.NewReader(`{"x":1}`), http.Header{"Content-Type": {"application/json"}}))
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != `{"x":1}` {
			t.Fatalf("echo %s", body)
		}
		resp = must[*http.Response](t)(c.GetOrCreate("rawHttpNoHandlerActor", nil).Fetch(ctx, "GET", "/x", nil, nil))
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("no handler: %d", resp.StatusCode)
		}

		ws := must[*websocket.Conn](t)(c.GetOrCreate("rawWebSocketActor", rivet.Key{"w"}).WebSocket(ctx, "/"))
		defer ws.CloseNow()
		_, msg := must2(t)(ws.Read(ctx))
		var welcome map[string]any
		if json.Unmarshal(msg, &welcome) != nil || welcome["type"] != "welcome" {
			t.Fatalf("welcome %s", msg)
		}
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		_, msg = must2(t)(ws.Read(ctx))
		if !bytes.Contains(msg, []byte(`"pong"`)) {
			t.Fatalf("pong %s", msg)
		}
		_ = ws.Close(websocket.StatusNormalClosure, "")
	})
}

func must2(t *testing.T) func(websocket.MessageType, []byte, error) (websocket.MessageType, []byte) {
	return func(typ websocket.MessageType, b []byte, err error) (websocket.MessageType, []byte) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return typ, b
	}
}

// trackingListener remembers its connections so a test can drop them all,
// WebSockets included (httptest forgets hijacked connections).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}
