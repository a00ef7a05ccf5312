// Package rivetdrivertest is the conformance suite every rivetdriver.Driver
// in this repository runs. Each clause of the contract documented in package
// rivetdriver has a subtest here; a change to a driver's behaviour extends
// the suite first.
//
// A driver's test file calls [Exercise] with a constructor of fresh, empty
// drivers, and a durable driver also calls [ExerciseDurable]. Run the suite
// with -race: it commits from many goroutines.
package rivetdrivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
)

// h bundles a test and the driver under test.
type h struct {
	t   *testing.T
	d   rivetdriver.Driver
	ctx context.Context
}

func newH(t *testing.T, newDriver func(t *testing.T) rivetdriver.Driver) *h {
	t.Helper()
	return &h{t: t, d: newDriver(t), ctx: context.Background()}
}

// t0 is a fixed instant for CreatedAt and alarm times.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func record(id, ns, name string, key ...string) rivetdriver.ActorRecord {
	return rivetdriver.ActorRecord{ID: id, Namespace: ns, Name: name, Key: key, Input: []byte("input of " + id), CreatedAt: t0}
}

// create stores rec and fails the test on error.
func (h *h) create(rec rivetdriver.ActorRecord) {
	h.t.Helper()
	if err := h.d.CreateActor(h.ctx, rec); err != nil {
		h.t.Fatalf("CreateActor(%q): %v", rec.ID, err)
	}
}

// live creates an actor and activates it once. Without a key, the key is
// the id.
func (h *h) live(id, ns, name string, key ...string) rivetdriver.ActorRecord {
	h.t.Helper()
	if key == nil {
		key = []string{id}
	}
	h.create(record(id, ns, name, key...))
	return h.activate(id)
}

func (h *h) activate(id string) rivetdriver.ActorRecord {
	h.t.Helper()
	rec, _, err := h.d.Activate(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Activate(%q): %v", id, err)
	}
	return rec
}

// release tells a driver that keeps per-actor memory (rivetdriver.Releaser)
// that the incarnation at generation left, as the runtime does when an
// actor sleeps. It must change nothing a later call returns.
func (h *h) release(id string, generation uint64) {
	if r, ok := h.d.(rivetdriver.Releaser); ok {
		r.ReleaseActor(id, generation)
	}
}

func (h *h) state(id string) []byte {
	h.t.Helper()
	_, s, err := h.d.Activate(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Activate(%q): %v", id, err)
	}
	return s
}

func (h *h) get(id string) rivetdriver.ActorRecord {
	h.t.Helper()
	rec, err := h.d.GetActor(h.ctx, id)
	if err != nil {
		h.t.Fatalf("GetActor(%q): %v", id, err)
	}
	return rec
}

// commit applies a batch and fails the test on a batch error. It does not
// check the commits' own Err.
func (h *h) commit(cs ...*rivetdriver.Commit) {
	h.t.Helper()
	if err := h.d.Commit(h.ctx, cs); err != nil {
		h.t.Fatalf("Commit: %v", err)
	}
}

// ok applies a batch and fails the test unless every commit succeeded.
func (h *h) ok(cs ...*rivetdriver.Commit) {
	h.t.Helper()
	h.commit(cs...)
	for i, c := range cs {
		if c.Err != nil {
			h.t.Fatalf("Commit: commit %d (actor %q): %v", i, c.ActorID, c.Err)
		}
	}
}

func (h *h) kvList(id string, o rivetdriver.ListOptions) []rivetdriver.KV {
	h.t.Helper()
	kvs, err := h.d.KVList(h.ctx, id, o)
	if err != nil {
		h.t.Fatalf("KVList(%q, %+v): %v", id, o, err)
	}
	return kvs
}

// kvString renders an actor's whole key/value space as "key=value;..."
// with keys in hex.
func (h *h) kvString(id string, o rivetdriver.ListOptions) string {
	h.t.Helper()
	return fmtKVs(h.kvList(id, o))
}

func fmtKVs(kvs []rivetdriver.KV) string {
	var b strings.Builder
	for _, kv := range kvs {
		fmt.Fprintf(&b, "%x=%q;", kv.Key, kv.Value)
	}
	return b.String()
}

func (h *h) kvGet(id string, keys ...string) [][]byte {
	h.t.Helper()
	bk := make([][]byte, len(keys))
	for i, k := range keys {
		bk[i] = []byte(k)
	}
	vs, err := h.d.KVGet(h.ctx, id, bk)
	if err != nil {
		h.t.Fatalf("KVGet(%q): %v", id, err)
	}
	if len(vs) != len(keys) {
		h.t.Fatalf("KVGet(%q) returned %d values for %d keys", id, len(vs), len(keys))
	}
	return vs
}

func (h *h) alarms(id string) []rivetdriver.Alarm {
	h.t.Helper()
	as, err := h.d.Alarms(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Alarms(%q): %v", id, err)
	}
	return as
}

// alarmIDs renders alarms as "actor/id@seconds,...".
func alarmIDs(as []rivetdriver.Alarm) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, fmt.Sprintf("%s/%s@%d", a.ActorID, a.ID, a.At.Sub(t0)/time.Second))
	}
	return strings.Join(parts, ",")
}

func ids(rs []rivetdriver.ActorRecord) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.ID)
	}
	return strings.Join(parts, ",")
}

func kv(k, v string) rivetdriver.KV { return rivetdriver.KV{Key: []byte(k), Value: []byte(v)} }

func alarm(id string, at time.Duration) rivetdriver.Alarm {
	return rivetdriver.Alarm{ID: id, At: t0.Add(at), Action: "act-" + id, Args: []byte{0x80, 0x00, 0xff}, CreatedAt: t0}
}

// sameRecord reports the first difference between two records, or "".
func sameRecord(got, want rivetdriver.ActorRecord) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case got.Namespace != want.Namespace:
		return fmt.Sprintf("Namespace %q, want %q", got.Namespace, want.Namespace)
	case got.Name != want.Name:
		return fmt.Sprintf("Name %q, want %q", got.Name, want.Name)
	case !slices.Equal(got.Key, want.Key):
		return fmt.Sprintf("Key %q, want %q", got.Key, want.Key)
	case !bytes.Equal(got.Input, want.Input):
		return fmt.Sprintf("Input %q, want %q", got.Input, want.Input)
	case !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt)
	case got.Generation != want.Generation:
		return fmt.Sprintf("Generation %d, want %d", got.Generation, want.Generation)
	case got.Initialized != want.Initialized:
		return fmt.Sprintf("Initialized %v, want %v", got.Initialized, want.Initialized)
	case got.Destroyed != want.Destroyed:
		return fmt.Sprintf("Destroyed %v, want %v", got.Destroyed, want.Destroyed)
	}
	return ""
}

// sameAlarm reports the first difference between two alarms, or "".
func sameAlarm(got, want rivetdriver.Alarm) string {
	switch {
	case got.ID != want.ID:
		return fmt.Sprintf("ID %q, want %q", got.ID, want.ID)
	case got.ActorID != want.ActorID:
		return fmt.Sprintf("ActorID %q, want %q", got.ActorID, want.ActorID)
	case !got.At.Equal(want.At):
		return fmt.Sprintf("At %v, want %v", got.At, want.At)
	case got.Action != want.Action:
		return fmt.Sprintf("Action %q, want %q", got.Action, want.Action)
	case !bytes.Equal(got.Args, want.Args):
		return fmt.Sprintf("Args %q, want %q", got.Args, want.Args)
	case !got.CreatedAt.Equal(want.CreatedAt):
		return fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	return ""
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one wrapping %v", what, err, target)
	}
}

