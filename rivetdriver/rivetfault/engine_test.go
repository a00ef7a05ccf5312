package rivetfault_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/rivetdriver/rivetfault"
)

// engineFaults says whether the engine fault tests run: each starts a
// real rivet-engine, which takes longer than CI's budget for them, so they
// run in `make fault-long` (RIVET_FAULT_SEEDS) or with RIVET_FAULT_ENGINE
// set.
func engineFaults(t *testing.T) {
	if os.Getenv("RIVET_FAULT_SEEDS") == "" && os.Getenv("RIVET_FAULT_ENGINE") == "" {
		t.Skip("starts a rivet-engine: make fault-long, or RIVET_FAULT_ENGINE=1")
	}
}

// engineSeeds returns the engine runs' seeds: RIVET_FAULT_ENGINE (a count,
// default 1) from RIVET_FAULT_SEED (default 1). Each seed starts an engine
// of its own, so the count is apart from RIVET_FAULT_SEEDS.
func engineSeeds(t *testing.T) []uint64 { return seedsFrom(t, "RIVET_FAULT_ENGINE", 1) }

// engineRules is the fault mix on the engine's KV: the kinds that apply
// there (see WrapEngineKV), at the rates of the driver runs.
func engineRules() []rivetfault.Rule {
	return []rivetfault.Rule{
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindError, Prob: 0.04},
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindLostAck, Prob: 0.03},
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindSlow, Prob: 0.05, Delay: 2 * time.Millisecond},
		{Ops: rivetfault.OpReads, Kind: rivetfault.KindError, Prob: 0.04},
		{Ops: rivetfault.OpReads, Kind: rivetfault.KindCorrupt, Prob: 0.02},
		{Ops: rivetfault.OpReads, Kind: rivetfault.KindSlow, Prob: 0.05, Delay: 2 * time.Millisecond},
	}
}

// startRunner connects a runner of the ledger registry to eng, its engine
// KV wrapped by fd (when not nil).
func startRunner(t *testing.T, eng *enginetest.Engine, fd *rivetfault.Driver, log *slog.Logger, storeTimeout time.Duration) *rivet.EngineRunner {
	t.Helper()
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	ec := rivet.EngineConfig{URL: eng.GuardURL()}
	if fd != nil {
		ec.WrapKV = fd
	}
	er, err := rivet.StartEngineRunner(context.Background(), reg, &rivet.Config{Engine: ec, Logger: log, StoreTimeout: storeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := er.Ready(ctx); err != nil {
		t.Fatalf("runner not connected: %v", err)
	}
	return er
}

func stopRunner(er *rivet.EngineRunner) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = er.Stop(ctx)
}

// TestFaultsEngine runs the ledger of the driver runs in runner mode, with
// faults injected into the engine KV requests the runner's storage sends
// (errors, lost acknowledgements, detected corruption, slow calls), over
// two runners one after the other (the second activates each actor from
// what the first left, under faults too), then checks with a third runner
// and no faults: no acknowledged write lost, no unacknowledged one visible
// beyond the writes the wrapper reports applied, no torn turn, every
// failure a structured error. Each seed has an engine of its own (the
// engine stalls after about ten actor allocations, docs/engine-runner.md
// §12: 3 actors × 3 runners stay below).
func TestFaultsEngine(t *testing.T) {
	engineFaults(t)
	var total tally
	for _, seed := range engineSeeds(t) {
		var tl tally
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			tl = runEngineLedger(t, seed, 3, 2, 20)
			for _, v := range tl.violations {
				t.Errorf("seed %d: %s", seed, v)
			}
		})
		total.faults += tl.faults
		total.calls += tl.calls
		total.acks += tl.acks
		total.failures += tl.failures
		total.violations = append(total.violations, tl.violations...)
	}
	t.Logf("FAULTS %s: seeds=%d calls=%d acknowledged=%d failed=%d faults=%d violations=%d",
		t.Name(), len(engineSeeds(t)), total.calls, total.acks, total.failures, total.faults, len(total.violations))
	if total.faults == 0 {
		t.Fatal("no fault was injected: the test proves nothing")
	}
}

