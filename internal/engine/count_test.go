package engine

import (
	"context"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// With the embedded store, Start counts stored actors from its key index
// (CountLiveActors) instead of listing records; the gauges agree.
func TestSleepingCountedAtStartEmbedded(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := func() (*Engine, rivetdriver.Driver) {
		d, err := rivetembed.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Driver: d, Behaviors: []Behavior{tally{}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return e, d
	}
	e1, d1 := start()
	for _, k := range []string{"x", "y", "z"} {
		if _, _, err := e1.Create(ctx, "default", "tally", []string{k}, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := e1.Lookup(ctx, "default", "tally", []string{"z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Destroy(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	e2, d2 := start()
	defer func() { _ = e2.Stop(ctx); _ = d2.Close() }()
	if a, s := mustSample(t, e2, "rivet_actors_awake", map[string]string{"actor": "tally"}), mustSample(t, e2, "rivet_actors_sleeping", map[string]string{"actor": "tally"}); a != 0 || s != 2 {
		t.Fatalf("after restart: awake %v sleeping %v, want 0 and 2", a, s)
	}
}
