package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// This file holds the read-only views the inspector needs. They cost
// nothing on the hot path while no inspector watches: an engine built
// without Config.Inspect records nothing, and with it a turn pays one
// slice append per broadcast and one atomic load per committed state
// change.

// Bounds of what the engine keeps for the inspector.
const (
	// EventRingSize is the number of recent broadcasts kept per awake
	// actor.
	EventRingSize = 100
	// LogRingSize is the number of recent log lines kept per actor.
	LogRingSize = 200
	// maxLogActors bounds how many actors' log rings are kept; past it
	// the ring of an arbitrary other actor is dropped.
	maxLogActors = 4096
	// watchBuffer is how many notices a Watch holds before it drops
	// them (and reports Lost).
	watchBuffer = 256
)

// StateReader is implemented by drivers that can read an actor's stored
// state without activating it. Without it, inspecting the state of a
// sleeping actor wakes it.
type StateReader interface {
	// ReadState returns the actor's committed state (nil if none was
	// ever committed), rivetdriver.ErrNotFound for an unknown actor and
	// rivetdriver.ErrDestroyed for a destroyed one.
	ReadState(ctx context.Context, actorID string) ([]byte, error)
}

// EventRecord is one broadcast of an actor.
type EventRecord struct {
	Name string
	// Args is the encoded argument list (a CBOR array).
	Args []byte
	At   time.Time
}

// LogLine is one log record of an actor.
type LogLine struct {
	Time    time.Time
	Level   slog.Level
	Message string
	// Attrs are the record's own attributes, formatted as text (the
	// actor's name, key and id are left out).
	Attrs []LogAttr
}

// LogAttr is one attribute of a LogLine.
type LogAttr struct {
	Key   string
	Value string
}

// ConnView describes one open connection.
type ConnView struct {
	ID     string
	Params []byte // encoded (CBOR), nil when none
	State  []byte // encoded (CBOR) connection state, nil when none
	// Subscriptions are the events the connection subscribed to, sorted.
	Subscriptions []string
}

// ActorView is a snapshot of an actor for the inspector.
type ActorView struct {
	Record rivetdriver.ActorRecord
	// Awake reports whether the actor was in memory when the snapshot
	// was taken.
	Awake bool
	// State is the last committed state (CBOR); nil if the actor never
	// committed one.
	State  []byte
	Conns  []ConnView
	Alarms []rivetdriver.Alarm
	// Events are the recent broadcasts of the current incarnation,
	// oldest first (empty while asleep).
	Events []EventRecord
}

// NoticeKind says what a Notice reports.
type NoticeKind int

// Kinds of notices.
const (
	// NoticeState: the actor committed a new state (Notice.State).
	NoticeState NoticeKind = iota + 1
	// NoticeEvent: the actor broadcast an event (Notice.Event).
	NoticeEvent
	// NoticeLog: the actor logged a line (Notice.Log).
	NoticeLog
	// NoticeConnections: a connection opened or closed.
	NoticeConnections
	// NoticeLifecycle: the actor woke, went to sleep or was destroyed
	// (Notice.Lifecycle is "awake", "sleeping" or "destroyed").
	NoticeLifecycle
)

// Notice is one change of a watched actor. State and Event notices carry
// the gate of the commit they belong to: wait for it before showing them.
type Notice struct {
	Kind      NoticeKind
	State     []byte
	Event     *EventRecord
	Log       *LogLine
	Lifecycle string
	Gate      *Gate
}

// Watch receives the notices of one actor. Notices are dropped, never
// blocking the actor, when the receiver falls behind; Lost then reports
// true and the receiver should re-read what it shows.
type Watch struct {
	// C delivers the notices in order.
	C    <-chan Notice
	c    chan Notice
	id   string
	s    *inspectState
	lost atomic.Bool
	once sync.Once
}

// Lost reports (and clears) whether notices were dropped since the last
// call.
func (w *Watch) Lost() bool { return w.lost.Swap(false) }

// Close stops the watch. C is not closed.
func (w *Watch) Close() {
	w.once.Do(func() {
		s := w.s
		s.mu.Lock()
		ws := s.mu.watch[w.id]
		if i := slices.Index(ws, w); i >= 0 {
			ws = slices.Delete(ws, i, i+1)
		}
		if len(ws) == 0 {
			delete(s.mu.watch, w.id)
		} else {
			s.mu.watch[w.id] = ws
		}
		s.mu.Unlock()
		s.watchers.Add(-1)
	})
}

// inspectState is the engine's inspector support; nil when disabled.
type inspectState struct {
	watchers atomic.Int32 // total open watches, the hot path's only check
	mu       struct {
		sync.Mutex
		watch map[string][]*Watch
		logs  map[string]*logRing
	}
}

func newInspectState() *inspectState {
	s := &inspectState{}
	s.mu.watch = map[string][]*Watch{}
	s.mu.logs = map[string]*logRing{}
	return s
}