func runEngineLedger(t *testing.T, seed uint64, actors, rounds, callsPerRound int) tally {
	var tl tally
	eng := enginetest.Start(t, enginetest.Options{})
	fd := rivetfault.New(nil, seed)
	fd.Add(engineRules()...)
	logs := &logCount{}
	log := slog.New(logs)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	hist := make([]*actorLog, actors)
	for i := range hist {
		hist[i] = &actorLog{}
	}
	inDoubt := map[string]int{} // actor id: write requests applied but failed
	var mu sync.Mutex
	fd.OnFault(func(f rivetfault.Fault) {
		if f.Kind == rivetfault.KindLostAck {
			mu.Lock()
			inDoubt[f.Actors[0]]++
			mu.Unlock()
		}
	})
	for round := range rounds {
		er := startRunner(t, eng, fd, log, 0)
		cl := er.Runtime().Client()
		var wg sync.WaitGroup
		var vmu sync.Mutex
		for i := range actors {
			wg.Go(func() {
				a := hist[i]
				h := cl.GetOrCreate("ledger", rivet.Key{fmt.Sprintf("a%d", i)})
				for range callsPerRound {
					cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
					v, err := rivet.Call[int](cctx, h, "inc")
					ccancel()
					vmu.Lock()
					tl.calls++
					if err != nil {
						tl.failures++
						if msg := badError(err, logs); msg != "" {
							tl.violate("round %d actor %d: %s", round, i, msg)
						}
					} else {
						tl.acks++
						if n := len(a.acks); n > 0 && v <= a.acks[n-1] {
							tl.violate("actor %d: acknowledged count %d after acknowledged %d: an acknowledged write was lost", i, v, a.acks[n-1])
						}
						a.acks = append(a.acks, v)
					}
					vmu.Unlock()
				}
			})
		}
		wg.Wait()
		// The engine stops the actors (their last commits may fail
		// under faults) and places them on the next runner.
		stopRunner(er)
	}
	tl.faults = fd.Stats().Total()
	fd.Clear()

	er := startRunner(t, eng, nil, log, 0)
	defer stopRunner(er)
	cl := er.Runtime().Client()
	for i, a := range hist {
		h := cl.GetOrCreate("ledger", rivet.Key{fmt.Sprintf("a%d", i)})
		var got ledgerCheck
		var err error
		for try := 0; try < 3; try++ { // the engine may still be moving the actor
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			got, err = rivet.Call[ledgerCheck](cctx, h, "check")
			ccancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			tl.violate("actor %d: check after the faults: %v", i, err)
			continue
		}
		id, err := h.ID(ctx)
		if err != nil {
			tl.violate("actor %d: %v", i, err)
			continue
		}
		mu.Lock()
		doubt := inDoubt[id]
		mu.Unlock()
		tl.audit(i, a.acks, got, doubt)
	}
	if len(tl.violations) > 0 {
		logs.mu.Lock()
		t.Logf("log (first lines): %q", logs.last)
		logs.mu.Unlock()
	}
	return tl
}

// TestFaultsEngineHungKV: in runner mode the engine KV hangs
// every write of one actor. Its caller gets a structured storage error
// once the store timeout passes, the write is not visible afterwards, and
// another actor on the same runner keeps serving writes meanwhile.
func TestFaultsEngineHungKV(t *testing.T) {
	engineFaults(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	eng := enginetest.Start(t, enginetest.Options{})
	fd := rivetfault.New(nil, 1)
	const timeout = 500 * time.Millisecond
	er := startRunner(t, eng, fd, slog.New(slog.DiscardHandler), timeout)
	defer stopRunner(er)
	stuck, other, landed := hangOneActor(t, ctx, er.Runtime().Client(), fd, 10)
	// The failed write is not visible; the actor serves again.
	var got ledgerCheck
	var err error
	for try := 0; ; try++ {
		got, err = rivet.Call[ledgerCheck](ctx, stuck, "check")
		if err == nil || try == 5 {
			break
		}
	}
	if err != nil {
		t.Fatalf("the actor whose store hung does not answer after the hang: %v", err)
	}
	if got.Count != 1 || got.Bad != "" {
		t.Fatalf("after the hung write the actor holds count %d (%s); want 1: the failed write must not be visible", got.Count, got.Bad)
	}
	// (A write that failed with the hung one's batch may still have
	// landed: the commit timeout does not say which parts did.)
	if v, err := rivet.Call[int](ctx, other, "get"); err != nil || v < 1+landed {
		t.Fatalf("the other actor holds %d, %v; want at least its %d acknowledged writes", v, err, 1+landed)
	}
}
