package runner_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/internal/runner"
)

type noActors struct{}

func (noActors) Start(context.Context, runner.Actor) error { return nil }
func (noActors) Stop(context.Context, string, uint32, envoy.StopActorReason) error {
	return nil
}

// envoysListed reports whether GET /envoys lists key.
func envoysListed(t *testing.T, eng *enginetest.Engine, key string) bool {
	t.Helper()
	var out map[string]any
	if err := enginetest.Do(context.Background(), http.MethodGet, eng.GuardURL(), "/envoys?namespace=default", nil, &out); err != nil {
		t.Fatal(err)
	}
	list, _ := out["envoys"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m["envoy_key"] == key {
			t.Logf("listed: %v", m)
			return true
		}
	}
	return false
}

func TestRunnerConnects(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	r := runner.New(runner.Config{Endpoint: eng.GuardURL(), Names: []string{"counter"}, Actors: noActors{}, Handler: http.NotFoundHandler()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatalf("runner not ready: %v", err)
	}
	for !envoysListed(t, eng, r.Key()) {
		if wctx.Err() != nil {
			t.Fatal("runner never listed by GET /envoys")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
