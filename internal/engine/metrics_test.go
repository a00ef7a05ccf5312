package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettype"
)

// tally is a minimal actor for engine tests: its state is one counter.
type tally struct{}

func (tally) Name() string { return "tally" }
func (tally) Options() Options {
	return Options{SleepTimeout: time.Hour}
}
func (tally) NewInstance(info Info) Instance { return &tallyInst{log: info.Log} }

type tallyInst struct {
	n   uint64
	log *slog.Logger
}

var errNope = &rivettype.Error{Group: "user", Code: "nope", Message: "nope", Public: true}

func (i *tallyInst) Create(*Turn, []byte) error { return nil }
func (i *tallyInst) Load(b []byte) error        { return i.Restore(b) }
func (i *tallyInst) Start(*Turn) error          { return nil }
func (i *tallyInst) EncodeState() ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, i.n), nil
}
func (i *tallyInst) Restore(b []byte) error {
	if len(b) != 8 {
		return errors.New("bad state")
	}
	i.n = binary.BigEndian.Uint64(b)
	return nil
}
func (i *tallyInst) HasAction(name string) bool {
	switch name {
	case "inc", "fail", "plain", "panic", "late", "log":
		return true
	}
	return false
}
func (i *tallyInst) Action(t *Turn, name string, _ []byte) (any, error) {
	switch name {
	case "inc":
		i.n++
		t.Broadcast("n", []byte{byte(i.n)})
		return i.n, nil
	case "fail":
		i.n += 100 // rolled back
		return nil, errNope
	case "plain":
		return nil, errors.New("plain failure")
	case "panic":
		panic("boom")
	case "late":
		// An alarm due two seconds ago: it fires at once, two seconds late.
		_, err := t.Schedule(t.Now().Add(-2*time.Second), "inc", nil)
		return nil, err
	case "log":
		i.log.Info("hello from the actor")
		return nil, nil
	}
	return nil, rivettype.ErrActionNotFound
}
func (i *tallyInst) BeforeActionResponse(_ *Turn, _ string, _ []byte, out any) (any, error) {
	return out, nil
}
func (i *tallyInst) StateChanged(*Turn) error                   { return nil }
func (i *tallyInst) BeforeConnect(*Turn, []byte) error          { return nil }
func (i *tallyInst) CreateConnState(*Turn, *Conn, []byte) error { return nil }
func (i *tallyInst) Connect(*Turn, *Conn) error                 { return nil }
func (i *tallyInst) Disconnect(*Turn, *Conn) error              { return nil }
func (i *tallyInst) Sleep(*Turn) error                          { return nil }
func (i *tallyInst) Destroy(*Turn) error                        { return nil }

// nopTransport receives events and counts them.
type nopTransport struct {
	mu     sync.Mutex
	events int
}

func (n *nopTransport) Event(*Event, *Gate) { n.mu.Lock(); n.events++; n.mu.Unlock() }
func (n *nopTransport) Close(string)        {}

func startEngine(t *testing.T, log *slog.Logger) *Engine {
	t.Helper()
	e, err := New(Config{Driver: rivetmem.New(), Behaviors: []Behavior{tally{}}, Log: log})
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
	return e
}

func encodeAny(v any) ([]byte, error) { return nil, nil }

// sample reads one series of the engine's collector: a counter or gauge
// value, or a histogram's count and sum. ok is false when the series is
// absent.
func sample(t *testing.T, e *Engine, name string, labels map[string]string) (value, sum float64, ok bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e.Collector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), 0, true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), 0, true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum(), true
			}
		}
	}
	return 0, 0, false
}