// Exercise runs the conformance suite. newDriver returns a fresh, empty
// driver; it is called once per subtest, concurrently from parallel
// subtests, and the driver it returns is the test's to use (newDriver should
// register its Close with t.Cleanup; closing twice must be harmless, since
// the suite closes some drivers itself).
func Exercise(t *testing.T, newDriver func(t *testing.T) rivetdriver.Driver) {
	run := func(t *testing.T, name string, f func(h *h)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(newH(t, newDriver))
		})
	}
	t.Run("Actors", func(t *testing.T) {
		run(t, "CreateAndGet", testCreateAndGet)
		run(t, "Lookup", testLookup)
		run(t, "NamespacesIsolate", testNamespacesIsolate)
		run(t, "DuplicateKey", testDuplicateKey)
		run(t, "DuplicateID", testDuplicateID)
		run(t, "KeyFreeAfterDestroy", testKeyFreeAfterDestroy)
		run(t, "IDTakenForever", testIDTakenForever)
		run(t, "NotFound", testNotFound)
		run(t, "ListActors", testListActors)
	})
	t.Run("Activate", func(t *testing.T) {
		run(t, "Generation", testActivateGeneration)
		run(t, "State", testActivateState)
		run(t, "Destroyed", testActivateDestroyed)
	})
	t.Run("Commit", func(t *testing.T) {
		run(t, "State", testCommitState)
		run(t, "Initialize", testCommitInitialize)
		run(t, "KV", testCommitKV)
		run(t, "Alarms", testCommitAlarms)
		run(t, "Destroy", testCommitDestroy)
		run(t, "Fenced", testCommitFenced)
		run(t, "NotFoundAndDestroyed", testCommitNotFoundAndDestroyed)
		run(t, "BatchInOrder", testCommitBatchInOrder)
		run(t, "ErrReset", testCommitErrReset)
		run(t, "EmptyBatch", testCommitEmptyBatch)
		run(t, "Pipelined", testCommitPipelined)
	})
	t.Run("KV", func(t *testing.T) {
		run(t, "Get", testKVGet)
		run(t, "ListExamples", testKVListExamples)
		run(t, "ListMatrix", testKVListMatrix)
		run(t, "ActorIsolation", testKVActorIsolation)
	})
	t.Run("Alarms", func(t *testing.T) {
		run(t, "Order", testAlarmsOrder)
	})
	t.Run("NoAliasing", func(t *testing.T) {
		run(t, "Inputs", testNoAliasingInputs)
		run(t, "Outputs", testNoAliasingOutputs)
	})
	t.Run("Concurrency", func(t *testing.T) {
		run(t, "Commits", testConcurrentCommits)
		run(t, "CreateSameKey", testConcurrentCreateSameKey)
		run(t, "ActivateAndCommit", testConcurrentActivateAndCommit)
	})
	run(t, "Closed", testClosed)
}

// ExerciseStorage runs the part of the suite that checks what a driver
// stores for an actor — state, the Initialized flag, KV, alarms, fencing,
// destroy, isolation between actors, no aliasing, concurrent commits —
// and not the actor index (create, lookup, list, duplicate keys). It is
// for drivers whose index belongs to someone else (rivetengine: the Rivet
// Engine's), run through an adapter that keeps the records in memory and
// creates each actor where the driver can store its data. The subtests
// run one after the other and use at most 6 actors each (such stores are
// slow to create actors), so the concurrency subtest is not part of it.
func ExerciseStorage(t *testing.T, newDriver func(t *testing.T) rivetdriver.Driver) {
	run := func(t *testing.T, name string, f func(h *h)) {
		t.Run(name, func(t *testing.T) {
			f(newH(t, newDriver))
		})
	}
	t.Run("Activate", func(t *testing.T) {
		run(t, "State", testActivateState)
	})
	t.Run("Commit", func(t *testing.T) {
		run(t, "State", testCommitState)
		run(t, "KV", testCommitKV)
		run(t, "Alarms", testCommitAlarms)
		run(t, "Fenced", testCommitFenced)
		run(t, "BatchInOrder", testCommitBatchInOrder)
		run(t, "ErrReset", testCommitErrReset)
		run(t, "EmptyBatch", testCommitEmptyBatch)
	})
	t.Run("KV", func(t *testing.T) {
		run(t, "Get", testKVGet)
		run(t, "ListExamples", testKVListExamples)
		run(t, "ListMatrix", testKVListMatrix)
		run(t, "ActorIsolation", testKVActorIsolation)
	})
	t.Run("Alarms", func(t *testing.T) {
		run(t, "Order", testAlarmsOrder)
	})
	t.Run("NoAliasing", func(t *testing.T) {
		run(t, "Inputs", testNoAliasingInputs)
		run(t, "Outputs", testNoAliasingOutputs)
	})
}

func testCreateAndGet(h *h) {
	want := record("a1", "ns", "counter", "x", "y")
	h.create(want)
	if diff := sameRecord(h.get("a1"), want); diff != "" {
		h.t.Fatalf("GetActor after CreateActor: %s", diff)
	}
	noKey := rivetdriver.ActorRecord{ID: "a2", Name: "singleton"}
	h.create(noKey)
	if got := h.get("a2"); got.Name != "singleton" || len(got.Key) != 0 || len(got.Input) != 0 || got.Generation != 0 {
		h.t.Fatalf("GetActor of minimal record = %+v", got)
	}
}

func testLookup(h *h) {
	want := record("a1", "ns", "counter", "a", "b")
	h.create(want)
	got, err := h.d.LookupActor(h.ctx, "ns", "counter", []string{"a", "b"})
	if err != nil {
		h.t.Fatalf("LookupActor: %v", err)
	}
	if diff := sameRecord(got, want); diff != "" {
		h.t.Fatalf("LookupActor: %s", diff)
	}
	misses := []struct {
		ns, name string
		key      []string
	}{
		{"ns", "counter", []string{"a"}},
		{"ns", "counter", []string{"a", "b", "c"}},
		{"ns", "counter", []string{"a", "b", ""}},
		{"ns", "counter", []string{"a/b"}},
		{"ns", "counter", []string{"ab"}},
		{"ns", "counter", []string{"a\x00b"}},
		{"ns", "counter", []string{"", "a", "b"}},
		{"ns", "counter", nil},
		{"ns", "counte", []string{"a", "b"}},
		{"ns", "counterx", []string{"a", "b"}},
		{"n", "counter", []string{"a", "b"}},
		{"", "counter", []string{"a", "b"}},
		{"other", "counter", []string{"a", "b"}},
	}
	for _, m := range misses {
		if _, err := h.d.LookupActor(h.ctx, m.ns, m.name, m.key); !errors.Is(err, rivetdriver.ErrNotFound) {
			h.t.Errorf("LookupActor(%q, %q, %q) = %v, want ErrNotFound", m.ns, m.name, m.key, err)
		}
	}
}

func testNamespacesIsolate(h *h) {
	// Identical name and key in different namespaces, and component
	// boundaries that a naive concatenation would confuse.
	recs := []rivetdriver.ActorRecord{
		record("n1", "ns1", "counter", "k"),
		record("n2", "ns2", "counter", "k"),
		record("n3", "", "counter", "k"),
		record("n4", "a", "bc", "k"),
		record("n5", "ab", "c", "k"),
		record("n6", "ns1", "counter", "k", ""),
		record("n7", "ns1", "counter"),
		record("n8", "ns1", "counter", ""),
		record("n9", "ns1", "counter", "a", "b"),
		record("n10", "ns1", "counter", "a\x00b"),
		record("n11", "ns1", "counter", "ab"),
		record("n12", "ns1", "counterk"),
	}
	for _, r := range recs {
		h.create(r)
	}
	for _, r := range recs {
		got, err := h.d.LookupActor(h.ctx, r.Namespace, r.Name, r.Key)
		if err != nil || got.ID != r.ID {
			h.t.Errorf("LookupActor(%q, %q, %q) = %q, %v; want %q", r.Namespace, r.Name, r.Key, got.ID, err, r.ID)
		}
	}
}

func testDuplicateKey(h *h) {
	h.create(record("a1", "ns", "counter", "k"))
	err := h.d.CreateActor(h.ctx, record("a2", "ns", "counter", "k"))
	wantErr(h.t, "CreateActor with a live actor's key", err, rivetdriver.ErrDuplicateKey)
	if got, err := h.d.LookupActor(h.ctx, "ns", "counter", []string{"k"}); err != nil || got.ID != "a1" {
		h.t.Fatalf("LookupActor after refused create = %q, %v; want a1", got.ID, err)
	}
	// The refused create left nothing behind: its id is still free.
	if _, err := h.d.GetActor(h.ctx, "a2"); !errors.Is(err, rivetdriver.ErrNotFound) {
		h.t.Fatalf("GetActor of refused create: %v, want ErrNotFound", err)
	}
	h.create(record("a2", "ns", "counter", "k2"))
}

func testDuplicateID(h *h) {
	h.create(record("a1", "ns", "counter", "k"))
	err := h.d.CreateActor(h.ctx, record("a1", "ns", "counter", "other"))
	wantErr(h.t, "CreateActor with a used id", err, rivetdriver.ErrDuplicateID)
	err = h.d.CreateActor(h.ctx, record("a1", "elsewhere", "thing"))
	wantErr(h.t, "CreateActor with a used id in another namespace", err, rivetdriver.ErrDuplicateID)
	if got := h.get("a1"); !slices.Equal(got.Key, []string{"k"}) {
		h.t.Fatalf("refused create changed the record: %+v", got)
	}
	// The refused create did not claim its key.
	if _, err := h.d.LookupActor(h.ctx, "ns", "counter", []string{"other"}); !errors.Is(err, rivetdriver.ErrNotFound) {
		h.t.Fatalf("refused create claimed its key: %v", err)
	}
	h.create(record("a2", "ns", "counter", "other"))
}

