package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettype"
)

// inspCounter is a minimal actor: its state is an integer, "inc" adds
// one, broadcasts "count" and logs.
type inspCounter struct{}

func (inspCounter) Name() string                   { return "counter" }
func (inspCounter) Options() Options               { return Options{SleepTimeout: time.Hour} }
func (inspCounter) NewInstance(info Info) Instance { return &inspCounterInst{info: info} }

type inspCounterInst struct {
	info Info
	n    int64
}

func (i *inspCounterInst) Create(*Turn, []byte) error { i.n = 0; return nil }
func (i *inspCounterInst) Load(b []byte) error        { return codec.Unmarshal(b, &i.n) }
func (i *inspCounterInst) Start(*Turn) error          { return nil }
func (i *inspCounterInst) EncodeState() ([]byte, error) {
	return codec.Marshal(i.n)
}
func (i *inspCounterInst) Restore(b []byte) error  { return i.Load(b) }
func (i *inspCounterInst) HasAction(n string) bool { return n == "inc" || n == "fail" }
func (i *inspCounterInst) Action(t *Turn, name string, _ []byte) (any, error) {
	i.n++
	args, err := codec.MarshalArgs([]any{i.n})
	if err != nil {
		return nil, err
	}
	t.Broadcast("count", args)
	i.info.Log.Info("incremented", "n", i.n)
	if name == "fail" {
		return nil, errors.New("failed on purpose")
	}
	return i.n, nil
}
func (i *inspCounterInst) BeforeActionResponse(_ *Turn, _ string, _ []byte, out any) (any, error) {
	return out, nil
}
func (i *inspCounterInst) StateChanged(*Turn) error                   { return nil }
func (i *inspCounterInst) BeforeConnect(*Turn, []byte) error          { return nil }
func (i *inspCounterInst) CreateConnState(*Turn, *Conn, []byte) error { return nil }
func (i *inspCounterInst) Connect(*Turn, *Conn) error                 { return nil }
func (i *inspCounterInst) Disconnect(*Turn, *Conn) error              { return nil }
func (i *inspCounterInst) Sleep(*Turn) error                          { return nil }
func (i *inspCounterInst) Destroy(*Turn) error                        { return nil }

