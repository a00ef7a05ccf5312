package rivetfault_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetfault"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// TestAlarmRetriedAfterStoreReadFailure: a scheduled action whose KV read
// fails because the store did is run again, not dropped. Before, the
// alarm was deleted after that one failed run, as for an action's own
// error, so an acknowledged schedule never took effect (the crash soak
// saw 16 alarms never fire on a PostgreSQL under load).
func TestAlarmRetriedAfterStoreReadFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inner := rivetmem.New()
	defer inner.Close()
	fd := rivetfault.New(inner, 1)
	def := rivet.NewActor("ticker", rivet.Options[ledger, rivet.None, rivet.None]{}).
		Action("arm", func(c *ctxL) (string, error) {
			return c.Schedule().After(10*time.Millisecond, "tick")
		}).
		Action("tick", func(c *ctxL) error {
			var n int
			if _, err := c.KV().Get(rivet.K("ticks"), &n); err != nil {
				return err
			}
			return c.KV().Put(rivet.K("ticks"), n+1)
		}).
		Action("ticks", func(c *ctxL) (int, error) {
			var n int
			_, err := c.KV().Get(rivet.K("ticks"), &n)
			return n, err
		})
	reg, err := rivet.NewRegistry(def)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: fd, Logger: slog.New(&logCount{})})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop(context.Background()) }()
	h := rt.Client().GetOrCreate("ticker", rivet.Key{"a"})
	if n, err := rivet.Call[int](ctx, h, "ticks"); err != nil || n != 0 {
		t.Fatalf("ticks before = %d, %v", n, err)
	}
	fd.Add(rivetfault.Rule{Ops: rivetfault.OpKVGet, Kind: rivetfault.KindError, Limit: 1})
	if _, err := rivet.Call[string](ctx, h, "arm"); err != nil {
		t.Fatal(err)
	}
	// Nothing else reads the store until the scheduled action has met
	// the fault.
	for fd.Stats().Total() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the scheduled action never read the store")
		case <-time.After(5 * time.Millisecond):
		}
	}
	for {
		n, err := rivet.Call[int](ctx, h, "ticks")
		if err == nil && n == 1 {
			break
		}
		if err == nil && n > 1 {
			t.Fatalf("the alarm ran %d times", n)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the alarm never took effect after the store failed its read once (ticks %d, %v; faults %d)", n, err, fd.Stats().Total())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if fd.Stats().Total() != 1 {
		t.Fatalf("faults injected: %d, want 1", fd.Stats().Total())
	}
}