func testKeyFreeAfterDestroy(h *h) {
	old := h.live("old", "ns", "counter", "k")
	h.ok(&rivetdriver.Commit{ActorID: old.ID, Generation: old.Generation, Destroy: true})
	if _, err := h.d.LookupActor(h.ctx, "ns", "counter", []string{"k"}); !errors.Is(err, rivetdriver.ErrNotFound) {
		h.t.Fatalf("LookupActor of destroyed actor's key: %v, want ErrNotFound", err)
	}
	h.create(record("new", "ns", "counter", "k"))
	got, err := h.d.LookupActor(h.ctx, "ns", "counter", []string{"k"})
	if err != nil || got.ID != "new" {
		h.t.Fatalf("LookupActor after the key was reused = %q, %v; want new", got.ID, err)
	}
	gone := h.get("old")
	want := record("old", "ns", "counter", "k")
	want.Generation, want.Destroyed = 1, true
	if diff := sameRecord(gone, want); diff != "" {
		h.t.Fatalf("destroyed record: %s", diff)
	}
}

func testIDTakenForever(h *h) {
	a := h.live("a1", "ns", "counter", "k")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Destroy: true})
	err := h.d.CreateActor(h.ctx, record("a1", "ns", "counter", "k"))
	wantErr(h.t, "CreateActor reusing a destroyed id and its key", err, rivetdriver.ErrDuplicateID)
	err = h.d.CreateActor(h.ctx, record("a1", "ns", "counter", "fresh"))
	wantErr(h.t, "CreateActor reusing a destroyed id", err, rivetdriver.ErrDuplicateID)
	h.create(record("a2", "ns", "counter", "k"))
	err = h.d.CreateActor(h.ctx, record("a1", "x", "y"))
	wantErr(h.t, "CreateActor reusing a destroyed id after its key was reused", err, rivetdriver.ErrDuplicateID)
}

func testNotFound(h *h) {
	_, err := h.d.GetActor(h.ctx, "nope")
	wantErr(h.t, "GetActor", err, rivetdriver.ErrNotFound)
	_, err = h.d.LookupActor(h.ctx, "ns", "nope", []string{"k"})
	wantErr(h.t, "LookupActor", err, rivetdriver.ErrNotFound)
	_, _, err = h.d.Activate(h.ctx, "nope")
	wantErr(h.t, "Activate", err, rivetdriver.ErrNotFound)
}

func testListActors(h *h) {
	// Created out of id order, across namespaces and names.
	for _, r := range []rivetdriver.ActorRecord{
		record("id05", "ns1", "a"),
		record("id01", "ns1", "a", "1"),
		record("id09", "ns2", "a"),
		record("id03", "ns1", "b"),
		record("id07", "ns2", "b"),
		record("id02", "", "a", "2"),
		record("id08", "ns1", "a", "8"),
		record("id04", "ns2", "a", "4"),
		record("id06", "ns1", "b", "6"),
	} {
		h.create(r)
	}
	for _, id := range []string{"id03", "id04"} {
		r := h.activate(id)
		h.ok(&rivetdriver.Commit{ActorID: id, Generation: r.Generation, Destroy: true})
	}
	cases := []struct {
		o    rivetdriver.ListActorsOptions
		want string
	}{
		{rivetdriver.ListActorsOptions{}, "id01,id02,id05,id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{IncludeDestroyed: true}, "id01,id02,id03,id04,id05,id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{Namespace: "ns1"}, "id01,id05,id06,id08"},
		{rivetdriver.ListActorsOptions{Namespace: "ns2", IncludeDestroyed: true}, "id04,id07,id09"},
		{rivetdriver.ListActorsOptions{Name: "a"}, "id01,id02,id05,id08,id09"},
		{rivetdriver.ListActorsOptions{Namespace: "ns1", Name: "b"}, "id06"},
		{rivetdriver.ListActorsOptions{Namespace: "ns1", Name: "b", IncludeDestroyed: true}, "id03,id06"},
		{rivetdriver.ListActorsOptions{Namespace: "none"}, ""},
		{rivetdriver.ListActorsOptions{After: "id05"}, "id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{After: "id04"}, "id05,id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{After: "id045"}, "id05,id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{After: "id0"}, "id01,id02,id05,id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{After: "id09"}, ""},
		{rivetdriver.ListActorsOptions{After: "id05", IncludeDestroyed: true}, "id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{Limit: 3}, "id01,id02,id05"},
		{rivetdriver.ListActorsOptions{Limit: 3, IncludeDestroyed: true}, "id01,id02,id03"},
		{rivetdriver.ListActorsOptions{Limit: 100}, "id01,id02,id05,id06,id07,id08,id09"},
		{rivetdriver.ListActorsOptions{Namespace: "ns2", Limit: 1}, "id07"},
		{rivetdriver.ListActorsOptions{Name: "a", After: "id02", Limit: 2}, "id05,id08"},
	}
	for _, c := range cases {
		got, err := h.d.ListActors(h.ctx, c.o)
		if err != nil {
			h.t.Fatalf("ListActors(%+v): %v", c.o, err)
		}
		if ids(got) != c.want {
			h.t.Errorf("ListActors(%+v) = %s, want %s", c.o, ids(got), c.want)
		}
	}
	// Records are complete.
	got, err := h.d.ListActors(h.ctx, rivetdriver.ListActorsOptions{After: "id07", Limit: 1})
	if err != nil || len(got) != 1 {
		h.t.Fatalf("ListActors(After id07, Limit 1) = %v, %v", ids(got), err)
	}
	if diff := sameRecord(got[0], record("id08", "ns1", "a", "8")); diff != "" {
		h.t.Fatalf("listed record: %s", diff)
	}
	// Paging with After and Limit visits every actor once, in order.
	var paged []rivetdriver.ActorRecord
	after := ""
	for range 20 {
		page, err := h.d.ListActors(h.ctx, rivetdriver.ListActorsOptions{After: after, Limit: 2, IncludeDestroyed: true})
		if err != nil {
			h.t.Fatalf("ListActors page: %v", err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ID
	}
	if want := "id01,id02,id03,id04,id05,id06,id07,id08,id09"; ids(paged) != want {
		h.t.Fatalf("paged listing = %s, want %s", ids(paged), want)
	}
}

func testActivateGeneration(h *h) {
	want := record("a1", "ns", "counter", "k")
	h.create(want)
	for gen := uint64(1); gen <= 3; gen++ {
		rec, _, err := h.d.Activate(h.ctx, "a1")
		if err != nil {
			h.t.Fatalf("Activate #%d: %v", gen, err)
		}
		want.Generation = gen
		if diff := sameRecord(rec, want); diff != "" {
			h.t.Fatalf("Activate #%d: %s", gen, diff)
		}
		if diff := sameRecord(h.get("a1"), want); diff != "" {
			h.t.Fatalf("GetActor after Activate #%d: %s", gen, diff)
		}
	}
}

func testActivateState(h *h) {
	a := h.live("a1", "", "x")
	if s := h.state(a.ID); s != nil {
		h.t.Fatalf("state before any state commit = %q, want nil", s)
	}
	a = h.activate(a.ID)
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Initialize: true, KVPut: []rivetdriver.KV{kv("k", "v")},
		AlarmPut: []rivetdriver.Alarm{alarm("al", 0)}})
	if s := h.state(a.ID); s != nil {
		h.t.Fatalf("state after commits without State = %q, want nil", s)
	}
	a = h.activate(a.ID)
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte{}})
	if s := h.state(a.ID); s == nil || len(s) != 0 {
		h.t.Fatalf("state after committing an empty state = %#v, want empty and non-nil", s)
	}
}

func testActivateDestroyed(h *h) {
	a := h.live("a1", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Destroy: true})
	_, _, err := h.d.Activate(h.ctx, a.ID)
	wantErr(h.t, "Activate of a destroyed actor", err, rivetdriver.ErrDestroyed)
	if got := h.get(a.ID); got.Generation != a.Generation {
		h.t.Fatalf("refused Activate changed the generation to %d, want %d", got.Generation, a.Generation)
	}
}

func testCommitState(h *h) {
	a := h.live("a1", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("s1")})
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("second")})
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, KVPut: []rivetdriver.KV{kv("k", "v")}}) // nil State: unchanged
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation})
	if s := h.state(a.ID); string(s) != "second" {
		h.t.Fatalf("state = %q, want %q", s, "second")
	}
}

