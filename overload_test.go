package rivet_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// TestSleepingActorsReleaseMemory creates many actors on the embedded
// store, lets their sleep timeout put them all to sleep, and checks that
// none stays in memory and that the Go heap they held while awake is
// released. It logs the heap per awake idle actor and per sleeping
// actor and the creation rate. RIVET_MEASURE_ACTORS=1000000 runs the
// measurement of docs/RELIABILITY.md ("Overload"); CI runs 300.
func TestSleepingActorsReleaseMemory(t *testing.T) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("RIVET_MEASURE_ACTORS")); err == nil && v > 0 {
		n = v
	}
	d, err := rivetembed.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	def := rivet.NewActor("napper", rivet.Opts[counterState]{SleepTimeout: 2 * time.Second}).
		Action("inc", func(c *rivet.Ctx[counterState]) int { c.State.Count++; return c.State.Count })
	rt := startOn(t, d, def)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				if _, err := rt.Client().GetOrCreate("napper", rivet.Key{strconv.FormatInt(i, 10)}).Call(ctx, "inc"); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	created := time.Since(start)
	awakeN := rt.Engine().AwakeCount()
	awakeHeap := heap()
	for rt.Engine().AwakeCount() > 0 {
		if ctx.Err() != nil {
			t.Fatalf("%d actors still awake long after their sleep timeout", rt.Engine().AwakeCount())
		}
		time.Sleep(20 * time.Millisecond)
	}
	asleepHeap := heap()
	perAwake := float64(awakeHeap-base) / float64(max(awakeN, 1))
	perAsleep := (float64(asleepHeap) - float64(base)) / float64(n)
	t.Logf("%d actors created in %s (%.0f/s); %d still awake right after: Go heap +%.0f B each; all asleep: heap +%.0f B per sleeping actor (base %.1f MiB, awake %.1f MiB, asleep %.1f MiB)",
		n, created.Round(time.Millisecond), float64(n)/created.Seconds(), awakeN, perAwake, perAsleep,
		float64(base)/(1<<20), float64(awakeHeap)/(1<<20), float64(asleepHeap)/(1<<20))
	// Sleeping actors hold no memory of their own: the heap returns to
	// within half of what the awake ones held (the store's caches keep
	// some).
	if awakeN > n/2 && asleepHeap > base+(awakeHeap-base)/2 {
		t.Fatalf("heap after all slept %d B, want ≤ %d (base %d, awake %d)", asleepHeap, base+(awakeHeap-base)/2, base, awakeHeap)
	}
}
