package rivetembed_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

func openTemp(t *testing.T) *rivetembed.Driver {
	t.Helper()
	// In memory: these tests count cache entries, and 20,000 fsyncs on a
	// loaded disk would cost most of a minute.
	d, err := rivetembed.Open("db", &rivetembed.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func commit1(t *testing.T, d *rivetembed.Driver, c *rivetdriver.Commit) error {
	t.Helper()
	if err := d.Commit(context.Background(), []*rivetdriver.Commit{c}); err != nil {
		t.Fatal(err)
	}
	return c.Err
}

// A released actor's fencing entry is gone, and a commit from an
// incarnation that lost the actor is still refused: the generation is
// reloaded from the record.
func TestReleaseKeepsFencing(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	old, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := commit1(t, d, &rivetdriver.Commit{ActorID: "a", Generation: old.Generation, Initialize: true, State: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	cur, _, err := d.Activate(ctx, "a") // another incarnation takes the actor
	if err != nil {
		t.Fatal(err)
	}
	d.ReleaseActor("a", old.Generation) // stale: the current entry stays
	if n := d.CachedActors(); n != 1 {
		t.Fatalf("after a stale Release the cache holds %d entries, want 1", n)
	}
	d.ReleaseActor("a", cur.Generation) // the new incarnation sleeps
	if n := d.CachedActors(); n != 0 {
		t.Fatalf("after Release the cache holds %d entries, want 0", n)
	}
	err = commit1(t, d, &rivetdriver.Commit{ActorID: "a", Generation: old.Generation, State: []byte("stale")})
	if !errors.Is(err, rivetdriver.ErrFenced) {
		t.Fatalf("stale commit after Release: %v, want ErrFenced", err)
	}
	d.ReleaseActor("a", cur.Generation)
	err = commit1(t, d, &rivetdriver.Commit{ActorID: "a", Generation: old.Generation, Destroy: true})
	if !errors.Is(err, rivetdriver.ErrFenced) {
		t.Fatalf("stale destroy after Release: %v, want ErrFenced", err)
	}
	if st, err := d.ReadState(ctx, "a"); err != nil || string(st) != "1" {
		t.Fatalf("state %q, %v; want the last good one", st, err)
	}
	d.ReleaseActor("a", cur.Generation)
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x", Key: []string{"other"}}); !errors.Is(err, rivetdriver.ErrDuplicateID) {
		t.Fatalf("create with a taken id: %v, want ErrDuplicateID", err)
	}
	if n := d.CachedActors(); n != 0 {
		t.Fatalf("a refused create left %d cache entries, want 0", n)
	}
	next, _, err := d.Activate(ctx, "a")
	if err != nil || next.Generation != cur.Generation+1 || !next.Initialized {
		t.Fatalf("Activate after Release: %+v, %v", next, err)
	}
}

// Actors woken and put to sleep one after another leave nothing behind in
// the fencing cache: its size follows the awake actors, not every actor
// ever used.
func TestCacheBoundedByAwake(t *testing.T) {
	const actors, awake = 20000, 64
	n := actors
	if testing.Short() {
		n = 2000
	}
	ctx := context.Background()
	d := openTemp(t)
	gens := map[string]uint64{}
	var order []string
	for i := range n {
		id := fmt.Sprintf("a%06d", i)
		if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: id, Name: "x", Key: []string{id}}); err != nil {
			t.Fatal(err)
		}
		rec, _, err := d.Activate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := commit1(t, d, &rivetdriver.Commit{ActorID: id, Generation: rec.Generation, Initialize: true, State: []byte("s")}); err != nil {
			t.Fatal(err)
		}
		gens[id] = rec.Generation
		order = append(order, id)
		if len(order) > awake { // the oldest awake actor sleeps
			old := order[0]
			order = order[1:]
			d.ReleaseActor(old, gens[old])
			delete(gens, old)
		}
		if c := d.CachedActors(); c > awake+1 {
			t.Fatalf("after %d actors the cache holds %d entries with %d awake", i+1, c, len(order))
		}
	}
	// Wake a sleeping actor again: it is reloaded and fenced as before.
	rec, _, err := d.Activate(ctx, "a000000")
	if err != nil || rec.Generation != 2 {
		t.Fatalf("re-Activate: %+v, %v", rec, err)
	}
	if err := commit1(t, d, &rivetdriver.Commit{ActorID: "a000000", Generation: 1, State: []byte("stale")}); !errors.Is(err, rivetdriver.ErrFenced) {
		t.Fatalf("stale commit: %v", err)
	}
}

// Release racing with Activate and commits: a commit whose generation was
// superseded before it was issued is always refused.
func TestReleaseRace(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	var gen atomic.Uint64 // the newest generation Activate returned
	rec, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	gen.Store(rec.Generation)
	const rounds = 2000
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for range rounds {
			rec, _, err := d.Activate(ctx, "a")
			if err != nil {
				t.Error(err)
				return
			}
			gen.Store(rec.Generation)
		}
	})
	wg.Go(func() {
		for i := uint64(0); !done.Load(); i++ {
			g := gen.Load()
			d.ReleaseActor("a", g-i%2) // the current incarnation, or a stale one
		}
	})
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				g := gen.Load()
				stale := &rivetdriver.Commit{ActorID: "a", Generation: g - 1, State: []byte("stale")}
				cur := &rivetdriver.Commit{ActorID: "a", Generation: g, State: []byte("cur")}
				if err := d.Commit(ctx, []*rivetdriver.Commit{stale, cur}); err != nil {
					t.Error(err)
					return
				}
				if !errors.Is(stale.Err, rivetdriver.ErrFenced) {
					t.Errorf("commit at generation %d after %d was returned: %v", g-1, g, stale.Err)
					return
				}
				if cur.Err != nil && !errors.Is(cur.Err, rivetdriver.ErrFenced) {
					t.Error(cur.Err)
					return
				}
			}
		})
	}
	wg.Wait()
}