func testCommitInitialize(h *h) {
	a := h.live("a1", "ns", "x", "k")
	if a.Initialized {
		h.t.Fatal("a fresh actor is Initialized")
	}
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Initialize: true})
	if got := h.get(a.ID); !got.Initialized {
		h.t.Fatal("GetActor after an Initialize commit: not Initialized")
	}
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("s")})
	rec := h.activate(a.ID)
	want := record("a1", "ns", "x", "k")
	want.Generation, want.Initialized = 2, true
	if diff := sameRecord(rec, want); diff != "" {
		h.t.Fatalf("Activate after Initialize: %s", diff)
	}
	if got, err := h.d.LookupActor(h.ctx, "ns", "x", []string{"k"}); err != nil || !got.Initialized {
		h.t.Fatalf("LookupActor after Initialize = %+v, %v", got, err)
	}
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: rec.Generation, Initialize: true, State: []byte("again")})
	if got := h.get(a.ID); !got.Initialized || got.Generation != 2 {
		h.t.Fatalf("second Initialize: %+v", got)
	}
}

func testCommitKV(h *h) {
	a := h.live("a1", "", "x")
	c := func(c rivetdriver.Commit) *rivetdriver.Commit {
		c.ActorID, c.Generation = a.ID, a.Generation
		return &c
	}
	h.ok(c(rivetdriver.Commit{KVPut: []rivetdriver.KV{kv("a", "1"), kv("b", "2"), kv("c", "3")}}))
	h.ok(c(rivetdriver.Commit{KVPut: []rivetdriver.KV{kv("b", "2b")}, KVDelete: [][]byte{[]byte("c"), []byte("missing")}}))
	if got, want := h.kvString(a.ID, rivetdriver.ListOptions{}), `61="1";62="2b";`; got != want {
		h.t.Fatalf("after put, overwrite and delete: %s, want %s", got, want)
	}
	h.ok(c(rivetdriver.Commit{KVClear: true, KVPut: []rivetdriver.KV{kv("new", "n"), kv("a", "fresh")}}))
	if got, want := h.kvString(a.ID, rivetdriver.ListOptions{}), `61="fresh";6e6577="n";`; got != want {
		h.t.Fatalf("after clear and puts in one commit: %s, want %s", got, want)
	}
	h.ok(c(rivetdriver.Commit{KVClear: true}))
	if got := h.kvString(a.ID, rivetdriver.ListOptions{}); got != "" {
		h.t.Fatalf("after clear: %s, want nothing", got)
	}
	// Empty values are values.
	h.ok(c(rivetdriver.Commit{KVPut: []rivetdriver.KV{{Key: []byte("e"), Value: []byte{}}}}))
	if v := h.kvGet(a.ID, "e")[0]; v == nil || len(v) != 0 {
		h.t.Fatalf("KVGet of an empty value = %#v, want empty and non-nil", v)
	}
}

func testCommitAlarms(h *h) {
	a := h.live("a1", "", "x")
	b := h.live("b1", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation,
		AlarmPut: []rivetdriver.Alarm{alarm("x", 3*time.Second), alarm("y", 1*time.Second), alarm("z", 2*time.Second)}},
		&rivetdriver.Commit{ActorID: b.ID, Generation: b.Generation, AlarmPut: []rivetdriver.Alarm{alarm("x", 5*time.Second)}})
	got := h.alarms(a.ID)
	if alarmIDs(got) != "a1/y@1,a1/z@2,a1/x@3" {
		h.t.Fatalf("Alarms = %s", alarmIDs(got))
	}
	want := alarm("y", time.Second)
	want.ActorID = a.ID
	if diff := sameAlarm(got[0], want); diff != "" {
		h.t.Fatalf("stored alarm: %s", diff)
	}
	// Delete, and overwrite by id (moving it in time order).
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, AlarmDelete: []string{"z", "missing"},
		AlarmPut: []rivetdriver.Alarm{alarm("y", 9*time.Second)}})
	if got := alarmIDs(h.alarms(a.ID)); got != "a1/x@3,a1/y@9" {
		h.t.Fatalf("after delete and overwrite: %s", got)
	}
	// Deleting an id in one actor leaves another actor's alarm of that id.
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, AlarmDelete: []string{"x"}})
	if got := alarmIDs(h.alarms("")); got != "b1/x@5,a1/y@9" {
		h.t.Fatalf("all alarms: %s", got)
	}
}

func testCommitDestroy(h *h) {
	a := h.live("a1", "ns", "x", "k")
	b := h.live("b1", "ns", "x", "other")
	for _, r := range []rivetdriver.ActorRecord{a, b} {
		h.ok(&rivetdriver.Commit{ActorID: r.ID, Generation: r.Generation, Initialize: true, State: []byte("s"),
			KVPut: []rivetdriver.KV{kv("k", "v")}, AlarmPut: []rivetdriver.Alarm{alarm("al", time.Second)}})
	}
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Destroy: true})
	want := record("a1", "ns", "x", "k")
	want.Generation, want.Initialized, want.Destroyed = 1, true, true
	if diff := sameRecord(h.get(a.ID), want); diff != "" {
		h.t.Fatalf("destroyed record: %s", diff)
	}
	if got := h.kvString(a.ID, rivetdriver.ListOptions{}); got != "" {
		h.t.Fatalf("KV survives destroy: %s", got)
	}
	if v := h.kvGet(a.ID, "k")[0]; v != nil {
		h.t.Fatalf("KVGet after destroy = %q", v)
	}
	if got := h.alarms(a.ID); len(got) != 0 {
		h.t.Fatalf("alarms survive destroy: %s", alarmIDs(got))
	}
	if got := alarmIDs(h.alarms("")); got != "b1/al@1" {
		h.t.Fatalf("all alarms after destroy: %s", got)
	}
	// The other actor is untouched.
	if got := h.kvString(b.ID, rivetdriver.ListOptions{}); got != `6b="v";` {
		h.t.Fatalf("other actor's KV after destroy: %s", got)
	}
	if s := h.state(b.ID); string(s) != "s" {
		h.t.Fatalf("other actor's state after destroy: %q", s)
	}
	list, err := h.d.ListActors(h.ctx, rivetdriver.ListActorsOptions{})
	if err != nil || ids(list) != "b1" {
		h.t.Fatalf("ListActors after destroy = %s, %v", ids(list), err)
	}
}

func testCommitFenced(h *h) {
	a := h.live("a1", "ns", "x", "k")
	b := h.live("b1", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("s1"),
		KVPut: []rivetdriver.KV{kv("k", "v1")}, AlarmPut: []rivetdriver.Alarm{alarm("al", time.Second)}})
	cur := h.activate(a.ID) // fences a.Generation
	// The new incarnation sleeps: a driver may forget the actor, but the
	// stale incarnation's commits must still be refused.
	h.release(a.ID, cur.Generation)
	stale := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Initialize: true, State: []byte("stale"),
		KVClear: true, KVPut: []rivetdriver.KV{kv("k", "stale"), kv("k2", "stale")},
		AlarmDelete: []string{"al"}, AlarmPut: []rivetdriver.Alarm{alarm("stale", 0)}}
	future := &rivetdriver.Commit{ActorID: a.ID, Generation: cur.Generation + 1, State: []byte("future")}
	okB := &rivetdriver.Commit{ActorID: b.ID, Generation: b.Generation, State: []byte("b"), KVPut: []rivetdriver.KV{kv("kb", "vb")}}
	staleDestroy := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Destroy: true}
	h.commit(stale, okB, future, staleDestroy)
	wantErr(h.t, "stale commit", stale.Err, rivetdriver.ErrFenced)
	wantErr(h.t, "commit with a future generation", future.Err, rivetdriver.ErrFenced)
	wantErr(h.t, "stale destroy", staleDestroy.Err, rivetdriver.ErrFenced)
	if okB.Err != nil {
		h.t.Fatalf("current commit in a batch with fenced ones: %v", okB.Err)
	}
	// Nothing of the fenced commits was applied.
	rec := h.get(a.ID)
	if rec.Initialized || rec.Destroyed || rec.Generation != cur.Generation {
		h.t.Fatalf("fenced commit changed the record: %+v", rec)
	}
	if got := h.kvString(a.ID, rivetdriver.ListOptions{}); got != `6b="v1";` {
		h.t.Fatalf("fenced commit changed KV: %s", got)
	}
	if got := alarmIDs(h.alarms(a.ID)); got != "a1/al@1" {
		h.t.Fatalf("fenced commit changed alarms: %s", got)
	}
	if got, err := h.d.LookupActor(h.ctx, "ns", "x", []string{"k"}); err != nil || got.ID != a.ID {
		h.t.Fatalf("fenced destroy freed the key: %v", err)
	}
	// The rest of the batch was applied.
	if got := h.kvString(b.ID, rivetdriver.ListOptions{}); got != `6b62="vb";` {
		h.t.Fatalf("batch-mate's KV: %s", got)
	}
	if s := h.state(b.ID); string(s) != "b" {
		h.t.Fatalf("batch-mate's state: %q", s)
	}
	// The current incarnation still commits; the state is the last good one.
	if s := h.state(a.ID); string(s) != "s1" {
		h.t.Fatalf("state after fenced commits = %q, want s1", s)
	}
	cur2 := h.get(a.ID)
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: cur2.Generation, State: []byte("s2")})
}

