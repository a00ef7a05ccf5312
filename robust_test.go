package rivet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
)

// logCapture collects a runtime's JSON log lines.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// find returns the lines whose msg is msg and whose text contains every
// fragment.
func (l *logCapture) find(msg string, fragments ...string) []map[string]any {
	var out []map[string]any
	for _, m := range l.lines() {
		if m["msg"] != msg {
			continue
		}
		b, _ := json.Marshal(m)
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(string(b), f)
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits until a line with msg and the fragments is logged.
func (l *logCapture) waitLog(t *testing.T, msg string, fragments ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := l.find(msg, fragments...); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q with %q; got:\n%v", msg, fragments, l.lines())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startLogged(t *testing.T, defs ...rivet.Definition) (*rivet.Runtime, *logCapture) {
	t.Helper()
	lc := &logCapture{}
	rt, err := rivet.Start(context.Background(), mustRegistry(t, defs...), &rivet.Config{
		Driver: newMem(), Logger: slog.New(slog.NewJSONHandler(lc, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Stop(ctx)
	})
	return rt, lc
}

type isoVars struct {
	Seen  map[string]int
	List  []int
	Any   any
	local map[string]int // unexported fields are copied too
	Count *atomic.Int64  // pointers are shared
}

type isoConn struct {
	Tags map[string]bool
}

// TestVarsAndConnStateAreCopied: every actor gets its own copy of
// Options.Vars and every connection its own copy of Options.ConnState.
// Before, they were shallow copies, and eight actors writing their vars'
// map at once ended the process with "concurrent map writes"; under
// -race this test reports that sharing.
func TestVarsAndConnStateAreCopied(t *testing.T) {
	shared := &atomic.Int64{}
	initial := isoVars{Seen: map[string]int{}, List: []int{0}, Any: map[string]any{"n": 0}, local: map[string]int{}, Count: shared}
	def := rivet.NewActor("iso", rivet.Options[regState, isoConn, isoVars]{
		Vars:      initial,
		ConnState: isoConn{Tags: map[string]bool{}},
	}).
		Action("touch", func(c *rivet.Context[regState, isoConn, isoVars], who string) (string, error) {
			v := c.Vars
			v.Seen[who]++
			v.local[who]++
			v.List[0]++
			v.Any.(map[string]any)[who] = true
			v.Count.Add(1)
			if len(v.Seen) != 1 || len(v.local) != 1 || len(v.Any.(map[string]any)) != 2 || v.List[0] != v.Seen[who] {
				return "", fmt.Errorf("actor %s sees another actor's vars: %+v", who, *v)
			}
			return who, nil
		}).
		Action("tag", func(c *rivet.Context[regState, isoConn, isoVars], tag string) int {
			c.Conn.State.Tags[tag] = true
			return len(c.Conn.State.Tags)
		})
	rt, _ := startLogged(t, def)
	ctx := ctxT(t)
	client := rt.Client()

	const actors, calls = 8, 50
	var wg sync.WaitGroup
	for i := range actors {
		who := fmt.Sprintf("a%d", i)
		h := client.GetOrCreate("iso", rivet.Key{who})
		wg.Go(func() {
			for range calls {
				if _, err := rivet.Call[string](ctx, h, "touch", who); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := shared.Load(); got != actors*calls {
		t.Fatalf("shared counter = %d, want %d: a pointer in Vars is shared", got, actors*calls)
	}
	if len(initial.Seen) != 0 || len(initial.local) != 0 || initial.List[0] != 0 || len(initial.Any.(map[string]any)) != 1 {
		t.Fatalf("Options.Vars was written through: %+v", initial)
	}

	// Two connections to one actor: each has its own tags.
	h := client.GetOrCreate("iso", rivet.Key{"conns"})
	c1 := must[*rivet.Connection](t)(h.Connect(ctx))
	c2 := must[*rivet.Connection](t)(h.Connect(ctx))
	for _, tc := range []struct {
		c   *rivet.Connection
		tag string
	}{{c1, "x"}, {c2, "y"}, {c1, "z"}} {
		v := must[rivet.Value](t)(tc.c.Call(ctx, "tag", tc.tag))
		var n int
		if err := v.Decode(&n); err != nil {
			t.Fatal(err)
		}
		want := 1
		if tc.tag == "z" {
			want = 2
		}
		if n != want {
			t.Fatalf("tag %s: connection has %d tags, want %d: connection state is shared", tc.tag, n, want)
		}
	}
}

// panicky is a state whose encoding panics when Boom is set: a user
// type's own encoder is user code too.
type panicky struct {
	Boom bool
	N    int
}

func (p panicky) MarshalBinary() ([]byte, error) {
	if p.Boom {
		panic("encoder exploded")
	}
	return json.Marshal(struct{ N int }{p.N})
}

func (p *panicky) UnmarshalBinary(b []byte) error {
	var v struct{ N int }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p.N = v.N
	return nil
}

// TestUserCodeCannotCrashTheServer: a panic in any user code the runtime
// runs — hooks on other goroutines, background work, connection handlers
// of the in-process client, onAuth, raw handlers, a state type's encoder
// — is recovered, logged with the actor's fields and, where a caller
// waits, answered as core.internal_error.
func TestUserCodeCannotCrashTheServer(t *testing.T) {
	type S = panicky
	type ctx = rivet.Context[S, rivet.None, rivet.None]
	def := rivet.NewActor("fragile", rivet.Opts[S]{
		OnAuth: func(a *rivet.AuthContext, params rivet.Value) (any, error) {
			if len(a.Key) > 0 && a.Key[0] == "authpanic" {
				panic("onAuth exploded")
			}
			return nil, nil
		},
		CreateConnState: func(c *ctx, params rivet.Value) (rivet.None, error) {
			if params.Present() {
				panic("createConnState exploded")
			}
			return rivet.None{}, nil
		},
		OnDisconnect: func(c *ctx, conn *rivet.Conn[rivet.None]) { panic("onDisconnect exploded") },
		OnSleep:      func(c *ctx) error { panic("onSleep exploded") },
		OnRequest: func(c *ctx, w http.ResponseWriter, r *http.Request) error {
			panic("onRequest exploded")
		},
		OnWebSocket: func(c *ctx, ws *rivet.WebSocket[S, rivet.None, rivet.None]) error {
			ws.OnMessage(func(c *ctx, msg rivet.WebSocketMessage) error { panic("onMessage exploded") })
			return nil
		},
	}).
		Action("get", func(c *ctx) int { return c.State.N }).
		Action("inc", func(c *ctx) int { c.State.N++; return c.State.N }).
		Action("badState", func(c *ctx) int { c.State.Boom = true; return 0 }).
		Action("plain", func(c *ctx) error { return errors.New("the database is down") }).
		Action("boom", func(c *ctx) { panic("action exploded") }).
		Action("emit", func(c *ctx, n int) { c.Broadcast("tick", n) }).
		Action("background", func(c *ctx) {
			c.RunInBackground(func(bg *rivet.Background[S, rivet.None, rivet.None]) { panic("background exploded") })
		}).
		Action("scheduled", func(c *ctx) error {
			_, err := c.Schedule().After(0, "boom")
			return err
		})
	rt, lc := startLogged(t, def)
	cx := ctxT(t)
	h := rt.Client().GetOrCreate("fragile", rivet.Key{"k"})
	id := must[string](t)(h.ID(cx))
	fields := []string{`"actor":"fragile"`, `"key":"k"`, `"actor_id":"` + id + `"`}
	internal := func(what string, err error) {
		t.Helper()
		var re *rivet.Error
		if !errors.As(err, &re) || re.Group != "core" || re.Code != "internal_error" || re.Message != "An internal error occurred" {
			t.Fatalf("%s: err = %v, want core.internal_error", what, err)
		}
	}

	must[int](t)(rivet.Call[int](cx, h, "inc"))
	// A state whose encoder panics fails the turn; the state rolls back.
	_, err := h.Call(cx, "badState")
	internal("encoder panic", err)
	lc.waitLog(t, "panic in actor code", append(fields, "encoder exploded", `"in":"encode state"`)...)
	if n := must[int](t)(rivet.Call[int](cx, h, "inc")); n != 2 {
		t.Fatalf("after the failed turn inc = %d, want 2", n)
	}
	// A plain error and a panic: the same shape for callers, one log line
	// each with the actor's fields.
	_, err = h.Call(cx, "plain")
	internal("plain error", err)
	lc.waitLog(t, "actor code failed", append(fields, "the database is down", `"action":"plain"`)...)
	_, err = h.Call(cx, "boom")
	internal("panic", err)
	lc.waitLog(t, "panic in actor code", append(fields, "action exploded", `"action":"boom"`)...)

	// Background work and scheduled actions run on other goroutines.
	must[rivet.Value](t)(h.Call(cx, "background"))
	lc.waitLog(t, "panic in background task", append(fields, "background exploded")...)
	must[rivet.Value](t)(h.Call(cx, "scheduled"))
	lc.waitLog(t, "panic in actor code", append(fields, `"in":"scheduled action"`)...)

	// In-process connection handlers run on the runtime's goroutines.
	conn := must[*rivet.Connection](t)(h.Connect(cx))
	got := make(chan int, 4)
	conn.On("tick", func(a rivet.Args) {
		var n int
		_ = a.Decode(0, &n)
		if n == 1 {
			panic("event handler exploded")
		}
		got <- n
	})
	must[rivet.Value](t)(h.Call(cx, "emit", 1))
	must[rivet.Value](t)(h.Call(cx, "emit", 2))
	if n := <-got; n != 2 {
		t.Fatalf("after a handler panicked, got event %d, want 2", n)
	}
	lc.waitLog(t, "panic in connection event handler", append(fields, "event handler exploded")...)
	if err := conn.Close(cx); err != nil {
		t.Fatal(err)
	}
	lc.waitLog(t, "panic in actor code", append(fields, "onDisconnect exploded")...)
	_, err = rt.Client().GetOrCreate("fragile", rivet.Key{"k"}, rivet.WithParams("boom")).Connect(cx)
	internal("createConnState panic", err)
	lc.waitLog(t, "panic in actor code", append(fields, "createConnState exploded", `"in":"createConnState"`)...)

	// Over HTTP: onAuth and onRequest.
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	for _, tc := range []struct{ what, path, msg, log string }{
		{"onAuth", "/gateway/fragile/action/get?rvt-namespace=default&rvt-method=get&rvt-key=authpanic", "panic in actor code", "onAuth exploded"},
		{"onRequest", "/gateway/" + id + "/request/x", "panic in actor code", "onRequest exploded"},
		{"plain error over HTTP", "/gateway/" + id + "/action/plain", "actor code failed", "the database is down"},
	} {
		before := len(lc.find(tc.msg, tc.log))
		req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(`{"args":[]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Rivet-Encoding", "json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"group":"core"`) || !strings.Contains(string(body), `"code":"internal_error"`) {
			t.Fatalf("%s: %d %s, want 500 core.internal_error", tc.what, resp.StatusCode, body)
		}
		line := lc.waitLog(t, tc.msg, tc.log)
		if line["actor"] != "fragile" || line["key"] == nil {
			t.Fatalf("%s: log line without the actor: %v", tc.what, line)
		}
		if n := len(lc.find(tc.msg, tc.log)) - before; n != 1 {
			t.Fatalf("%s: logged %d times, want once", tc.what, n)
		}
		if n := len(lc.find("request failed", tc.log)); n != 0 {
			t.Fatalf("%s: the gateway logged it again, without the actor's fields", tc.what)
		}
	}

	// A raw WebSocket whose message handler panics is closed with 1011
	// and the error's group and code.
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/gateway/" + id + "/websocket/"
	ws, _, err := websocket.Dial(cx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(cx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(cx)
	if websocket.CloseStatus(err) != websocket.StatusInternalError || !strings.Contains(err.Error(), "core.internal_error") {
		t.Fatalf("raw WebSocket after a panic: %v, want close 1011 core.internal_error", err)
	}
	lc.waitLog(t, "panic in actor code", append(fields, "onMessage exploded")...)

	// onSleep on shutdown, and an OnClose handler of a connection the
	// stopping actor closes (it runs on the actor's goroutine).
	if n := must[int](t)(rivet.Call[int](cx, h, "get")); n != 2 {
		t.Fatalf("get = %d, want 2", n)
	}
	open := must[*rivet.Connection](t)(h.Connect(cx))
	open.OnClose(func(string) { panic("OnClose exploded") })
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	lc.waitLog(t, "panic in actor code", append(fields, "onSleep exploded")...)
	lc.waitLog(t, "panic in connection OnClose handler", append(fields, "OnClose exploded")...)
}

type statsVars struct{ Stats map[string]int }

// TestErrorMetadataIsDetached: an error's metadata is copied when the
// turn ends, so that a caller (or the gateway, encoding it on its own
// goroutine) never reads a map the actor goes on writing.
func TestErrorMetadataIsDetached(t *testing.T) {
	type ctx = rivet.Context[regState, rivet.None, statsVars]
	def := rivet.NewActor("stats", rivet.Options[regState, rivet.None, statsVars]{
		CreateVars: func(c *ctx) (statsVars, error) { return statsVars{Stats: map[string]int{}}, nil },
	}).
		Action("bump", func(c *ctx) { c.Vars.Stats["n"]++ }).
		Action("refuse", func(c *ctx) error {
			return rivet.UserError("refused", rivet.WithMetadata(c.Vars.Stats))
		})
	rt, _ := startLogged(t, def)
	cx := ctxT(t)
	h := rt.Client().GetOrCreate("stats", rivet.Key{"s"})
	must[rivet.Value](t)(h.Call(cx, "bump"))
	_, err := h.Call(cx, "refuse")
	var re *rivet.Error
	if !errors.As(err, &re) || re.Code != "user_error" {
		t.Fatalf("refuse: %v", err)
	}
	md := re.Metadata.(map[string]int)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 100 {
			if _, err := h.Call(cx, "bump"); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 100 {
		if md["n"] != 1 {
			t.Fatalf("metadata changed to %v after the call: it is the actor's own map", md)
		}
	}
	wg.Wait()
}
