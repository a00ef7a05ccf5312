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
	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/internal/pgtest"
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
		drop:  func() { pgtest.DropSchema(t, url, schema) },
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
					return runModel(&modelSUT{store: s}, ops)
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
	Action("kvTx", func(c *mCtx, steps []string) ([]string, error) {
		// Several KV operations in one turn, each seeing the ones before
		// it: "p key v" puts, "d key" deletes, "D" deletes all, "g key"
		// and "l" read.
		out := []string{}
		for _, st := range steps {
			f := strings.Fields(st)
			var err error
			switch f[0] {
			case "p":
				v, _ := strconv.Atoi(f[2])
				err = c.KV().Put(mKey(f[1]), v)
			case "d":
				err = c.KV().Delete(mKey(f[1]))
			case "D":
				err = c.KV().DeleteAll()
			case "g":
				var v int
				var ok bool
				if ok, err = c.KV().Get(mKey(f[1]), &v); ok {
					out = append(out, fmt.Sprint(v))
				} else {
					out = append(out, "-")
				}
			case "l":
				var es []rivet.KVEntry
				es, err = c.KV().List(rivet.KVListOptions{})
				ks := []string{}
				for _, e := range es {
					ks = append(ks, mKeyString(e.Key))
				}
				out = append(out, strings.Join(ks, ","))
			}
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	}).
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
	Action("qtakeFail", func(c *mCtx, count int) error {
		if _, err := mQueue.NextBatch(c, count); err != nil {
			return err
		}
		return rivet.UserError("refused", rivet.WithCode("model_fail"))
	}).
	Action("bump", func(c *mCtx) (string, error) {
		if c.Conn == nil {
			return "", errors.New("bump needs a connection")
		}
		c.Conn.State.Count++
		if err := c.Conn.Send("ev", fmt.Sprintf("bump:%d", c.Conn.State.Count)); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s:%d", c.Conn.State.Name, c.Conn.State.Count), nil
	}).
	Action("sleep", func(c *mCtx) { c.Sleep() })

// The system under test: the runtime on a store, restarted on demand.

type modelSUT struct {
	store   modelStore
	drv     rivetdriver.Driver
	eng     *enginetest.Engine // runner mode: the runtime is a runner of eng
	er      *rivet.EngineRunner
	rt      *rivet.Runtime
	clk     *rivettest.Clock
	conns   map[int]*modelConn // by the model's connection number
	handles map[int]*rivet.Handle
}

type modelConn struct {
	c      *rivet.Connection
	unsub  func()
	closed chan struct{} // closed by the connection's OnClose
	mu     sync.Mutex
	got    []string
}

func (m *modelConn) events() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

var modelStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *modelSUT) start(now time.Time) error {
	s.conns, s.handles = map[int]*modelConn{}, map[int]*rivet.Handle{}
	if s.eng != nil {
		return s.startRunner(now)
	}
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
		Logger: modelLogger(),
	})
	if err != nil {
		s.store.close(d)
		return fmt.Errorf("start runtime: %w", err)
	}
	return nil
}

func (s *modelSUT) startRunner(now time.Time) error {
	s.clk = rivettest.NewClock(now)
	reg, err := rivet.NewRegistry(modelDef)
	if err != nil {
		return err
	}
	s.er, err = rivet.StartEngineRunner(context.Background(), reg, &rivet.Config{
		Clock:  s.clk,
		Logger: modelLogger(),
		Engine: rivet.EngineConfig{URL: s.eng.GuardURL()},
	})
	if err != nil {
		return fmt.Errorf("start runner: %w", err)
	}
	s.rt = s.er.Runtime()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.er.Ready(ctx); err != nil {
		_ = s.stop()
		return fmt.Errorf("runner not connected: %w", err)
	}
	return nil
}