func testCommitNotFoundAndDestroyed(h *h) {
	a := h.live("a1", "", "x")
	gone := h.live("gone", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: gone.ID, Generation: gone.Generation, Destroy: true})
	missing := &rivetdriver.Commit{ActorID: "missing", Generation: 1, State: []byte("m"), KVPut: []rivetdriver.KV{kv("k", "v")}}
	late := &rivetdriver.Commit{ActorID: gone.ID, Generation: gone.Generation, State: []byte("zombie"),
		KVPut: []rivetdriver.KV{kv("k", "v")}, AlarmPut: []rivetdriver.Alarm{alarm("al", 0)}}
	good := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("ok")}
	h.commit(missing, late, good)
	wantErr(h.t, "commit to an unknown actor", missing.Err, rivetdriver.ErrNotFound)
	wantErr(h.t, "commit to a destroyed actor", late.Err, rivetdriver.ErrDestroyed)
	if good.Err != nil {
		h.t.Fatalf("good commit: %v", good.Err)
	}
	if s := h.state(a.ID); string(s) != "ok" {
		h.t.Fatalf("good commit's state = %q", s)
	}
	if got := h.kvString(gone.ID, rivetdriver.ListOptions{}) + h.kvString("missing", rivetdriver.ListOptions{}); got != "" {
		h.t.Fatalf("refused commits wrote KV: %s", got)
	}
	if got := h.alarms(""); len(got) != 0 {
		h.t.Fatalf("refused commit wrote alarms: %s", alarmIDs(got))
	}
	if _, err := h.d.GetActor(h.ctx, "missing"); !errors.Is(err, rivetdriver.ErrNotFound) {
		h.t.Fatalf("commit to an unknown actor created it: %v", err)
	}
}

func testCommitBatchInOrder(h *h) {
	a := h.live("a1", "ns", "x", "k")
	c := func(c rivetdriver.Commit) *rivetdriver.Commit {
		c.ActorID, c.Generation = a.ID, a.Generation
		return &c
	}
	h.ok(
		c(rivetdriver.Commit{State: []byte("1"), KVPut: []rivetdriver.KV{kv("k", "1"), kv("gone", "x")}}),
		c(rivetdriver.Commit{State: []byte("2"), KVPut: []rivetdriver.KV{kv("k", "2")}, KVDelete: [][]byte{[]byte("gone")}}),
		c(rivetdriver.Commit{Initialize: true, AlarmPut: []rivetdriver.Alarm{alarm("al", time.Second)}}),
		c(rivetdriver.Commit{AlarmPut: []rivetdriver.Alarm{alarm("al", 2*time.Second)}}),
	)
	if got := h.kvString(a.ID, rivetdriver.ListOptions{}); got != `6b="2";` {
		h.t.Fatalf("KV after an in-order batch: %s", got)
	}
	if got := alarmIDs(h.alarms(a.ID)); got != "a1/al@2" {
		h.t.Fatalf("alarms after an in-order batch: %s", got)
	}
	if got := h.get(a.ID); !got.Initialized {
		h.t.Fatal("Initialize in a batch not applied")
	}
	// A destroy earlier in the batch refuses later commits of the actor.
	destroy := c(rivetdriver.Commit{Destroy: true})
	after := c(rivetdriver.Commit{State: []byte("after"), KVPut: []rivetdriver.KV{kv("z", "z")}})
	h.commit(destroy, after)
	if destroy.Err != nil {
		h.t.Fatalf("destroy: %v", destroy.Err)
	}
	wantErr(h.t, "commit after a destroy in the same batch", after.Err, rivetdriver.ErrDestroyed)
	if got := h.kvString(a.ID, rivetdriver.ListOptions{}); got != "" {
		h.t.Fatalf("KV after destroy in batch: %s", got)
	}
	if got := h.get(a.ID); !got.Destroyed || !got.Initialized {
		h.t.Fatalf("record after destroy in batch: %+v", got)
	}
}

func testCommitErrReset(h *h) {
	a := h.live("a1", "", "x")
	c := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("s"), Err: errors.New("left over")}
	h.commit(c)
	if c.Err != nil {
		h.t.Fatalf("an applied commit keeps Err %v", c.Err)
	}
}

func testCommitEmptyBatch(h *h) {
	if err := h.d.Commit(h.ctx, nil); err != nil {
		h.t.Fatalf("Commit(nil): %v", err)
	}
	a := h.live("a1", "", "x")
	c := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation}
	h.ok(c) // a commit that changes nothing
}

// kvKeys are stored by the KV tests: byte-order edge cases.
var kvKeys = []string{
	"\x00", "\x00\x00", "\x00\xff", "a", "a\x00", "ab", "abc", "b", "ba", "c",
	"\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
}

func putKeys(h *h, r rivetdriver.ActorRecord, tag string) {
	h.t.Helper()
	var puts []rivetdriver.KV
	for _, k := range kvKeys {
		puts = append(puts, kv(k, tag+k))
	}
	h.ok(&rivetdriver.Commit{ActorID: r.ID, Generation: r.Generation, KVPut: puts})
}

func testKVGet(h *h) {
	a := h.live("a1", "", "x")
	putKeys(h, a, "v")
	got := h.kvGet(a.ID, "b", "missing", "\x00", "\xff\xff", "b", "a\x00\x00", "")
	want := []string{"vb", "", "v\x00", "v\xff\xff", "vb", "", ""}
	for i := range want {
		if (want[i] == "") != (got[i] == nil) || string(got[i]) != want[i] {
			h.t.Errorf("KVGet value %d = %q, want %q (nil when missing)", i, got[i], want[i])
		}
	}
	if vs := h.kvGet(a.ID); len(vs) != 0 {
		h.t.Fatalf("KVGet of no keys = %q", vs)
	}
}

func testKVListExamples(h *h) {
	a := h.live("a1", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation,
		KVPut: []rivetdriver.KV{kv("a", "1"), kv("ab", "2"), kv("b", "3"), kv("\x00", "4"), kv("\xff", "5"), kv("\xff\xff", "6"), kv("c", "7")}})
	cases := []struct {
		o    rivetdriver.ListOptions
		want string
	}{
		{rivetdriver.ListOptions{}, `00="4";61="1";6162="2";62="3";63="7";ff="5";ffff="6";`},
		{rivetdriver.ListOptions{Prefix: []byte("a")}, `61="1";6162="2";`},
		{rivetdriver.ListOptions{Prefix: []byte("\xff")}, `ff="5";ffff="6";`},
		{rivetdriver.ListOptions{Prefix: []byte("\xff\xff")}, `ffff="6";`},
		{rivetdriver.ListOptions{Prefix: []byte("\xff"), Reverse: true}, `ffff="6";ff="5";`},
		{rivetdriver.ListOptions{Start: []byte("ab"), End: []byte("c")}, `6162="2";62="3";`},
		{rivetdriver.ListOptions{Start: []byte("ab"), End: []byte("c"), Reverse: true}, `62="3";6162="2";`},
		{rivetdriver.ListOptions{Reverse: true, Limit: 2}, `ffff="6";ff="5";`},
		{rivetdriver.ListOptions{Limit: 2}, `00="4";61="1";`},
		{rivetdriver.ListOptions{Prefix: []byte("a"), Start: []byte("aa"), Reverse: true}, `6162="2";`},
		{rivetdriver.ListOptions{Prefix: []byte("a"), End: []byte("ab")}, `61="1";`},
		{rivetdriver.ListOptions{Start: []byte("c"), End: []byte("b")}, ""},
		{rivetdriver.ListOptions{Start: []byte("b"), End: []byte("b")}, ""},
		{rivetdriver.ListOptions{Start: []byte("\xff")}, `ff="5";ffff="6";`},
		{rivetdriver.ListOptions{End: []byte("\x00")}, ""},
		{rivetdriver.ListOptions{End: []byte("\x00\x00")}, `00="4";`},
		{rivetdriver.ListOptions{Prefix: []byte("zz")}, ""},
		{rivetdriver.ListOptions{Prefix: []byte{}}, `00="4";61="1";6162="2";62="3";63="7";ff="5";ffff="6";`},
	}
	for _, c := range cases {
		if got := h.kvString(a.ID, c.o); got != c.want {
			h.t.Errorf("KVList(%+v) = %s, want %s", c.o, got, c.want)
		}
	}
}

