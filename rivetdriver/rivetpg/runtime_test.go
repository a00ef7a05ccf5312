package rivetpg_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

type counterState struct {
	Count int `json:"count"`
}

// counter keeps its count in state and the amount of each increment in KV,
// so that a restart checks both.
var counter = rivet.NewActor("counter", rivet.Opts[counterState]{}).
	Action("increment", func(c *rivet.Ctx[counterState], n int) (int, error) {
		c.State.Count += n
		if err := c.KV().Put(rivet.K("step", c.State.Count), n); err != nil {
			return 0, err
		}
		return c.State.Count, nil
	}).
	Action("getCount", func(c *rivet.Ctx[counterState]) int { return c.State.Count }).
	Action("steps", func(c *rivet.Ctx[counterState]) (int, error) {
		es, err := c.KV().List(rivet.KVListOptions{Prefix: rivet.K("step")})
		return len(es), err
	})

// TestRuntimeSurvivesRestart runs the actor runtime on the PostgreSQL
// driver: increments from concurrent callers (so that the group committer
// batches them), a stop, and a new runtime on a new driver over the same
// schema that finds every acknowledged increment.
func TestRuntimeSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url, schema := testURL(t), freshSchema(t)
	quiet := slog.New(slog.DiscardHandler)
	reg := rivet.MustRegistry(counter)

	// First run: AutoMigrate creates the schema, as "rivet serve" does.
	d1, err := rivetpg.Open(ctx, url, &rivetpg.Options{Schema: schema, AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: d1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	const callers, each = 8, 10
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			h := rt.Client().GetOrCreate("counter", rivet.Key{"shared"})
			for range each {
				if _, err := rivet.Call[int](ctx, h, "increment", 1); err != nil {
					t.Errorf("caller %d: increment: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, err := rivet.Call[int](ctx, rt.Client().GetOrCreate("counter", rivet.Key{"other"}), "increment", 5); err != nil || n != 5 {
		t.Fatalf("increment other = %d, %v", n, err)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}

	// Second run: a new driver and runtime on the same schema.
	d2, err := rivetpg.Open(ctx, url, &rivetpg.Options{Schema: schema})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer d2.Close()
	rt2, err := rivet.Start(ctx, reg, &rivet.Config{Driver: d2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Stop(context.WithoutCancel(ctx))
	shared := rt2.Client().GetOrCreate("counter", rivet.Key{"shared"})
	if n, err := rivet.Call[int](ctx, shared, "getCount"); err != nil || n != callers*each {
		t.Fatalf("count after restart = %d, %v; want %d", n, err, callers*each)
	}
	if n, err := rivet.Call[int](ctx, shared, "steps"); err != nil || n != callers*each {
		t.Fatalf("KV entries after restart = %d, %v; want %d", n, err, callers*each)
	}
	if n, err := rivet.Call[int](ctx, rt2.Client().GetOrCreate("counter", rivet.Key{"other"}), "increment", 1); err != nil || n != 6 {
		t.Fatalf("increment other after restart = %d, %v; want 6", n, err)
	}
	list, err := d2.ListActors(ctx, rivetdriver.ListActorsOptions{})
	if err != nil || len(list) != 2 {
		t.Fatalf("actors in the store = %d, %v; want 2", len(list), err)
	}
	for _, r := range list {
		if !r.Initialized || r.Generation != 2 {
			t.Errorf("actor %s: initialized %v, generation %d; want true, 2 (one activation per run)", fmt.Sprint(r.Key), r.Initialized, r.Generation)
		}
	}
}
