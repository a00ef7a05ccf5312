package engine

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet/internal/clock"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// host runs one actor. Its fields below the mailbox are owned by whichever
// goroutine currently drains the mailbox (at most one at a time: see
// mailbox.running), so user code and engine bookkeeping need no locks.
type host struct {
	e       *Engine
	id      string
	mb      *mailbox
	stopped chan struct{} // closed when the host is gone from the engine
	bg      tasks         // background tasks
	// runCtx is canceled when this incarnation stops (sleep, destroy,
	// shutdown): the context of its background tasks.
	runCtx    context.Context
	runCancel context.CancelFunc

	// Owned by the draining goroutine.
	info   Info
	opts   Options
	inst   Instance
	inc    *incarnation
	active bool
	exited bool
	// abandoned: a hook overran its time limit and may still be running
	// on the instance (Turn.Guard); the host leaves when the job ends.
	abandoned bool
	lastState []byte
	overlay   kvLayer
	clearGate *Gate
	pending   []*Gate
	last      *Gate
	// held is the commit of a new actor's create hooks, not yet handed to
	// the committer: the turns of the job that activated the actor join
	// it, so that creating an actor and running its first action cost one
	// commit and one fsync. It is submitted when that job ends
	// (releaseHeld), or before the host waits for its own commits.
	held   *Gate
	alarms map[string]rivetdriver.Alarm
	// alarmRetries counts, per alarm, the runs that failed because the
	// store did (runAlarm retries those).
	alarmRetries map[string]int
	// alarmAt is the earliest alarm last reported to Engine.OnAlarm
	// (zero: none); reset by each activation.
	alarmAt   time.Time
	conns     map[string]*Conn
	connOrder []*Conn
	blocking  int // connections that keep the actor awake (Conn.blocks)
	// dropRecords are connection records to delete as the host leaves
	// (their onDisconnect timed out).
	dropRecords []string
	cur         *Turn      // the turn in progress, for Conn.Send
	events      *eventRing // recent broadcasts, kept when the engine inspects
	lastWork    time.Time
	sleepT      clock.Timer
	// sleepAsked: this incarnation asked Engine.SleepThrough's function
	// to stop it and waits for Sleep (runner mode: the engine's stop
	// command).
	sleepAsked bool

	// Metrics and logging: nm is resolved once per activation; infoLog
	// is info.Log (actor, key, actor_id), readable from any goroutine;
	// preLog serves the lines logged before the record is loaded.
	nm           *nameMetrics
	infoLog      atomic.Pointer[slog.Logger]
	preLog       *slog.Logger
	awakeCounted bool
	// idleElem is the host's place on the engine's idle list (awake.go),
	// guarded by the awake set's mutex.
	idleElem *list.Element
}

// log is the actor's logger: every line carries actor (name), key and
// actor_id. It is built once per activation; before the actor's record
// is loaded it is built once from the stored record.
func (h *host) log() *slog.Logger {
	if l := h.infoLog.Load(); l != nil {
		return l
	}
	if h.preLog == nil {
		h.preLog = h.e.ActorLog(h.id)
	}
	return h.preLog
}

// drain runs queued jobs until the mailbox is empty. It is started by the
// push that found the mailbox idle.
func (h *host) drain() {
	for {
		j, ok := h.mb.pop()
		if !ok {
			if h.exited {
				return
			}
			h.armSleep()
			if h.mb.release() {
				return
			}
			continue
		}
		start := time.Now()
		h.runJob(j, start)
		h.mb.observe(time.Since(start))
	}
}

// runJob runs one job popped from the mailbox at now, activating the
// actor first if needed; a job whose caller is gone, is out of time or
// waited past the mailbox's bound fails without running.
func (h *host) runJob(j job, now time.Time) {
	if err := h.shed(j, now); err != nil {
		j.fail(err)
		return
	}
	if h.exited {
		j.fail(rivettype.ErrActorNotFound)
		return
	}
	if !h.active && j.idle {
		j.fail(errAsleep)
		return
	}
	if !h.active {
		if err := h.activate(); err != nil {
			h.exit(err)
			j.fail(err)
			return
		}
	} else if h.inc.failed.Load() {
		h.restart()
		if h.exited {
			j.fail(rivettype.ErrCommitFailed)
			return
		}
	}
	j.run(h)
	if h.abandoned {
		if !h.exited {
			h.abandon()
		}
		return
	}
	h.releaseHeld()
	if !j.notWork {
		h.lastWork = h.e.clock.Now()
	}
}