// testKVListMatrix compares KVList with a reference over combinations of
// every option.
func testKVListMatrix(h *h) {
	a := h.live("a1", "", "x")
	putKeys(h, a, "v")
	// Neighbours whose ids extend a1's must not leak into its range.
	for _, id := range []string{"a", "a1\x00", "a1\xff", "a10", "a2"} {
		putKeys(h, h.live(id, "", "x"), "other")
	}
	var all []rivetdriver.KV
	for _, k := range kvKeys { // already sorted
		all = append(all, kv(k, "v"+k))
	}
	bs := func(ss ...string) [][]byte {
		out := [][]byte{nil}
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	prefixes := bs("a", "\x00", "\xff", "\xff\xff", "\xff\xff\xff\xff", "zz", "ab")
	starts := bs("a", "ab\x00", "\x00", "\xff", "\xff\xff")
	ends := bs("b", "\xff", "\xff\xff\x00", "\x00", "abc")
	for _, p := range prefixes {
		for _, s := range starts {
			for _, e := range ends {
				for _, rev := range []bool{false, true} {
					for _, limit := range []int{0, 1, 3} {
						o := rivetdriver.ListOptions{Prefix: p, Start: s, End: e, Reverse: rev, Limit: limit}
						var want []rivetdriver.KV
						for _, pair := range all {
							if o.Contains(pair.Key) {
								want = append(want, pair)
							}
						}
						if rev {
							slices.Reverse(want)
						}
						if limit > 0 && len(want) > limit {
							want = want[:limit]
						}
						if got := fmtKVs(h.kvList(a.ID, o)); got != fmtKVs(want) {
							h.t.Errorf("KVList(Prefix %q, Start %q, End %q, Reverse %v, Limit %d) = %s, want %s",
								p, s, e, rev, limit, got, fmtKVs(want))
						}
					}
				}
			}
		}
	}
}

func testKVActorIsolation(h *h) {
	// Actor ids where one is a prefix of the other.
	ids := []string{"p", "pp", "p\x00", "p\xff", "q"}
	for _, id := range ids {
		r := h.live(id, "", "x")
		h.ok(&rivetdriver.Commit{ActorID: id, Generation: r.Generation, KVPut: []rivetdriver.KV{kv("k", id), kv("\xff", id)}})
	}
	r := h.get("p")
	h.ok(&rivetdriver.Commit{ActorID: "p", Generation: r.Generation, KVClear: true, KVPut: []rivetdriver.KV{kv("only", "p")}})
	for _, id := range ids {
		want := fmtKVs([]rivetdriver.KV{kv("k", id), kv("\xff", id)})
		if id == "p" {
			want = `6f6e6c79="p";`
		}
		if got := h.kvString(id, rivetdriver.ListOptions{}); got != want {
			h.t.Errorf("KVList(%q) = %s, want %s", id, got, want)
		}
		if got := h.kvString(id, rivetdriver.ListOptions{Prefix: []byte("\xff")}); id != "p" && got != fmtKVs([]rivetdriver.KV{kv("\xff", id)}) {
			h.t.Errorf("KVList(%q, Prefix ff) = %s", id, got)
		}
	}
	if v := h.kvGet("p", "k")[0]; v != nil {
		h.t.Fatalf("KVGet(p, k) after clear = %q", v)
	}
	if v := h.kvGet("nobody", "k")[0]; v != nil {
		h.t.Fatalf("KVGet of an unknown actor = %q", v)
	}
}

func testAlarmsOrder(h *h) {
	a := h.live("a1", "", "x")
	b := h.live("b1", "", "x")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, AlarmPut: []rivetdriver.Alarm{
		alarm("m", 2*time.Second), alarm("z", time.Second), alarm("a", 2*time.Second), alarm("b", 3*time.Second)}})
	h.ok(&rivetdriver.Commit{ActorID: b.ID, Generation: b.Generation, AlarmPut: []rivetdriver.Alarm{
		alarm("c", 2*time.Second), alarm("a", 0), alarm("n", 5*time.Second)}})
	// Same second, nanoseconds apart: ordered by the full time.
	late, early := alarm("late", 4*time.Second+2), alarm("early", 4*time.Second+1)
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, AlarmPut: []rivetdriver.Alarm{late, early}})
	if got, want := alarmIDs(h.alarms(a.ID)), "a1/z@1,a1/a@2,a1/m@2,a1/b@3,a1/early@4,a1/late@4"; got != want {
		h.t.Fatalf("Alarms(a1) = %s, want %s", got, want)
	}
	if got, want := alarmIDs(h.alarms(b.ID)), "b1/a@0,b1/c@2,b1/n@5"; got != want {
		h.t.Fatalf("Alarms(b1) = %s, want %s", got, want)
	}
	all := h.alarms("")
	if got, want := alarmIDs(all), "b1/a@0,a1/z@1,a1/a@2,b1/c@2,a1/m@2,a1/b@3,a1/early@4,a1/late@4,b1/n@5"; got != want {
		h.t.Fatalf("Alarms(\"\") = %s, want %s", got, want)
	}
	for _, al := range all {
		if al.ID == "early" && !al.At.Equal(early.At) {
			h.t.Fatalf("alarm time lost precision: %v, want %v", al.At, early.At)
		}
	}
	if got := h.alarms("nobody"); len(got) != 0 {
		h.t.Fatalf("Alarms of an unknown actor = %s", alarmIDs(got))
	}
}

func testNoAliasingInputs(h *h) {
	rec := record("a1", "ns", "x", "k1", "k2")
	h.create(rec)
	rec.Key[0], rec.Input[0] = "changed", 'X'
	if got := h.get("a1"); got.Key[0] != "k1" || string(got.Input) != "input of a1" {
		h.t.Fatalf("record aliased with CreateActor's argument: %+v", got)
	}
	a := h.activate("a1")
	state, key, val, args := []byte("state"), []byte("key"), []byte("value"), []byte("args")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, KVPut: []rivetdriver.KV{kv("del", "x")}})
	c := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: state,
		KVDelete: [][]byte{[]byte("del")},
		KVPut:    []rivetdriver.KV{{Key: key, Value: val}},
		AlarmPut: []rivetdriver.Alarm{{ID: "al", At: t0, Action: "go", Args: args}}}
	h.ok(c)
	state[0], key[0], val[0], args[0] = 'X', 'X', 'X', 'X'
	if got := h.kvString(a.ID, rivetdriver.ListOptions{}); got != `6b6579="value";` {
		h.t.Fatalf("KV aliased with Commit's arguments: %s", got)
	}
	if got := h.alarms(a.ID); len(got) != 1 || string(got[0].Args) != "args" {
		h.t.Fatalf("alarm aliased with Commit's arguments: %+v", got)
	}
	if s := h.state(a.ID); string(s) != "state" {
		h.t.Fatalf("state aliased with Commit's argument: %q", s)
	}
}

func testNoAliasingOutputs(h *h) {
	h.create(record("a1", "ns", "x", "k1"))
	a := h.activate("a1")
	h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte("state"),
		KVPut:    []rivetdriver.KV{kv("key", "value")},
		AlarmPut: []rivetdriver.Alarm{{ID: "al", At: t0, Action: "go", Args: []byte("args")}}})
	scribble := func(bs ...[]byte) {
		for _, b := range bs {
			for i := range b {
				b[i] = '#'
			}
		}
	}
	// Mutate everything the driver hands out...
	r1 := h.get("a1")
	r1.Key[0] = "#"
	scribble(r1.Input)
	r2, err := h.d.LookupActor(h.ctx, "ns", "x", []string{"k1"})
	if err != nil {
		h.t.Fatal(err)
	}
	r2.Key[0] = "#"
	scribble(r2.Input)
	list, err := h.d.ListActors(h.ctx, rivetdriver.ListActorsOptions{})
	if err != nil || len(list) != 1 {
		h.t.Fatalf("ListActors = %v, %v", ids(list), err)
	}
	list[0].Key[0] = "#"
	scribble(list[0].Input)
	r3, s, err := h.d.Activate(h.ctx, "a1")
	if err != nil {
		h.t.Fatal(err)
	}
	r3.Key[0] = "#"
	scribble(r3.Input, s)
	scribble(h.kvGet("a1", "key")...)
	for _, p := range h.kvList("a1", rivetdriver.ListOptions{}) {
		scribble(p.Key, p.Value)
	}
	for _, al := range h.alarms("") {
		scribble(al.Args)
	}
	// ...and nothing stored changed.
	want := record("a1", "ns", "x", "k1")
	want.Generation = r3.Generation
	if diff := sameRecord(h.get("a1"), want); diff != "" {
		h.t.Fatalf("record aliased with a returned value: %s", diff)
	}
	if s := h.state("a1"); string(s) != "state" {
		h.t.Fatalf("state aliased with a returned value: %q", s)
	}
	if got := h.kvString("a1", rivetdriver.ListOptions{}); got != `6b6579="value";` {
		h.t.Fatalf("KV aliased with a returned value: %s", got)
	}
	if v := h.kvGet("a1", "key")[0]; string(v) != "value" {
		h.t.Fatalf("KVGet aliased with a returned value: %q", v)
	}
	if got := h.alarms("a1"); len(got) != 1 || string(got[0].Args) != "args" {
		h.t.Fatalf("alarm aliased with a returned value: %+v", got)
	}
}

