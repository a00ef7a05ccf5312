package rivetembed_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rivetgo/rivet/internal/keyenc"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetdrivertest"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

func open(t *testing.T, dir string) rivetdriver.Driver {
	t.Helper()
	d, err := rivetembed.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	t.Parallel()
	rivetdrivertest.Exercise(t, func(t *testing.T) rivetdriver.Driver { return open(t, t.TempDir()) })
}

func TestDurable(t *testing.T) {
	t.Parallel()
	rivetdrivertest.ExerciseDurable(t, open)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	d, err := rivetembed.Open(t.TempDir(), &rivetembed.Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CreateActor(context.Background(), rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := open(t, dir)
	_, err := rivetembed.Open(dir, nil)
	if err == nil {
		t.Fatal("second Open of an open directory succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !strings.HasPrefix(err.Error(), "rivetembed: ") || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open: %v, want a rivetembed error naming the dir and the lock", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2, err := rivetembed.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Errorf(string, ...any)        {}
func (quiet) Fatalf(f string, args ...any) { panic(f) }
func rawOptions() *pebble.Options          { return &pebble.Options{Logger: quiet{}} }
func enc(t *testing.T, elems ...any) []byte {
	b, err := keyenc.Encode(elems...)
	must(t, err)
	return b
}
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func cat(parts ...[]byte) []byte          { return bytes.Join(parts, nil) }
func table(c byte, rest ...[]byte) []byte { return cat(append([][]byte{{c}}, rest...)...) }
func withRaw(t *testing.T, dir string, f func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(dir, rawOptions())
	must(t, err)
	f(db)
	must(t, db.Close())
}

// setup writes one actor with state, a KV pair and an alarm, and closes the
// driver.
func setup(t *testing.T, dir string) {
	ctx := context.Background()
	d, err := rivetembed.Open(dir, nil)
	must(t, err)
	must(t, d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a1", Namespace: "ns", Name: "c", Key: []string{"k"}}))
	rec, _, err := d.Activate(ctx, "a1")
	must(t, err)
	c := &rivetdriver.Commit{ActorID: "a1", Generation: rec.Generation, State: []byte("good state"),
		KVPut:    []rivetdriver.KV{{Key: []byte("k"), Value: []byte("good value")}},
		AlarmPut: []rivetdriver.Alarm{{ID: "al", At: time.Unix(10, 0), Action: "go"}}}
	must(t, d.Commit(ctx, []*rivetdriver.Commit{c}))
	must(t, c.Err)
	must(t, d.Close())
}

func TestCorruptionIsDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	flipLast := func(v []byte) []byte { v[len(v)-1] ^= 0x01; return v }
	flipCRC := func(v []byte) []byte { v[2] ^= 0x80; return v }
	truncate := func(v []byte) []byte { return v[:3] }
	future := func(v []byte) []byte { v[0] = 99; return v }
	cases := []struct {
		name   string
		key    []byte
		damage func([]byte) []byte
		read   func(d rivetdriver.Driver) error
	}{
		{"StateViaActivate", table('s', []byte("a1")), flipLast, func(d rivetdriver.Driver) error {
			_, _, err := d.Activate(ctx, "a1")
			return err
		}},
		{"RecordViaGetActor", table('m', []byte("a1")), flipLast, func(d rivetdriver.Driver) error {
			_, err := d.GetActor(ctx, "a1")
			return err
		}},
		{"RecordViaCommit", table('m', []byte("a1")), flipCRC, func(d rivetdriver.Driver) error {
			return d.Commit(ctx, []*rivetdriver.Commit{{ActorID: "a1", Generation: 1, State: []byte("x")}})
		}},
		{"RecordViaListActors", table('m', []byte("a1")), truncate, func(d rivetdriver.Driver) error {
			_, err := d.ListActors(ctx, rivetdriver.ListActorsOptions{})
			return err
		}},
		{"RecordViaLookup", table('m', []byte("a1")), future, func(d rivetdriver.Driver) error {
			_, err := d.LookupActor(ctx, "ns", "c", []string{"k"})
			return err
		}},
		{"IndexViaLookup", table('i', enc(t, "ns", "c", "k")), flipLast, func(d rivetdriver.Driver) error {
			_, err := d.LookupActor(ctx, "ns", "c", []string{"k"})
			return err
		}},
		{"KVViaKVGet", table('k', enc(t, "a1"), []byte("k")), flipLast, func(d rivetdriver.Driver) error {
			_, err := d.KVGet(ctx, "a1", [][]byte{[]byte("k")})
			return err
		}},
		{"KVViaKVList", table('k', enc(t, "a1"), []byte("k")), flipLast, func(d rivetdriver.Driver) error {
			_, err := d.KVList(ctx, "a1", rivetdriver.ListOptions{Reverse: true})
			return err
		}},
		{"AlarmViaAlarms", table('a', enc(t, "a1"), []byte("al")), flipLast, func(d rivetdriver.Driver) error {
			_, err := d.Alarms(ctx, "")
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			setup(t, dir)
			withRaw(t, dir, func(db *pebble.DB) {
				v, closer, err := db.Get(c.key)
				if err != nil {
					t.Fatalf("raw Get(%q): %v", c.key, err)
				}
				bad := c.damage(bytes.Clone(v))
				must(t, closer.Close())
				must(t, db.Set(c.key, bad, pebble.Sync))
			})
			d := open(t, dir)
			err := c.read(d)
			if !errors.Is(err, rivetdriver.ErrCorrupt) {
				t.Fatalf("read of a damaged value: %v, want ErrCorrupt", err)
			}
			if !strings.HasPrefix(err.Error(), "rivetembed: ") {
				t.Fatalf("error %q lacks the rivetembed: prefix", err)
			}
		})
	}
}

func TestFormatMarker(t *testing.T) {
	t.Parallel()
	t.Run("FutureFormatRefused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		setup(t, dir)
		withRaw(t, dir, func(db *pebble.DB) {
			v, closer, err := db.Get([]byte{'v'})
			must(t, err)
			bad := bytes.Clone(v)
			must(t, closer.Close())
			bad[0] = 2
			must(t, db.Set([]byte{'v'}, bad, pebble.Sync))
		})
		_, err := rivetembed.Open(dir, nil)
		if err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Open of a future format: %v, want a refusal naming the dir", err)
		}
	})
	t.Run("ForeignStoreRefused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		withRaw(t, dir, func(db *pebble.DB) { must(t, db.Set([]byte("foreign"), []byte("x"), pebble.Sync)) })
		if _, err := rivetembed.Open(dir, nil); err == nil || !strings.Contains(err.Error(), "marker") {
			t.Fatalf("Open of a foreign Pebble store: %v, want a refusal", err)
		}
	})
	t.Run("MarkerWritten", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		d, err := rivetembed.Open(dir, nil)
		must(t, err)
		must(t, d.Close())
		withRaw(t, dir, func(db *pebble.DB) {
			v, closer, err := db.Get([]byte{'v'})
			must(t, err)
			defer closer.Close()
			if v[0] != 1 || !bytes.HasSuffix(v, []byte("rivetembed")) {
				t.Fatalf("format marker %q", v)
			}
		})
	})
}

// TestKeyLayout checks the documented layout: an actor id is never confused
// with a prefix of another in the KV and alarm tables.
func TestKeyLayout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := rivetembed.Open(dir, nil)
	must(t, err)
	for _, id := range []string{"a", "a\x00", "ab"} {
		must(t, d.CreateActor(ctx, rivetdriver.ActorRecord{ID: id, Name: "x", Key: []string{id}}))
		rec, _, err := d.Activate(ctx, id)
		must(t, err)
		c := &rivetdriver.Commit{ActorID: id, Generation: rec.Generation, KVPut: []rivetdriver.KV{{Key: []byte("b"), Value: []byte(id)}}}
		must(t, d.Commit(ctx, []*rivetdriver.Commit{c}))
		must(t, c.Err)
	}
	must(t, d.Close())
	withRaw(t, dir, func(db *pebble.DB) {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'k'}, UpperBound: []byte{'l'}})
		must(t, err)
		defer it.Close()
		var keys []string
		for ok := it.First(); ok; ok = it.Next() {
			keys = append(keys, string(it.Key()))
		}
		want := []string{"k\x02a\x00\x01b", "k\x02a\x00\xff\x00\x01b", "k\x02ab\x00\x01b"}
		if strings.Join(keys, "|") != strings.Join(want, "|") {
			t.Fatalf("KV keys %q, want %q", keys, want)
		}
	})
}