func (s *modelSUT) stop() error {
	if s.rt == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.er != nil {
		err := s.er.Stop(ctx)
		s.rt, s.er = nil, nil
		return err
	}
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

// handle is actor's handle, kept across calls as a client would keep it
// (it remembers the actor's id).
func (s *modelSUT) handle(actor int) *rivet.Handle {
	if h := s.handles[actor]; h != nil {
		return h
	}
	h := s.rt.Client().GetOrCreate("model", rivet.Key{fmt.Sprint("m", actor)})
	s.handles[actor] = h
	return h
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
	mc := &modelConn{c: c, closed: make(chan struct{})}
	c.OnClose(func(string) { close(mc.closed) })
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

// waitClosed waits until the connection has seen its close.
func (s *modelSUT) waitClosed(mc *modelConn) error {
	select {
	case <-mc.closed:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the connection was not closed")
	}
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
func runModel(s *modelSUT, ops []modelOp) (err error) {
	if err := s.start(modelStart); err != nil {
		return err
	}
	defer func() {
		if e := s.stop(); e != nil && err == nil {
			err = fmt.Errorf("final stop: %w", e)
		}
	}()
	w := newModelWorld(modelStart)
	trace := os.Getenv("MODEL_TRACE") != ""
	for i, op := range ops {
		t0 := time.Now()
		err := stepModel(s, w, i, op)
		if trace {
			fmt.Fprintf(os.Stderr, "model: %3d %-60s %v\n", i, op, time.Since(t0).Round(time.Millisecond))
		}
		if err != nil {
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

// Runner mode: the engine's KV as the store.

// modelEngineKinds are the operations run through the engine. Left out:
// advancing time (the engine keeps its own time for alarms: alarms are
// scheduled, listed and cancelled, and persist, but do not fire here;
// firing is covered on the other drivers and in runner_alarm_test.go),
// connections (the in-process client's connections do not go through
// the engine), and destroy (engine 2.3.19 stops placing new actors after
// about ten creations, docs/engine-runner.md §12).
// modelEngineAllocations bounds the actor starts of one engine sequence.
const modelEngineAllocations = 8

var modelEngineKinds = map[string]bool{
	"add": true, "fail": true, "bcast": true,
	"kvPut": true, "kvTx": true, "kvGet": true, "kvDel": true, "kvDelAll": true, "kvList": true,
	"sched": true, "schedAt": true, "cancel": true, "pending": true,
	"qsend": true, "qtake": true, "qtakeFail": true, "qlen": true,
	"sleep": true, "restart": true, "check": true,
}

// engineModelOps keeps the operations the engine run supports, with
// alarms a day later than drawn so that none falls due in the engine's
// real time while the sequence runs.
//
// Every start of an actor on a runner is an allocation in the engine, and
// engine 2.3.19 here stalls after about ten (docs/engine-runner.md §12:
// no actor is placed any more, calls time out after 30 s). A sequence
// therefore keeps within modelEngineAllocations: the three actors' first
// starts, one per sleep (the next call wakes it), three per restart.
func engineModelOps(ops []modelOp) []modelOp {
	var out []modelOp
	allocs := modelActors
	for _, op := range ops {
		if !modelEngineKinds[op.Kind] {
			continue
		}
		cost := map[string]int{"sleep": 1, "restart": modelActors}[op.Kind]
		if allocs+cost > modelEngineAllocations {
			continue
		}
		allocs += cost
		switch op.Kind {
		case "sched", "schedAt":
			op.N += int((24 * time.Hour).Milliseconds())
		case "restart":
			op.N = 0
		}
		out = append(out, op)
	}
	return out
}

// TestModelEngine runs TestModel's sequences with a runner on a real
// engine, each seed on a fresh engine (MODEL_ENGINE_SEEDS, default 1;
// MODEL_OPS as for TestModel, default 40 here). Failures are not shrunk: every attempt
// would need an engine of its own.
func TestModelEngine(t *testing.T) {
	seeds, n := modelSettings(t)
	if v := os.Getenv("MODEL_ENGINE_SEEDS"); v != "" && *modelSeedFlag == 0 && os.Getenv("MODEL_SEED") == "" {
		k, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("MODEL_ENGINE_SEEDS=%q: %v", v, err)
		}
		seeds = seeds[:0]
		for i := range k {
			seeds = append(seeds, uint64(i+1))
		}
	} else if len(seeds) > 1 {
		seeds = seeds[:1]
	}
	if os.Getenv("MODEL_OPS") == "" && *modelOpsFlag == 0 {
		n = 40 // the short form: each call crosses the engine
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ops := engineModelOps(genModelOps(seed, n))
			s := &modelSUT{eng: enginetest.Start(t, enginetest.Options{})}
			if err := runModel(s, ops); err != nil {
				var b strings.Builder
				for i, op := range ops {
					fmt.Fprintf(&b, "\n  %3d %s", i, op)
				}
				t.Fatalf("model disagreement on the engine, seed %d: %v\nops:%s\nreplay: go test -run 'TestModelEngine' -seed=%d .", seed, err, b.String(), seed)
			}
		})
	}
}

// modelLogger discards the runtime's log unless MODEL_LOG is set.
func modelLogger() *slog.Logger {
	if os.Getenv("MODEL_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