func testConcurrentCommits(h *h) {
	const actors, commits = 16, 40
	recs := make([]rivetdriver.ActorRecord, actors)
	for i := range recs {
		recs[i] = h.live(fmt.Sprintf("c%02d", i), "", "conc", fmt.Sprint(i))
	}
	var wg sync.WaitGroup
	for _, a := range recs {
		wg.Go(func() {
			for j := range commits {
				c := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte(fmt.Sprint(j)),
					KVPut:    []rivetdriver.KV{kv(fmt.Sprintf("k%03d", j), a.ID)},
					AlarmPut: []rivetdriver.Alarm{alarm("al", time.Duration(j)*time.Second)}}
				if err := h.d.Commit(h.ctx, []*rivetdriver.Commit{c}); err != nil || c.Err != nil {
					h.t.Errorf("actor %s commit %d: %v / %v", a.ID, j, err, c.Err)
					return
				}
			}
		})
	}
	// Readers alongside.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := h.d.Alarms(h.ctx, ""); err != nil {
					h.t.Errorf("Alarms: %v", err)
					return
				}
				if _, err := h.d.KVList(h.ctx, recs[0].ID, rivetdriver.ListOptions{Reverse: true, Limit: 5}); err != nil {
					h.t.Errorf("KVList: %v", err)
					return
				}
				if _, err := h.d.ListActors(h.ctx, rivetdriver.ListActorsOptions{}); err != nil {
					h.t.Errorf("ListActors: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	for _, a := range recs {
		if n := len(h.kvList(a.ID, rivetdriver.ListOptions{})); n != commits {
			h.t.Errorf("actor %s has %d KV pairs, want %d", a.ID, n, commits)
		}
		if s := h.state(a.ID); string(s) != fmt.Sprint(commits-1) {
			h.t.Errorf("actor %s state %q, want %d", a.ID, s, commits-1)
		}
	}
	if n := len(h.alarms("")); n != actors {
		h.t.Errorf("%d alarms, want %d", n, actors)
	}
}

func testConcurrentCreateSameKey(h *h) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = h.d.CreateActor(h.ctx, record(fmt.Sprintf("c%d", i), "ns", "x", "same"))
		})
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, rivetdriver.ErrDuplicateKey):
			h.t.Errorf("create %d: %v, want nil or ErrDuplicateKey", i, err)
		}
	}
	if created != 1 {
		h.t.Fatalf("%d concurrent creates of one key succeeded, want 1", created)
	}
	// The same id from many goroutines.
	for i := range n {
		wg.Go(func() {
			errs[i] = h.d.CreateActor(h.ctx, record("dup", "ns", "y", fmt.Sprint(i)))
		})
	}
	wg.Wait()
	created = 0
	for i, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, rivetdriver.ErrDuplicateID):
			h.t.Errorf("create %d: %v, want nil or ErrDuplicateID", i, err)
		}
	}
	if created != 1 {
		h.t.Fatalf("%d concurrent creates of one id succeeded, want 1", created)
	}
}

func testConcurrentActivateAndCommit(h *h) {
	// Each goroutine owns an actor and alternates Activate with commits at
	// the new generation, while another goroutine's stale commits to the
	// same actors are fenced.
	const actors, rounds = 8, 10
	var wg sync.WaitGroup
	for i := range actors {
		id := fmt.Sprintf("act%d", i)
		h.create(record(id, "", "x", id))
		wg.Go(func() {
			var last uint64
			for j := range rounds {
				rec, _, err := h.d.Activate(h.ctx, id)
				if err != nil {
					h.t.Errorf("Activate: %v", err)
					return
				}
				if rec.Generation != uint64(j+1) {
					h.t.Errorf("actor %s generation %d, want %d", id, rec.Generation, j+1)
				}
				if j%2 == 1 {
					h.release(id, last) // a stale release: the driver must keep the current entry
				}
				if last != 0 {
					stale := &rivetdriver.Commit{ActorID: id, Generation: last, State: []byte("stale")}
					if err := h.d.Commit(h.ctx, []*rivetdriver.Commit{stale}); err != nil || !errors.Is(stale.Err, rivetdriver.ErrFenced) {
						h.t.Errorf("stale commit: %v / %v", err, stale.Err)
					}
				}
				c := &rivetdriver.Commit{ActorID: id, Generation: rec.Generation, State: []byte(fmt.Sprint(j))}
				if err := h.d.Commit(h.ctx, []*rivetdriver.Commit{c}); err != nil || c.Err != nil {
					h.t.Errorf("commit: %v / %v", err, c.Err)
				}
				last = rec.Generation
				if j%3 == 0 {
					h.release(id, last) // the incarnation sleeps
				}
			}
		})
	}
	wg.Wait()
	for i := range actors {
		if s := h.state(fmt.Sprintf("act%d", i)); string(s) != fmt.Sprint(rounds-1) {
			h.t.Errorf("actor %d state %q", i, s)
		}
	}
}

