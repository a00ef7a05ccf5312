package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

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
	go func() { done <- run(ctx, []string{"serve", "--example", "demo", "--log-level", "error"}, out) }()
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
