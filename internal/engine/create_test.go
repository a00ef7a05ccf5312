package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// recordingDriver records every commit the committer writes.
type recordingDriver struct {
	rivetdriver.Driver
	mu      sync.Mutex
	commits []rivetdriver.Commit
}

func (d *recordingDriver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	err := d.Driver.Commit(ctx, batch)
	d.mu.Lock()
	for _, c := range batch {
		d.commits = append(d.commits, *c)
	}
	d.mu.Unlock()
	return err
}

// of returns the commits written for one actor.
func (d *recordingDriver) of(id string) []rivetdriver.Commit {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []rivetdriver.Commit
	for _, c := range d.commits {
		if c.ActorID == id {
			out = append(out, c)
		}
	}
	return out
}

// hooked is an actor whose create hook and actions are set by the test.
// Its state is one counter.
type hooked struct {
	create  func(t *Turn) error
	actions map[string]func(t *Turn, n *uint64) (any, error)
}

func (hooked) Name() string                   { return "hooked" }
func (hooked) Options() Options               { return Options{SleepTimeout: time.Hour} }
func (b hooked) NewInstance(Info) Instance    { return &hookedInst{b: b} }
func (i *hookedInst) Load(s []byte) error     { return i.Restore(s) }
func (i *hookedInst) Start(*Turn) error       { return nil }
func (i *hookedInst) HasAction(n string) bool { _, ok := i.b.actions[n]; return ok }

type hookedInst struct {
	tallyInst
	b hooked
}

func (i *hookedInst) Create(t *Turn, _ []byte) error {
	if i.b.create != nil {
		return i.b.create(t)
	}
	return nil
}

func (i *hookedInst) Action(t *Turn, name string, _ []byte) (any, error) {
	return i.b.actions[name](t, &i.n)
}