func testClosed(h *h) {
	a := h.live("a1", "ns", "x", "k")
	if err := h.d.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	check := func(what string, err error) {
		h.t.Helper()
		if !errors.Is(err, rivetdriver.ErrClosed) {
			h.t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	check("CreateActor", h.d.CreateActor(h.ctx, record("a2", "", "x")))
	_, err := h.d.GetActor(h.ctx, a.ID)
	check("GetActor", err)
	_, err = h.d.LookupActor(h.ctx, "ns", "x", []string{"k"})
	check("LookupActor", err)
	_, err = h.d.ListActors(h.ctx, rivetdriver.ListActorsOptions{})
	check("ListActors", err)
	_, _, err = h.d.Activate(h.ctx, a.ID)
	check("Activate", err)
	check("Commit", h.d.Commit(h.ctx, []*rivetdriver.Commit{{ActorID: a.ID, Generation: a.Generation, State: []byte("s")}}))
	_, err = h.d.KVGet(h.ctx, a.ID, [][]byte{[]byte("k")})
	check("KVGet", err)
	_, err = h.d.KVList(h.ctx, a.ID, rivetdriver.ListOptions{})
	check("KVList", err)
	_, err = h.d.Alarms(h.ctx, "")
	check("Alarms", err)
	_ = h.d.Close() // a second Close must not panic
}

// ExerciseDurable checks that a durable driver keeps everything across
// Close and reopen of the same directory: records and their generations,
// the Initialized flag, state, key/value pairs, alarms, and destroyed
// actors' tombstones (id taken, key free). open opens the driver stored in
// dir; the suite closes each driver it opens before opening the next
// (open may also register Close with t.Cleanup: closing twice must be
// harmless).
func ExerciseDurable(t *testing.T, open func(t *testing.T, dir string) rivetdriver.Driver) {
	dir := t.TempDir()
	ctx := context.Background()
	reopen := func(t *testing.T, h *h) {
		t.Helper()
		if h.d != nil {
			if err := h.d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		h.d = open(t, dir)
	}
	h := &h{t: t, ctx: ctx}
	reopen(t, h)
	defer func() { _ = h.d.Close() }()

	wantA := record("a1", "ns", "dur", "k", "\x00\xff")
	wantGone := record("gone", "ns", "dur", "gone")
	wantPlain := record("plain", "", "plain")
	var kvWant string
	var alarmsWant []rivetdriver.Alarm
	t.Run("Write", func(t *testing.T) {
		h.t = t
		for _, r := range []rivetdriver.ActorRecord{wantA, wantGone, wantPlain} {
			h.create(r)
		}
		h.activate("a1")
		a := h.activate("a1") // generation 2
		gone := h.activate("gone")
		puts := []rivetdriver.KV{kv("k", "v"), kv("\x00", "zero"), kv("\xff\xff", "ffff"), kv("del", "x")}
		alarmsWant = []rivetdriver.Alarm{alarm("first", time.Second+7), alarm("second", 2*time.Second)}
		h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, Initialize: true, State: []byte("s"),
			KVPut: puts, AlarmPut: alarmsWant},
			&rivetdriver.Commit{ActorID: gone.ID, Generation: gone.Generation, State: []byte("g"),
				KVPut: []rivetdriver.KV{kv("gk", "gv")}, AlarmPut: []rivetdriver.Alarm{alarm("g", 0)}})
		h.ok(&rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, KVDelete: [][]byte{[]byte("del")}},
			&rivetdriver.Commit{ActorID: gone.ID, Generation: gone.Generation, Destroy: true})
		for i := range alarmsWant {
			alarmsWant[i].ActorID = a.ID
		}
		kvWant = h.kvString(a.ID, rivetdriver.ListOptions{})
		if kvWant != `00="zero";6b="v";ffff="ffff";` {
			t.Fatalf("KV before reopen: %s", kvWant)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("Reopen", func(t *testing.T) {
		h.t = t
		reopen(t, h)
		wantA.Generation, wantA.Initialized = 2, true
		if diff := sameRecord(h.get("a1"), wantA); diff != "" {
			t.Errorf("record after reopen: %s", diff)
		}
		got, err := h.d.LookupActor(ctx, "ns", "dur", []string{"k", "\x00\xff"})
		if err != nil || got.ID != "a1" {
			t.Errorf("LookupActor after reopen = %q, %v", got.ID, err)
		}
		if got := h.kvString("a1", rivetdriver.ListOptions{}); got != kvWant {
			t.Errorf("KV after reopen: %s, want %s", got, kvWant)
		}
		if got := h.kvString("a1", rivetdriver.ListOptions{Prefix: []byte("\xff"), Reverse: true}); got != `ffff="ffff";` {
			t.Errorf("KV prefix ff after reopen: %s", got)
		}
		as := h.alarms("")
		if len(as) != len(alarmsWant) {
			t.Fatalf("alarms after reopen: %s", alarmIDs(as))
		}
		for i := range as {
			if diff := sameAlarm(as[i], alarmsWant[i]); diff != "" {
				t.Errorf("alarm %d after reopen: %s", i, diff)
			}
		}
		// The tombstone.
		wantGone.Generation, wantGone.Destroyed = 1, true
		if diff := sameRecord(h.get("gone"), wantGone); diff != "" {
			t.Errorf("destroyed record after reopen: %s", diff)
		}
		_, _, err = h.d.Activate(ctx, "gone")
		wantErr(t, "Activate of a destroyed actor after reopen", err, rivetdriver.ErrDestroyed)
		if got := h.kvString("gone", rivetdriver.ListOptions{}); got != "" {
			t.Errorf("destroyed actor's KV after reopen: %s", got)
		}
		late := &rivetdriver.Commit{ActorID: "gone", Generation: 1, State: []byte("z")}
		h.commit(late)
		wantErr(t, "commit to a destroyed actor after reopen", late.Err, rivetdriver.ErrDestroyed)
		err = h.d.CreateActor(ctx, record("gone", "ns", "dur", "elsewhere"))
		wantErr(t, "CreateActor reusing a destroyed id after reopen", err, rivetdriver.ErrDuplicateID)
		_, err = h.d.LookupActor(ctx, "ns", "dur", []string{"gone"})
		wantErr(t, "LookupActor of a destroyed key after reopen", err, rivetdriver.ErrNotFound)
		h.create(record("heir", "ns", "dur", "gone")) // the key is free
		err = h.d.CreateActor(ctx, record("a1", "x", "y"))
		wantErr(t, "CreateActor reusing a live id after reopen", err, rivetdriver.ErrDuplicateID)
		err = h.d.CreateActor(ctx, record("other", "ns", "dur", "k", "\x00\xff"))
		wantErr(t, "CreateActor with a live key after reopen", err, rivetdriver.ErrDuplicateKey)
		list, err := h.d.ListActors(ctx, rivetdriver.ListActorsOptions{IncludeDestroyed: true})
		if err != nil || ids(list) != "a1,gone,heir,plain" {
			t.Errorf("ListActors after reopen = %s, %v", ids(list), err)
		}
		// Generation survives: the old incarnation is fenced, and the next
		// activation continues the count.
		stale := &rivetdriver.Commit{ActorID: "a1", Generation: 1, State: []byte("stale")}
		h.commit(stale)
		wantErr(t, "stale commit after reopen", stale.Err, rivetdriver.ErrFenced)
		cur := &rivetdriver.Commit{ActorID: "a1", Generation: 2, State: []byte("s2")}
		h.ok(cur)
		rec, state, err := h.d.Activate(ctx, "a1")
		if err != nil || rec.Generation != 3 || string(state) != "s2" || !rec.Initialized {
			t.Fatalf("Activate after reopen = gen %d, state %q, initialized %v, %v; want 3, s2, true", rec.Generation, state, rec.Initialized, err)
		}
		if s := h.state("plain"); s != nil {
			t.Errorf("state of an actor never committed, after reopen: %q", s)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("ReopenAgain", func(t *testing.T) {
		h.t = t
		reopen(t, h)
		if got := h.get("a1"); got.Generation != 3 {
			t.Errorf("generation after second reopen = %d, want 3", got.Generation)
		}
		if got := h.get("plain"); got.Generation != 1 {
			t.Errorf("plain generation after second reopen = %d, want 1", got.Generation)
		}
		got, err := h.d.LookupActor(ctx, "ns", "dur", []string{"gone"})
		if err != nil || got.ID != "heir" {
			t.Errorf("reused key after second reopen = %q, %v; want heir", got.ID, err)
		}
		stale := &rivetdriver.Commit{ActorID: "a1", Generation: 2, State: []byte("stale")}
		h.commit(stale)
		wantErr(t, "stale commit after second reopen", stale.Err, rivetdriver.ErrFenced)
		if _, s, err := h.d.Activate(ctx, "a1"); err != nil || string(s) != "s2" {
			t.Errorf("state after second reopen = %q, %v", s, err)
		}
	})
}

// testCommitPipelined checks rivetdriver.Pipeliner, for drivers that have
// it: batches handed over before earlier ones are durable apply in call
// order, their checks see the batches before them, and each is durable
// once its wait returns.
func testCommitPipelined(h *h) {
	p, ok := h.d.(rivetdriver.Pipeliner)
	if !ok {
		h.t.Skip("driver does not implement rivetdriver.Pipeliner")
	}
	a := h.live("a1", "", "x")
	b := h.live("b1", "", "x")
	var waits []func() error
	var commits []*rivetdriver.Commit
	for i := range 20 {
		c := &rivetdriver.Commit{ActorID: a.ID, Generation: a.Generation, State: []byte(fmt.Sprint("s", i)),
			KVPut: []rivetdriver.KV{kv(fmt.Sprint("k", i%3), fmt.Sprint("v", i))}}
		if i == 0 {
			c.Initialize = true
		}
		batch := []*rivetdriver.Commit{c}
		if i == 10 {
			// Destroy b in the middle: a later commit of b must see it.
			batch = append(batch, &rivetdriver.Commit{ActorID: b.ID, Generation: b.Generation, Destroy: true})
		}
		if i == 11 {
			batch = append(batch, &rivetdriver.Commit{ActorID: b.ID, Generation: b.Generation, State: []byte("late")})
		}
		wait, err := p.CommitAsync(h.ctx, batch)
		if err != nil {
			h.t.Fatalf("CommitAsync %d: %v", i, err)
		}
		waits = append(waits, wait)
		commits = append(commits, batch...)
	}
	for i, w := range waits {
		if err := w(); err != nil {
			h.t.Fatalf("wait %d: %v", i, err)
		}
	}
	for _, c := range commits {
		if c.ActorID == b.ID && string(c.State) == "late" {
			wantErr(h.t, "commit after a pipelined destroy", c.Err, rivetdriver.ErrDestroyed)
		} else if c.Err != nil {
			h.t.Fatalf("commit of %s: %v", c.ActorID, c.Err)
		}
	}
	if s := h.state(a.ID); string(s) != "s19" {
		h.t.Fatalf("state after pipelined commits = %q, want s19 (the last)", s)
	}
	if got, want := h.kvString(a.ID, rivetdriver.ListOptions{}), `6b30="v18";6b31="v19";6b32="v17";`; got != want {
		h.t.Fatalf("KV after pipelined commits = %s, want %s", got, want)
	}
	if !h.get(a.ID).Initialized {
		h.t.Fatal("Initialize in a pipelined batch was lost")
	}
}