// shed reports why a job must not run: its caller is gone or out of
// time, or it is a call that waited in the mailbox longer than
// max_queue_time. Nil: run it.
func (h *host) shed(j job, now time.Time) error {
	if j.ctx != nil {
		if err := j.ctx.Err(); err != nil {
			return err
		}
	}
	if !j.deadline.IsZero() && !now.Before(j.deadline) {
		return errDeadline
	}
	if j.call && h.mb.maxWait > 0 && !j.queued.IsZero() {
		if waited := now.Sub(j.queued); waited > h.mb.maxWait {
			h.e.metrics.Shed.Add(1)
			return rivettype.ErrMailboxFull.With("The actor is overloaded: this call waited %s for the calls ahead of it, longer than max_queue_time (%s). It did not run; retry later.", waited.Round(time.Millisecond), h.mb.maxWait)
		}
	}
	return nil
}

// exit removes the host from the engine and fails every queued job.
func (h *host) exit(err error) {
	if h.runCancel != nil {
		h.runCancel()
	}
	if h.sleepT != nil {
		h.sleepT.Stop()
		h.sleepT = nil
	}
	h.exited = true
	if h.awakeCounted {
		h.awakeCounted = false
		h.nm.awake.Add(-1)
		h.e.awakeRemoved(h)
	}
	h.e.removeHost(h)
	if r, ok := h.e.driver.(rivetdriver.Releaser); ok && h.inc != nil {
		// The driver may forget what it keeps for the actor (its memory
		// then grows with the awake actors, not with all of them).
		r.ReleaseActor(h.id, h.inc.generation)
	}
	for _, j := range h.mb.close() {
		j.fail(err)
	}
	close(h.stopped)
}

func mapDriverErr(err error, id string) error {
	switch {
	case errors.Is(err, rivetdriver.ErrNotFound), errors.Is(err, rivetdriver.ErrDestroyed):
		return rivettype.ErrActorNotFound.With("Actor %s was not found.", id)
	case errors.Is(err, rivetdriver.ErrClosed):
		return rivettype.ErrStopping
	}
	return err
}

// storageFailure turns err, a store's failure to answer a read (or a
// create) outside a turn, into what the caller sees: actor.storage_error,
// logged here with the operation and the driver's error (kept as the
// cause). Public errors and the caller's own cancellation pass as they
// are.
func storageFailure(log *slog.Logger, op string, err error) error {
	if err == nil || isPublic(err) || Reported(err) {
		return err
	}
	if !errors.Is(err, errStoreTimeout) && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	log.Error("store failed", "op", op, "err", err)
	return &reportedError{pub: rivettype.ErrStorage, cause: fmt.Errorf("%s: %w", op, err)}
}