// watching reports whether anyone might watch an actor; cheap.
func (s *inspectState) watching() bool { return s != nil && s.watchers.Load() > 0 }

// notify delivers n to the actor's watches without blocking.
func (s *inspectState) notify(id string, n Notice) {
	if !s.watching() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.mu.watch[id] {
		select {
		case w.c <- n:
		default:
			w.lost.Store(true)
		}
	}
}

func (s *inspectState) addLog(id string, l LogLine) {
	s.mu.Lock()
	r := s.mu.logs[id]
	if r == nil {
		if len(s.mu.logs) >= maxLogActors {
			for k := range s.mu.logs {
				delete(s.mu.logs, k)
				break
			}
		}
		r = &logRing{}
		s.mu.logs[id] = r
	}
	r.add(l)
	s.mu.Unlock()
	s.notify(id, Notice{Kind: NoticeLog, Log: &l})
}

type logRing struct {
	lines [LogRingSize]LogLine
	n     int // lines written in total
}

func (r *logRing) add(l LogLine) {
	r.lines[r.n%LogRingSize] = l
	r.n++
}

func (r *logRing) list() []LogLine {
	k := min(r.n, LogRingSize)
	out := make([]LogLine, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.lines[i%LogRingSize])
	}
	return out
}

// eventRing keeps an awake actor's recent broadcasts; owned by its loop.
// It grows up to EventRingSize entries, then overwrites the oldest, so an
// actor that broadcast a few times holds a few entries, not a hundred.
type eventRing struct {
	evs []EventRecord
	n   int
}

func (r *eventRing) add(e EventRecord) {
	if len(r.evs) < EventRingSize {
		if len(r.evs) == cap(r.evs) {
			grown := make([]EventRecord, len(r.evs), min(max(2*cap(r.evs), 4), EventRingSize))
			copy(grown, r.evs)
			r.evs = grown
		}
		r.evs = append(r.evs, e)
	} else {
		r.evs[r.n%EventRingSize] = e
	}
	r.n++
}

func (r *eventRing) list() []EventRecord {
	if r == nil {
		return nil
	}
	k := min(r.n, EventRingSize)
	out := make([]EventRecord, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.evs[i%EventRingSize])
	}
	return out
}

// inspectFlush records the turn's broadcasts and notifies watchers of the
// committed state; called by flush with the commit's gate.
func (h *host) inspectFlush(t *Turn, state []byte, g *Gate) {
	s := h.e.insp
	if state != nil && s.watching() {
		s.notify(h.id, Notice{Kind: NoticeState, State: state, Gate: g})
	}
	if len(t.broadcasts) > 0 {
		if h.events == nil {
			h.events = &eventRing{}
		}
		now := h.e.clock.Now().UTC()
		for _, b := range t.broadcasts {
			b.At = now
			h.events.add(b)
			if s.watching() {
				ev := b
				s.notify(h.id, Notice{Kind: NoticeEvent, Event: &ev, Gate: g})
			}
		}
		t.broadcasts = t.broadcasts[:0]
	}
}

// Inspecting reports whether the engine keeps data for the inspector.
func (e *Engine) Inspecting() bool { return e.insp != nil }

var errNotInspecting = errors.New("rivet: the inspector is disabled for this engine")

// Watch starts watching an actor's changes (awake or not). Close it when
// done.
func (e *Engine) Watch(id string) (*Watch, error) {
	s := e.insp
	if s == nil {
		return nil, errNotInspecting
	}
	c := make(chan Notice, watchBuffer)
	w := &Watch{C: c, c: c, id: id, s: s}
	s.mu.Lock()
	s.mu.watch[id] = append(s.mu.watch[id], w)
	s.mu.Unlock()
	s.watchers.Add(1)
	return w, nil
}

// RecentLogs returns an actor's recent log lines, oldest first.
func (e *Engine) RecentLogs(id string) []LogLine {
	s := e.insp
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.mu.logs[id]; r != nil {
		return r.list()
	}
	return nil
}

