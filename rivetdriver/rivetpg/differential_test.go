package rivetpg_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// TestDifferential drives rivetpg and the reference driver (rivetembed) with
// the same random batches (several commits per actor, puts, deletes and
// clears of overlapping keys, alarms, destroys, stale generations after
// re-activation) and compares every outcome and, after each batch, every
// actor's record, state, key/value space and alarms. It checks what the
// conformance suite's examples cannot enumerate: that the net effect
// Commit computes for a batch is the effect of its commits in order.
func TestDifferential(t *testing.T) {
	t.Parallel()
	pg := openFresh(t)
	mem, err := rivetembed.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

	const actors = 5
	ids := make([]string, actors)
	gens := make([]uint64, actors) // the generation commits use, sometimes stale
	both := func(what string, f func(d rivetdriver.Driver) error) {
		t.Helper()
		e0, e1 := f(mem), f(pg)
		if errClass(e0) != errClass(e1) {
			t.Fatalf("%s: reference %v, rivetpg %v", what, e0, e1)
		}
	}
	created := 0
	create := func(i int) {
		ids[i] = fmt.Sprintf("actor\x00%d", created)
		created++
		both("create", func(d rivetdriver.Driver) error {
			return d.CreateActor(ctx, rivetdriver.ActorRecord{ID: ids[i], Name: "x", Key: []string{fmt.Sprint(i)}, CreatedAt: t0})
		})
	}
	var activate func(i int)
	for i := range ids {
		create(i)
	}
	activate = func(i int) {
		var g []uint64
		both("activate", func(d rivetdriver.Driver) error {
			rec, _, err := d.Activate(ctx, ids[i])
			g = append(g, rec.Generation)
			return err
		})
		if g[0] != g[1] {
			t.Fatalf("activate %s: generation %d vs %d", ids[i], g[0], g[1])
		}
		gens[i] = g[0]
	}
	for i := range ids {
		activate(i)
	}
	key := func() []byte { return []byte{byte('a' + rng.IntN(6))} }
	randomCommit := func() *rivetdriver.Commit {
		i := rng.IntN(actors)
		c := &rivetdriver.Commit{ActorID: ids[i], Generation: gens[i]}
		if rng.IntN(10) == 0 {
			c.Generation-- // stale
		}
		if rng.IntN(3) == 0 {
			c.State = fmt.Appendf(nil, "state %d", rng.IntN(1000))
		}
		c.Initialize = rng.IntN(8) == 0
		c.KVClear = rng.IntN(10) == 0
		for range rng.IntN(3) {
			c.KVDelete = append(c.KVDelete, key())
		}
		for range rng.IntN(4) {
			c.KVPut = append(c.KVPut, rivetdriver.KV{Key: key(), Value: fmt.Appendf(nil, "v%d", rng.IntN(100))})
		}
		for range rng.IntN(2) {
			c.AlarmDelete = append(c.AlarmDelete, fmt.Sprint("al", rng.IntN(4)))
		}
		for range rng.IntN(3) {
			c.AlarmPut = append(c.AlarmPut, rivetdriver.Alarm{ID: fmt.Sprint("al", rng.IntN(4)),
				At: t0.Add(time.Duration(rng.IntN(5000)) * time.Microsecond), Action: "go", Args: []byte{byte(rng.IntN(256))}, CreatedAt: t0})
		}
		c.Destroy = rng.IntN(40) == 0
		return c
	}
	clone := func(cs []*rivetdriver.Commit) []*rivetdriver.Commit {
		out := make([]*rivetdriver.Commit, len(cs))
		for i, c := range cs {
			cc := *c
			out[i] = &cc
		}
		return out
	}

	destroyed, applied := 0, 0
	for round := range 300 {
		if rng.IntN(6) == 0 {
			activate(rng.IntN(actors)) // earlier generations are now stale
		}
		batch := make([]*rivetdriver.Commit, 1+rng.IntN(8))
		for j := range batch {
			batch[j] = randomCommit()
		}
		b0, b1 := clone(batch), clone(batch)
		both(fmt.Sprintf("round %d: commit", round), func(d rivetdriver.Driver) error {
			if d == rivetdriver.Driver(mem) {
				return d.Commit(ctx, b0)
			}
			return d.Commit(ctx, b1)
		})
		for j := range batch {
			if errClass(b0[j].Err) != errClass(b1[j].Err) {
				t.Fatalf("round %d, commit %d (%+v): reference Err %v, rivetpg Err %v", round, j, batch[j], b0[j].Err, b1[j].Err)
			}
		}
		for _, id := range ids {
			if a, b := snapshot(t, mem, id), snapshot(t, pg, id); a != b {
				t.Fatalf("round %d: actor %q differs after batch %+v\nreference: %s\nrivetpg:   %s", round, id, batch, a, b)
			}
		}
		if a, b := alarmList(t, mem), alarmList(t, pg); a != b {
			t.Fatalf("round %d: alarms differ\nreference: %s\nrivetpg:   %s", round, a, b)
		}
		for i := range ids {
			if j := slices.IndexFunc(batch, func(c *rivetdriver.Commit) bool { return c.ActorID == ids[i] && c.Destroy && b0[0] != nil }); j >= 0 && b0[j].Err == nil {
				destroyed++
				create(i) // a new actor takes the freed key
				activate(i)
			}
		}
		for _, c := range b0 {
			if c.Err == nil {
				applied++
			}
		}
	}
	// The run exercised what it is for.
	if destroyed < 5 || applied < 500 {
		t.Fatalf("only %d destroys and %d applied commits: the random mix is off", destroyed, applied)
	}
}

// errClass names the driver error an error wraps.
func errClass(err error) string {
	for _, e := range []error{rivetdriver.ErrNotFound, rivetdriver.ErrDestroyed, rivetdriver.ErrFenced,
		rivetdriver.ErrDuplicateID, rivetdriver.ErrDuplicateKey} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return "nil"
}

type stateReader interface {
	ReadState(ctx context.Context, id string) ([]byte, error)
}

// snapshot renders an actor's record, state and key/value space.
func snapshot(t *testing.T, d rivetdriver.Driver, id string) string {
	t.Helper()
	ctx := context.Background()
	rec, err := d.GetActor(ctx, id)
	if err != nil {
		t.Fatalf("GetActor(%q): %v", id, err)
	}
	state, err := d.(stateReader).ReadState(ctx, id)
	if err != nil && !errors.Is(err, rivetdriver.ErrDestroyed) {
		t.Fatalf("ReadState(%q): %v", id, err)
	}
	kvs, err := d.KVList(ctx, id, rivetdriver.ListOptions{})
	if err != nil {
		t.Fatalf("KVList(%q): %v", id, err)
	}
	s := fmt.Sprintf("gen=%d init=%v destroyed=%v state=%q kv=", rec.Generation, rec.Initialized, rec.Destroyed, state)
	for _, kv := range kvs {
		s += fmt.Sprintf("%s:%s,", kv.Key, kv.Value)
	}
	return s
}

func alarmList(t *testing.T, d rivetdriver.Driver) string {
	t.Helper()
	as, err := d.Alarms(context.Background(), "")
	if err != nil {
		t.Fatalf("Alarms: %v", err)
	}
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%q/%s@%d:%s%x", a.ActorID, a.ID, a.At.UnixNano(), a.Action, a.Args))
	}
	slices.Sort(parts) // ties in time are ordered by id only within the contract
	return fmt.Sprint(parts)
}