// activate loads the actor from the store and runs its start hooks.
func (h *host) activate() error {
	e := h.e
	ctx := e.ctx
	// The store reads are bounded (a hung read would hold the actor
	// until shutdown); the hooks below run under e.ctx as before.
	rctx, rcancel := context.WithTimeoutCause(ctx, e.committer.timeout, errStoreTimeout)
	defer rcancel()
	timedOut := func(err error) error {
		if err != nil && rctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%w after %v: %w", errStoreTimeout, e.committer.timeout, err)
		}
		return err
	}
	rec, state, err := e.driver.Activate(rctx, h.id)
	if err != nil {
		return storageFailure(h.log(), "activate actor", mapDriverErr(timedOut(err), h.id))
	}
	b, ok := e.behaviors[rec.Name]
	if !ok {
		return rivettype.ErrNotRegistered.With("Actor %s has name %q, which this registry does not define.", h.id, rec.Name)
	}
	h.opts = b.Options()
	h.info = Info{
		ID: rec.ID, Namespace: rec.Namespace, Name: rec.Name, Key: rec.Key, Region: e.region,
		Log: e.log.With("actor", rec.Name, "key", keyString(rec.Key), "actor_id", rec.ID),
	}
	h.infoLog.Store(h.info.Log)
	h.nm = e.prom.names[rec.Name]
	h.inc = &incarnation{generation: rec.Generation, nm: h.nm}
	if h.runCancel != nil {
		h.runCancel()
	}
	h.runCtx, h.runCancel = context.WithCancel(e.ctx)
	h.inst = b.NewInstance(h.info)
	h.overlay, h.clearGate, h.pending, h.last = kvLayer{}, nil, nil, nil
	alarms, err := e.driver.Alarms(rctx, h.id)
	if err != nil {
		return storageFailure(h.log(), "load alarms", mapDriverErr(timedOut(err), h.id))
	}
	h.alarms = make(map[string]rivetdriver.Alarm, len(alarms))
	for _, a := range alarms {
		h.alarms[a.ID] = a
	}
	h.alarmAt = time.Time{}
	if e.onAlarm != nil {
		// The driver listed no alarms at start (runner mode): schedule
		// this actor's now (overdue ones fire at once) and report the
		// earliest, which is durable already.
		for _, a := range alarms {
			e.sched.add(a.At, h.id, a.ID)
		}
		if at := h.earliestAlarm(); !at.IsZero() {
			h.alarmAt = at
			e.onAlarm(h.id, rec.Generation, at)
		}
	}
	if h.conns == nil {
		h.conns = map[string]*Conn{}
	}
	t := newTurn(h, ctx, nil)
	if !rec.Initialized {
		h.lastState = nil
		t.initial = true
		if err := h.call("create hooks", "", func() error { return h.inst.Create(t, rec.Input) }); err != nil {
			h.countError(err)
			if !Reported(err) {
				h.log().Warn("actor create hooks failed", "err", err)
			}
			return err
		}
	} else {
		if err := h.loadState(state, false); err != nil {
			if !Reported(err) {
				h.log().Error("load state", "err", err)
			}
			return fmt.Errorf("decode state of actor %s: %w", h.id, err)
		}
		h.lastState = state
	}
	var stale []*Conn
	if rec.Initialized {
		var err error
		if stale, err = h.restoreConns(rctx); err != nil {
			return storageFailure(h.log(), "restore connections", timedOut(err))
		}
		h.cur = t
	}
	if err := h.call("start hooks", "", func() error { return h.inst.Start(t) }); err != nil {
		h.countError(err)
		if !Reported(err) {
			h.log().Warn("actor start hooks failed", "err", err)
		}
		h.dropConns("actor failed to wake")
		return err
	}
	// A new actor's commit is held for the job that activated it (see
	// host.held); whoever relies on the actor existing waits for it:
	// Engine.Create, or that job's own result.
	if _, err := h.endTurn(t, nil); err != nil {
		h.dropConns("actor failed to wake")
		return err
	}
	h.active = true
	// Connections whose socket is gone while the actor slept leave now:
	// onDisconnect runs and their records are deleted.
	for _, c := range stale {
		h.disconnect(c, "")
	}
	h.lastWork = e.clock.Now()
	if !h.awakeCounted && h.nm != nil {
		h.awakeCounted = true
		h.nm.awake.Add(1)
		e.awakeAdded()
	}
	e.metrics.Activations.Add(1)
	if e.insp.watching() {
		e.insp.notify(h.id, Notice{Kind: NoticeLifecycle, Lifecycle: "awake"})
	}
	return nil
}

// releaseHeld hands the held commit, if any, to the committer.
func (h *host) releaseHeld() {
	if g := h.held; g != nil {
		h.held = nil
		h.e.committer.submit(g)
	}
}

// restart replaces a failed incarnation with a fresh one loaded from
// durable state. Held responses already failed through their gates.
func (h *host) restart() {
	h.log().Warn("actor commit failed; restarting from durable state")
	h.active = false
	h.inc = nil
	if err := h.activate(); err != nil {
		h.exit(err)
	}
}

// call runs user code; what ("action", "onSleep", …) and name (the
// action's, if any) are for the log. A panic, and an error that callers
// may not see as is (a plain Go error, a *rivettype.Error that is not
// public), is logged here with the actor's name, key and id and returned
// as a reported error: callers see a panic or a plain error as
// core.internal_error, like RivetKit's engine, and the gateway does not
// log it again.
func (h *host) call(what, name string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = h.panicked(what, name, r)
		}
	}()
	return h.report(what, name, fn())
}

// panicked logs a panic of actor code and returns the error it fails with.
func (h *host) panicked(what, name string, r any) error {
	args := []any{"in", what, "panic", r, "stack", string(debug.Stack())}
	if name != "" {
		args = append(args, "action", name)
	}
	h.log().Error("panic in actor code", args...)
	return &reportedError{pub: rivettype.ErrInternal, cause: fmt.Errorf("panic: %v", r)}
}

