package rivet_test

// Model-based tests (docs/RELIABILITY.md, "Model-based tests"): seeded
// random sequences of operations run against the runtime on every driver
// and against a small reference model (modelWorld, model_ref_test.go);
// every observable result must agree.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
	"github.com/rivetgo/rivet/rivettest"
)

var (
	modelSeedFlag  = flag.Uint64("seed", 0, "TestModel: replay this seed only (also MODEL_SEED)")
	modelOpsFlag   = flag.Int("model.ops", 0, "TestModel: operations per sequence (also MODEL_OPS; default 120)")
	modelSeedsFlag = flag.Int("model.seeds", 0, "TestModel: seeds per driver (also MODEL_SEEDS; default 3)")
)

// modelSettings are the seeds and sequence length of this run.
func modelSettings(t *testing.T) (seeds []uint64, ops int) {
	envInt := func(name string, def int) int {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
			return n
		}
		return def
	}
	ops = envInt("MODEL_OPS", 120)
	if *modelOpsFlag > 0 {
		ops = *modelOpsFlag
	}
	seed := *modelSeedFlag
	if seed == 0 {
		seed = uint64(envInt("MODEL_SEED", 0))
	}
	if seed != 0 {
		return []uint64{seed}, ops
	}
	n := envInt("MODEL_SEEDS", 3)
	if *modelSeedsFlag > 0 {
		n = *modelSeedsFlag
	}
	for i := range n {
		seeds = append(seeds, uint64(i+1))
	}
	return seeds, ops
}

// modelStore opens the same store again after each restart of the
// runtime.
type modelStore struct {
	open  func() (rivetdriver.Driver, error)
	close func(d rivetdriver.Driver) // after the runtime stopped
	drop  func()                     // when the sequence is done
}

func modelMemStore(t *testing.T) modelStore {
	d := rivetmem.New()
	return modelStore{
		open:  func() (rivetdriver.Driver, error) { return d, nil },
		close: func(rivetdriver.Driver) {},
		drop:  func() { _ = d.Close() },
	}
}

func modelEmbedStore(t *testing.T) modelStore {
	dir, err := os.MkdirTemp("", "rivet-model-")
	if err != nil {
		t.Fatal(err)
	}
	return modelStore{
		open: func() (rivetdriver.Driver, error) {
			d, err := rivetembed.Open(dir, nil)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		close: func(d rivetdriver.Driver) { _ = d.Close() },
		drop:  func() { _ = os.RemoveAll(dir) },
	}
}

func modelPGStore(t *testing.T) modelStore {
	url, schema := pgTestSchema(t)
	if _, err := rivetpg.Migrate(context.Background(), url, &rivetpg.Options{Schema: schema}); err != nil {
		t.Fatalf("migrate %s: %v", schema, err)
	}
	return modelStore{
		open: func() (rivetdriver.Driver, error) {
			d, err := rivetpg.Open(context.Background(), url, &rivetpg.Options{Schema: schema})
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		close: func(d rivetdriver.Driver) { _ = d.Close() },
		drop:  func() { pgDropSchema(t, url, schema) },
	}
}

// TestModel runs seeded random operation sequences on the memory,
// embedded and PostgreSQL drivers and checks every result against the
// reference model. A failure prints the seed, the shrunk operation list
// and the command that replays it. MODEL_SEEDS, MODEL_OPS and MODEL_SEED
// (or -model.seeds, -model.ops, -seed) size or pick the run; `make model`
// runs the long form.
func TestModel(t *testing.T) {
	seeds, n := modelSettings(t)
	stores := []struct {
		name string
		open func(t *testing.T) modelStore
	}{
		{"memory", modelMemStore},
		{"embedded", modelEmbedStore},
		{"postgres", modelPGStore},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			for _, seed := range seeds {
				ops := genModelOps(seed, n)
				run := func(ops []modelOp) error {
					s := st.open(t)
					defer s.drop()
					return runModel(s, ops)
				}
				if err := run(ops); err != nil {
					reportModelFailure(t, st.name, seed, ops, err, run)
				}
			}
		})
	}
}

// reportModelFailure shrinks the failing sequence (while that stays
// cheap) and fails the test with everything needed to replay it.
func reportModelFailure(t *testing.T, store string, seed uint64, ops []modelOp, err error, run func([]modelOp) error) {
	t.Helper()
	minOps, minErr := shrinkModelOps(ops, err, run, 60*time.Second)
	var b strings.Builder
	for i, op := range minOps {
		fmt.Fprintf(&b, "\n  %3d %s", i, op)
	}
	t.Fatalf("model disagreement on %s, seed %d (%d ops): %v\nshrunk to %d ops (%v):%s\nreplay: go test -run 'TestModel/%s' -seed=%d .",
		store, seed, len(ops), err, len(minOps), minErr, b.String(), store, seed)
}

