package rivet

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
)

// Context is what actor code receives in an action or hook: the actor's
// state, vars and connection, and everything else it can do. It is valid
// only during the turn it was passed to; do not keep it or use it from
// other goroutines (use RunInBackground for work outside the turn).
type Context[S, C, V any] struct {
	// State is the actor's state. Change it in place; the change is
	// committed when the turn ends.
	State *S
	// Vars are the actor's ephemeral vars, never persisted.
	Vars *V
	// Conn is the connection the turn serves: set in actions called
	// through a connection (including a stateless call's temporary one)
	// and in connection hooks; nil otherwise.
	Conn *Conn[C]
	// Log carries the actor's name, key and id.
	Log *slog.Logger

	t    *engine.Turn
	inst *instance[S, C, V]
	err  error
}

// Context returns the turn's context.Context: canceled when the caller gives
// up, the action or hook times out or the runtime stops.
func (c *Context[S, C, V]) Context() context.Context { return c.t.Context() }

// ActorID is the actor's unique id.
func (c *Context[S, C, V]) ActorID() string { return c.inst.info.ID }

// Name is the actor's registered name.
func (c *Context[S, C, V]) Name() string { return c.inst.info.Name }

// Key is the actor's key.
func (c *Context[S, C, V]) Key() Key { return append(Key(nil), c.inst.info.Key...) }

// Region is the region the runtime runs in.
func (c *Context[S, C, V]) Region() string { return c.inst.info.Region }

// Request is the HTTP request behind the turn's connection: the WebSocket
// upgrade of a connection, or the request of a stateless call (in
// OnBeforeConnect, CreateConnState, OnConnect and actions). It is nil for
// in-process calls and turns without a connection.
func (c *Context[S, C, V]) Request() *http.Request {
	if c.t.Conn == nil {
		return nil
	}
	return c.t.Conn.Request
}

// Now is the runtime clock's time (a fake clock in rivettest).
func (c *Context[S, C, V]) Now() time.Time { return c.t.Now() }

func (c *Context[S, C, V]) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// Broadcast sends an event to every connection subscribed to it, once the
// turn is durable. Arguments that cannot be encoded fail the turn.
func (c *Context[S, C, V]) Broadcast(event string, args ...any) {
	b, err := codec.MarshalArgs(args)
	if err != nil {
		c.fail(err)
		return
	}
	c.t.Broadcast(event, b)
}

// Conns returns the actor's open connections.
func (c *Context[S, C, V]) Conns() []*Conn[C] {
	ecs := c.t.Conns()
	out := make([]*Conn[C], len(ecs))
	for i, ec := range ecs {
		out[i] = connOf[C](ec)
	}
	return out
}

// KV is the actor's private ordered key/value store.
func (c *Context[S, C, V]) KV() *KV { return &KV{t: c.t} }

// Schedule is the actor's durable scheduler.
func (c *Context[S, C, V]) Schedule() *Schedule { return &Schedule{t: c.t} }

// SaveState commits the turn's changes so far and waits until they are
// durable. Turns commit when they end anyway; use this only to make an
// important change durable before a slow step of the same turn.
func (c *Context[S, C, V]) SaveState() error {
	return c.t.SaveState(c.t.Context())
}

// Sleep puts the actor to sleep when the turn ends.
func (c *Context[S, C, V]) Sleep() { c.t.RequestSleep() }

// Destroy destroys the actor when the turn ends: onDestroy runs and its
// state, KV and alarms are deleted. Later calls get actor.not_found.
func (c *Context[S, C, V]) Destroy() { c.t.RequestDestroy() }

// Client returns a client for calling other actors (in-process; through
// the engine in runner mode). Pass c.Context() to its calls: a call back
// into this actor (itself, or through actors that call it back) then
// fails at once with ErrCallCycle, as it could only run after this turn.
// Use an async action (AsyncContext) to call out without holding the
// actor.
func (c *Context[S, C, V]) Client() *Client {
	return newClient(c.t.Engine(), c.inst.info.Namespace)
}

