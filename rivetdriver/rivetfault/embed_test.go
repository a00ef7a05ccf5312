package rivetfault_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// The embedded store's own faults, below the driver: Pebble's errorfs
// fails file writes and fsyncs, and a crashable memory file system drops
// whatever was not synced when the "machine" crashes.

const embedDir = "/store"

// ledgerLoad runs sequential "inc" callers on actors until stop is
// closed; acks[i] receives actor i's acknowledged counts in order.
func ledgerLoad(ctx context.Context, rt *rivet.Runtime, actors int, stop <-chan struct{}, onAck func(i, v int), onErr func(i int, err error)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range actors {
		wg.Go(func() {
			h := rt.Client().GetOrCreate("ledger", rivet.Key{fmt.Sprintf("a%d", i)})
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := rivet.Call[int](ctx, h, "inc")
				if err != nil {
					onErr(i, err)
					continue
				}
				onAck(i, v)
			}
		})
	}
	return &wg
}

// checkLedgers opens the store in fs and checks every actor: KV keys
// exactly 1..count, count at least lastAck[i]. It returns the counts.
func checkLedgers(t *testing.T, fs vfs.FS, lastAck []int) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := rivetembed.Open(embedDir, &rivetembed.Options{FS: fs})
	if err != nil {
		t.Fatalf("reopen after the fault: %v", err)
	}
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop(context.Background()); _ = d.Close() }()
	counts := make([]int, len(lastAck))
	for i := range lastAck {
		h := rt.Client().GetOrCreate("ledger", rivet.Key{fmt.Sprintf("a%d", i)})
		got, err := rivet.Call[ledgerCheck](ctx, h, "check")
		if err != nil {
			t.Errorf("actor %d: check: %v", i, err)
			continue
		}
		if got.Bad != "" {
			t.Errorf("actor %d: torn or corrupt data: %s", i, got.Bad)
		}
		if got.Count < lastAck[i] {
			t.Errorf("actor %d: count %d after the fault, but %d was acknowledged: acknowledged write lost", i, got.Count, lastAck[i])
		}
		counts[i] = got.Count
	}
	return counts
}

// TestEmbeddedCrashDropsOnlyUnacknowledged: while callers write, the
// machine "crashes" (CrashClone keeps exactly what was synced; with a
// seeded share of unsynced blocks in the long form). After reopening,
// every write acknowledged before the crash is there, no turn is torn,
// and nothing beyond what was in flight appears.
func TestEmbeddedCrashDropsOnlyUnacknowledged(t *testing.T) {
	total := 0
	for _, seed := range seeds(t, 3) {
		total += embeddedCrash(t, seed)
	}
	t.Logf("FAULTS %s: crashes=%d violations=0 unless reported above", t.Name(), total)
}

func embeddedCrash(t *testing.T, seed uint64) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, 7))
	fs := vfs.NewCrashableMem()
	d, err := rivetembed.Open(embedDir, &rivetembed.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const actors = 6
	var mu sync.Mutex
	acked := make([]int, actors)
	var acks atomic.Int64
	stop := make(chan struct{})
	wg := ledgerLoad(ctx, rt, actors, stop, func(i, v int) {
		mu.Lock()
		acked[i] = max(acked[i], v)
		mu.Unlock()
		acks.Add(1)
	}, func(i int, err error) { t.Errorf("actor %d: %v", i, err) })
	// Crash after a seeded number of acknowledged writes.
	target := int64(50 + rng.IntN(200))
	for acks.Load() < target && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := append([]int(nil), acked...) // acknowledged before the crash
	mu.Unlock()
	cfg := vfs.CrashCloneCfg{}
	if seed%2 == 0 {
		cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 8))}
	}
	crashed := fs.CrashClone(cfg)
	close(stop)
	wg.Wait()
	mu.Lock()
	after := append([]int(nil), acked...)
	mu.Unlock()
	_ = rt.Stop(context.Background())
	_ = d.Close()
	counts := checkLedgers(t, crashed, before)
	for i := range counts {
		// A call in flight at the crash can be durable though not yet
		// acknowledged; one beyond the last acknowledged value at the
		// end cannot (each actor has one call in flight at a time).
		if counts[i] > after[i]+1 {
			t.Errorf("actor %d: count %d after the crash, but only %d was ever acknowledged: unacknowledged writes visible", i, counts[i], after[i])
		}
	}
	return 1
}

// TestEmbeddedWriteAndSyncErrors: Pebble's errorfs fails WAL writes and
// fsyncs. Calls whose commit could not be made durable fail with a
// structured error and the store refuses further writes until it is
// reopened (its memory may no longer match the disk), but no process
// crash, no acknowledged write lost after the reopen, no torn turn.
func TestEmbeddedWriteAndSyncErrors(t *testing.T) {
	for _, seed := range seeds(t, 3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { embeddedIOErrors(t, seed) })
	}
}

func embeddedIOErrors(t *testing.T, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mem := vfs.NewCrashableMem()
	var on atomic.Bool
	var injected atomic.Int64
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 9))
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !on.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileFlush:
			rngMu.Lock()
			hit := rng.IntN(20) == 0
			rngMu.Unlock()
			if hit {
				injected.Add(1)
				return errorfs.ErrInjected
			}
		}
		return nil
	})
	d, err := rivetembed.Open(embedDir, &rivetembed.Options{FS: errorfs.Wrap(mem, inj)})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	logs := &logCount{}
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: d, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	const actors = 4
	var mu sync.Mutex
	acked := make([]int, actors)
	var fails atomic.Int64
	var bad []string
	stop := make(chan struct{})
	on.Store(true)
	wg := ledgerLoad(ctx, rt, actors, stop, func(i, v int) {
		mu.Lock()
		if v <= acked[i] {
			bad = append(bad, fmt.Sprintf("actor %d: acknowledged %d after %d", i, v, acked[i]))
		}
		acked[i] = v
		mu.Unlock()
	}, func(i int, err error) {
		if fails.Add(1) > 200 {
			return
		}
		if msg := badError(err, logs); msg != "" {
			mu.Lock()
			bad = append(bad, msg)
			mu.Unlock()
		}
	})
	for (injected.Load() == 0 || fails.Load() < 20) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	on.Store(false)
	_ = rt.Stop(context.Background())
	_ = d.Close()
	for _, b := range bad {
		t.Error(b)
	}
	if injected.Load() == 0 {
		t.Fatal("no I/O error was injected")
	}
	mu.Lock()
	last := append([]int(nil), acked...)
	mu.Unlock()
	// A crash after the failure keeps only what was synced: every
	// acknowledged write must be among it.
	checkLedgers(t, mem.CrashClone(vfs.CrashCloneCfg{}), last)
	t.Logf("FAULTS %s: io_errors=%d failed_calls=%d", t.Name(), injected.Load(), fails.Load())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