func startInspectEngine(t *testing.T, inspect bool) (*Engine, *rivetmem.Driver) {
	t.Helper()
	d := rivetmem.New()
	e, err := New(Config{Driver: d, Behaviors: []Behavior{inspCounter{}}, Inspect: inspect})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
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

func createInspCounter(t *testing.T, e *Engine, key string) string {
	t.Helper()
	rec, _, err := e.Create(context.Background(), "", "counter", []string{key}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

func inspInc(t *testing.T, e *Engine, id, action string) error {
	t.Helper()
	_, err := e.Call(context.Background(), id, nil, nil, action, nil, codec.Marshal, 0)
	return err
}

func decodeInspInt(t *testing.T, b []byte) int64 {
	t.Helper()
	var n int64
	if err := codec.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestInspectKeepsEventsAndLogs(t *testing.T) {
	t.Parallel()
	e, _ := startInspectEngine(t, true)
	id := createInspCounter(t, e, "a")
	for range 3 {
		if err := inspInc(t, e, id, "inc"); err != nil {
			t.Fatal(err)
		}
	}
	// A failed turn's broadcast never happened.
	if err := inspInc(t, e, id, "fail"); err == nil {
		t.Fatal("fail succeeded")
	}
	v, err := e.InspectActor(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Awake || decodeInspInt(t, v.State) != 3 || len(v.Events) != 3 {
		t.Fatalf("awake %v state %d events %d; want awake, 3, 3", v.Awake, decodeInspInt(t, v.State), len(v.Events))
	}
	for i, ev := range v.Events {
		var args []int64
		if err := codec.Unmarshal(ev.Args, &args); err != nil || ev.Name != "count" || args[0] != int64(i+1) || ev.At.IsZero() {
			t.Errorf("event %d: %+v %v", i, ev, args)
		}
	}
	logs := e.RecentLogs(id)
	// The failed turn logged too (logs are not transactional), and the
	// engine logged its plain error with the actor's fields.
	if len(logs) != 5 || logs[4].Message != "actor code failed" || logs[4].Level != slog.LevelError {
		t.Fatalf("%d log lines (%+v), want 4 and the failure", len(logs), logs)
	}
	if l := logs[0]; l.Message != "incremented" || l.Level != slog.LevelInfo || len(l.Attrs) != 1 || l.Attrs[0] != (LogAttr{Key: "n", Value: "1"}) {
		t.Fatalf("first log line %+v", l)
	}
}

func TestInspectDisabledKeepsNothing(t *testing.T) {
	t.Parallel()
	e, _ := startInspectEngine(t, false)
	id := createInspCounter(t, e, "a")
	if err := inspInc(t, e, id, "inc"); err != nil {
		t.Fatal(err)
	}
	v, err := e.InspectActor(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Events) != 0 || len(e.RecentLogs(id)) != 0 || e.Inspecting() {
		t.Fatal("an engine without Inspect kept events or logs")
	}
	if _, err := e.Watch(id); err == nil {
		t.Fatal("Watch worked without Inspect")
	}
	if decodeInspInt(t, v.State) != 1 {
		t.Fatal("state not readable without Inspect")
	}
}

func TestEventRingIsBounded(t *testing.T) {
	t.Parallel()
	e, _ := startInspectEngine(t, true)
	id := createInspCounter(t, e, "a")
	for range EventRingSize + 20 {
		if err := inspInc(t, e, id, "inc"); err != nil {
			t.Fatal(err)
		}
	}
	v, err := e.InspectActor(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Events) != EventRingSize {
		t.Fatalf("%d events kept, want %d", len(v.Events), EventRingSize)
	}
	var first []int64
	_ = codec.Unmarshal(v.Events[0].Args, &first)
	if first[0] != 21 {
		t.Fatalf("oldest kept event is count %d, want 21", first[0])
	}
	if n := len(e.RecentLogs(id)); n != EventRingSize+20 && n != LogRingSize {
		t.Fatalf("%d log lines", n)
	}
}

func TestWatchDeliversNoticesInOrder(t *testing.T) {
	t.Parallel()
	e, _ := startInspectEngine(t, true)
	id := createInspCounter(t, e, "a")
	w, err := e.Watch(id)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := inspInc(t, e, id, "inc"); err != nil {
		t.Fatal(err)
	}
	want := []NoticeKind{NoticeLog, NoticeState, NoticeEvent}
	for i, k := range want {
		select {
		case n := <-w.C:
			if n.Kind != k {
				t.Fatalf("notice %d is kind %d, want %d", i, n.Kind, k)
			}
			if err := n.Gate.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			if k == NoticeState && decodeInspInt(t, n.State) != 1 {
				t.Fatalf("state notice %d", decodeInspInt(t, n.State))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notice %d", i)
		}
	}
	if err := e.Sleep(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-w.C:
		if n.Kind != NoticeLifecycle || n.Lifecycle != "sleeping" {
			t.Fatalf("notice %+v, want lifecycle sleeping", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sleep notice")
	}
	w.Close()
	w.Close() // idempotent
	if e.insp.watching() {
		t.Fatal("closed watch still counted")
	}
}

func TestWatchDropsWhenFull(t *testing.T) {
	t.Parallel()
	e, _ := startInspectEngine(t, true)
	id := createInspCounter(t, e, "a")
	w, err := e.Watch(id)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range watchBuffer { // three notices each: the buffer overflows
		if err := inspInc(t, e, id, "inc"); err != nil {
			t.Fatal(err)
		}
	}
	if !w.Lost() {
		t.Fatal("overflow not reported")
	}
	if w.Lost() {
		t.Fatal("Lost did not clear")
	}
}

func TestInspectSleepingAndMissingActors(t *testing.T) {
	t.Parallel()
	e, d := startInspectEngine(t, true)
	ctx := context.Background()
	id := createInspCounter(t, e, "a")
	if err := inspInc(t, e, id, "inc"); err != nil {
		t.Fatal(err)
	}
	if err := e.Sleep(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, awake, err := e.ActorState(ctx, id)
	if err != nil || awake || decodeInspInt(t, st) != 1 {
		t.Fatalf("sleeping actor: state %v awake %v err %v", st, awake, err)
	}
	v, err := e.InspectActor(ctx, id)
	if err != nil || v.Awake || decodeInspInt(t, v.State) != 1 {
		t.Fatalf("sleeping actor view: %+v %v", v, err)
	}
	if e.Awake(id) {
		t.Fatal("inspecting woke the actor")
	}

	// A record whose create hooks never committed.
	rec := rivetdriver.ActorRecord{ID: "neveractivated", Name: "counter", Key: []string{"n"}, CreatedAt: time.Now()}
	if err := d.CreateActor(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.ActorState(ctx, rec.ID); !errors.Is(err, ErrNeverActivated) {
		t.Fatalf("never activated: %v", err)
	}

	if _, _, err := e.ActorState(ctx, "nosuch"); !errors.Is(err, rivettype.ErrActorNotFound) {
		t.Fatalf("unknown actor: %v", err)
	}
	if err := e.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = e.InspectActor(ctx, id)
	if e, ok := rivettype.As(err); !ok || e.Code != "not_found" || !strings.Contains(e.Message, "destroyed") {
		t.Fatalf("destroyed actor: %v", err)
	}
}

func TestTeeHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	inner := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	s := newInspectState()
	log := slog.New(newTeeHandler(inner, s))

	actor := log.With("actor", "counter", "actor_id", "a1")
	actor.Info("hello", "k", "v")
	actor.Debug("too quiet")
	actor.WithGroup("req").Warn("careful", "path", "/x")
	log.Info("engine line", "actor_id", "a2", "n", 1)
	log.Info("no actor")

	if strings.Contains(buf.String(), "hello") || !strings.Contains(buf.String(), "careful") {
		t.Fatalf("the real handler's level was not respected: %q", buf.String())
	}
	a1 := s.mu.logs["a1"].list()
	if len(a1) != 2 || a1[0].Message != "hello" || a1[0].Attrs[0] != (LogAttr{"k", "v"}) ||
		a1[1].Message != "careful" || a1[1].Attrs[0] != (LogAttr{"req.path", "/x"}) {
		t.Fatalf("a1 ring %+v", a1)
	}
	a2 := s.mu.logs["a2"].list()
	if len(a2) != 1 || a2[0].Message != "engine line" || len(a2[0].Attrs) != 1 {
		t.Fatalf("a2 ring %+v", a2)
	}
	if len(s.mu.logs) != 2 {
		t.Fatalf("%d rings, want 2", len(s.mu.logs))
	}

	r := &logRing{}
	for i := range LogRingSize + 5 {
		r.add(LogLine{Message: string(rune('a' + i%26))})
	}
	if l := r.list(); len(l) != LogRingSize || l[0].Message != string(rune('a'+5%26)) {
		t.Fatalf("ring of %d, first %q", len(l), l[0].Message)
	}
}