// Background is handed to work started with RunInBackground.
type Background[S, C, V any] struct {
	ctx  context.Context
	e    *engine.Engine
	inst *instance[S, C, V]
	id   string
}

// Context is canceled when the actor stops: it sleeps (on request: an
// actor with background work does not fall asleep by itself), is
// destroyed, or the runtime stops. RivetKit's abort signal. The stop then
// waits for the work to return, up to Options.SleepGracePeriod.
func (b *Background[S, C, V]) Context() context.Context { return b.ctx }

// Enter runs fn as a new turn of the actor and waits until its changes
// are durable. Once the actor stops (Context is canceled) Enter returns
// Context().Err(): fn may not have run, or its changes may be committed
// by the stop without Enter waiting for them.
func (b *Background[S, C, V]) Enter(fn func(c *Context[S, C, V]) error) error {
	err := b.e.Enter(b.ctx, b.id, func(t *engine.Turn) error {
		inst := t.Instance().(*instance[S, C, V])
		c := inst.ctx(t)
		return finish(c, fn(c))
	})
	if cerr := b.ctx.Err(); err != nil && cerr != nil && errors.Is(err, cerr) {
		return cerr
	}
	return publicError(err)
}

// RunInBackground runs fn outside the turn, after the turn ends. The actor
// stays awake until fn returns. fn re-enters the actor with Enter.
func (c *Context[S, C, V]) RunInBackground(fn func(bg *Background[S, C, V])) {
	e, id, inst := c.t.Engine(), c.inst.info.ID, c.inst
	c.t.RunInBackground(true, func(ctx context.Context) {
		fn(&Background[S, C, V]{ctx: ctx, e: e, inst: inst, id: id})
	})
}

// KeepAwake runs fn outside the turn, after the turn ends, and keeps the
// actor awake until it returns. Its ctx is canceled when the actor stops
// (see Background.Context), which waits for fn up to SleepGracePeriod. An
// error is logged. RivetKit's c.keepAwake(promise).
func (c *Context[S, C, V]) KeepAwake(fn func(ctx context.Context) error) {
	c.background(true, "keepAwake", fn)
}

// WaitUntil runs fn outside the turn, after the turn ends. Unlike
// KeepAwake it does not keep the actor awake: the actor may fall asleep
// while fn runs, and then cancels fn's ctx and waits for fn up to
// SleepGracePeriod before it leaves memory. An error is logged.
// RivetKit's c.waitUntil(promise).
func (c *Context[S, C, V]) WaitUntil(fn func(ctx context.Context) error) {
	c.background(false, "waitUntil", fn)
}

func (c *Context[S, C, V]) background(keepAwake bool, what string, fn func(ctx context.Context) error) {
	log := c.Log
	c.t.RunInBackground(keepAwake, func(ctx context.Context) {
		if err := fn(ctx); err != nil {
			log.Warn(what+" task failed", "err", err)
		}
	})
}

// Conn is a client connection to an actor. Its State is typed connection
// state; it lives as long as the connection and is persisted with the
// connection's record at the end of every turn that served the connection
// or listed the connections (Conns), so that it survives the actor's sleep.
type Conn[C any] struct {
	ec    *engine.Conn
	State *C
}

// ID is the connection's id.
func (c *Conn[C]) ID() string { return c.ec.ID }

// Params are the params the client connected with.
func (c *Conn[C]) Params() Value { return Value{c.ec.Params} }

// Auth is what the actor's onAuth hook returned for this connection.
func (c *Conn[C]) Auth() any { return c.ec.Auth }

// Send sends an event to this connection only, once the current turn is
// durable. Call it from the actor's actions and hooks, not from other
// goroutines.
func (c *Conn[C]) Send(event string, args ...any) error {
	b, err := codec.MarshalArgs(args)
	if err != nil {
		return err
	}
	return c.ec.Send(event, b)
}

// Disconnect closes the connection after the current turn, with a reason.
func (c *Conn[C]) Disconnect(reason string) { c.ec.Disconnect(reason) }
