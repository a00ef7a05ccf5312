package inspector_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type benchState struct {
	Count int `json:"count"`
}

var benchCounter = rivet.NewActor("counter", rivet.Opts[benchState]{}).
	Action("increment", func(c *rivet.Ctx[benchState], n int) (int, error) {
		c.State.Count += n
		c.Broadcast("newCount", c.State.Count)
		return c.State.Count, nil
	})

// BenchmarkHotActorInspector measures what the inspector's bookkeeping
// costs a hot actor (the root package's BenchmarkHotActor scenario on the
// memory store, so that the engine, not the fsync, is the bottleneck):
// off, on with nobody watching, and on with an open watch.
func BenchmarkHotActorInspector(b *testing.B) {
	for _, mode := range []string{"disabled", "enabled", "watched"} {
		b.Run(mode, func(b *testing.B) {
			rt, err := rivet.Start(context.Background(), rivet.MustRegistry(benchCounter), &rivet.Config{
				Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
				Inspector: rivet.InspectorConfig{Disabled: mode == "disabled"},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Stop(context.Background())
			h := rt.Client().GetOrCreate("counter", rivet.Key{"hot"})
			if _, err := h.Call(context.Background(), "increment", 1); err != nil {
				b.Fatal(err)
			}
			if mode == "watched" {
				id, _ := h.ID(context.Background())
				w, err := rt.Engine().Watch(id)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				done := make(chan struct{})
				defer close(done)
				go func() {
					for {
						select {
						case <-w.C:
						case <-done:
							return
						}
					}
				}()
			}
			const callers = 64
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for int(next.Add(1)) <= b.N {
						if _, err := h.Call(context.Background(), "increment", 1); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
		})
	}
}