// encodeState encodes the instance's state. User types may encode
// themselves (cbor.Marshaler, encoding.BinaryMarshaler): a panic there is
// the turn's error, not the process's end.
func (h *host) encodeState() (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = h.panicked("encode state", "", r)
		}
	}()
	return h.inst.EncodeState()
}

// loadState decodes persisted state into the instance (Load), or rolls it
// back to an encoding (Restore); a panic in a user type's decoder is an
// error.
func (h *host) loadState(state []byte, restore bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = h.panicked("decode state", "", r)
		}
	}()
	if restore {
		return h.inst.Restore(state)
	}
	return h.inst.Load(state)
}

// report logs err once with the actor's fields unless callers may see it
// as is (a public error) or it says only that the turn's context ended.
func (h *host) report(what, name string, err error) error {
	if err == nil || isPublic(err) || Reported(err) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	args := []any{"in", what, "err", err}
	if name != "" {
		args = append(args, "action", name)
	}
	h.log().Error("actor code failed", args...)
	return AsReported(err)
}

// reportedError is an error of actor code that is already logged with the
// actor's fields. errors.As finds pub (what callers see) first, then the
// cause; errors.Is sees both.
type reportedError struct {
	pub   *rivettype.Error // nil when the cause is itself a *rivettype.Error
	cause error
}

func (e *reportedError) Error() string { return e.cause.Error() }

func (e *reportedError) Unwrap() []error {
	if e.pub == nil {
		return []error{e.cause}
	}
	return []error{e.pub, e.cause}
}

// AsReported marks err, an error of actor code that its caller has
// logged with the actor's fields (package rivet's onAuth), the way the
// engine marks its own: callers see core.internal_error unless err is a
// *rivettype.Error, and the gateway does not log it again.
func AsReported(err error) error {
	if _, ok := rivettype.As(err); ok {
		return &reportedError{cause: err}
	}
	return &reportedError{pub: rivettype.ErrInternal, cause: err}
}

// Reported reports whether err was already logged with its actor's
// fields, so that the gateway need not log it again.
func Reported(err error) bool {
	var r *reportedError
	return errors.As(err, &r)
}

// endTurn finishes a turn: on success its changes are flushed as one
// commit and its events queued behind that commit's gate; on failure
// everything it did is rolled back. The returned gate is what the turn's
// response must wait for.
func (h *host) endTurn(t *Turn, turnErr error) (*Gate, error) {
	if h.abandoned {
		// The hook that timed out may still be using the instance, the
		// turn and h.cur: leave them alone. The host is about to leave.
		if turnErr == nil {
			turnErr = errAbandoned
		}
		return h.lastGate(), turnErr
	}
	h.cur = nil
	if t.cancel != nil {
		t.cancel()
	}
	h.nm.observeTurn(t.start)
	if turnErr != nil {
		h.countError(turnErr)
		h.rollback(t)
		return h.lastGate(), turnErr
	}
	g, err := h.flush(t, nil)
	if err != nil {
		h.countError(err)
		h.rollback(t)
		return h.lastGate(), err
	}
	h.queueAfterFlush(t, g)
	for _, task := range t.bg {
		h.startBackground(task)
	}
	t.bg = nil
	if t.destroy {
		t.destroy = false
		h.destroyNow()
	} else if t.sleep {
		t.sleep = false
		h.trySleep(true)
	}
	return g, nil
}

func (h *host) rollback(t *Turn) {
	if h.lastState != nil {
		if err := h.loadState(h.lastState, true); err != nil && !Reported(err) {
			h.log().Error("roll back state", "err", err)
		}
	}
	t.reset()
	t.bg = nil
	t.queue = nil
	t.sleep, t.destroy = false, false
}

