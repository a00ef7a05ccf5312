package rivet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

// startEngineRunner starts a real rivet-engine and a runner of the
// counter registry connected to it.
func startEngineRunner(t *testing.T, eng *enginetest.Engine) *rivet.EngineRunner {
	t.Helper()
	reg := rivet.MustRegistry(counterDef, engineKVDef, sleepyDef)
	er, err := rivet.StartEngineRunner(context.Background(), reg, &rivet.Config{
		Logger: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Engine: rivet.EngineConfig{URL: eng.GuardURL()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := er.Stop(ctx); err != nil {
			t.Errorf("stop runner: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := er.Ready(ctx); err != nil {
		t.Fatalf("runner not connected: %v", err)
	}
	return er
}

// engineAction calls an action through the engine's guard the way the
// official client does (query form, getOrCreate), with JSON.
func engineAction(t *testing.T, eng *enginetest.Engine, key, action string, args ...any) (int, map[string]any) {
	t.Helper()
	return engineCall(t, eng, "counter", key, action, args...)
}

func engineCall(t *testing.T, eng *enginetest.Engine, name, key, action string, args ...any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"args": args})
	url := eng.GuardURL() + "/gateway/" + name + "/action/" + action +
		"?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=" + key + "&rvt-crash-policy=sleep"
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-rivet-encoding", "json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %q", action, key, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func TestEngineRunnerActionOverHTTP(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	startEngineRunner(t, eng)
	for want := 1; want <= 3; want++ {
		status, out := engineAction(t, eng, "x", "increment", 1)
		if status != 200 || out["output"] != float64(want) {
			t.Fatalf("increment %d: %d %v", want, status, out)
		}
	}
	status, out := engineAction(t, eng, "x", "nope")
	if status != 404 || out["group"] != "actor" || out["code"] != "action_not_found" {
		t.Fatalf("unknown action: %d %v", status, out)
	}
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// engineActorID resolves the counter with key through the engine's API.
func engineActorID(t *testing.T, eng *enginetest.Engine, key string) (string, map[string]any) {
	t.Helper()
	return engineActorIDOf(t, eng, "counter", key)
}

func engineActorIDOf(t *testing.T, eng *enginetest.Engine, name, key string) (string, map[string]any) {
	t.Helper()
	var out struct {
		Actors []map[string]any `json:"actors"`
	}
	if err := enginetest.Do(context.Background(), http.MethodGet, eng.GuardURL(), "/actors?namespace=default&name="+name+"&key="+key, nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Actors) != 1 {
		t.Fatalf("actors with key %s: %v", key, out.Actors)
	}
	return out.Actors[0]["actor_id"].(string), out.Actors[0]
}

// waitEngine polls cond until it holds or the deadline passes.
func waitEngine(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEngineRunnerSleepWakeKeepsState(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	er := startEngineRunner(t, eng)
	for want := 1; want <= 2; want++ {
		if _, out := engineAction(t, eng, "y", "increment", 1); out["output"] != float64(want) {
			t.Fatalf("increment: %v", out)
		}
	}
	id := engineSleep(t, eng, "counter", "y")
	// The engine marks the actor asleep when it sends the stop command;
	// the runtime stops it right after.
	waitEngine(t, "actor stopped in the runtime after the engine's stop", func() bool { return !er.Runtime().Engine().Awake(id) })
	// The next call wakes it (generation 2) with its state from the
	// engine's KV.
	if _, out := engineAction(t, eng, "y", "increment", 1); out["output"] != float64(3) {
		t.Fatalf("increment after wake: %v", out)
	}
}

// engineSleep asks the engine to put an actor to sleep and waits until
// the engine lists it as sleeping (the runner stopped it and said so).
func engineSleep(t *testing.T, eng *enginetest.Engine, name, key string) string {
	t.Helper()
	id, _ := engineActorIDOf(t, eng, name, key)
	if err := enginetest.Do(context.Background(), http.MethodPost, eng.GuardURL(), "/actors/"+id+"/sleep?namespace=default", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "actor asleep in the engine", func() bool {
		_, a := engineActorIDOf(t, eng, name, key)
		return a["sleep_ts"] != nil
	})
	return id
}

var engineKVDef = rivet.NewActor("kvstore", rivet.Opts[struct{}]{}).
	Action("put", func(c *rivet.Ctx[struct{}], k, v string) error { return c.KV().Put(rivet.K(k), v) }).
	Action("del", func(c *rivet.Ctx[struct{}], k string) error { return c.KV().Delete(rivet.K(k)) }).
	Action("clear", func(c *rivet.Ctx[struct{}]) error { return c.KV().DeleteAll() }).
	Action("list", func(c *rivet.Ctx[struct{}], start, end string, reverse bool, limit int) ([]string, error) {
		var o rivet.KVListOptions
		if start != "" {
			o.Start = rivet.K(start)
		}
		if end != "" {
			o.End = rivet.K(end)
		}
		o.Reverse, o.Limit = reverse, limit
		es, err := c.KV().List(o)
		if err != nil {
			return nil, err
		}
		out := []string{}
		for _, e := range es {
			var v string
			if err := e.Value.Decode(&v); err != nil {
				return nil, err
			}
			out = append(out, e.Key[0].(string)+"="+v)
		}
		return out, nil
	})

// TestEngineRunnerKV: an actor's KV lives in the engine: puts, deletes,
// deleteAll and range lists read back after the actor slept (so from the
// engine, not from memory).
func TestEngineRunnerKV(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	startEngineRunner(t, eng)
	call := func(action string, args ...any) any {
		t.Helper()
		status, out := engineCall(t, eng, "kvstore", "k", action, args...)
		if status != 200 {
			t.Fatalf("%s%v: %d %v", action, args, status, out)
		}
		return out["output"]
	}
	list := func(start, end string, reverse bool, limit int) string {
		t.Helper()
		b, _ := json.Marshal(call("list", start, end, reverse, limit))
		return string(b)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		call("put", k, k+"1")
	}
	engineSleep(t, eng, "kvstore", "k")
	for _, c := range []struct {
		start, end string
		reverse    bool
		limit      int
		want       string
	}{
		{"", "", false, 0, `["a=a1","b=b1","c=c1","d=d1"]`},
		{"b", "d", false, 0, `["b=b1","c=c1"]`}, // end exclusive
		{"", "", true, 2, `["d=d1","c=c1"]`},
		{"b", "", true, 0, `["d=d1","c=c1","b=b1"]`},
	} {
		if got := list(c.start, c.end, c.reverse, c.limit); got != c.want {
			t.Fatalf("list %+v = %s, want %s", c, got, c.want)
		}
	}
	call("del", "b")
	call("put", "c", "c2")
	engineSleep(t, eng, "kvstore", "k")
	if got, want := list("", "", false, 0), `["a=a1","c=c2","d=d1"]`; got != want {
		t.Fatalf("after delete and overwrite: %s, want %s", got, want)
	}
	call("clear")
	call("put", "e", "e1")
	engineSleep(t, eng, "kvstore", "k")
	if got, want := list("", "", false, 0), `["e=e1"]`; got != want {
		t.Fatalf("after deleteAll: %s, want %s", got, want)
	}
}

// TestEngineRunnerOfficialClient: RivetKit's own client, pointed at the
// engine, reaches actors served by this runner, in every encoding:
// stateless actions (tunnelled HTTP) and a connection with an event
// (tunnelled WebSocket). Needs node and conformance/node_modules (cd
// conformance && npm install).
func TestEngineRunnerOfficialClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("conformance/node_modules/rivetkit")
	}
	if err != nil {
		// make test installs them (make clients); CI must run this test.
		if os.Getenv("CI") != "" {
			t.Fatalf("node and conformance/node_modules are needed in CI: %v", err)
		}
		t.Skip("needs node and conformance/node_modules (make clients)")
	}
	eng := enginetest.Start(t, enginetest.Options{})
	startEngineRunner(t, eng)
	for _, c := range []struct{ script, want string }{
		{"engine/client.mjs", `{"first":1,"second":3,"count":3,"error":{"group":"user","code":"custom"}}`},
		{"engine/connect.mjs", `{"first":1,"second":3,"events":[1,3]}`},
	} {
		for _, enc := range []string{"json", "cbor", "bare"} {
			t.Run(c.script+"/"+enc, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, node, c.script)
				cmd.Dir = "conformance"
				cmd.Env = append(os.Environ(), "ENDPOINT="+eng.GuardURL(), "ENCODING="+enc, "KEY="+c.script+"-"+enc)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("node: %v\n%s%s", err, out, stderr.Bytes())
				}
				lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
				if got := string(lines[len(lines)-1]); got != c.want {
					t.Fatalf("got  %s\nwant %s\n(all output: %s)", got, c.want, out)
				}
			})
		}
	}
}

func TestEngineSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("RIVET_ENDPOINT", "")
	t.Setenv("RIVET_POOL", "")
	t.Setenv("RIVET_ENDPOINT", "https://prod:secret@engine.example.com")
	t.Setenv("RIVET_POOL", "workers")
	c, err := rivet.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	want := rivet.EngineConfig{URL: "https://engine.example.com", Namespace: "prod", Token: "secret", Runner: "workers"}
	if c.Engine != want {
		t.Fatalf("engine settings from RivetKit's variables: %+v, want %+v", c.Engine, want)
	}
	// Our own names win over RivetKit's.
	t.Setenv("RIVET_ENGINE", "http://127.0.0.1:6420")
	t.Setenv("RIVET_RUNNER", "main")
	t.Setenv("RIVET_RUNNER_KEY", "node-1")
	if c, err = rivet.LoadConfig(""); err != nil {
		t.Fatal(err)
	}
	want = rivet.EngineConfig{URL: "http://127.0.0.1:6420", Runner: "main", RunnerKey: "node-1"}
	if c.Engine != want {
		t.Fatalf("engine settings: %+v, want %+v", c.Engine, want)
	}
	for _, bad := range []string{"127.0.0.1:6420", "ftp://x", "http://"} {
		if err := c.Set("engine", bad); err == nil || !strings.Contains(err.Error(), "engine") {
			t.Fatalf("engine=%q: %v, want an error naming the setting", bad, err)
		}
	}
	if _, err := rivet.StartEngineRunner(context.Background(), rivet.MustRegistry(counterDef), &rivet.Config{}); err == nil {
		t.Fatal("StartEngineRunner without an engine URL started")
	}
	// The engine refuses keys outside 3..128 characters at every connection
	// attempt: refused here, at once, with the setting's name.
	for _, bad := range []string{"ab", strings.Repeat("k", 129)} {
		if err := c.Set("runner_key", bad); err == nil || !strings.Contains(err.Error(), "runner_key") {
			t.Fatalf("runner_key=%q: %v, want an error naming the setting", bad, err)
		}
		_, err := rivet.StartEngineRunner(context.Background(), rivet.MustRegistry(counterDef),
			&rivet.Config{Engine: rivet.EngineConfig{URL: "http://127.0.0.1:1", RunnerKey: bad}})
		if err == nil || !strings.Contains(err.Error(), "runner_key") {
			t.Fatalf("StartEngineRunner with runner key %q: %v", bad, err)
		}
	}
}

