package rivetfault_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetfault"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettype"
)

// The fault tests run a small ledger actor: each "inc" adds one to a
// counter and writes the new count as a KV key in the same turn, so that
// after any sequence of faults the store must hold a count M and exactly
// the keys 1..M. Per actor, calls are sequential, so every commit that
// reaches the store adds exactly one. The checks:
//
//   - no acknowledged write lost: the counts acknowledged to one actor's
//     caller strictly increase, and the final count is at least the last
//     one and at least the number of acknowledgements;
//   - no unacknowledged write visible: the final count exceeds the number
//     of acknowledgements by at most the commits the wrapper reports as
//     applied although it failed the call (lost acknowledgements, torn
//     batches);
//   - no torn turn and no corrupt record read as valid: the KV keys are
//     exactly 1..M with matching values;
//   - every failed call carries a structured error, and a
//     core.internal_error is never returned without an error logged.

type ledger struct {
	Count int `json:"count"`
}

type ledgerCheck struct {
	Count int    `json:"count"`
	Bad   string `json:"bad"`
}

type ctxL = rivet.Context[ledger, rivet.None, rivet.None]

func ledgerDef() *rivet.Actor[ledger, rivet.None, rivet.None] {
	return rivet.NewActor("ledger", rivet.Options[ledger, rivet.None, rivet.None]{}).
		Action("inc", func(c *ctxL) (int, error) {
			c.State.Count++
			if err := c.KV().Put(rivet.K("n", c.State.Count), c.State.Count); err != nil {
				return 0, err
			}
			return c.State.Count, nil
		}).
		Action("get", func(c *ctxL) int { return c.State.Count }).
		Action("check", func(c *ctxL) (ledgerCheck, error) {
			es, err := c.KV().List(rivet.KVListOptions{Prefix: rivet.K("n")})
			if err != nil {
				return ledgerCheck{}, err
			}
			out := ledgerCheck{Count: c.State.Count}
			if len(es) != c.State.Count {
				out.Bad = fmt.Sprintf("%d KV keys for count %d", len(es), c.State.Count)
			}
			for i, e := range es {
				var v int
				err := e.Value.Decode(&v)
				if len(e.Key) != 2 || fmt.Sprint(e.Key[1]) != strconv.Itoa(i+1) || err != nil || v != i+1 {
					out.Bad = fmt.Sprintf("KV entry %d is %v=%d (%v), want n/%d=%d", i, e.Key, v, err, i+1, i+1)
					break
				}
			}
			return out, nil
		})
}

// logCount counts log records at warning level and above.
type logCount struct {
	errors atomic.Int64
	mu     sync.Mutex
	last   []string
}

func (l *logCount) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.errors.Add(1)
	}
	l.mu.Lock()
	if len(l.last) < 20 {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		l.last = append(l.last, msg)
	}
	l.mu.Unlock()
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }

// store is one driver under test: open returns the driver to wrap (the
// same store each time); final returns the store as the checks read it
// (after a crash, for a crash test).
type store struct {
	name  string
	open  func(t *testing.T) rivetdriver.Driver
	final func(t *testing.T) rivetdriver.Driver
}

// tally is what one run observed.
type tally struct {
	faults     int
	calls      int
	acks       int
	failures   int
	violations []string
}

// audit checks actor i's final ledger against what its callers saw: acks
// are the acknowledged increments' results in order, doubt the writes
// whose failure said they may have been applied.
func (tl *tally) audit(i int, acks []int, got ledgerCheck, doubt int) {
	if got.Bad != "" {
		tl.violate("actor %d: torn or corrupt data: %s", i, got.Bad)
	}
	if n := len(acks); n > 0 && got.Count < acks[n-1] {
		tl.violate("actor %d: final count %d < last acknowledged %d: acknowledged write lost", i, got.Count, acks[n-1])
	}
	if got.Count < len(acks) {
		tl.violate("actor %d: final count %d < %d acknowledged increments: acknowledged write lost", i, got.Count, len(acks))
	}
	if got.Count > len(acks)+doubt {
		tl.violate("actor %d: final count %d > %d acknowledged + %d reported applied: an unacknowledged write is visible", i, got.Count, len(acks), doubt)
	}
}

