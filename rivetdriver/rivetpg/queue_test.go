package rivetpg_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

var pgJobs = rivet.Queue[int]("jobs")

// pgQueue sends to its own queue and takes from it; "takeFail" takes a
// message in a turn that fails.
var pgQueue = rivet.NewActor("pgqueue", rivet.Opts[struct{}]{}).Queues(pgJobs).
	Action("send", func(c *rivet.Ctx[struct{}], n int) error { return pgJobs.Send(c, n) }).
	Action("take", func(c *rivet.Ctx[struct{}]) (int, error) {
		m, err := pgJobs.Next(c)
		if m == nil {
			return -1, err
		}
		return m.Body, nil
	}).
	Action("takeFail", func(c *rivet.Ctx[struct{}]) error {
		if _, err := pgJobs.Next(c); err != nil {
			return err
		}
		return rivet.UserError("fail")
	})

// TestQueueOnPostgres: queue messages are rows of the actor's KV space,
// committed and removed with their turns on PostgreSQL as on the other
// drivers, and they survive a restart in order.
func TestQueueOnPostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, schema := testURL(t), freshSchema(t)
	quiet := slog.New(slog.DiscardHandler)
	start := func() *rivet.Runtime {
		d, err := rivetpg.Open(ctx, url, &rivetpg.Options{Schema: schema, AutoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		rt, err := rivet.Start(ctx, rivet.MustRegistry(pgQueue), &rivet.Config{Driver: d, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	rt := start()
	h := rt.Client().GetOrCreate("pgqueue", rivet.Key{"q"})
	for n := 1; n <= 3; n++ {
		if _, err := h.Call(ctx, "send", n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Call(ctx, "takeFail"); err == nil {
		t.Fatal("takeFail succeeded")
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rt = start()
	defer func() { _ = rt.Stop(context.Background()) }() // before the driver closes
	h = rt.Client().GetOrCreate("pgqueue", rivet.Key{"q"})
	for _, want := range []int{1, 2, 3, -1} {
		got, err := rivet.Call[int](ctx, h, "take")
		if err != nil || got != want {
			t.Fatalf("take: %d, %v; want %d", got, err, want)
		}
	}
}
