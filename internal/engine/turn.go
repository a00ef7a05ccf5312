package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet/internal/callchain"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// Limits on what one actor may store.
const (
	MaxKVKeySize   = 2048
	MaxKVValueSize = 1 << 20
)

// Turn is one transaction of an actor: everything user code does through it
// is buffered and committed atomically when the turn ends, or discarded
// when it fails. Reads see the turn's own writes. A Turn is used only on the
// actor's loop.
type Turn struct {
	h   *host
	ctx context.Context
	// deadline bounds an action's turn; the turn's Context carries it,
	// built on first use so that a turn nobody asks for it pays nothing.
	deadline time.Time
	dctx     context.Context
	cancel   context.CancelFunc
	// cctx is ctx with the actor on its call chain (callchain), built on
	// first use.
	cctx context.Context
	// g and hookCtx are set while user code runs under Guard: hookCtx
	// is its context, canceled at its deadline.
	g       *guard
	hookCtx context.Context
	// Conn is the connection the turn serves, nil for hooks and alarms.
	Conn *Conn
	// start is when the turn began, for the turn duration metric.
	start time.Time

	kv kvLayer
	// storeFailed: a read from the store failed during the turn, so
	// whatever the turn's code made of it, its failure may be the
	// store's and not the code's (runAlarm retries such an alarm).
	storeFailed atomic.Bool
	alarmPut    map[string]rivetdriver.Alarm
	alarmDel    map[string]struct{}
	events      []outEvent
	bg          []bgTask
	initial     bool
	sleep       bool
	destroy     bool
	stateSeen   bool
	queue       *turnQueue // what the turn did to the actor's queue
	// allConns: the turn listed the connections, so any of their states
	// may have changed (their records are checked at flush).
	allConns bool

	// broadcasts are the turn's broadcasts, kept for the inspector
	// (only when the engine inspects).
	broadcasts []EventRecord
}

type outEvent struct {
	conn *Conn
	ev   *Event
}

type kvEntry struct {
	val  []byte
	del  bool
	gate *Gate // set in the host's overlay
}

type kvLayer struct {
	m       map[string]kvEntry
	cleared bool
}

func (l *kvLayer) empty() bool { return len(l.m) == 0 && !l.cleared }

func newTurn(h *host, ctx context.Context, conn *Conn) *Turn {
	t := &Turn{h: h, ctx: ctx, Conn: conn, start: time.Now()}
	h.cur = t
	return t
}

// Instance is the actor instance the turn runs on.
func (t *Turn) Instance() Instance {
	if !t.enter() {
		return nil
	}
	defer t.leave()
	return t.h.inst
}

// canceled is the context of an abandoned turn.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errAbandoned)
	return ctx
}()

// Context is the turn's context: canceled when the caller gives up, the
// action or hook times out, or the runtime shuts down.
func (t *Turn) Context() context.Context {
	if !t.enter() {
		return canceled
	}
	defer t.leave()
	if t.hookCtx != nil {
		return t.hookCtx
	}
	if t.cctx == nil {
		t.cctx = callchain.With(t.ctx, t.h.id, t.h.label())
	}
	if t.deadline.IsZero() {
		return t.cctx
	}
	if t.dctx == nil {
		t.dctx, t.cancel = context.WithDeadline(t.cctx, t.deadline)
	}
	return t.dctx
}

// label names the actor in call-cycle errors: name[key].
func (h *host) label() string {
	return h.info.Name + "[" + keyString(h.info.Key) + "]"
}

// Info describes the actor.
func (t *Turn) Info() Info { return t.h.info }

// Engine returns the engine running the actor.
func (t *Turn) Engine() *Engine { return t.h.e }

// Now is the engine clock's time.
func (t *Turn) Now() time.Time { return t.h.e.clock.Now() }

// Conns returns the actor's open connections in connection order.
func (t *Turn) Conns() []*Conn {
	if !t.enter() {
		return nil
	}
	defer t.leave()
	t.allConns = true
	return t.h.connList()
}

// Broadcast emits an event to every connection subscribed to it.
func (t *Turn) Broadcast(name string, args []byte) {
	if !t.enter() {
		return
	}
	defer t.leave()
	if t.h.e.insp != nil {
		t.broadcasts = append(t.broadcasts, EventRecord{Name: name, Args: args})
	}
	var ev *Event
	for _, c := range t.h.connOrder {
		if !c.closed && c.Subscribed(name) {
			if ev == nil {
				ev = &Event{Name: name, Args: args}
			}
			t.events = append(t.events, outEvent{conn: c, ev: ev})
		}
	}
}

// Send emits an event to one connection, subscribed or not.
func (t *Turn) Send(c *Conn, name string, args []byte) {
	if !t.enter() {
		return
	}
	defer t.leave()
	if c != nil && !c.closed {
		t.events = append(t.events, outEvent{conn: c, ev: &Event{Name: name, Args: args}})
	}
}