// flush turns the turn's buffered changes into a commit, submits it and
// releases the turn's events behind its gate. It returns the gate the
// turn's result must wait for.
func (h *host) flush(t *Turn, _ []byte) (*Gate, error) {
	var enc []byte
	if h.inst != nil {
		var err error
		enc, err = h.encodeState()
		if err != nil {
			return nil, h.report("encode state", "", fmt.Errorf("encode state: %w", err))
		}
		if h.lastState != nil && !bytes.Equal(enc, h.lastState) && !t.stateSeen {
			t.stateSeen = true
			if err := h.call("onStateChange", "", func() error { return h.inst.StateChanged(t) }); err != nil {
				return nil, err
			}
			if enc, err = h.encodeState(); err != nil {
				return nil, h.report("encode state", "", fmt.Errorf("encode state: %w", err))
			}
		}
	}
	ups, err := h.persistConns(t)
	if err != nil {
		return nil, h.report("encode connection", "", err)
	}
	for _, u := range ups {
		u.c.rec = u.enc
	}
	c := rivetdriver.Commit{ActorID: h.id, Generation: h.inc.generation, Initialize: t.initial}
	stateChanged := enc != nil && !bytes.Equal(enc, h.lastState)
	if stateChanged {
		c.State = enc
	}
	c.KVClear = t.kv.cleared
	for k, e := range t.kv.m {
		if e.del {
			c.KVDelete = append(c.KVDelete, []byte(k))
		} else {
			c.KVPut = append(c.KVPut, rivetdriver.KV{Key: []byte(k), Value: e.val})
		}
	}
	for id := range t.alarmDel {
		c.AlarmDelete = append(c.AlarmDelete, id)
	}
	for _, a := range t.alarmPut {
		c.AlarmPut = append(c.AlarmPut, a)
	}
	// Drop settled commits first: an actor that never reads its KV would
	// otherwise keep every gate it ever made.
	h.prune()
	g := h.lastGate()
	if c.Initialize || c.State != nil || c.KVClear || len(c.KVDelete) > 0 || len(c.KVPut) > 0 ||
		len(c.AlarmDelete) > 0 || len(c.AlarmPut) > 0 {
		for id := range t.alarmDel {
			delete(h.alarms, id)
		}
		for id, a := range t.alarmPut {
			h.alarms[id] = a
			h.e.sched.add(a.At, h.id, id)
		}
		var report *time.Time
		if h.e.onAlarm != nil {
			if at := h.earliestAlarm(); !at.Equal(h.alarmAt) {
				h.alarmAt = at
				report = &at
			}
		}
		switch {
		case h.held != nil:
			mergeCommit(&h.held.commit, &c)
			g = h.held
			if report != nil {
				g.alarm = report
			}
		default:
			g = &Gate{commit: c, inc: h.inc, done: make(chan struct{}), alarm: report}
			if t.initial {
				h.held = g
			} else {
				h.e.committer.submitFrom(g, h.mb.empty())
			}
			h.pending = append(h.pending, g)
			h.last = g
		}
		if stateChanged {
			h.lastState = enc
		}
		if t.kv.cleared {
			h.overlay = kvLayer{cleared: true}
			h.clearGate = g
		}
		if len(t.kv.m) > 0 && h.overlay.m == nil {
			h.overlay.m = make(map[string]kvEntry, len(t.kv.m))
		}
		for k, e := range t.kv.m {
			e.gate = g
			h.overlay.m[k] = e
		}
	}
	if h.e.insp != nil {
		var st []byte
		if stateChanged {
			st = enc
		}
		h.inspectFlush(t, st, g)
	}
	// Count the events before handing them over: a transport may deliver
	// one (its gate already settled) before this loop ends, and a client
	// that saw an event then reads a counter that includes it.
	sent := 0
	for _, ev := range t.events {
		if !ev.conn.closed && ev.conn.transport != nil {
			sent++
		}
	}
	if sent > 0 {
		h.e.metrics.Events.Add(uint64(sent))
		if h.nm != nil {
			h.nm.events.Add(float64(sent))
		}
	}
	for _, ev := range t.events {
		if !ev.conn.closed && ev.conn.transport != nil {
			ev.conn.transport.Event(ev.ev, g)
		}
	}
	t.reset()
	return g, nil
}

// earliestAlarm is the time of the actor's earliest alarm (zero: none).
func (h *host) earliestAlarm() time.Time {
	var at time.Time
	for _, a := range h.alarms {
		if at.IsZero() || a.At.Before(at) {
			at = a.At
		}
	}
	return at
}

// lastGate is the gate of the actor's newest commit that is not yet
// settled, or nil.
func (h *host) lastGate() *Gate {
	if h.last != nil && !h.last.Settled() {
		return h.last
	}
	return nil
}

