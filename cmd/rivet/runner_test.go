package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

// TestServeAsEngineRunner: rivet serve with RIVET_ENGINE runs the same
// registry as a runner of a real engine; clients reach it through the
// engine, and it stops cleanly.
func TestServeAsEngineRunner(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	t.Setenv("RIVET_ENGINE", "")
	t.Setenv("RIVET_ENDPOINT", eng.GuardURL()) // RivetKit's name is read too
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--example", "demo", "--log-level", "error", "--listen", "127.0.0.1:0"}, out)
	}()
	local := out.waitFor(t, regexp.MustCompile(`local +(http://[0-9.:]+) `), done)
	out.waitFor(t, regexp.MustCompile(`(connected to the engine)`), done)
	if !strings.Contains(out.String(), "engine     "+eng.GuardURL()) {
		t.Fatalf("startup output lacks the engine:\n%s", out.String())
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, eng.GuardURL()+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=cli&rvt-crash-policy=sleep",
		strings.NewReader(`{"args":[5]}`))
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"output":5}` {
		t.Fatalf("increment through the engine: %s %s", resp.Status, body)
	}
	checkRunnerLocalListener(t, local)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// checkRunnerLocalListener: a runner's local listener serves metrics,
// health and the inspector, which lists the actors running here, and
// refuses actor traffic (it goes through the engine).
func checkRunnerLocalListener(t *testing.T, local string) {
	t.Helper()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(local + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/health"); status != 200 || body != "ok" {
		t.Fatalf("/health: %d %q", status, body)
	}
	if status, body := get("/metrics"); status != 200 || !strings.Contains(body, "rivet_turns_total") {
		t.Fatalf("/metrics: %d %.300s", status, body)
	}
	status, body := get("/inspector/actors?name=counter")
	var list struct {
		Actors []struct {
			Name string   `json:"name"`
			Key  []string `json:"key"`
		} `json:"actors"`
	}
	if err := json.Unmarshal([]byte(body), &list); status != 200 || err != nil {
		t.Fatalf("/inspector/actors: %d %q %v", status, body, err)
	}
	if len(list.Actors) != 1 || list.Actors[0].Key[0] != "cli" {
		t.Fatalf("the inspector lists %+v, want the counter cli running here", list.Actors)
	}
	if status, body := get("/gateway/counter/action/increment"); status != 404 || !strings.Contains(body, "use_engine") {
		t.Fatalf("actor traffic on the local listener: %d %q", status, body)
	}
}

// A runner's local listener: an explicit listen address that is taken is
// an error (as for the embedded server), not a silent move elsewhere.
func TestRunnerListenerTakenAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	t.Setenv("PORT", "")
	cfg := &rivet.Config{Listen: busy.Addr().String()}
	if l, err := rivet.RunnerListener(cfg.Listen); err == nil {
		l.Close()
		t.Fatalf("listening on the taken %s succeeded", cfg.Listen)
	}
	cfg.Listen = "127.0.0.1:0"
	l, err := rivet.RunnerListener(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
