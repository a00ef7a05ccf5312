package rivetfault_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetfault"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// TestHungCommitDoesNotWedgeOthers: the store hangs every write of one
// actor. That actor's caller gets actor.commit_failed once the commit
// timeout passes, the write is not visible afterwards, and every other
// actor keeps serving writes during the hang and after it. Without the
// commit timeout the shared committer waited forever and every actor's
// writes stalled behind the hung one.
func TestHungCommitDoesNotWedgeOthers(t *testing.T) {
	for _, st := range []func(*testing.T) store{memStore, embedStore, pgStore} {
		s := st(t)
		t.Run(s.name, func(t *testing.T) { hungCommit(t, s) })
	}
}

func hungCommit(t *testing.T, st store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fd := rivetfault.New(st.open(t), 1)
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: fd, Logger: slog.New(slog.DiscardHandler), StoreTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop(context.Background()) }()
	stuck, other, _ := hangOneActor(t, ctx, rt.Client(), fd, 20)
	// After the fault: both actors serve; the failed write is not
	// visible.
	if got, err := rivet.Call[int](ctx, stuck, "get"); err != nil || got != 1 {
		t.Fatalf("stuck actor after the hang: get = %d, %v; want 1 (its failed write invisible)", got, err)
	}
	before, err := rivet.Call[int](ctx, other, "get")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rivet.Call[int](ctx, other, "inc"); err != nil || got != before+1 {
		t.Fatalf("other actor after the hang: inc = %d, %v; want %d", got, err, before+1)
	}
}

// hangOneActor makes every commit of one actor ("stuck") hang while
// another ("other") takes writes writes, each after one write of its own
// that landed first. The stuck actor's call must end with
// actor.commit_failed once the store timeout passes, and the other's
// writes must keep landing (one batched with the hung write may fail
// with it). It clears the faults and returns both handles and how many
// of the other's writes were acknowledged during the hang.
func hangOneActor(t *testing.T, ctx context.Context, cl *rivet.Client, fd *rivetfault.Driver, writes int) (stuck, other *rivet.Handle, landed int) {
	t.Helper()
	stuck = cl.GetOrCreate("ledger", rivet.Key{"stuck"})
	other = cl.GetOrCreate("ledger", rivet.Key{"other"})
	for _, h := range []*rivet.Handle{stuck, other} {
		if _, err := rivet.Call[int](ctx, h, "inc"); err != nil {
			t.Fatal(err)
		}
	}
	id, err := stuck.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fd.Add(rivetfault.Rule{Ops: rivetfault.OpCommit, Actor: id, Kind: rivetfault.KindHang})

	hung := make(chan error, 1)
	go func() {
		_, err := rivet.Call[int](ctx, stuck, "inc")
		hung <- err
	}()
	// While the stuck actor's writes hang (each attempt until the
	// timeout), the other actor's writes keep being acknowledged: the
	// writes take far longer than one timeout, so the stuck commit is in
	// flight for part of them.
	for i := range writes {
		_, err := rivet.Call[int](ctx, other, "inc")
		if err != nil && !errors.Is(err, rivet.ErrCommitFailed) {
			t.Fatalf("other actor's write %d during the hang: %v", i, err)
		}
		if err == nil {
			landed++
		}
	}
	if landed == 0 {
		t.Fatal("no write of another actor landed while one actor's store hung")
	}
	select {
	case err = <-hung:
	case <-ctx.Done():
		t.Fatal("the call whose write hung never returned: the store timeout did not fire")
	}
	if !errors.Is(err, rivet.ErrCommitFailed) {
		t.Fatalf("call whose write hung: %v, want actor.commit_failed", err)
	}
	if fd.Stats().Faults[rivetfault.KindHang] == 0 {
		t.Fatal("no write hung: the test proves nothing")
	}
	fd.Clear()
	return stuck, other, landed
}