func startRecording(t *testing.T, b Behavior) (*Engine, *recordingDriver) {
	t.Helper()
	d := &recordingDriver{Driver: rivetmem.New()}
	e, err := New(Config{Driver: d, Behaviors: []Behavior{b}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return e, d
}

func counter(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

var incOrRead = hooked{actions: map[string]func(*Turn, *uint64) (any, error){
	"inc":  func(_ *Turn, n *uint64) (any, error) { *n++; return *n, nil },
	"read": func(_ *Turn, n *uint64) (any, error) { return *n, nil },
	"fail": func(_ *Turn, n *uint64) (any, error) { *n += 100; return nil, errNope },
}}

func call(t *testing.T, e *Engine, id, action string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Call(ctx, id, nil, nil, action, nil, func(v any) ([]byte, error) { return counter(v.(uint64)), nil }, 0)
}

// A new actor and its first action cost one commit: the create hooks'
// commit (Initialize) carries the action's state too.
func TestGetOrCreateForWorkFoldsFirstCommit(t *testing.T) {
	e, d := startRecording(t, incOrRead)
	ctx := context.Background()
	rec, created, err := e.GetOrCreateForWork(ctx, "", "hooked", []string{"a"}, nil)
	if err != nil || !created {
		t.Fatalf("GetOrCreateForWork = %v, created %v", err, created)
	}
	out, err := call(t, e, rec.ID, "inc")
	if err != nil || !reflect.DeepEqual(out, counter(1)) {
		t.Fatalf("first inc = %x, %v", out, err)
	}
	cs := d.of(rec.ID)
	if len(cs) != 1 || !cs[0].Initialize || !reflect.DeepEqual(cs[0].State, counter(1)) {
		t.Fatalf("commits for create + first inc = %+v, want one with Initialize and state 1", cs)
	}
	// Later actions commit on their own.
	if _, err := call(t, e, rec.ID, "inc"); err != nil {
		t.Fatal(err)
	}
	if cs := d.of(rec.ID); len(cs) != 2 || cs[1].Initialize {
		t.Fatalf("commits after a second inc = %+v", cs)
	}
	// The key resolves to the same actor.
	again, created, err := e.GetOrCreateForWork(ctx, "", "hooked", []string{"a"}, nil)
	if err != nil || created || again.ID != rec.ID {
		t.Fatalf("second GetOrCreateForWork = %s, created %v, %v; want %s", again.ID, created, err, rec.ID)
	}
}

// A read-only or failing first action still waits for (and gets) the
// create hooks' commit, and a failed action's changes are not in it.
func TestGetOrCreateForWorkFirstActionWithoutChanges(t *testing.T) {
	e, d := startRecording(t, incOrRead)
	ctx := context.Background()
	for _, action := range []string{"read", "fail"} {
		rec, _, err := e.GetOrCreateForWork(ctx, "", "hooked", []string{action}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := call(t, e, rec.ID, action)
		if action == "read" && (err != nil || !reflect.DeepEqual(out, counter(0))) {
			t.Fatalf("read = %x, %v", out, err)
		}
		if action == "fail" && !errors.Is(err, errNope) {
			t.Fatalf("fail = %v, want errNope", err)
		}
		cs := d.of(rec.ID)
		if len(cs) != 1 || !cs[0].Initialize || !reflect.DeepEqual(cs[0].State, counter(0)) {
			t.Fatalf("%s: commits = %+v, want one with Initialize and state 0", action, cs)
		}
	}
}

// Create acknowledges only a durable actor: its commit is written before
// it returns, and the first action commits separately.
func TestCreateWaitsForItsCommit(t *testing.T) {
	e, d := startRecording(t, incOrRead)
	rec, _, err := e.Create(context.Background(), "", "hooked", []string{"c"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if cs := d.of(rec.ID); len(cs) != 1 || !cs[0].Initialize {
		t.Fatalf("commits when Create returned = %+v, want the Initialize commit", cs)
	}
}

// The create hooks' KV writes and alarms, overridden by the first
// action's, end up as if both commits had been applied in order.
func TestFoldedCommitKeepsTurnOrder(t *testing.T) {
	b := hooked{
		create: func(t *Turn) error {
			if err := t.KVPut([]rivetdriver.KV{{Key: []byte("gone"), Value: []byte("1")}, {Key: []byte("kept"), Value: []byte("1")}, {Key: []byte("over"), Value: []byte("1")}}); err != nil {
				return err
			}
			_, err := t.Schedule(t.Now().Add(time.Hour), "inc", nil)
			return err
		},
		actions: map[string]func(*Turn, *uint64) (any, error){
			"edit": func(t *Turn, n *uint64) (any, error) {
				if err := t.KVDelete([][]byte{[]byte("gone")}); err != nil {
					return nil, err
				}
				if err := t.KVPut([]rivetdriver.KV{{Key: []byte("over"), Value: []byte("2")}}); err != nil {
					return nil, err
				}
				for _, a := range t.Alarms() {
					t.CancelAlarm(a.ID)
				}
				*n = 7
				return *n, nil
			},
			"inc": func(_ *Turn, n *uint64) (any, error) { *n++; return *n, nil },
		},
	}
	e, d := startRecording(t, b)
	ctx := context.Background()
	rec, _, err := e.GetOrCreateForWork(ctx, "", "hooked", []string{"k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, e, rec.ID, "edit"); err != nil {
		t.Fatal(err)
	}
	if n := len(d.of(rec.ID)); n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	kvs, err := d.KVList(ctx, rec.ID, rivetdriver.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if want := map[string]string{"kept": "1", "over": "2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stored KV = %v, want %v", got, want)
	}
	if as, err := d.Alarms(ctx, rec.ID); err != nil || len(as) != 0 {
		t.Fatalf("stored alarms = %v, %v; want none (canceled by the first action)", as, err)
	}
}

func TestMergeCommit(t *testing.T) {
	kv := func(k, v string) rivetdriver.KV { return rivetdriver.KV{Key: []byte(k), Value: []byte(v)} }
	dst := rivetdriver.Commit{Initialize: true, State: []byte("s0"),
		KVDelete: [][]byte{[]byte("d1"), []byte("d2")}, KVPut: []rivetdriver.KV{kv("p1", "0"), kv("p2", "0")},
		AlarmDelete: []string{"x"}, AlarmPut: []rivetdriver.Alarm{{ID: "a1"}, {ID: "a2"}}}
	src := rivetdriver.Commit{KVDelete: [][]byte{[]byte("p1")}, KVPut: []rivetdriver.KV{kv("d1", "1"), kv("p2", "1")},
		AlarmDelete: []string{"a1"}, AlarmPut: []rivetdriver.Alarm{{ID: "x"}}}
	mergeCommit(&dst, &src)
	want := rivetdriver.Commit{Initialize: true, State: []byte("s0"),
		KVDelete: [][]byte{[]byte("d2"), []byte("p1")}, KVPut: []rivetdriver.KV{kv("d1", "1"), kv("p2", "1")},
		AlarmDelete: []string{"x", "a1"}, AlarmPut: []rivetdriver.Alarm{{ID: "a2"}, {ID: "x"}}}
	if !reflect.DeepEqual(dst, want) {
		t.Fatalf("merged =\n%+v\nwant\n%+v", dst, want)
	}
	clear := rivetdriver.Commit{State: []byte("s1"), KVClear: true, KVPut: []rivetdriver.KV{kv("n", "1")}}
	mergeCommit(&dst, &clear)
	if !dst.KVClear || len(dst.KVDelete) != 0 || !reflect.DeepEqual(dst.KVPut, clear.KVPut) || string(dst.State) != "s1" {
		t.Fatalf("merged with a clear = %+v", dst)
	}
}