// TestListenAndServeAsEngineRunner: an existing program that calls
// ListenAndServe becomes a runner when the engine is set (one variable,
// RIVET_ENGINE, through LoadConfig), and its actors answer through the
// engine; cancelling its context stops it cleanly.
func TestListenAndServeAsEngineRunner(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	clearEnv(t)
	t.Setenv("RIVET_ENGINE", eng.GuardURL())
	cfg, err := rivet.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(tlogWriter{t}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rivet.ListenAndServe(ctx, "127.0.0.1:0", rivet.MustRegistry(counterDef), cfg) }()
	waitEngine(t, "the counter answers through the engine", func() bool {
		status, _ := engineAction(t, eng, "las", "increment", 1)
		return status == 200
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("ListenAndServe did not return after its context was canceled")
	}
}

// TestEngineRunnerWebSocketClose: a connection tunnelled through the
// engine opens an actor connection in the runtime (Init arrives), and the
// client's close reaches the actor (the connection is gone).
func TestEngineRunnerWebSocketClose(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	er := startEngineRunner(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(eng.GuardURL(), "http") +
		"/gateway/counter/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=ws&rvt-crash-policy=sleep"
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"rivet", "rivet_encoding.json"}})
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil || !bytes.Contains(data, []byte(`"tag":"Init"`)) {
		t.Fatalf("first message %s, %v; want Init", data, err)
	}
	conns := er.Runtime().Engine().Metrics().Connections.Load
	if n := conns(); n != 1 {
		t.Fatalf("%d connections in the runtime, want 1", n)
	}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "the actor connection to close", func() bool { return conns() == 0 })
}