// TestStoreReadFailureIsStructured: when the store fails the read that
// wakes an actor, the caller gets actor.storage_error (not an unlogged
// core.internal_error), the failure is logged, and the next call, with the
// store healthy, wakes the actor with its state intact.
func TestStoreReadFailureIsStructured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inner := rivetmem.New()
	defer inner.Close()
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []rivetfault.Op{rivetfault.OpActivate, rivetfault.OpAlarms, rivetfault.OpKVList, rivetfault.OpLookup} {
		for _, kind := range []rivetfault.Kind{rivetfault.KindError, rivetfault.KindCorrupt} {
			t.Run(op.String()+"/"+kind.String(), func(t *testing.T) {
				fd := rivetfault.New(inner, 1)
				logs := &logCount{}
				rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: fd, Logger: slog.New(logs)})
				if err != nil {
					t.Fatal(err)
				}
				key := rivet.Key{op.String() + kind.String()}
				h := rt.Client().GetOrCreate("ledger", key)
				if _, err := rivet.Call[int](ctx, h, "inc"); err != nil {
					t.Fatal(err)
				}
				_ = rt.Stop(ctx) // the actor sleeps; the next call wakes it
				rt, err = rivet.Start(ctx, reg, &rivet.Config{Driver: fd, Logger: slog.New(logs)})
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = rt.Stop(context.Background()) }()
				fd.Add(rivetfault.Rule{Ops: op, Kind: kind, Limit: 1})
				h = rt.Client().GetOrCreate("ledger", key)
				_, err = rivet.Call[int](ctx, h, "inc")
				if !errors.Is(err, rivet.ErrStorage) {
					t.Fatalf("call while the store fails %s: %v, want actor.storage_error", op, err)
				}
				if logs.errors.Load() == 0 {
					t.Fatal("the store's failure was not logged")
				}
				if got, err := rivet.Call[int](ctx, h, "get"); err != nil || got != 1 {
					t.Fatalf("after the failure: get = %d, %v; want 1", got, err)
				}
			})
		}
	}
}

// TestHungReadDoesNotWedgeActor: the store hangs the read that wakes an
// actor. Its caller gets actor.storage_error once the store timeout
// passes (not a call that waits forever), other actors serve meanwhile,
// and once the store answers again the actor wakes with its state.
// Before the timeout, a hung wake held the actor until shutdown.
func TestHungReadDoesNotWedgeActor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inner := rivetmem.New()
	defer inner.Close()
	fd := rivetfault.New(inner, 1)
	reg, err := rivet.NewRegistry(ledgerDef())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rivet.Config{Driver: fd, Logger: slog.New(slog.DiscardHandler), StoreTimeout: 300 * time.Millisecond}
	rt, err := rivet.Start(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stuck := rt.Client().GetOrCreate("ledger", rivet.Key{"stuck"})
	if _, err := rivet.Call[int](ctx, stuck, "inc"); err != nil {
		t.Fatal(err)
	}
	id, err := stuck.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = rt.Stop(ctx)
	rt, err = rivet.Start(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rt.Stop(context.Background()) }()
	fd.Add(rivetfault.Rule{Ops: rivetfault.OpActivate, Actor: id, Kind: rivetfault.KindHang, Limit: 1})
	stuck = rt.Client().GetOrCreate("ledger", rivet.Key{"stuck"})
	hung := make(chan error, 1)
	go func() {
		_, err := rivet.Call[int](ctx, stuck, "inc")
		hung <- err
	}()
	other := rt.Client().GetOrCreate("ledger", rivet.Key{"other"})
	for range 5 {
		if _, err := rivet.Call[int](ctx, other, "inc"); err != nil {
			t.Fatalf("other actor while one actor's wake hangs: %v", err)
		}
	}
	if err := <-hung; !errors.Is(err, rivet.ErrStorage) {
		t.Fatalf("call whose wake hung: %v, want actor.storage_error", err)
	}
	if got, err := rivet.Call[int](ctx, stuck, "inc"); err != nil || got != 2 {
		t.Fatalf("after the hang: inc = %d, %v; want 2", got, err)
	}
}