func mustSample(t *testing.T, e *Engine, name string, labels map[string]string) float64 {
	t.Helper()
	v, _, ok := sample(t, e, name, labels)
	if !ok {
		t.Fatalf("series %s%v is missing", name, labels)
	}
	return v
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEngineMetrics(t *testing.T) {
	e := startEngine(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	actor := map[string]string{"actor": "tally"}

	// Before any actor exists: zero awake, zero sleeping.
	if v := mustSample(t, e, "rivet_actors_awake", actor); v != 0 {
		t.Fatalf("awake before create = %v", v)
	}
	if v := mustSample(t, e, "rivet_actors_sleeping", actor); v != 0 {
		t.Fatalf("sleeping before create = %v", v)
	}

	var ids []string
	for _, k := range []string{"a", "b", "c"} {
		rec, _, err := e.Create(ctx, "default", "tally", []string{k}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if v := mustSample(t, e, "rivet_actors_awake", actor); v != 3 {
		t.Fatalf("awake after 3 creates = %v", v)
	}
	if err := e.Sleep(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.Destroy(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if a, s := mustSample(t, e, "rivet_actors_awake", actor), mustSample(t, e, "rivet_actors_sleeping", actor); a != 1 || s != 1 {
		t.Fatalf("after one sleep and one destroy: awake %v sleeping %v, want 1 and 1", a, s)
	}

	// Actions: turns, latency, events.
	id := ids[2]
	tr := &nopTransport{}
	c := NewConn(NewConnID(), nil, nil, tr)
	if err := e.Connect(ctx, id, c); err != nil {
		t.Fatal(err)
	}
	if err := e.Subscribe(ctx, id, c, "n", true); err != nil {
		t.Fatal(err)
	}
	turns0 := mustSample(t, e, "rivet_turns_total", actor)
	calls0, _, _ := sample(t, e, "rivet_action_duration_seconds", actor)
	events0 := mustSample(t, e, "rivet_events_total", actor)
	batches0, _, _ := sample(t, e, "rivet_commit_batch_size", nil)
	for range 5 {
		if _, err := e.Call(ctx, id, nil, nil, "inc", nil, encodeAny, 0); err != nil {
			t.Fatal(err)
		}
	}
	if d := mustSample(t, e, "rivet_turns_total", actor) - turns0; d != 5 {
		t.Fatalf("turns grew by %v for 5 actions", d)
	}
	if d := mustSample(t, e, "rivet_action_duration_seconds", actor) - calls0; d != 5 {
		t.Fatalf("action latency observed %v times for 5 actions", d)
	}
	if d := mustSample(t, e, "rivet_events_total", actor) - events0; d != 5 {
		t.Fatalf("events grew by %v for 5 broadcasts to one subscriber", d)
	}
	// Every committed turn went through a batch; sizes add up to commits.
	n, sum, _ := sample(t, e, "rivet_commit_batch_size", nil)
	if n-batches0 < 1 || n-batches0 > 5 || sum < 5 {
		t.Fatalf("commit batches: %v new (sizes sum %v) for 5 commits", n-batches0, sum)
	}
	if n, _, _ := sample(t, e, "rivet_commit_batch_duration_seconds", nil); n == 0 {
		t.Fatal("no commit latency observed")
	}

	// Errors by group.code: a user error, a panic, an unknown action.
	if _, err := e.Call(ctx, id, nil, nil, "fail", nil, encodeAny, 0); !errors.Is(err, errNope) {
		t.Fatalf("fail: %v", err)
	}
	if _, err := e.Call(ctx, id, nil, nil, "panic", nil, encodeAny, 0); err == nil {
		t.Fatal("panic: no error")
	}
	if _, err := e.Call(ctx, id, nil, nil, "plain", nil, encodeAny, 0); err == nil {
		t.Fatal("plain: no error")
	}
	if _, err := e.Call(ctx, id, nil, nil, "missing", nil, encodeAny, 0); !errors.Is(err, rivettype.ErrActionNotFound) {
		t.Fatalf("missing: %v", err)
	}
	for code, want := range map[string]float64{"user.nope": 1, "core.internal_error": 2, "actor.action_not_found": 1} {
		if v := mustSample(t, e, "rivet_actor_errors_total", map[string]string{"actor": "tally", "code": code}); v != want {
			t.Fatalf("errors{code=%s} = %v, want %v", code, v, want)
		}
	}

	// Alarm lag: an alarm two seconds overdue fires at once.
	alarms0 := e.Metrics().Alarms.Load()
	if _, err := e.Call(ctx, id, nil, nil, "late", nil, encodeAny, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the alarm", func() bool { return e.Metrics().Alarms.Load() > alarms0 })
	count, lag, ok := sample(t, e, "rivet_alarm_lag_seconds", actor)
	if !ok || count != 1 || lag < 2 || lag > 60 {
		t.Fatalf("alarm lag: %v observations, sum %vs; want 1 of about 2s", count, lag)
	}
}

// TestSleepingCountedAtStart: actors already in the store when the engine
// starts count as sleeping.
func TestSleepingCountedAtStart(t *testing.T) {
	d := rivetmem.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e1, err := New(Config{Driver: d, Behaviors: []Behavior{tally{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x", "y"} {
		if _, _, err := e1.Create(ctx, "default", "tally", []string{k}, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	e2, err := New(Config{Driver: d, Behaviors: []Behavior{tally{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e2.Stop(ctx) }()
	if a, s := mustSample(t, e2, "rivet_actors_awake", map[string]string{"actor": "tally"}), mustSample(t, e2, "rivet_actors_sleeping", map[string]string{"actor": "tally"}); a != 0 || s != 2 {
		t.Fatalf("after restart: awake %v sleeping %v, want 0 and 2", a, s)
	}
}

// capture is a slog handler that records every record with the
// attributes its logger carries.
type capture struct {
	mu    *sync.Mutex
	recs  *[]map[string]string
	attrs []slog.Attr
}

func newCapture() *capture {
	return &capture{mu: &sync.Mutex{}, recs: &[]map[string]string{}}
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	for _, a := range c.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	c.mu.Lock()
	*c.recs = append(*c.recs, m)
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{mu: c.mu, recs: c.recs, attrs: append(append([]slog.Attr(nil), c.attrs...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }

func (c *capture) records() []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]string(nil), *c.recs...)
}

// TestActorLogFields: every line logged for an actor, by its own code or
// by the engine about it, carries actor (name), key and actor_id.
func TestActorLogFields(t *testing.T) {
	cap := newCapture()
	e := startEngine(t, slog.New(cap))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, _, err := e.Create(ctx, "default", "tally", []string{"room", "7"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"log", "panic", "plain"} {
		_, _ = e.Call(ctx, rec.ID, nil, nil, action, nil, encodeAny, 0)
	}
	if err := e.Sleep(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	// A sleeping actor's logger is built from its stored record.
	e.ActorLog(rec.ID).Warn("about a sleeping actor")

	want := map[string]bool{"hello from the actor": false, "panic in actor code": false, "actor code failed": false, "actor sleeping": false, "about a sleeping actor": false}
	for _, r := range cap.records() {
		if _, ok := want[r["msg"]]; !ok {
			continue
		}
		want[r["msg"]] = true
		if r["actor"] != "tally" || r["key"] != "room/7" || r["actor_id"] != rec.ID {
			t.Errorf("%q: actor=%q key=%q actor_id=%q; want tally, room/7, %s", r["msg"], r["actor"], r["key"], r["actor_id"], rec.ID)
		}
	}
	for msg, seen := range want {
		if !seen {
			t.Errorf("no log line %q (got %v)", msg, cap.records())
		}
	}
	// Unknown actors still get the three fields (empty name and key).
	e.ActorLog("nosuchactor").Warn("about nothing")
	recs := cap.records()
	last := recs[len(recs)-1]
	if _, ok := last["actor"]; !ok || last["actor_id"] != "nosuchactor" || !strings.Contains(last["msg"], "nothing") {
		t.Fatalf("unknown actor line: %v", last)
	}
}

// BenchmarkInstrumentation is what the metrics add to one action: the
// turn's start time, the turn counter and duration, the call's latency.
func BenchmarkInstrumentation(b *testing.B) {
	p := newPromMetrics(map[string]Behavior{"tally": tally{}})
	nm := p.names["tally"]
	for b.Loop() {
		start := time.Now()
		nm.observeTurn(start)
		nm.actionSeconds.Observe(time.Since(start).Seconds())
	}
}

// TestInternalErrorShape: a plain error returned by actor code and a
// panic reach the caller the same way, as core.internal_error (what
// RivetKit sends), are logged once by the engine with the actor's fields
// (the cause in full) and marked so that the gateway does not log them
// again; a public error is neither wrapped nor logged.
func TestInternalErrorShape(t *testing.T) {
	cap := newCapture()
	e := startEngine(t, slog.New(cap))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec, _, err := e.Create(ctx, "default", "tally", []string{"k"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for action, cause := range map[string]string{"plain": "plain failure", "panic": "panic: boom"} {
		_, err := e.Call(ctx, rec.ID, nil, nil, action, nil, encodeAny, 0)
		re, ok := rivettype.As(err)
		if !ok || re.Group != "core" || re.Code != "internal_error" || re.Public || !errors.Is(err, rivettype.ErrInternal) {
			t.Fatalf("%s: err = %#v, want core.internal_error", action, err)
		}
		if !Reported(err) || !strings.Contains(err.Error(), cause) {
			t.Fatalf("%s: err %q not reported with its cause %q", action, err, cause)
		}
		n := 0
		for _, r := range cap.records() {
			if (r["msg"] == "actor code failed" && strings.Contains(r["err"], cause)) ||
				(r["msg"] == "panic in actor code" && cause == "panic: "+r["panic"]) {
				n++
				if r["actor"] != "tally" || r["key"] != "k" || r["actor_id"] != rec.ID || r["in"] != "action" || r["action"] != action {
					t.Errorf("%s: log line %v lacks the actor's fields", action, r)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: logged %d times, want once: %v", action, n, cap.records())
		}
	}
	before := len(cap.records())
	if _, err := e.Call(ctx, rec.ID, nil, nil, "fail", nil, encodeAny, 0); err != errNope || Reported(err) {
		t.Fatalf("public error: %v (reported %v), want errNope as is", err, Reported(err))
	}
	if recs := cap.records(); len(recs) != before {
		t.Fatalf("a public error was logged: %v", recs[before:])
	}
}