func (tl *tally) violate(format string, args ...any) {
	tl.violations = append(tl.violations, fmt.Sprintf(format, args...))
}

// actorLog is one actor's history as its caller saw it.
type actorLog struct {
	acks []int
}

// runLedger runs rounds of concurrent sequential callers on actors under
// the faults rules inject, restarting the runtime between rounds (so that
// activations and reads are exercised too), then checks the store.
func runLedger(t *testing.T, st store, seed uint64, rules []rivetfault.Rule, actors, rounds, callsPerRound int) tally {
	t.Helper()
	var tl tally
	inner := st.open(t)
	fd := rivetfault.New(inner, seed)
	fd.Add(rules...)
	logs := &logCount{}
	log := slog.New(logs)
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	hist := make([]*actorLog, actors)
	inDoubt := map[string]int{} // actor id: commits applied by failed calls
	var mu sync.Mutex
	fd.OnFault(func(f rivetfault.Fault) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range f.Applied {
			inDoubt[c.ActorID]++
		}
	})
	for i := range hist {
		hist[i] = &actorLog{}
	}
	for round := range rounds {
		// Start reads the store too; under faults it may fail, with an
		// error, and is retried.
		var rt *rivet.Runtime
		for attempt := 0; rt == nil; attempt++ {
			rt, err = rivet.Start(ctx, reg, &rivet.Config{Driver: fd, Logger: log})
			if err != nil && attempt == 20 {
				t.Fatalf("Start failed 20 times: %v", err)
			}
		}
		var wg sync.WaitGroup
		var calls, acks, fails atomic.Int64
		var vmu sync.Mutex
		for i := range actors {
			wg.Go(func() {
				a := hist[i]
				h := rt.Client().GetOrCreate("ledger", rivet.Key{fmt.Sprintf("a%d", i)})
				for range callsPerRound {
					cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
					v, err := rivet.Call[int](cctx, h, "inc")
					ccancel()
					calls.Add(1)
					if err != nil {
						fails.Add(1)
						if msg := badError(err, logs); msg != "" {
							vmu.Lock()
							tl.violate("round %d actor %d: %s", round, i, msg)
							vmu.Unlock()
						}
						continue
					}
					acks.Add(1)
					if n := len(a.acks); n > 0 && v <= a.acks[n-1] {
						vmu.Lock()
						tl.violate("actor %d: acknowledged count %d after acknowledged %d: an acknowledged write was lost", i, v, a.acks[n-1])
						vmu.Unlock()
					}
					a.acks = append(a.acks, v)
				}
			})
		}
		wg.Wait()
		tl.calls += int(calls.Load())
		tl.acks += int(acks.Load())
		tl.failures += int(fails.Load())
		// Stop may fail under faults (an onSleep commit); the store
		// must be consistent regardless.
		stopCtx, stopCancel := context.WithTimeout(ctx, 30*time.Second)
		_ = rt.Stop(stopCtx)
		stopCancel()
	}
	tl.faults = fd.Stats().Total()
	fd.Clear()

	// Check the store with a fresh runtime and no faults.
	final := st.final(t)
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: final, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop(context.Background()) }()
	for i, a := range hist {
		h := rt.Client().GetOrCreate("ledger", rivet.Key{fmt.Sprintf("a%d", i)})
		got, err := rivet.Call[ledgerCheck](ctx, h, "check")
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

// badError returns why err is not an acceptable answer to a caller under
// storage faults, or "".
func badError(err error, logs *logCount) string {
	var re *rivettype.Error
	if !errors.As(err, &re) {
		return fmt.Sprintf("unstructured error %v", err)
	}
	if re.Group == "core" && re.Code == "internal_error" && logs.errors.Load() == 0 {
		return fmt.Sprintf("core.internal_error with nothing logged: %v", err)
	}
	return ""
}

// mixedRules is the fault mix of the ledger runs: every kind except hangs
// (tested on their own) and undetected bit flips (which no runtime can
// tell from valid data; see the package doc).
func mixedRules() []rivetfault.Rule {
	return []rivetfault.Rule{
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindError, Prob: 0.04},
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindLostAck, Prob: 0.03},
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindTorn, Prob: 0.03},
		{Ops: rivetfault.OpCommit, Kind: rivetfault.KindSlow, Prob: 0.05, Delay: 2 * time.Millisecond},
		{Ops: rivetfault.OpReads, Kind: rivetfault.KindError, Prob: 0.04},
		{Ops: rivetfault.OpReads, Kind: rivetfault.KindCorrupt, Prob: 0.02},
		{Ops: rivetfault.OpReads, Kind: rivetfault.KindSlow, Prob: 0.05, Delay: 2 * time.Millisecond},
		{Ops: rivetfault.OpCreate, Kind: rivetfault.KindError, Prob: 0.05},
	}
}