// inspectAwake runs fn on the actor's loop if the actor is awake, without
// waking it and without counting as activity. It reports whether fn ran.
func (e *Engine) inspectAwake(ctx context.Context, id string, fn func(h *host)) (bool, error) {
	e.mu.Lock()
	h, ok := e.mu.hosts[id]
	e.mu.Unlock()
	if !ok {
		return false, nil
	}
	done := make(chan bool, 1)
	j := job{
		run: func(h *host) {
			if !h.active || h.exited {
				done <- false
				return
			}
			fn(h)
			done <- true
		},
		fail:    func(error) { done <- false },
		idle:    true,
		notWork: true,
	}
	if e.pushTo(h, j) != pushed {
		return false, nil
	}
	select {
	case ran := <-done:
		return ran, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// InspectActor returns a snapshot of an actor without waking it when the
// driver implements StateReader (otherwise a sleeping actor is woken to
// read its state). A destroyed or unknown actor is actor.not_found.
func (e *Engine) InspectActor(ctx context.Context, id string) (ActorView, error) {
	rec, err := e.GetActor(ctx, id)
	if err != nil {
		return ActorView{}, err
	}
	v := ActorView{Record: rec}
	ran, err := e.inspectAwake(ctx, id, func(h *host) {
		v.State = h.lastState
		v.Conns = h.connViews()
		v.Alarms = h.alarmList()
		v.Events = h.events.list()
	})
	if err != nil {
		return ActorView{}, err
	}
	if ran {
		v.Awake = true
		return v, nil
	}
	if v.State, err = e.storedState(ctx, id); err != nil {
		return ActorView{}, err
	}
	if v.Alarms, err = e.driver.Alarms(ctx, id); err != nil {
		return ActorView{}, fmt.Errorf("load alarms of actor %s: %w", id, err)
	}
	return v, nil
}

// storedState reads the committed state of an actor that is not awake.
func (e *Engine) storedState(ctx context.Context, id string) ([]byte, error) {
	if sr, ok := e.driver.(StateReader); ok {
		st, err := sr.ReadState(ctx, id)
		if err != nil {
			return nil, mapDriverErr(err, id)
		}
		return st, nil
	}
	// The driver cannot read state without activating the actor: wake it.
	var st []byte
	err := e.do(ctx, id, func(h *host) { st = h.lastState })
	return st, err
}

// ErrNeverActivated: the actor exists but its create hooks never
// committed (it has no state yet).
var ErrNeverActivated = &rivettype.Error{Group: "actor", Code: "not_initialized", Message: "The actor was created but never activated; it has no state yet.", Public: true}

// ActorState returns an actor's committed state (CBOR) and whether it is
// awake, without waking it when the driver implements StateReader.
func (e *Engine) ActorState(ctx context.Context, id string) ([]byte, bool, error) {
	rec, err := e.GetActor(ctx, id)
	if err != nil {
		return nil, false, err
	}
	var st []byte
	ran, err := e.inspectAwake(ctx, id, func(h *host) { st = h.lastState })
	if err != nil {
		return nil, false, err
	}
	if !ran {
		if st, err = e.storedState(ctx, id); err != nil {
			return nil, false, err
		}
	}
	if st == nil && !rec.Initialized {
		return nil, ran, ErrNeverActivated
	}
	return st, ran, nil
}

func (h *host) alarmList() []rivetdriver.Alarm {
	out := make([]rivetdriver.Alarm, 0, len(h.alarms))
	for _, a := range h.alarms {
		out = append(out, a)
	}
	rivetdriver.SortAlarms(out)
	return out
}

func (h *host) connViews() []ConnView {
	conns := h.connList()
	out := make([]ConnView, 0, len(conns))
	for _, c := range conns {
		v := ConnView{ID: c.ID, Params: c.Params, State: encodeConnState(c.State)}
		for s := range c.subs {
			v.Subscriptions = append(v.Subscriptions, s)
		}
		sort.Strings(v.Subscriptions)
		out = append(out, v)
	}
	return out
}

// encodeConnState encodes a connection's typed state. Package rivet keeps
// it as a pointer to a struct whose State field points to the user's
// value; anything else is encoded as is.
func encodeConnState(st any) []byte {
	if st == nil {
		return nil
	}
	v := reflect.ValueOf(st)
	if v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("State"); f.IsValid() && f.CanInterface() {
			st = f.Interface()
		}
	}
	b, err := codec.Marshal(st)
	if err != nil {
		return nil
	}
	return b
}

// teeHandler passes records on to the real handler and keeps those of an
// actor (carrying actor_id) in the actor's log ring.
type teeHandler struct {
	inner slog.Handler
	s     *inspectState
	actor string // actor_id bound by WithAttrs
	group string // open group, "" at the top level
}

func newTeeHandler(inner slog.Handler, s *inspectState) *teeHandler {
	return &teeHandler{inner: inner, s: s}
}

// Enabled keeps Info and above for the rings even when the real handler
// drops them.
func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.inner.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.inner.Enabled(ctx, r.Level) {
		err = h.inner.Handle(ctx, r)
	}
	id := h.actor
	var attrs []LogAttr
	r.Attrs(func(a slog.Attr) bool {
		if h.group == "" && a.Key == "actor_id" && id == "" {
			id = a.Value.String()
			return true
		}
		k := a.Key
		if h.group != "" {
			k = h.group + "." + k
		}
		attrs = append(attrs, LogAttr{Key: k, Value: a.Value.Resolve().String()})
		return true
	})
	if id != "" && r.Level >= slog.LevelInfo {
		h.s.addLog(id, LogLine{Time: r.Time.UTC(), Level: r.Level, Message: r.Message, Attrs: attrs})
	}
	return err
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(as)
	if h.group == "" {
		for _, a := range as {
			if a.Key == "actor_id" {
				c.actor = a.Value.String()
			}
		}
	}
	return &c
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	if c.group == "" {
		c.group = name
	} else {
		c.group += "." + name
	}
	return &c
}