// Disconnect closes a connection after the turn.
func (t *Turn) Disconnect(c *Conn, reason string) {
	if !t.enter() {
		return
	}
	defer t.leave()
	if c == nil || c.closed || c.ephemeral {
		return
	}
	h := t.h
	h.e.goTracked(func() { h.e.Disconnect(c, h.info.ID, reason) })
}

// RequestSleep puts the actor to sleep after this turn.
func (t *Turn) RequestSleep() {
	if t.enter() {
		t.sleep = true
		t.leave()
	}
}

// RequestDestroy destroys the actor after this turn.
func (t *Turn) RequestDestroy() {
	if t.enter() {
		t.destroy = true
		t.leave()
	}
}

// RunInBackground starts fn after the turn ends; with keepAwake the actor
// stays awake until fn returns. fn's context is canceled when the
// incarnation stops, which then waits for fn up to its sleep grace
// period.
func (t *Turn) RunInBackground(keepAwake bool, fn func(ctx context.Context)) {
	if t.enter() {
		t.bg = append(t.bg, bgTask{fn: fn, keepAwake: keepAwake})
		t.leave()
	}
}

type bgTask struct {
	fn        func(ctx context.Context)
	keepAwake bool
}

// SaveState commits the turn's changes so far and waits until they are
// durable. A later failure of the same turn rolls back only to this point.
func (t *Turn) SaveState(ctx context.Context) error {
	if !t.enter() {
		return errAbandoned
	}
	defer t.leave()
	g, err := t.h.flush(t, nil)
	if err != nil {
		return err
	}
	t.h.releaseHeld()
	return g.Wait(ctx)
}

// checkKey refuses an empty key and one longer than MaxKVKeySize or the
// driver's own limit (rivetdriver.KVKeyLimiter).
func (e *Engine) checkKey(k []byte) error {
	if len(k) == 0 {
		return rivettype.ErrKVKeyInvalid.With("KV key is empty")
	}
	if len(k) > e.maxKey {
		return rivettype.ErrKVKeyInvalid.With("KV key is %d bytes; the limit is %d", len(k), e.maxKey)
	}
	return nil
}

// KVGet returns the values of keys, nil for missing keys.
func (t *Turn) KVGet(keys [][]byte) ([][]byte, error) {
	if !t.enter() {
		return nil, errAbandoned
	}
	defer t.leave()
	h := t.h
	h.prune()
	out := make([][]byte, len(keys))
	var miss [][]byte
	var missIdx []int
	storeHidden := t.kv.cleared || h.overlay.cleared
	for i, k := range keys {
		if e, ok := t.kv.m[string(k)]; ok {
			if !e.del {
				out[i] = bytes.Clone(e.val)
			}
			continue
		}
		if t.kv.cleared {
			continue
		}
		if e, ok := h.overlay.m[string(k)]; ok {
			if !e.del {
				out[i] = bytes.Clone(e.val)
			}
			continue
		}
		if storeHidden {
			continue
		}
		miss = append(miss, k)
		missIdx = append(missIdx, i)
	}
	if len(miss) > 0 {
		vals, err := h.e.driver.KVGet(t.ctx, h.info.ID, miss)
		if err != nil {
			t.storeFailed.Store(true)
			return nil, fmt.Errorf("kv get: %w", err)
		}
		for j, v := range vals {
			out[missIdx[j]] = v
		}
	}
	return out, nil
}

// KVPut buffers writes.
func (t *Turn) KVPut(kvs []rivetdriver.KV) error {
	if !t.enter() {
		return errAbandoned
	}
	defer t.leave()
	for _, kv := range kvs {
		if err := t.h.e.checkKey(kv.Key); err != nil {
			return err
		}
		if len(kv.Value) > MaxKVValueSize {
			return rivettype.ErrKVValueTooLarge.With("KV value is %d bytes; the limit is %d", len(kv.Value), MaxKVValueSize)
		}
	}
	if t.kv.m == nil {
		t.kv.m = make(map[string]kvEntry, len(kvs))
	}
	for _, kv := range kvs {
		t.kv.m[string(kv.Key)] = kvEntry{val: bytes.Clone(kv.Value)}
	}
	return nil
}

// kvPut and kvDelete buffer the engine's own writes.
func (t *Turn) kvPut(k, v []byte) {
	if t.kv.m == nil {
		t.kv.m = map[string]kvEntry{}
	}
	t.kv.m[string(k)] = kvEntry{val: v}
}

func (t *Turn) kvDelete(k []byte) {
	if t.kv.m == nil {
		t.kv.m = map[string]kvEntry{}
	}
	t.kv.m[string(k)] = kvEntry{del: true}
}