// TestEngineRunnerLostEngineStopsActors: when the engine stays
// unreachable past the lost threshold it announced, the runner stops
// serving its actors (the engine has rescheduled them elsewhere).
func TestEngineRunnerLostEngineStopsActors(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{Pegboard: map[string]any{"envoy_lost_threshold": 1500}})
	er := startEngineRunner(t, eng)
	if _, out := engineAction(t, eng, "lost", "increment", 1); out["output"] != float64(1) {
		t.Fatalf("increment: %v", out)
	}
	id, _ := engineActorID(t, eng, "lost")
	if !er.Runtime().Engine().Awake(id) {
		t.Fatal("actor not awake after a call")
	}
	eng.Kill9()
	killed := time.Now()
	waitEngine(t, "the actor to stop after the lost threshold", func() bool { return !er.Runtime().Engine().Awake(id) })
	// Well before its idle sleep (30 s): it was the lost threshold.
	if d := time.Since(killed); d > 10*time.Second {
		t.Fatalf("actor stopped %v after the engine died", d)
	}
}

var sleepyDef = rivet.NewActor("sleepy", rivet.Opts[counterState]{SleepTimeout: 300 * time.Millisecond}).
	Action("increment", func(c *rivet.Ctx[counterState], n int) (int, error) {
		c.State.Count += n
		return c.State.Count, nil
	})

// TestEngineRunnerIdleSleepAndDestroy: an actor that goes idle asks the
// engine to sleep (intent), and the engine then lists it as sleeping; a
// destroy through the engine's API destroys it here and drops its data.
func TestEngineRunnerIdleSleepAndDestroy(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	er := startEngineRunner(t, eng)
	if status, out := engineCall(t, eng, "sleepy", "s", "increment", 2); status != 200 || out["output"] != float64(2) {
		t.Fatalf("increment: %d %v", status, out)
	}
	id, _ := engineActorIDOf(t, eng, "sleepy", "s")
	waitEngine(t, "the idle actor asleep in the engine", func() bool {
		_, a := engineActorIDOf(t, eng, "sleepy", "s")
		return a["sleep_ts"] != nil
	})
	if _, out := engineCall(t, eng, "sleepy", "s", "increment", 1); out["output"] != float64(3) {
		t.Fatalf("increment after the engine woke it: %v", out)
	}
	if err := enginetest.Do(context.Background(), http.MethodDelete, eng.GuardURL(), "/actors/"+id+"?namespace=default", nil, nil); err != nil {
		t.Fatal(err)
	}
	waitEngine(t, "the actor destroyed in the engine", func() bool {
		var out struct {
			Actors []map[string]any `json:"actors"`
		}
		err := enginetest.Do(context.Background(), http.MethodGet, eng.GuardURL(), "/actors?namespace=default&actor_ids="+id, nil, &out)
		return err == nil && (len(out.Actors) == 0 || out.Actors[0]["destroy_ts"] != nil)
	})
	if er.Runtime().Engine().Awake(id) {
		t.Fatal("destroyed actor still awake in the runtime")
	}
	// A new actor under the same key starts from nothing.
	if _, out := engineCall(t, eng, "sleepy", "s", "increment", 1); out["output"] != float64(1) {
		t.Fatalf("increment of the new actor: %v", out)
	}
}
