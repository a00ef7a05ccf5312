package rivet_test

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
)

// TestManyActorsBoundedMemory creates n actors on the embedded store
// (one increment each, through the runtime's own client) with the
// default sleep timeout (30 s: without a bound most would still be
// awake at the end) and max_awake_actors set to maxAwake, sampling the
// Go heap after a GC at every tenth of the way. It checks that the
// actors awake stay near the bound and that the heap does not grow with
// the count: from the first sample to the last it grows by less than
// what a tenth of the actors would hold awake. Every actor's increment
// is read back at the end.
//
// CI runs 5,000 actors with a bound of 250 (RIVET_MEASURE_MAX_AWAKE=-1
// turns the bound off: the test fails). The long run is `make
// million` (RIVET_MEASURE_ACTORS=1000000, bound 100,000: the default),
// recorded in docs/RELIABILITY.md.
func TestManyActorsBoundedMemory(t *testing.T) {
	n, maxAwake := 5_000, 250
	if v, err := strconv.Atoi(os.Getenv("RIVET_MEASURE_ACTORS")); err == nil && v > 0 {
		n, maxAwake = v, 0 // the default bound
	}
	if v, err := strconv.Atoi(os.Getenv("RIVET_MEASURE_MAX_AWAKE")); err == nil && v != 0 {
		maxAwake = v
	}
	def := rivet.NewActor("many", rivet.Opts[counterState]{}).
		Action("inc", func(c *rivet.Ctx[counterState]) int { c.State.Count++; return c.State.Count })
	rt, err := rivet.Start(context.Background(), mustRegistry(t, def), &rivet.Config{DataDir: t.TempDir(), MaxAwakeActors: maxAwake, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background()) })
	bound := maxAwake
	if bound == 0 {
		bound = 100_000
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	rss := func() float64 {
		b, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				return float64(kb) / 1024
			}
		}
		return 0
	}
	base := heap()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	const callers = 64
	step := max(n/10, 1)
	var (
		next, done atomic.Int64
		failed     atomic.Value
		wg         sync.WaitGroup
		mu         sync.Mutex
		heaps      []uint64
		maxSeen    int
		peakRSS    float64
		start      time.Time
	)
	sample := func() {
		h, a, r := heap(), rt.Engine().AwakeCount(), rss()
		mu.Lock()
		heaps = append(heaps, h)
		maxSeen, peakRSS = max(maxSeen, a), max(peakRSS, r)
		mu.Unlock()
		t.Logf("%d actors created, %.1f s: %d awake, Go heap in use %.1f MiB, RSS %.0f MiB", done.Load(), time.Since(start).Seconds(), a, float64(h)/(1<<20), r)
	}
	start = time.Now()
	for range callers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil && failed.Load() == nil; i = next.Add(1) {
				if _, err := rt.Client().GetOrCreate("many", rivet.Key{strconv.FormatInt(i, 10)}).Call(ctx, "inc"); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				if d := done.Add(1); d%int64(step) == 0 {
					sample()
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	final := heap()
	if path := os.Getenv("RIVET_MEASURE_HEAP_PROFILE"); path != "" {
		// What the heap holds with every actor created (use with
		// -test.memprofilerate=512; go tool pprof -sample_index=inuse_space).
		if f, err := os.Create(path); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	t.Logf("%d actors in %s (%.0f/s), bound %d: awake at most %d at the samples, %d at the end (%d put to sleep early); Go heap in use %.1f MiB at start, %.1f MiB at the end; RSS peak %.0f MiB, end %.0f MiB",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), bound, maxSeen, rt.Engine().AwakeCount(), rt.Engine().Evicted(),
		float64(base)/(1<<20), float64(final)/(1<<20), peakRSS, rss())
	// An awake idle actor holds ~3.5 KiB of heap (docs/RELIABILITY.md):
	// without the bound the last nine tenths would add ~3 KiB each. With
	// it the heap may grow by what a tenth of them would hold, plus 4 MiB
	// for the store (its memtable fills between flushes).
	if n >= 10*bound && len(heaps) >= 2 {
		first, peak := heaps[0], slices.Max(heaps)
		limit := int64(n/10)*3<<10 + 4<<20
		if growth := int64(peak) - int64(first); growth > limit {
			t.Fatalf("Go heap grew %.1f MiB from %d to %d actors (first sample %.1f MiB, peak %.1f MiB), want ≤ %.1f MiB: memory grows with the count",
				float64(growth)/(1<<20), step, n, float64(first)/(1<<20), float64(peak)/(1<<20), float64(limit)/(1<<20))
		}
	}
	// Each sample may run while the evictions it triggered are queued
	// and actors put to sleep still wait for their last commit: allow
	// as many again and the callers in flight.
	if limit := 2*bound + 2*callers; maxSeen > limit {
		t.Fatalf("%d actors awake at a sample, want ≤ %d (max_awake_actors %d)", maxSeen, limit, bound)
	}
	// The embedded driver keeps a fencing entry per actor in use; the
	// runtime releases it when the actor sleeps, so it follows the awake
	// actors too (it once kept ~110 B per actor ever used).
	if c, ok := rt.Engine().Driver().(interface{ CachedActors() int }); ok {
		n, limit := c.CachedActors(), 2*bound+2*callers
		t.Logf("embedded driver's fencing cache: %d entries", n)
		if n > limit {
			t.Fatalf("the embedded driver caches %d actors with %d awake, want ≤ %d", n, rt.Engine().AwakeCount(), limit)
		}
	} else {
		t.Fatalf("the embedded driver no longer reports its cache size (CachedActors)")
	}
	// Spot-check that early sleep lost nothing.
	for _, i := range []int{1, n / 2, n} {
		v, err := rivet.Call[int](ctx, rt.Client().GetOrCreate("many", rivet.Key{strconv.Itoa(i)}), "inc")
		if err != nil || v != 2 {
			t.Fatalf("actor %d: inc = %d, %v; want 2", i, v, err)
		}
	}
}
