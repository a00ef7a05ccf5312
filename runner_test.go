package rivet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

// startEngineRunner starts a real rivet-engine and a runner of the
// counter registry connected to it.
func startEngineRunner(t *testing.T, eng *enginetest.Engine) *rivet.EngineRunner {
	t.Helper()
	reg := rivet.MustRegistry(counterDef)
	er, err := rivet.StartEngineRunner(context.Background(), reg, &rivet.Config{Logger: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}, rivet.EngineConfig{URL: eng.GuardURL()})
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
	body, _ := json.Marshal(map[string]any{"args": args})
	url := eng.GuardURL() + "/gateway/counter/action/" + action +
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
	var out struct {
		Actors []map[string]any `json:"actors"`
	}
	if err := enginetest.Do(context.Background(), http.MethodGet, eng.GuardURL(), "/actors?namespace=default&name=counter&key="+key, nil, &out); err != nil {
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
	id, _ := engineActorID(t, eng, "y")
	if err := enginetest.Do(context.Background(), http.MethodPost, eng.GuardURL(), "/actors/"+id+"/sleep?namespace=default", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	// The engine sends a stop command; the runner sleeps the actor and
	// reports it stopped, after which the engine lists it as sleeping.
	waitEngine(t, "actor asleep in the engine", func() bool {
		_, a := engineActorID(t, eng, "y")
		return a["sleep_ts"] != nil
	})
	if er.Runtime().Engine().Awake(id) {
		t.Fatal("actor still awake in the runtime after the engine's stop")
	}
	// The next call wakes it (generation 2) with its state from the
	// engine's KV.
	if _, out := engineAction(t, eng, "y", "increment", 1); out["output"] != float64(3) {
		t.Fatalf("increment after wake: %v", out)
	}
}
