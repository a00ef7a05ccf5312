package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/rivetgo/rivet/rivettype"
)

// Detached is what Instance.Action returns for an action that runs
// outside the actor (an async action): the turn that dispatched it ends
// and is committed, the actor is free for other turns, and Run goes on
// on the caller's goroutine, entering the actor for turns of its own with
// enter (each committed before enter returns). The call's connection
// stays attached until Run returns; the actor stays awake meanwhile.
// When Run returns, a last turn passes its result through the
// actor's onBeforeActionResponse and encodes it.
//
// Run's context is the caller's, bounded by the action timeout and
// canceled when the actor stops; enter works after it ended, until the
// actor stops. Neither carries the actor on its call
// chain, so a call back into the actor from Run, or from actors Run
// calls, is not a cycle.
type Detached struct {
	Run func(ctx context.Context, enter func(fn func(t *Turn) error) error) (any, error)

	// Set by the host when the dispatching turn ends.
	h          *host
	conn       *Conn
	disconnect bool // conn is the call's temporary connection
	runCtx     context.Context
}

// errStoppedDuringAsync: a turn of an async action after its actor
// stopped.
var errStoppedDuringAsync = &rivettype.Error{Group: "actor", Code: "stopped", Message: "The actor stopped (sleep, destroy or shutdown) during the async action.", Public: true}

// detach readies d to run off the actor's loop once its dispatching turn
// ends (on the loop).
func (h *host) detach(d *Detached, conn *Conn) {
	d.h, d.conn = h, conn
	d.runCtx = h.runCtx
	if d.runCtx == nil {
		d.runCtx = h.e.ctx
	}
	// It keeps the actor awake, but a stop does not wait for it as for
	// background work: it may be waiting for the very turn that stops
	// the actor; the stop cancels its context instead.
	h.bg.awake.Add(1)
}

// runDetached runs a detached action on the caller's goroutine and
// returns its encoded result.
func (e *Engine) runDetached(ctx context.Context, id, name string, args []byte, d *Detached, encode func(any) ([]byte, error), deadline time.Time) (out []byte, err error) {
	h := d.h
	defer e.releaseDetached(id, d)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !deadline.IsZero() {
		var dcancel context.CancelFunc
		rctx, dcancel = context.WithDeadline(rctx, deadline)
		defer dcancel()
	}
	stop := context.AfterFunc(d.runCtx, cancel)
	defer stop()
	// Turns may still run once rctx ended (to clean up after a caller
	// that went away, or a timeout), until the actor stops. Their context
	// is not canceled when it stops: a turn that stopped the actor
	// (c.Sleep) is committed, and its caller waits for that.
	tctx := context.WithoutCancel(ctx)
	enter := func(fn func(t *Turn) error) error {
		if d.runCtx.Err() != nil {
			return errStoppedDuringAsync
		}
		return e.EnterAs(tctx, id, d.conn, fn)
	}
	res, err := func() (res any, err error) {
		defer func() {
			if r := recover(); r != nil {
				h.log().Error("actor code failed", "in", "action", "action", name, "panic", r, "stack", string(debug.Stack()))
				err = AsReported(fmt.Errorf("panic in action %s: %v", name, r))
			}
		}()
		return d.Run(rctx, enter)
	}()
	if err == nil {
		err = enter(func(t *Turn) error {
			r, err := t.h.inst.BeforeActionResponse(t, name, args, res)
			if err != nil {
				return err
			}
			out, err = encode(r)
			return err
		})
	}
	if err != nil && !deadline.IsZero() && !time.Now().Before(deadline) &&
		(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return nil, rivettype.ErrActionTimedOut
	}
	return out, h.report("action", name, err)
}

// releaseDetached ends a detached action: its temporary connection goes,
// and the actor may sleep again.
func (e *Engine) releaseDetached(id string, d *Detached) {
	if d.disconnect {
		e.Disconnect(d.conn, id, "stateless call done")
	}
	d.h.bg.awake.Add(-1)
	// Let the actor re-evaluate sleep now that it is free.
	e.pushTo(d.h, job{run: func(*host) {}, fail: func(error) {}, idle: true, notWork: true})
}
