package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet/rivettype"
)

// guard is the state of a turn whose user code runs under a time limit
// (Turn.Guard) on a goroutine of its own. Every Turn method that user
// code reaches is counted in busy while it runs and does nothing once
// dead is set: after a timeout the actor's loop goes on without that
// goroutine, which may still be running, and must never see it touch the
// host again. (A count, not a held lock: a Turn method may run user code
// that calls Turn methods, as SaveState runs OnStateChange.)
type guard struct {
	mu   sync.Mutex
	dead bool
	busy int
	idle chan struct{} // closed when busy drops to zero after kill
}

// enter is called by Turn methods that user code may call: false means
// the turn was abandoned after a timeout and the method must do nothing.
// A true result must be paired with leave.
func (t *Turn) enter() bool {
	g := t.g
	if g == nil {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return false
	}
	g.busy++
	return true
}

func (t *Turn) leave() {
	g := t.g
	if g == nil {
		return
	}
	g.mu.Lock()
	g.busy--
	if g.busy == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// kill marks the turn dead and waits up to d for the Turn methods in
// progress to return, reporting whether they did.
func (g *guard) kill(d time.Duration) bool {
	g.mu.Lock()
	g.dead = true
	if g.busy == 0 {
		g.mu.Unlock()
		return true
	}
	g.idle = make(chan struct{})
	idle := g.idle
	g.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// errAbandoned is what Turn methods return to user code that goes on
// running after its hook timed out.
var errAbandoned = rivettype.ErrCallbackTimedOut.With("The hook timed out; its turn was abandoned.")

// abandonAfter is how long Guard waits, after a hook's deadline canceled
// its context, for the hook to return before it abandons the incarnation.
const abandonAfter = 100 * time.Millisecond

// errHookDeadline is the cause of a hook context's cancellation at the
// hook's deadline.
var errHookDeadline = errors.New("rivet: hook deadline")

// Guard runs fn, user code of the hook named what, with a time limit d
// (none when d <= 0). fn runs on a goroutine of its own while the actor's
// loop waits; the turn's Context is canceled at the deadline, and then
// Guard returns actor.callback_timed_out (metadata callback_name,
// duration_ms, as RivetKit's) whatever fn returns, so that the turn's
// changes are rolled back. If fn has not returned abandonAfter later,
// the incarnation is abandoned: the turn is dead (its methods do nothing),
// and when the current job ends the actor leaves memory as after a
// crash, without running its hooks, so that the next call starts a fresh
// incarnation from durable state. fn may go on running; it touches only
// the abandoned instance. A panic in fn is fn's error.
func (t *Turn) Guard(what string, d time.Duration, fn func() error) error {
	if d <= 0 || t.g != nil {
		return fn()
	}
	h := t.h
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	prev := t.hookCtx
	t.hookCtx = ctx
	t.g = &guard{}
	done := make(chan error, 1)
	go func() { done <- h.call(what, "", fn) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		cancel(errHookDeadline)
		timer.Reset(abandonAfter)
		select {
		case err = <-done:
		case <-timer.C:
			h.abandoned = true
			h.log().Error("hook did not return after its timeout; the actor leaves memory and its next call starts it from durable state", "hook", what, "timeout", d)
			if !t.g.kill(abandonAfter) {
				// Stuck inside a Turn method (in user code it runs,
				// such as OnStateChange under SaveState): the host
				// leaves without waiting for it.
				h.log().Error("hook is stuck inside a runtime call; leaving it", "hook", what)
			}
			return timedOut(what, d)
		}
	}
	t.g, t.hookCtx = nil, prev
	if context.Cause(ctx) == errHookDeadline {
		h.log().Warn("hook timed out", "hook", what, "timeout", d)
		return timedOut(what, d)
	}
	return err
}

// timedOut is the error of a hook that overran its time limit.
func timedOut(what string, d time.Duration) error {
	e := rivettype.ErrCallbackTimedOut.With("callback `%s` timed out after %d ms", what, d.Milliseconds())
	e.Metadata = map[string]any{"callback_name": what, "duration_ms": d.Milliseconds()}
	return &reportedError{cause: e}
}

// tasks counts an incarnation's background work: all of it, which the
// actor awaits (up to its sleep grace period) when it stops, and the part
// that keeps it awake.
type tasks struct {
	awake atomic.Int32 // read after every job: no lock
	mu    sync.Mutex
	all   int
	idle  chan struct{} // closed when all drops to zero
}

func (s *tasks) add(keepAwake bool) {
	if keepAwake {
		s.awake.Add(1)
	}
	s.mu.Lock()
	s.all++
	s.mu.Unlock()
}

func (s *tasks) done(keepAwake bool) {
	s.mu.Lock()
	s.all--
	if s.all == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
	if keepAwake {
		s.awake.Add(-1)
	}
}

// keepingAwake reports whether some task keeps the actor awake.
func (s *tasks) keepingAwake() bool { return s.awake.Load() > 0 }

// wait waits until no task runs or the deadline passes, reporting how
// many tasks were still running then.
func (s *tasks) wait(deadline time.Time) int {
	s.mu.Lock()
	if s.all == 0 {
		s.mu.Unlock()
		return 0
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-idle:
		return 0
	case <-t.C:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.all
	}
}