// shrinkModelOps removes chunks of operations as long as the sequence
// still fails, until budget runs out.
func shrinkModelOps(ops []modelOp, err error, run func([]modelOp) error, budget time.Duration) ([]modelOp, error) {
	deadline := time.Now().Add(budget)
	for chunk := len(ops) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(ops); {
			if time.Now().After(deadline) {
				return ops, err
			}
			try := slices.Concat(ops[:i], ops[i+chunk:])
			if e := run(try); e != nil {
				ops, err = try, e
				continue
			}
			i += chunk
		}
	}
	return ops, err
}

// The actor under test.

type mState struct {
	N     int      `json:"n"`
	Fired []string `json:"fired"`
}

type mConnState struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type mCtx = rivet.Context[mState, mConnState, rivet.None]

var mQueue = rivet.Queue[int]("q")

// mKey parses a model key: "a" is ("a"), "a:3" is ("a", 3).
func mKey(s string) rivet.KVKey {
	if name, n, ok := strings.Cut(s, ":"); ok {
		i, _ := strconv.Atoi(n)
		return rivet.K(name, i)
	}
	return rivet.K(s)
}

func mKeyString(k rivet.KVKey) string {
	if len(k) == 2 {
		return fmt.Sprintf("%v:%v", k[0], k[1])
	}
	return fmt.Sprint(k[0])
}

var modelDef = rivet.NewActor("model", rivet.Options[mState, mConnState, rivet.None]{
	SleepTimeout: time.Minute,
	MaxQueueSize: modelMaxQueue,
	MaxSchedules: modelMaxSchedules,
	CreateConnState: func(c *mCtx, params rivet.Value) (mConnState, error) {
		var name string
		if err := params.Decode(&name); err != nil {
			return mConnState{}, err
		}
		return mConnState{Name: name}, nil
	},
}).Queues(mQueue).
	Action("add", func(c *mCtx, n int) int {
		c.State.N += n
		return c.State.N
	}).
	Action("state", func(c *mCtx) mState { return *c.State }).
	Action("bcast", func(c *mCtx, s string) { c.Broadcast("ev", s) }).
	Action("fail", func(c *mCtx, n int, key string) error {
		// Everything a turn can change, then an error: none of it may
		// be seen.
		c.State.N += n
		if err := c.KV().Put(mKey(key), n); err != nil {
			return err
		}
		if _, err := c.Schedule().After(time.Second, "fire", "failed"); err != nil {
			return err
		}
		if err := mQueue.Send(c, n); err != nil {
			return err
		}
		c.Broadcast("ev", "failed")
		return rivet.UserError("refused", rivet.WithCode("model_fail"))
	}).
	Action("kvPut", func(c *mCtx, keys []string, v int) error {
		pairs := make([]rivet.KVPair, len(keys))
		for i, k := range keys {
			pairs[i] = rivet.KVPair{Key: mKey(k), Value: v}
		}
		return c.KV().PutBatch(pairs...)
	}).
	Action("kvGet", func(c *mCtx, key string) (*int, error) {
		var v int
		ok, err := c.KV().Get(mKey(key), &v)
		if !ok || err != nil {
			return nil, err
		}
		return &v, nil
	}).
	Action("kvDel", func(c *mCtx, keys []string) error {
		ks := make([]rivet.KVKey, len(keys))
		for i, k := range keys {
			ks[i] = mKey(k)
		}
		return c.KV().DeleteBatch(ks...)
	}).
	Action("kvDelAll", func(c *mCtx) error { return c.KV().DeleteAll() }).
	Action("kvList", func(c *mCtx, prefix, start, end string, reverse bool, limit int) ([]string, error) {
		o := rivet.KVListOptions{Reverse: reverse, Limit: limit}
		if prefix != "" {
			o.Prefix = mKey(prefix)
		}
		if start != "" {
			o.Start = mKey(start)
		}
		if end != "" {
			o.End = mKey(end)
		}
		es, err := c.KV().List(o)
		if err != nil {
			return nil, err
		}
		out := []string{}
		for _, e := range es {
			var v int
			if err := e.Value.Decode(&v); err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%s=%d", mKeyString(e.Key), v))
		}
		return out, nil
	}).
	Action("sched", func(c *mCtx, ms int64, tag string) (string, error) {
		return c.Schedule().After(time.Duration(ms)*time.Millisecond, "fire", tag)
	}).
	Action("schedAt", func(c *mCtx, unixMs int64, tag string) (string, error) {
		return c.Schedule().At(time.UnixMilli(unixMs), "fire", tag)
	}).
	Action("cancel", func(c *mCtx, id string) bool { return c.Schedule().Cancel(id) }).
	Action("pending", func(c *mCtx) []string {
		out := []string{}
		for _, e := range c.Schedule().List() {
			var tag string
			_ = e.Args.Decode(0, &tag)
			out = append(out, fmt.Sprintf("%s@%d", tag, e.At.UnixMilli()))
		}
		return out
	}).
	Action("fire", func(c *mCtx, tag string) {
		c.State.Fired = append(c.State.Fired, tag)
		c.Broadcast("ev", "f:"+tag)
	}).
	Action("qsend", func(c *mCtx, ns []int) error {
		for _, n := range ns {
			if err := mQueue.Send(c, n); err != nil {
				return err
			}
		}
		return nil
	}).
	Action("qtake", func(c *mCtx, count int) ([]int, error) {
		ms, err := mQueue.NextBatch(c, count)
		out := []int{}
		for _, m := range ms {
			out = append(out, m.Body)
		}
		return out, err
	}).
	Action("qlen", func(c *mCtx) (int, error) { return c.Queue().Len() }).
	Action("bump", func(c *mCtx) (string, error) {
		if c.Conn == nil {
			return "", errors.New("bump needs a connection")
		}
		c.Conn.State.Count++
		return fmt.Sprintf("%s:%d", c.Conn.State.Name, c.Conn.State.Count), nil
	}).
	Action("sleep", func(c *mCtx) { c.Sleep() })

