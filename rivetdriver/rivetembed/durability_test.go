package rivetembed

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rivetgo/rivet/rivetdriver"
)

// These tests simulate a machine crash with Pebble's crashable memory file
// system: CrashClone keeps exactly the data that was synced. They check
// what the runtime relies on when a new actor's create, activation and
// first commit share one fsync: nothing anyone was told survives the
// crash, and the create itself costs no fsync of its own.

const crashDir = "/store"

func crashOpen(t *testing.T, fs vfs.FS) *Driver {
	t.Helper()
	d, err := openFS(crashDir, nil, fs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// crash returns the driver of the store as a machine crash would leave it
// now.
func crash(t *testing.T, fs *vfs.MemFS) *Driver {
	t.Helper()
	return crashOpen(t, fs.CrashClone(vfs.CrashCloneCfg{}))
}

func newRec(id, key string) rivetdriver.ActorRecord {
	return rivetdriver.ActorRecord{ID: id, Namespace: "ns", Name: "n", Key: []string{key}}
}

func TestCrashCreateThenFirstCommit(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	d := crashOpen(t, fs)
	if err := d.CreateActor(ctx, newRec("a", "ka")); err != nil {
		t.Fatal(err)
	}
	rec, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// A crash now loses the actor: neither the create nor the activation
	// synced, and nobody was told the actor exists.
	if _, err := crash(t, fs).GetActor(ctx, "a"); !errors.Is(err, rivetdriver.ErrNotFound) {
		t.Fatalf("after a crash before the first commit: GetActor = %v, want ErrNotFound (the create must not sync on its own)", err)
	}
	// The first commit's sync makes the record, the generation and the
	// state durable together.
	if err := d.Commit(ctx, []*rivetdriver.Commit{{ActorID: "a", Generation: rec.Generation, Initialize: true, State: []byte("s1")}}); err != nil {
		t.Fatal(err)
	}
	c := crash(t, fs)
	got, err := c.LookupActor(ctx, "ns", "n", []string{"ka"})
	if err != nil {
		t.Fatalf("acknowledged actor lost in a crash: %v", err)
	}
	if got.ID != "a" || !got.Initialized || got.Generation != rec.Generation {
		t.Fatalf("record after crash = %+v, want id a, initialized, generation %d", got, rec.Generation)
	}
	if st, err := c.ReadState(ctx, "a"); err != nil || string(st) != "s1" {
		t.Fatalf("state after crash = %q, %v", st, err)
	}
}

// A record that another caller reads (and may report) must be durable
// first, even if its creator has not committed yet.
func TestCrashReadersSeeOnlyDurableCreates(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		read func(d *Driver, id, key string) error
	}{
		{"LookupActor", func(d *Driver, _, key string) error {
			_, err := d.LookupActor(ctx, "ns", "n", []string{key})
			return err
		}},
		{"GetActor", func(d *Driver, id, _ string) error {
			_, err := d.GetActor(ctx, id)
			return err
		}},
		{"ListActors", func(d *Driver, id, _ string) error {
			rs, err := d.ListActors(ctx, rivetdriver.ListActorsOptions{})
			if err == nil && (len(rs) != 1 || rs[0].ID != id) {
				err = errors.New("listing misses the actor")
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			d := crashOpen(t, fs)
			if err := d.CreateActor(ctx, newRec("b", "kb")); err != nil {
				t.Fatal(err)
			}
			if err := tc.read(d, "b", "kb"); err != nil {
				t.Fatal(err)
			}
			if err := tc.read(crash(t, fs), "b", "kb"); err != nil {
				t.Fatalf("an actor that was read before a crash is gone after it: %v", err)
			}
			// The key stays taken across the crash.
			if err := crash(t, fs).CreateActor(ctx, newRec("other", "kb")); !errors.Is(err, rivetdriver.ErrDuplicateKey) {
				t.Fatalf("CreateActor with the key after the crash = %v, want ErrDuplicateKey", err)
			}
		})
	}
}

// A commit's sync covers every create applied before it, not only its
// own actor's.
func TestCrashCommitCoversEarlierCreates(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	d := crashOpen(t, fs)
	for _, id := range []string{"x", "y"} {
		if err := d.CreateActor(ctx, newRec(id, "k"+id)); err != nil {
			t.Fatal(err)
		}
	}
	rec, _, err := d.Activate(ctx, "y")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, []*rivetdriver.Commit{{ActorID: "y", Generation: rec.Generation, Initialize: true}}); err != nil {
		t.Fatal(err)
	}
	c := crash(t, fs)
	for _, id := range []string{"x", "y"} {
		if _, err := c.GetActor(ctx, id); err != nil {
			t.Fatalf("actor %s created before a synced commit: %v", id, err)
		}
	}
	// Both creates are known durable now: reads need no sync of their
	// own (and take the path that does not even look).
	if last, durable := d.lastCreate.Load(), d.durable.Load(); last > durable {
		t.Fatalf("newest create %d not known durable (durable up to %d) after a later sync", last, durable)
	}
}