// KVDelete buffers deletions.
func (t *Turn) KVDelete(keys [][]byte) error {
	if !t.enter() {
		return errAbandoned
	}
	defer t.leave()
	for _, k := range keys {
		if err := t.h.e.checkKey(k); err != nil {
			return err
		}
	}
	if t.kv.m == nil {
		t.kv.m = make(map[string]kvEntry, len(keys))
	}
	for _, k := range keys {
		t.kv.m[string(k)] = kvEntry{del: true}
	}
	return nil
}

// KVClear deletes the actor's whole key/value space.
func (t *Turn) KVClear() {
	if t.enter() {
		t.kv = kvLayer{cleared: true}
		t.leave()
	}
}

// KVList lists pairs in a range: the store's, updated by commits in flight
// and by this turn's writes.
func (t *Turn) KVList(opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	if !t.enter() {
		return nil, errAbandoned
	}
	defer t.leave()
	h := t.h
	h.prune()
	merged := map[string][]byte{}
	if !t.kv.cleared && !h.overlay.cleared {
		o := opts
		if o.Limit > 0 {
			o.Limit += countDeletes(h.overlay.m) + countDeletes(t.kv.m)
		}
		base, err := h.e.driver.KVList(t.ctx, h.info.ID, o)
		if err != nil {
			t.storeFailed.Store(true)
			return nil, fmt.Errorf("kv list: %w", err)
		}
		for _, kv := range base {
			merged[string(kv.Key)] = kv.Value
		}
	}
	apply := func(l *kvLayer) {
		for k, e := range l.m {
			if !opts.Contains([]byte(k)) {
				continue
			}
			if e.del {
				delete(merged, k)
			} else {
				merged[k] = bytes.Clone(e.val)
			}
		}
	}
	if !t.kv.cleared {
		apply(&h.overlay)
	}
	apply(&t.kv)
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if opts.Reverse {
		slices.Reverse(keys)
	}
	if opts.Limit > 0 && len(keys) > opts.Limit {
		keys = keys[:opts.Limit]
	}
	out := make([]rivetdriver.KV, len(keys))
	for i, k := range keys {
		out[i] = rivetdriver.KV{Key: []byte(k), Value: merged[k]}
	}
	return out, nil
}

func countDeletes(m map[string]kvEntry) int {
	n := 0
	for _, e := range m {
		if e.del {
			n++
		}
	}
	return n
}

var alarmIDEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

func newAlarmID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return alarmIDEncoding.EncodeToString(b[:])
}

// Schedule buffers a durable alarm that calls action with the encoded args
// at time at. It returns the alarm's id.
func (t *Turn) Schedule(at time.Time, action string, args []byte) (string, error) {
	if !t.enter() {
		return "", errAbandoned
	}
	defer t.leave()
	if !t.h.inst.HasAction(action) {
		return "", rivettype.ErrActionNotFound.With("Action `%s` was not found.", action)
	}
	if max := t.h.opts.MaxSchedules; max > 0 && len(t.alarms()) >= max {
		return "", rivettype.ErrTooManySchedules.With("An actor may have at most %d scheduled events.", max)
	}
	a := rivetdriver.Alarm{
		ID: newAlarmID(), ActorID: t.h.info.ID, At: at.UTC(), // every nanosecond: the drivers keep them
		Action: action, Args: bytes.Clone(args), CreatedAt: t.Now().UTC(),
	}
	if t.alarmPut == nil {
		t.alarmPut = map[string]rivetdriver.Alarm{}
	}
	t.alarmPut[a.ID] = a
	delete(t.alarmDel, a.ID)
	return a.ID, nil
}

// CancelAlarm buffers the removal of an alarm, reporting whether it
// existed.
func (t *Turn) CancelAlarm(id string) bool {
	if !t.enter() {
		return false
	}
	defer t.leave()
	_, pending := t.alarmPut[id]
	_, stored := t.h.alarms[id]
	if _, gone := t.alarmDel[id]; gone {
		stored = false
	}
	if !pending && !stored {
		return false
	}
	delete(t.alarmPut, id)
	if stored {
		if t.alarmDel == nil {
			t.alarmDel = map[string]struct{}{}
		}
		t.alarmDel[id] = struct{}{}
	}
	return true
}

// Alarms lists the actor's alarms as this turn sees them, by time.
func (t *Turn) Alarms() []rivetdriver.Alarm {
	if !t.enter() {
		return nil
	}
	defer t.leave()
	return t.alarms()
}

func (t *Turn) alarms() []rivetdriver.Alarm {
	var out []rivetdriver.Alarm
	for id, a := range t.h.alarms {
		if _, gone := t.alarmDel[id]; !gone {
			out = append(out, a)
		}
	}
	for _, a := range t.alarmPut {
		out = append(out, a)
	}
	rivetdriver.SortAlarms(out)
	return out
}

// reset discards the turn's buffered changes after they were flushed or
// rolled back.
func (t *Turn) reset() {
	t.kv = kvLayer{}
	t.alarmPut = nil
	t.alarmDel = nil
	t.events = t.events[:0]
	t.broadcasts = t.broadcasts[:0]
	t.initial = false
}