// The system under test: the runtime on a store, restarted on demand.

type modelSUT struct {
	store modelStore
	drv   rivetdriver.Driver
	rt    *rivet.Runtime
	clk   *rivettest.Clock
	conns map[int]*modelConn // by the model's connection number
}

type modelConn struct {
	c     *rivet.Connection
	unsub func()
	mu    sync.Mutex
	got   []string
}

func (m *modelConn) events() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

var modelStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *modelSUT) start(now time.Time) error {
	d, err := s.store.open()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.drv = d
	s.clk = rivettest.NewClock(now)
	reg, err := rivet.NewRegistry(modelDef)
	if err != nil {
		return err
	}
	s.rt, err = rivet.Start(context.Background(), reg, &rivet.Config{
		Driver: d, Clock: s.clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		s.store.close(d)
		return fmt.Errorf("start runtime: %w", err)
	}
	s.conns = map[int]*modelConn{}
	return nil
}

func (s *modelSUT) stop() error {
	if s.rt == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.rt.Stop(ctx)
	s.store.close(s.drv)
	s.rt, s.drv = nil, nil
	return err
}

func (s *modelSUT) advance(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.rt.Engine().Settle(ctx)
	cancel()
	s.clk.Advance(d)
}

func (s *modelSUT) handle(actor int) *rivet.Handle {
	return s.rt.Client().GetOrCreate("model", rivet.Key{fmt.Sprint("m", actor)})
}

// result renders an action's outcome for comparison: its JSON, or
// "error group.code".
func modelResult(v rivet.Value, err error) string {
	if err != nil {
		var re *rivet.Error
		if errors.As(err, &re) {
			return "error " + re.Group + "." + re.Code
		}
		return "error " + err.Error()
	}
	var x any
	if err := v.Decode(&x); err != nil {
		return "undecodable " + err.Error()
	}
	return modelJSON(x)
}

func (s *modelSUT) call(actor int, action string, args ...any) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return modelResult(s.handle(actor).Call(ctx, action, args...))
}

func (s *modelSUT) connect(actor, num int, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := s.rt.Client().GetOrCreate("model", rivet.Key{fmt.Sprint("m", actor)}, rivet.WithParams(name))
	c, err := h.Connect(ctx)
	if err != nil {
		return err
	}
	mc := &modelConn{c: c}
	s.conns[num] = mc
	s.subscribe(mc)
	return nil
}

func (s *modelSUT) subscribe(mc *modelConn) {
	mc.unsub = mc.c.On("ev", func(a rivet.Args) {
		var v string
		_ = a.Decode(0, &v)
		mc.mu.Lock()
		mc.got = append(mc.got, v)
		mc.mu.Unlock()
	})
}

// waitEvents waits until conn has received at least n events (or a
// generous deadline passed) and returns what it received.
func (s *modelSUT) waitEvents(mc *modelConn, n int) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := mc.events()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// runModel runs ops on a fresh store and on the model, returning the
// first disagreement.
func runModel(store modelStore, ops []modelOp) (err error) {
	s := &modelSUT{store: store}
	if err := s.start(modelStart); err != nil {
		return err
	}
	defer func() {
		if e := s.stop(); e != nil && err == nil {
			err = fmt.Errorf("final stop: %w", e)
		}
	}()
	w := newModelWorld(modelStart)
	for i, op := range ops {
		if err := stepModel(s, w, i, op); err != nil {
			return fmt.Errorf("op %d %s: %w", i, op, err)
		}
	}
	if err := checkModel(s, w); err != nil {
		return fmt.Errorf("final check: %w", err)
	}
	return nil
}

// modelJSON renders v as JSON; the model's values and the runtime's
// decoded results compare through it.
func modelJSON(v any) string {
	b, err := jsonMarshal(v)
	if err != nil {
		return "unencodable " + err.Error()
	}
	return string(b)
}