// prune drops from the overlay what settled commits made durable, and
// forgets settled gates.
func (h *host) prune() {
	n := 0
	for _, g := range h.pending {
		if !g.Settled() {
			break
		}
		n++
		for _, kv := range g.commit.KVPut {
			if e, ok := h.overlay.m[string(kv.Key)]; ok && e.gate == g {
				delete(h.overlay.m, string(kv.Key))
			}
		}
		for _, k := range g.commit.KVDelete {
			if e, ok := h.overlay.m[string(k)]; ok && e.gate == g {
				delete(h.overlay.m, string(k))
			}
		}
		if h.clearGate == g {
			h.clearGate = nil
			h.overlay.cleared = false
		}
	}
	if n > 0 {
		clear(h.pending[:n])
		h.pending = h.pending[n:]
		if len(h.pending) == 0 {
			h.pending = nil
		}
	}
	if h.last != nil && h.last.Settled() {
		h.last = nil
	}
}

func (h *host) connList() []*Conn {
	out := make([]*Conn, 0, len(h.connOrder))
	for _, c := range h.connOrder {
		if !c.closed && !c.ephemeral && !c.raw {
			out = append(out, c)
		}
	}
	return out
}

func (h *host) addConn(c *Conn) {
	c.h = h
	if _, dup := h.conns[c.ID]; !dup {
		if !c.ephemeral {
			h.e.metrics.Connections.Add(1)
		}
		c.blocks = c.ephemeral || (c.raw && !c.Hibernatable) || h.opts.KeepAwakeWhileConnected || !h.e.hibernate.Load()
		if c.blocks {
			h.blocking++
		}
	}
	h.conns[c.ID] = c
	h.connOrder = append(h.connOrder, c)
	if !c.ephemeral && h.e.insp.watching() {
		h.e.insp.notify(h.id, Notice{Kind: NoticeConnections})
	}
}

func (h *host) removeConn(c *Conn) {
	if x, ok := h.conns[c.ID]; ok && x == c {
		if !c.ephemeral {
			h.e.metrics.Connections.Add(-1)
		}
		if c.blocks {
			h.blocking--
		}
	}
	delete(h.conns, c.ID)
	for i, x := range h.connOrder {
		if x == c {
			h.connOrder = append(h.connOrder[:i], h.connOrder[i+1:]...)
			break
		}
	}
	if !c.ephemeral && h.e.insp.watching() {
		h.e.insp.notify(h.id, Notice{Kind: NoticeConnections})
	}
}

func (h *host) startBackground(task bgTask) {
	ctx := h.runCtx
	if ctx == nil {
		ctx = h.e.ctx
	}
	h.bg.add(task.keepAwake)
	h.e.goTracked(func() {
		defer func() {
			if r := recover(); r != nil {
				h.log().Error("panic in background task", "panic", r, "stack", string(debug.Stack()))
			}
			h.bg.done(task.keepAwake)
			// Let the actor re-evaluate sleep now that the task is done
			// (without waking it if it already stopped).
			h.e.pushTo(h, job{run: func(*host) {}, fail: func(error) {}, idle: true, notWork: true})
		}()
		task.fn(ctx)
	})
}

// canSleep reports whether nothing keeps the actor awake.
func (h *host) canSleep() bool {
	return !h.opts.NoSleep && h.blocking == 0 && !h.bg.keepingAwake()
}

// armSleep starts the idle timer when the actor has become idle.
func (h *host) armSleep() {
	if h.sleepT != nil || !h.active || h.sleepAsked || !h.canSleep() {
		return
	}
	d := h.opts.SleepTimeout - h.e.clock.Now().Sub(h.lastWork)
	id := h.id
	h.sleepT = h.e.clock.AfterFunc(max(d, 0), func() {
		h.e.pushSync(id, h, job{run: func(h *host) { h.sleepT = nil; h.trySleep(false) }, fail: func(error) {}, idle: true, notWork: true})
	})
	h.e.idleAdd(h)
}

// trySleep puts the actor to sleep if it is (still) idle, or at once when
// requested by the actor itself. With Engine.SleepThrough set it asks
// instead, once, and the actor stops when Sleep is called.
func (h *host) trySleep(requested bool) {
	if h.exited || !h.active {
		return
	}
	if !requested {
		if !h.canSleep() {
			return
		}
		if h.e.clock.Now().Sub(h.lastWork) < h.opts.SleepTimeout {
			return // work happened since the timer was armed; drain re-arms
		}
	}
	if fn := h.e.sleepThrough; fn != nil {
		if !h.sleepAsked {
			h.sleepAsked = true
			h.log().Debug("actor asks to sleep")
			fn(h.id)
		}
		return
	}
	h.sleepNow(requested)
}

