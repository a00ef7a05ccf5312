package engine

import (
	"context"
	"errors"
	"time"

	"github.com/rivetgo/rivet/rivettype"
)

// action runs one action as a turn. A stateless call (conn == nil) on a
// definition with connection hooks runs them around the action on a
// temporary connection, each hook its own turn.
//
// An action that returns a *Detached (an async action) ends its turn at
// once; it is returned, ready to run off the loop (Engine.runDetached),
// with the call's temporary connection, if any, still attached.
func (h *host) action(ctx context.Context, deadline time.Time, conn *Conn, params []byte, name string, rawArgs []byte, encode func(any) ([]byte, error)) ([]byte, *Gate, *Detached, error) {
	if !h.inst.HasAction(name) {
		err := rivettype.ErrActionNotFound.With("Action `%s` was not found.", name)
		h.countError(err)
		return nil, h.lastGate(), nil, err
	}
	rid, once := requestIDOf(conn)
	if once {
		if out, g, ok, err := h.replayed(ctx, rid, name, rawArgs); ok {
			return out, g, nil, err
		}
	}
	var det *Detached
	if conn == nil {
		conn = NewStatelessConn(params, nil)
	}
	if conn.ephemeral {
		if !h.opts.ConnHooks {
			conn.h = h
		} else {
			if g, err := h.connect(ctx, conn); err != nil {
				return nil, g, nil, err
			}
			defer func() {
				if det != nil {
					det.disconnect = true // after the detached part
					return
				}
				h.disconnect(conn, "stateless call done")
			}()
		}
	}
	t := newTurn(h, ctx, conn)
	t.deadline = deadline
	h.e.metrics.Turns.Add(1)
	var out []byte
	err := h.call("action", name, func() error {
		res, err := h.inst.Action(t, name, rawArgs)
		if err != nil {
			return err
		}
		if d, ok := res.(*Detached); ok {
			det = d
			return nil
		}
		res, err = h.inst.BeforeActionResponse(t, name, rawArgs, res)
		if err != nil {
			return err
		}
		out, err = encode(res)
		return err
	})
	record := func() {}
	if once && err == nil && det == nil {
		record = h.recordRequest(t, rid, callFingerprint(name, rawArgs), out)
	}
	g, err := h.endTurn(t, err)
	if err != nil {
		det = nil
	} else {
		record()
	}
	if det != nil {
		h.detach(det, conn)
	}
	return out, g, det, err
}

// connect runs the connection hooks; on success the connection joins.
func (h *host) connect(ctx context.Context, c *Conn) (*Gate, error) {
	t := newTurn(h, ctx, c)
	h.e.metrics.Turns.Add(1)
	err := h.call("connection hooks", "", func() error {
		if err := h.inst.BeforeConnect(t, c.Params); err != nil {
			return err
		}
		if err := h.inst.CreateConnState(t, c, c.Params); err != nil {
			return err
		}
		h.addConn(c)
		return h.inst.Connect(t, c)
	})
	if err != nil {
		h.removeConn(c)
	}
	return h.endTurn(t, err)
}

// disconnect removes a connection and runs onDisconnect once.
func (h *host) disconnect(c *Conn, reason string) {
	if h.abandoned {
		return // the host is leaving and closes every connection
	}
	if _, ok := h.conns[c.ID]; !ok || c.closed {
		return
	}
	c.closed = true
	h.removeConn(c)
	if c.raw && !c.hooked {
		if c.transport != nil && reason != "" {
			c.transport.Close(reason)
		}
		return
	}
	t := newTurn(h, context.WithoutCancel(h.e.ctx), c)
	h.e.metrics.Turns.Add(1)
	hadRecord := c.rec != nil
	c.rec = nil
	err := h.call("onDisconnect", "", func() error { return h.inst.Disconnect(t, c) })
	if err != nil && !Reported(err) {
		h.log().Warn("onDisconnect failed", "conn", c.ID, "err", err)
	}
	if hadRecord && err == nil {
		t.kvDelete(connRecordKey(c.ID)) // in onDisconnect's commit
	}
	_, ferr := h.endTurn(t, err)
	if hadRecord && h.abandoned {
		// onDisconnect overran its time limit: the host leaves, and
		// deletes the record on its way out (host.stop).
		h.dropRecords = append(h.dropRecords, c.ID)
	} else if hadRecord && (err != nil || ferr != nil) {
		// The record goes even when onDisconnect failed (its changes
		// are rolled back): the connection is gone either way.
		t := newTurn(h, context.WithoutCancel(h.e.ctx), nil)
		t.kvDelete(connRecordKey(c.ID))
		_, _ = h.endTurn(t, nil)
	}
	if c.transport != nil && reason != "" {
		c.transport.Close(reason)
	}
}

// runAlarm runs a due alarm's action and deletes the alarm in the same
// commit. A failed action is logged and the alarm deleted on its own: an
// alarm fires at least once, not until it succeeds.
func (h *host) runAlarm(id string) {
	a, ok := h.alarms[id]
	if !ok {
		return // canceled, or already fired
	}
	now := h.e.clock.Now()
	if a.At.After(now) {
		h.e.sched.add(a.At, h.id, id)
		return
	}
	h.e.metrics.Alarms.Add(1)
	if h.nm != nil {
		h.nm.alarmLag.Observe(now.Sub(a.At).Seconds())
	}
	t := newTurn(h, h.e.ctx, nil)
	h.e.metrics.Turns.Add(1)
	err := h.call("scheduled action", a.Action, func() error {
		if !h.inst.HasAction(a.Action) {
			return rivettype.ErrActionNotFound.With("Action `%s` was not found.", a.Action)
		}
		res, err := h.inst.Action(t, a.Action, a.Args)
		if d, ok := res.(*Detached); ok && err == nil {
			// An async action: its detached part runs as background
			// work that keeps the actor awake.
			h.startBackground(bgTask{keepAwake: true, fn: func(ctx context.Context) {
				if _, err := d.Run(ctx, func(fn func(t *Turn) error) error { return h.e.Enter(ctx, h.id, fn) }); err != nil {
					h.log().Warn("scheduled action failed", "action", a.Action, "err", err)
				}
			}})
		}
		return err
	})
	if err == nil {
		t.CancelAlarm(id)
	}
	if _, ferr := h.endTurn(t, err); ferr != nil || err != nil {
		if err == nil {
			err = ferr
		}
		if !Reported(err) {
			h.log().Warn("scheduled action failed", "action", a.Action, "alarm", id, "err", err)
		}
		switch {
		case errors.Is(err, rivettype.ErrCommitFailed):
			// The actor restarts from durable state, the alarm with it.
		case t.storeFailed.Load() || errors.Is(err, rivettype.ErrStorage):
			// The store, not the action, failed: the alarm stays and
			// runs again after a pause growing to a minute.
			n := h.alarmRetries[id]
			if h.alarmRetries == nil {
				h.alarmRetries = map[string]int{}
			}
			h.alarmRetries[id] = n + 1
			delay := min(time.Second<<min(n, 6), time.Minute)
			h.log().Warn("scheduled action retried: the store failed", "action", a.Action, "alarm", id, "retry_in", delay)
			h.e.sched.add(now.Add(delay), h.id, id)
			return
		default:
			t := newTurn(h, h.e.ctx, nil)
			t.CancelAlarm(id)
			_, _ = h.endTurn(t, nil)
		}
	}
	delete(h.alarmRetries, id)
}
