package rivetengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/internal/runner"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// acceptAll starts and stops nothing: these tests use the actors' engine
// KV through the driver directly.
type acceptAll struct{}

func (acceptAll) Start(context.Context, runner.Actor) error { return nil }
func (acceptAll) Stop(context.Context, string, uint32, envoy.StopActorReason) error {
	return nil
}

// fixture is a real engine, a runner connected to it and the driver on
// that runner.
type fixture struct {
	t   testing.TB
	eng *enginetest.Engine
	d   *Driver
	ctx context.Context
	n   int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	eng := enginetest.Start(t, enginetest.Options{})
	r := runner.New(runner.Config{Endpoint: eng.GuardURL(), Names: []string{"t"}, Actors: acceptAll{}, Handler: http.NotFoundHandler()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatalf("runner not ready: %v", err)
	}
	return &fixture{t: t, eng: eng, d: New(r), ctx: context.Background()}
}

// actor creates an actor in the engine (so that its KV exists), places
// it with generation 1 and activates it.
func (f *fixture) actor() string {
	f.t.Helper()
	f.n++
	var out struct {
		Actor struct {
			ID string `json:"actor_id"`
		} `json:"actor"`
	}
	in := map[string]any{"name": "t", "key": fmt.Sprintf("k%d-%d", f.n, time.Now().UnixNano()), "runner_name_selector": "default", "crash_policy": "sleep"}
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := enginetest.Do(ctx, http.MethodPost, f.eng.GuardURL(), "/actors?namespace=default", in, &out); err != nil {
		f.t.Fatal(err)
	}
	id := out.Actor.ID
	f.d.Place(rivetdriver.ActorRecord{ID: id, Namespace: "default", Name: "t", Generation: 1})
	if _, _, err := f.d.Activate(f.ctx, id); err != nil {
		f.t.Fatalf("Activate: %v", err)
	}
	return id
}

// restart forgets everything the driver holds in memory about the actor
// (as a crash would), places it with the next generation and activates
// it; it returns the state.
func (f *fixture) restart(id string) []byte {
	f.t.Helper()
	rec, err := f.d.GetActor(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	f.d.Release(id, rec.Generation)
	rec.Generation++
	f.d.Place(rec)
	_, state, err := f.d.Activate(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Activate after restart: %v", err)
	}
	return state
}

func (f *fixture) gen(id string) uint64 {
	f.t.Helper()
	rec, err := f.d.GetActor(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec.Generation
}

// commit commits c and returns its own error.
func (f *fixture) commit(c *rivetdriver.Commit) error {
	f.t.Helper()
	c.Generation = f.gen(c.ActorID)
	if err := f.d.Commit(f.ctx, []*rivetdriver.Commit{c}); err != nil {
		f.t.Fatalf("Commit: %v", err)
	}
	return c.Err
}

func (f *fixture) ok(c *rivetdriver.Commit) {
	f.t.Helper()
	if err := f.commit(c); err != nil {
		f.t.Fatalf("commit: %v", err)
	}
}

// kv renders the actor's user KV as k=v;… (values longer than 16 bytes
// by length and first byte).
func (f *fixture) kv(id string, o rivetdriver.ListOptions) string {
	f.t.Helper()
	kvs, err := f.d.KVList(f.ctx, id, o)
	if err != nil {
		f.t.Fatalf("KVList: %v", err)
	}
	var b strings.Builder
	for _, kv := range kvs {
		if len(kv.Value) > 16 {
			fmt.Fprintf(&b, "%s=<%d:%x>;", kv.Key, len(kv.Value), kv.Value[0])
		} else {
			fmt.Fprintf(&b, "%s=%s;", kv.Key, kv.Value)
		}
	}
	return b.String()
}

// raw lists the engine keys of the actor's spaces from..to, in hex.
func (f *fixture) raw(id string, from, to byte) string {
	f.t.Helper()
	pairs, err := f.d.list(f.ctx, id, []byte{from}, []byte{to}, false, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var ks []string
	for _, p := range pairs {
		ks = append(ks, fmt.Sprintf("%x", p.Key))
	}
	return strings.Join(ks, ",")
}

func kvs(pairs ...string) []rivetdriver.KV {
	var out []rivetdriver.KV
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, rivetdriver.KV{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
	}
	return out
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

var errCrash = errors.New("simulated crash")

// failAt makes the driver fail with errCrash at stage ("" for never).
func (f *fixture) failAt(stage string) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	f.d.failpoint = nil
	if stage != "" {
		f.d.failpoint = func(s string) error {
			if s == stage {
				return errCrash
			}
			return nil
		}
	}
}

// TestEngineJournalAtomicAcrossCrash: a commit with deletes and puts
// (which the engine cannot apply in one request) is all or nothing across
// a crash at each point: after its journal committed (all visible after
// the restart, replayed), in the middle of applying it (all visible),
// and, for a commit too large for one request, before its commit record
// (nothing visible, the journal dropped).
func TestEngineJournalAtomicAcrossCrash(t *testing.T) {
	f := newFixture(t)
	for _, stage := range []string{"journal-committed", "applying"} {
		t.Run(stage, func(t *testing.T) {
			f.t = t
			id := f.actor()
			f.ok(&rivetdriver.Commit{ActorID: id, Initialize: true, State: []byte("s0"), KVPut: kvs("a", "1", "b", "2", "c", "3")})
			f.failAt(stage)
			err := f.commit(&rivetdriver.Commit{ActorID: id, State: []byte("s1"), KVDelete: [][]byte{[]byte("a")}, KVPut: kvs("b", "20", "d", "4")})
			if stage == "journal-committed" && !errors.Is(err, errCrash) {
				t.Fatalf("commit crashed at %s: %v", stage, err)
			}
			if stage == "applying" && err != nil {
				t.Fatalf("commit: %v (the apply runs after the acknowledgement)", err)
			}
			if stage == "applying" {
				// The background apply failed: the journal is still there.
				f.d.Release(id, f.gen(id))
				if j := f.raw(id, 0, 1); j == "" {
					t.Fatal("no journal left by the failed apply: the test does not test anything")
				}
				f.d.Place(rivetdriver.ActorRecord{ID: id, Namespace: "default", Name: "t", Generation: 1})
			}
			f.failAt("")
			if state := f.restart(id); string(state) != "s1" {
				t.Fatalf("state after the restart: %q, want s1", state)
			}
			if got, want := f.kv(id, rivetdriver.ListOptions{}), "b=20;c=3;d=4;"; got != want {
				t.Fatalf("KV after the restart: %s, want %s", got, want)
			}
			if j := f.raw(id, 0, 1); j != "" {
				t.Fatalf("journal left after the replay: %s", j)
			}
		})
	}
	t.Run("before-commit-record", func(t *testing.T) {
		f.t = t
		id := f.actor()
		f.ok(&rivetdriver.Commit{ActorID: id, Initialize: true, State: []byte("s0"), KVPut: kvs("a", "1")})
		// 12 values of 100 KiB: above one request's 976 KiB, so the
		// journal takes several puts before its commit record.
		c := &rivetdriver.Commit{ActorID: id, State: []byte("s1"), KVDelete: [][]byte{[]byte("a")}}
		for i := range 12 {
			c.KVPut = append(c.KVPut, rivetdriver.KV{Key: fmt.Appendf(nil, "big%02d", i), Value: random(100 << 10)})
		}
		f.failAt("journal-records")
		err := f.commit(c)
		f.failAt("")
		if !errors.Is(err, errCrash) {
			t.Fatalf("commit: %v, want the simulated crash", err)
		}
		if j := f.raw(id, 0, 1); j == "" {
			t.Fatal("no journal record written before the crash: the test does not test anything")
		}
		if state := f.restart(id); string(state) != "s0" {
			t.Fatalf("state after the restart: %q, want s0 (the commit never committed)", state)
		}
		if got, want := f.kv(id, rivetdriver.ListOptions{}), "a=1;"; got != want {
			t.Fatalf("KV after the restart: %s, want %s", got, want)
		}
		if j := f.raw(id, 0, 1); j != "" {
			t.Fatalf("uncommitted journal not dropped: %s", j)
		}
		// The same commit without the crash lands whole.
		c.Err = nil
		f.ok(c)
		f.restart(id)
		if got := f.kv(id, rivetdriver.ListOptions{}); strings.Count(got, "big") != 12 || strings.Contains(got, "a=") {
			t.Fatalf("KV after the big commit: %s", got)
		}
	})
}

// TestEngineBigValues: state and KV values above the engine's 128 KiB
// value limit are chunked and read back whole (after a restart, so from
// the engine); lists see one entry per user key, in order, with reverse
// and limit; overwriting or deleting a chunked value, or deleteAll,
// leaves no chunk behind.
func TestEngineBigValues(t *testing.T) {
	f := newFixture(t)
	id := f.actor()
	state := random(3<<20 + 12345)
	big := random(1 << 20)
	f.ok(&rivetdriver.Commit{ActorID: id, Initialize: true, State: state, KVPut: []rivetdriver.KV{
		{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: big}, {Key: []byte("c"), Value: []byte("3")},
	}})
	if got := f.restart(id); !bytes.Equal(got, state) {
		t.Fatalf("state of %d bytes read back as %d bytes (equal: false)", len(state), len(got))
	}
	vals, err := f.d.KVGet(f.ctx, id, [][]byte{[]byte("b"), []byte("a"), []byte("nope")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vals[0], big) || string(vals[1]) != "1" || vals[2] != nil {
		t.Fatalf("KVGet: %d bytes, %q, %v", len(vals[0]), vals[1], vals[2])
	}
	bx := fmt.Sprintf("%x", big[0])
	for _, c := range []struct {
		o    rivetdriver.ListOptions
		want string
	}{
		{rivetdriver.ListOptions{}, "a=1;b=<1048576:" + bx + ">;c=3;"},
		{rivetdriver.ListOptions{Reverse: true, Limit: 2}, "c=3;b=<1048576:" + bx + ">;"},
		{rivetdriver.ListOptions{Start: []byte("b"), End: []byte("c")}, "b=<1048576:" + bx + ">;"},
	} {
		if got := f.kv(id, c.o); got != c.want {
			t.Fatalf("KVList(%+v) = %s, want %s", c.o, got, c.want)
		}
	}
	pb, err := f.d.KVList(f.ctx, id, rivetdriver.ListOptions{Prefix: []byte("b")})
	if err != nil || len(pb) != 1 || !bytes.Equal(pb[0].Value, big) {
		t.Fatalf("KVList(prefix b): %d entries, %v", len(pb), err)
	}
	// Smaller state, a smaller chunked value, a deleted chunked value.
	f.ok(&rivetdriver.Commit{ActorID: id, State: []byte("small"), KVPut: []rivetdriver.KV{{Key: []byte("d"), Value: random(300 << 10)}}})
	f.ok(&rivetdriver.Commit{ActorID: id, KVDelete: [][]byte{[]byte("b")}, KVPut: []rivetdriver.KV{{Key: []byte("d"), Value: random(200 << 10)}}})
	if got := f.restart(id); string(got) != "small" {
		t.Fatalf("state: %q", got)
	}
	// Left: d's value in two pieces, one chunk and its index entry.
	if chunks := f.raw(id, pfxChunk, pfxChunkIdx+1); strings.Count(chunks, ",") != 1 {
		t.Fatalf("chunks and index entries left: %s, want 2 (d's second piece and its index)", chunks)
	}
	f.ok(&rivetdriver.Commit{ActorID: id, KVClear: true, KVPut: kvs("e", "5")})
	f.restart(id)
	if got, want := f.kv(id, rivetdriver.ListOptions{}), "e=5;"; got != want {
		t.Fatalf("KV after deleteAll: %s, want %s", got, want)
	}
	if chunks := f.raw(id, pfxChunk, pfxChunkIdx+1); chunks != "" {
		t.Fatalf("chunks left after deleteAll: %s", chunks)
	}
}

// TestEngineManyKeys: one commit of 300 keys (above the engine's 128 per
// request) lands whole, and a list of them pages through the engine.
func TestEngineManyKeys(t *testing.T) {
	f := newFixture(t)
	id := f.actor()
	c := &rivetdriver.Commit{ActorID: id, Initialize: true, State: []byte("s")}
	for i := range 300 {
		c.KVPut = append(c.KVPut, rivetdriver.KV{Key: fmt.Appendf(nil, "k%03d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	f.ok(c)
	f.restart(id)
	got, err := f.d.KVList(f.ctx, id, rivetdriver.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 || string(got[299].Key) != "k299" || string(got[299].Value) != "v299" {
		t.Fatalf("%d keys listed", len(got))
	}
	rev, err := f.d.KVList(f.ctx, id, rivetdriver.ListOptions{Reverse: true, Limit: 270})
	if err != nil || len(rev) != 270 || string(rev[0].Key) != "k299" || string(rev[269].Key) != "k030" {
		t.Fatalf("reverse limit 270: %d keys, %v", len(rev), err)
	}
	// Delete 200 of them and write 5 in one commit.
	d := &rivetdriver.Commit{ActorID: id, KVPut: kvs("z1", "1", "z2", "2", "z3", "3", "z4", "4", "z5", "5")}
	for i := range 200 {
		d.KVDelete = append(d.KVDelete, fmt.Appendf(nil, "k%03d", i))
	}
	f.ok(d)
	f.restart(id)
	if got, err := f.d.KVList(f.ctx, id, rivetdriver.ListOptions{}); err != nil || len(got) != 105 || string(got[0].Key) != "k200" {
		t.Fatalf("after deleting 200: %d keys, %v", len(got), err)
	}
}

// TestEngineKeyTooLong: a user key the engine cannot store fails the
// commit with kv.invalid_key before anything is sent (the commit's other
// writes are not there); the longest allowed key works.
func TestEngineKeyTooLong(t *testing.T) {
	f := newFixture(t)
	id := f.actor()
	f.ok(&rivetdriver.Commit{ActorID: id, Initialize: true, State: []byte("s0")})
	long := bytes.Repeat([]byte("x"), MaxUserKeySize+1)
	err := f.commit(&rivetdriver.Commit{ActorID: id, State: []byte("s1"), KVPut: []rivetdriver.KV{{Key: []byte("a"), Value: []byte("1")}, {Key: long, Value: []byte("2")}}})
	if !errors.Is(err, rivettype.ErrKVKeyInvalid) || !strings.Contains(err.Error(), fmt.Sprint(MaxUserKeySize)) {
		t.Fatalf("commit with a %d-byte key: %v, want kv.invalid_key naming the limit", len(long), err)
	}
	if state := f.restart(id); string(state) != "s0" {
		t.Fatalf("state after the refused commit: %q", state)
	}
	if got := f.kv(id, rivetdriver.ListOptions{}); got != "" {
		t.Fatalf("KV after the refused commit: %s", got)
	}
	max := bytes.Repeat([]byte("y"), MaxUserKeySize)
	f.ok(&rivetdriver.Commit{ActorID: id, KVPut: []rivetdriver.KV{{Key: max, Value: random(200 << 10)}}})
	f.ok(&rivetdriver.Commit{ActorID: id, KVDelete: [][]byte{max}, KVPut: []rivetdriver.KV{{Key: max[1:], Value: []byte("z")}}})
	f.restart(id)
	vals, err := f.d.KVGet(f.ctx, id, [][]byte{max, max[1:]})
	if err != nil || vals[0] != nil || string(vals[1]) != "z" {
		t.Fatalf("longest keys: %v %q %v", vals[0] != nil, vals[1], err)
	}
}

// TestEngineFencedAfterRelease: a released actor's commits are refused,
// and a stale generation's too.
func TestEngineFencedAfterRelease(t *testing.T) {
	f := newFixture(t)
	id := f.actor()
	c := &rivetdriver.Commit{ActorID: id, Generation: 7, State: []byte("x")}
	if err := f.d.Commit(f.ctx, []*rivetdriver.Commit{c}); err != nil || !errors.Is(c.Err, rivetdriver.ErrFenced) {
		t.Fatalf("stale generation: %v %v", err, c.Err)
	}
	f.d.Release(id, 1)
	c = &rivetdriver.Commit{ActorID: id, Generation: 1, State: []byte("x")}
	if err := f.d.Commit(f.ctx, []*rivetdriver.Commit{c}); err != nil || !errors.Is(c.Err, ErrNotPlaced) {
		t.Fatalf("released: %v %v", err, c.Err)
	}
}

// BenchmarkEngineCommit measures one actor's commits on a real engine:
// put-only (one request), a delete with a put (journaled: journal, delete,
// put, journal drop), and a 2 MiB state (chunked and journaled).
func BenchmarkEngineCommit(b *testing.B) {
	f := newFixture(b)
	for _, c := range []struct {
		name string
		mk   func(i int) *rivetdriver.Commit
	}{
		{"put", func(i int) *rivetdriver.Commit {
			return &rivetdriver.Commit{State: fmt.Appendf(nil, "s%d", i), KVPut: kvs("a", "1")}
		}},
		{"delete+put", func(i int) *rivetdriver.Commit {
			return &rivetdriver.Commit{State: fmt.Appendf(nil, "s%d", i), KVDelete: [][]byte{[]byte("a")}, KVPut: kvs("b", "1")}
		}},
		{"2MiB-state", func(i int) *rivetdriver.Commit {
			return &rivetdriver.Commit{State: random(2 << 20)}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			f.t = b
			id := f.actor()
			for i := 0; b.Loop(); i++ {
				f.ok(withID(c.mk(i), id))
			}
		})
	}
}

func withID(c *rivetdriver.Commit, id string) *rivetdriver.Commit {
	c.ActorID = id
	return c
}

// BenchmarkEngineConcurrentCommits measures commits through the engine's
// KV as the runtime makes them: 8 callers, each waiting for its commit
// before the next (a turn's answer waits for its commit), and one
// group-commit loop like the runtime's committer (internal/engine): it
// hands everything queued to one Driver.Commit call, the next call
// starting when that one returned. "8-actors": each caller on its own
// actor; "1-actor": the 8 callers on one actor (its turns run one after
// the other, their commits queue). Each commit is a state and one KV
// put, the common turn. Reported: commits/s, commits per Commit call,
// and engine KV requests per commit (the figure that does not depend on
// the machine's load).
func BenchmarkEngineConcurrentCommits(b *testing.B) {
	f := newFixture(b)
	ck := &countKV{kv: f.d.kv}
	f.d.kv = ck
	const callers = 8
	for _, c := range []struct {
		name   string
		actors int
	}{{"8-actors", 8}, {"1-actor", 1}} {
		b.Run(c.name, func(b *testing.B) {
			f.t = b
			ids := make([]string, c.actors)
			for i := range ids {
				ids[i] = f.actor()
			}
			gc := startGroupCommit(f.d)
			defer gc.close()
			var next atomic.Int64
			var wg sync.WaitGroup
			reqs := ck.n.Load()
			b.ResetTimer()
			for w := range callers {
				wg.Go(func() {
					id := ids[w%len(ids)]
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						err := gc.commit(&rivetdriver.Commit{ActorID: id, Generation: 1, State: fmt.Appendf(nil, "s%d", i), KVPut: kvs(fmt.Sprintf("k%d", w), "v")})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(b.N)/float64(gc.calls.Load()), "commits/call")
			b.ReportMetric(float64(ck.n.Load()-reqs)/float64(b.N), "kvreqs/commit")
		})
	}
}

// groupCommit is the runtime's committer in miniature (see
// BenchmarkEngineConcurrentCommits).
type groupCommit struct {
	d     *Driver
	mu    sync.Mutex
	queue []pendingCommit
	wake  chan struct{}
	done  chan struct{}
	calls atomic.Int64
}

type pendingCommit struct {
	c    *rivetdriver.Commit
	done chan error
}

func startGroupCommit(d *Driver) *groupCommit {
	g := &groupCommit{d: d, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *groupCommit) commit(c *rivetdriver.Commit) error {
	p := pendingCommit{c: c, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	return <-p.done
}

func (g *groupCommit) run() {
	for {
		select {
		case <-g.wake:
		case <-g.done:
			return
		}
		for {
			g.mu.Lock()
			batch := g.queue
			g.queue = nil
			g.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			cs := make([]*rivetdriver.Commit, len(batch))
			for i, p := range batch {
				cs[i] = p.c
			}
			g.calls.Add(1)
			err := g.d.Commit(context.Background(), cs)
			for _, p := range batch {
				if err != nil {
					p.done <- err
				} else {
					p.done <- p.c.Err
				}
			}
		}
	}
}

func (g *groupCommit) close() { close(g.done) }

// countKV counts the KV requests a driver sends.
type countKV struct {
	kv KV
	n  atomic.Int64
}

func (c *countKV) KV(ctx context.Context, actorID string, req envoy.KVRequestData) (envoy.KVResponseData, error) {
	c.n.Add(1)
	return c.kv.KV(ctx, actorID, req)
}

// TestEngineGroupCommitOneActor: the commits of one actor handed to one
// Commit call that only write, and fit one engine request together, are
// one KvPutRequest (a key written twice keeps the last value, a chunked
// value among them); a commit with deletes, one that overwrites a chunked
// value, and a stale generation are committed on their own, in order.
func TestEngineGroupCommitOneActor(t *testing.T) {
	f := newFixture(t)
	id := f.actor()
	ck := &countKV{kv: f.d.kv}
	f.d.kv = ck
	big := random(300 << 10)
	batch := func(cs ...*rivetdriver.Commit) {
		t.Helper()
		for _, c := range cs {
			c.ActorID = id
			if c.Generation == 0 {
				c.Generation = f.gen(id)
			}
		}
		if err := f.d.Commit(f.ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	c1 := &rivetdriver.Commit{State: []byte("s1"), KVPut: kvs("a", "1", "b", "1")}
	c2 := &rivetdriver.Commit{State: []byte("s2"), KVPut: kvs("a", "2")}
	c3 := &rivetdriver.Commit{KVPut: []rivetdriver.KV{{Key: []byte("big"), Value: big}}}
	batch(c1, c2, c3)
	for i, c := range []*rivetdriver.Commit{c1, c2, c3} {
		if c.Err != nil {
			t.Fatalf("commit %d: %v", i+1, c.Err)
		}
	}
	if n := ck.n.Load(); n != 1 {
		t.Fatalf("three put-only commits of one actor took %d KV requests, want 1", n)
	}
	if got := f.kv(id, rivetdriver.ListOptions{}); got != fmt.Sprintf("a=2;b=1;big=<%d:%x>;", len(big), big[0]) {
		t.Fatalf("after the merged commit: %s", got)
	}

	c4 := &rivetdriver.Commit{State: []byte("s4"), KVDelete: [][]byte{[]byte("b")}, KVPut: kvs("c", "1")}
	c5 := &rivetdriver.Commit{KVPut: kvs("big", "x")} // drops the chunks: not merged
	stale := &rivetdriver.Commit{Generation: f.gen(id) + 1, KVPut: kvs("z", "1")}
	c6 := &rivetdriver.Commit{State: []byte("s6"), KVPut: kvs("d", "1")}
	c7 := &rivetdriver.Commit{KVPut: kvs("a", "7")}
	batch(c4, c5, stale, c6, c7)
	for i, c := range []*rivetdriver.Commit{c4, c5, c6, c7} {
		if c.Err != nil {
			t.Fatalf("commit %d of the second batch: %v", i+1, c.Err)
		}
	}
	if !errors.Is(stale.Err, rivetdriver.ErrFenced) {
		t.Fatalf("a commit of another generation: %v, want ErrFenced", stale.Err)
	}
	if got := f.kv(id, rivetdriver.ListOptions{}); got != "a=7;big=x;c=1;d=1;" {
		t.Fatalf("after the second batch: %s", got)
	}
	if st := f.restart(id); string(st) != "s6" {
		t.Fatalf("state after restart %q, want s6", st)
	}
	if got := f.kv(id, rivetdriver.ListOptions{}); got != "a=7;big=x;c=1;d=1;" {
		t.Fatalf("after restart: %s", got)
	}
	if raw := f.raw(id, pfxChunk, pfxChunkIdx+1); raw != "" {
		t.Fatalf("chunks left after the chunked value was overwritten: %s", raw)
	}
}
