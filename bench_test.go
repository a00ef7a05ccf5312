package rivet_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func benchDrivers(b *testing.B, f func(b *testing.B, d rivetdriver.Driver)) {
	b.Run("memory", func(b *testing.B) { f(b, rivetmem.New()) })
	b.Run("embedded", func(b *testing.B) {
		d, err := rivetembed.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		f(b, d)
	})
}

// runCallers spreads b.N calls over `callers` goroutines, each calling
// pick(i) for its i-th call, and reports turns/s and latency percentiles.
func runCallers(b *testing.B, rt *rivet.Runtime, callers int, pick func(i int) *rivet.Handle, action string, args ...any) {
	ctx := context.Background()
	var next atomic.Int64
	lats := make([][]time.Duration, callers)
	m := rt.Engine().Metrics()
	c0, b0 := m.Commits.Load(), m.Batches.Load()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if _, err := pick(i).Call(ctx, action, args...); err != nil {
					b.Error(err)
					return
				}
				lats[g] = append(lats[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
	if batches := m.Batches.Load() - b0; batches > 0 {
		b.ReportMetric(float64(m.Commits.Load()-c0)/float64(batches), "commits/batch")
	}
	b.ReportMetric(0, "ns/op")
}

func benchRuntime(b *testing.B, d rivetdriver.Driver) *rivet.Runtime {
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counterDef), &rivet.Config{Driver: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rt.Stop(context.Background()) })
	return rt
}

// BenchmarkHotActor: one actor, 64 and 256 concurrent callers, durable
// increments. A hot actor's durable throughput is callers / latency, and
// its latency is a few fsyncs (a turn waits for the fsync after the one
// under way), so more callers share each fsync.
func BenchmarkHotActor(b *testing.B) {
	for _, callers := range []int{64, 256, 1024} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			benchDrivers(b, func(b *testing.B, d rivetdriver.Driver) {
				rt := benchRuntime(b, d)
				h := rt.Client().GetOrCreate("counter", rivet.Key{"hot"})
				if _, err := h.Call(context.Background(), "increment", 1); err != nil {
					b.Fatal(err)
				}
				runCallers(b, rt, callers, func(int) *rivet.Handle { return h }, "increment", 1)
			})
		})
	}
}

// BenchmarkSpread: 1,000 actors, 256 concurrent callers, durable increments.
func BenchmarkSpread(b *testing.B) {
	benchDrivers(b, func(b *testing.B, d rivetdriver.Driver) {
		rt := benchRuntime(b, d)
		hs := make([]*rivet.Handle, 1000)
		for i := range hs {
			hs[i] = rt.Client().GetOrCreate("counter", rivet.Key{fmt.Sprint(i)})
			if _, err := hs[i].Call(context.Background(), "increment", 1); err != nil {
				b.Fatal(err)
			}
		}
		runCallers(b, rt, 256, func(i int) *rivet.Handle { return hs[(i*7919)%len(hs)] }, "increment", 1)
	})
}

// BenchmarkReadOnly: a hot actor's read-only action writes nothing.
func BenchmarkReadOnly(b *testing.B) {
	rt := benchRuntime(b, rivetmem.New())
	h := rt.Client().GetOrCreate("counter", rivet.Key{"ro"})
	runCallers(b, rt, 64, func(int) *rivet.Handle { return h }, "getCount")
}

// BenchmarkFsync measures this disk's raw rate of 4 KiB write + fdatasync
// in the benchmark's temp dir: the physical limit of one-fsync-per-turn.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}