// sleepNow stops the actor for sleep: at once when requested (queued
// jobs go to the next incarnation), else only if its mailbox is empty.
func (h *host) sleepNow(requested bool) {
	if h.exited || !h.active {
		return
	}
	if !h.mb.closeIfEmpty() {
		if !requested {
			return
		}
		h.mb.seal() // requested sleep: queued jobs go to the next incarnation
	}
	h.stop(stopSleep)
}

type stopMode int

const (
	stopSleep stopMode = iota
	stopShutdown
	stopDestroy
	// stopAbandon: a hook timed out (Turn.Guard); no hook runs.
	stopAbandon
)

// abandon makes the host leave after a hook timed out, as if the process
// had crashed: no hook runs, the commits already made are awaited, the
// connections are closed and queued jobs go to a fresh incarnation.
func (h *host) abandon() {
	h.mb.seal()
	h.stop(stopAbandon)
}

// stop runs the sleep (or destroy) hooks, waits for the background work
// of the incarnation and until every commit is durable, and leaves the
// engine. The hook and the wait share the sleep grace period; past it the
// hook is abandoned and the remaining work left running (its context is
// canceled). The mailbox must already be closed.
func (h *host) stop(mode stopMode) {
	var deadline time.Time
	if g := h.opts.SleepGracePeriod; g > 0 {
		deadline = time.Now().Add(g)
	}
	if h.runCancel != nil {
		h.runCancel() // background work of this incarnation is aborted
	}
	ctx := context.WithoutCancel(h.e.ctx)
	var err error
	var t *Turn
	if mode != stopAbandon {
		t = newTurn(h, ctx, nil)
		what, hook := "onSleep", h.inst.Sleep
		if mode == stopDestroy {
			what, hook = "onDestroy", h.inst.Destroy
		}
		var limit time.Duration
		if !deadline.IsZero() {
			limit = max(time.Until(deadline), time.Millisecond)
		}
		err = h.call(what, "", func() error { return t.Guard(what, limit, func() error { return hook(t) }) })
		if err != nil && !Reported(err) {
			h.log().Warn("actor stop hook failed", "err", err)
		}
	}
	switch {
	case mode == stopDestroy:
		if !h.abandoned {
			t.reset()
			h.cur = nil
			h.awaitBackground(deadline)
		}
		h.releaseHeld()
		g := &Gate{commit: rivetdriver.Commit{ActorID: h.id, Generation: h.inc.generation, Destroy: true}, inc: h.inc, done: make(chan struct{})}
		h.e.committer.submit(g)
		h.last = g
	case mode == stopAbandon || h.abandoned:
		// Nothing of the hook's turn is kept (see endTurn), and the
		// background work is left to its canceled context.
		if len(h.dropRecords) > 0 {
			h.releaseHeld()
			c := rivetdriver.Commit{ActorID: h.id, Generation: h.inc.generation}
			for _, id := range h.dropRecords {
				c.KVDelete = append(c.KVDelete, connRecordKey(id))
			}
			h.dropRecords = nil
			g := &Gate{commit: c, inc: h.inc, done: make(chan struct{})}
			h.e.committer.submit(g)
			h.last = g
		}
	default:
		if _, ferr := h.endTurn(t, err); ferr != nil && err == nil {
			h.log().Warn("actor stop hook: commit failed", "err", ferr)
		}
		h.awaitBackground(deadline)
	}
	h.releaseHeld()
	if g := h.last; g != nil {
		if err := g.Wait(ctx); err != nil {
			h.log().Error("final commit failed", "err", err)
		} else if mode == stopDestroy && h.nm != nil {
			h.nm.known.Add(-1)
		}
	}
	var park []*Conn
	for _, c := range h.connOrder {
		if mode == stopSleep && !c.closed && c.transport != nil && !c.blocks {
			park = append(park, c)
			continue
		}
		if !c.closed && c.transport != nil {
			c.closed = true
			reason := "actor stopped"
			switch mode {
			case stopDestroy:
				reason = "actor destroyed"
			case stopAbandon:
				reason = "actor restarted: a hook timed out"
			}
			c.transport.Close(reason)
		}
	}
	for _, c := range h.conns {
		if !c.ephemeral {
			h.e.metrics.Connections.Add(-1)
		}
	}
	h.conns, h.connOrder, h.blocking = nil, nil, 0
	h.e.park(h.id, park)
	h.events = nil
	if h.e.insp.watching() {
		what := "sleeping"
		if mode == stopDestroy {
			what = "destroyed"
		}
		h.e.insp.notify(h.id, Notice{Kind: NoticeLifecycle, Lifecycle: what})
	}
	switch mode {
	case stopAbandon:
		h.exit(errRetry)
	case stopSleep:
		h.e.metrics.Sleeps.Add(1)
		h.log().Debug("actor sleeping")
		h.exit(errRetry)
		if fn := h.e.onSleep; fn != nil {
			fn(h.id)
		}
	case stopDestroy:
		h.log().Info("actor destroyed")
		h.exit(rivettype.ErrActorNotFound.With("Actor %s was destroyed.", h.id))
		if fn := h.e.onDestroy; fn != nil {
			fn(h.id)
		}
	default:
		h.exit(rivettype.ErrStopping)
	}
}