// seeds returns the seeds to run: RIVET_FAULT_SEEDS (a count) for the long
// form, else n.
func seeds(t *testing.T, n int) []uint64 { return seedsFrom(t, "RIVET_FAULT_SEEDS", n) }

// seedsFrom returns count seeds from RIVET_FAULT_SEED (default 1), the
// count taken from the environment variable env when it is set, else n.
func seedsFrom(t *testing.T, env string, n int) []uint64 {
	if v := os.Getenv(env); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c <= 0 {
			t.Fatalf("%s=%q: want a positive count", env, v)
		}
		n = c
	}
	base := uint64(1)
	if v := os.Getenv("RIVET_FAULT_SEED"); v != "" {
		b, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("RIVET_FAULT_SEED=%q: %v", v, err)
		}
		base = b
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = base + uint64(i)
	}
	return out
}

func runStore(t *testing.T, st func(t *testing.T) store, nSeeds int) {
	var total tally
	for _, seed := range seeds(t, nSeeds) {
		// A subtest per seed, so that each seed's store is closed (and
		// its database schema dropped) before the next.
		var tl tally
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			tl = runLedger(t, st(t), seed, mixedRules(), 6, 3, 25)
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
		t.Name(), len(seeds(t, nSeeds)), total.calls, total.acks, total.failures, total.faults, len(total.violations))
	if total.faults == 0 {
		t.Fatal("no fault was injected: the test proves nothing")
	}
}

// TestBitFlipAndDeterminism: a bit-flip fault changes exactly one bit of
// what a read returns and leaves the store alone, and the same seed
// flips the same bit.
func TestBitFlipAndDeterminism(t *testing.T) {
	ctx := context.Background()
	flipped := func(seed uint64) []byte {
		inner := rivetmem.New()
		defer inner.Close()
		if err := inner.CreateActor(ctx, rivetdriver.ActorRecord{ID: "x", Namespace: "n", Name: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := inner.Commit(ctx, []*rivetdriver.Commit{{ActorID: "x", KVPut: []rivetdriver.KV{{Key: []byte("k"), Value: []byte("value")}}}}); err != nil {
			t.Fatal(err)
		}
		fd := rivetfault.New(inner, seed)
		fd.Add(rivetfault.Rule{Ops: rivetfault.OpKVGet, Kind: rivetfault.KindBitFlip, Limit: 1})
		vs, err := fd.KVGet(ctx, "x", [][]byte{[]byte("k")})
		if err != nil {
			t.Fatal(err)
		}
		diff := 0
		for i := range vs[0] {
			for b := vs[0][i] ^ "value"[i]; b != 0; b &= b - 1 {
				diff++
			}
		}
		if diff != 1 {
			t.Fatalf("seed %d: %q differs from %q in %d bits, want 1", seed, vs[0], "value", diff)
		}
		again, err := fd.KVGet(ctx, "x", [][]byte{[]byte("k")})
		if err != nil || string(again[0]) != "value" {
			t.Fatalf("after the one flip the store reads %q, %v; want it unchanged", again[0], err)
		}
		return vs[0]
	}
	if a, b := flipped(7), flipped(7); string(a) != string(b) {
		t.Fatalf("same seed flipped differently: %q vs %q", a, b)
	}
}