// dropConns closes every connection of an incarnation that failed to
// start (their records stay for the next one).
func (h *host) dropConns(reason string) {
	for _, c := range h.connOrder {
		if !c.closed && c.transport != nil {
			c.closed = true
			c.transport.Close(reason)
		}
		if !c.ephemeral {
			h.e.metrics.Connections.Add(-1)
		}
	}
	h.conns, h.connOrder, h.blocking = map[string]*Conn{}, nil, 0
}

// awaitBackground waits for the incarnation's background work, whose
// context is already canceled, until deadline (not at all without one).
func (h *host) awaitBackground(deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	if n := h.bg.wait(deadline); n > 0 {
		h.log().Warn("background work still running after the sleep grace period; leaving it", "tasks", n)
	}
}

func (h *host) destroyNow() {
	h.mb.seal()
	h.stop(stopDestroy)
}

// errRetry fails jobs that were queued on an actor that went to sleep;
// Engine.submit resubmits them to the next incarnation.
var errRetry = errors.New("rivet: actor stopped; retry")

func isPublic(err error) bool {
	e, ok := rivettype.As(err)
	return ok && e.Public
}

// mergeCommit folds src, the commit of a later turn, into dst, so that
// applying dst alone has the effect of applying dst and then src. Within
// one commit a driver applies KVClear, then KVDelete, then KVPut, then
// AlarmDelete, then AlarmPut; what src overrides is dropped from dst.
func mergeCommit(dst, src *rivetdriver.Commit) {
	dst.Initialize = dst.Initialize || src.Initialize
	if src.State != nil {
		dst.State = src.State
	}
	if src.KVClear {
		dst.KVClear = true
		dst.KVDelete, dst.KVPut = nil, nil
	} else if len(src.KVDelete)+len(src.KVPut) > 0 && len(dst.KVDelete)+len(dst.KVPut) > 0 {
		later := make(map[string]struct{}, len(src.KVDelete)+len(src.KVPut))
		for _, k := range src.KVDelete {
			later[string(k)] = struct{}{}
		}
		for _, kv := range src.KVPut {
			later[string(kv.Key)] = struct{}{}
		}
		dst.KVDelete = slices.DeleteFunc(dst.KVDelete, func(k []byte) bool { _, ok := later[string(k)]; return ok })
		dst.KVPut = slices.DeleteFunc(dst.KVPut, func(kv rivetdriver.KV) bool { _, ok := later[string(kv.Key)]; return ok })
	}
	dst.KVDelete = append(dst.KVDelete, src.KVDelete...)
	dst.KVPut = append(dst.KVPut, src.KVPut...)
	if len(src.AlarmDelete)+len(src.AlarmPut) > 0 && len(dst.AlarmPut) > 0 {
		later := make(map[string]struct{}, len(src.AlarmDelete)+len(src.AlarmPut))
		for _, id := range src.AlarmDelete {
			later[id] = struct{}{}
		}
		for _, a := range src.AlarmPut {
			later[a.ID] = struct{}{}
		}
		dst.AlarmPut = slices.DeleteFunc(dst.AlarmPut, func(a rivetdriver.Alarm) bool { _, ok := later[a.ID]; return ok })
	}
	dst.AlarmDelete = append(dst.AlarmDelete, src.AlarmDelete...)
	dst.AlarmPut = append(dst.AlarmPut, src.AlarmPut...)
}
