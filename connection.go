package rivet

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/remote"
)

// maxQueuedEvents bounds the events waiting for a slow in-process
// subscriber; past it the connection is closed rather than stalling the
// actor.
const maxQueuedEvents = 10_000

// Connection is an open, stateful connection to an actor: it receives the
// events it subscribes to with On and calls actions as itself (c.Conn is
// set in them). Events arrive in the order the actor emitted them, each
// after the turn that emitted it is durable.
type Connection struct {
	h  *Handle
	id string
	ec *engine.Conn
	// rc, in runner mode, is the connection through the engine (see
	// connectRemote); ec is then nil.
	rc *remote.Conn

	mu       sync.Mutex
	handlers map[string][]*eventHandler
	// handlerSeq numbers handlers as On registers them: an event goes
	// only to the handlers registered when the actor sent it.
	handlerSeq uint64
	queue      []queuedEvent
	closed     bool
	reason     string
	onClose    []func(reason string)
	wake       chan struct{}
	done       chan struct{}
}

type eventHandler struct {
	fn   func(Args)
	once bool
	seq  uint64
}

type queuedEvent struct {
	name string
	args []byte
	gate *engine.Gate
	// handlerSeq is the connection's handlerSeq when the event was sent.
	handlerSeq uint64
}

// Connect opens a connection. The actor's onBeforeConnect,
// createConnState and onConnect run before it returns; an error from them
// rejects the connection.
func (h *Handle) Connect(ctx context.Context) (*Connection, error) {
	id, err := h.ID(ctx)
	if err != nil {
		return nil, err
	}
	if h.c.remote != nil {
		return h.connectRemote(ctx, id)
	}
	c := &Connection{h: h, id: id, handlers: map[string][]*eventHandler{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.ec = engine.NewConn(engine.NewConnID(), h.params, nil, transport{c})
	if err := h.c.e.Connect(ctx, id, c.ec); err != nil {
		return nil, publicError(err)
	}
	go c.deliver()
	return c, nil
}

// connectRemote connects through the engine, to the actor by id
// wherever it is placed, with the one client connection implementation
// (internal/remote, as rivetclient): a lost socket reconnects as the
// official client does, and calls made meanwhile wait for it. It returns
// once the actor accepted the connection (its connect hooks ran), or with
// the actor's refusal.
func (h *Handle) connectRemote(ctx context.Context, id string) (*Connection, error) {
	t := h.remoteTarget(id)
	rc := h.c.remote.Connect(t, remote.ConnOptions{EndOnActorClose: true})
	if err := rc.Opened(ctx); err != nil {
		rc.Close()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, publicError(err)
	}
	return &Connection{h: h, id: id, rc: rc}, nil
}

// ID is the connection's id (in runner mode, the current socket's: a
// reconnect is a new connection for the actor).
func (c *Connection) ID() string {
	if c.rc != nil {
		return c.rc.ID()
	}
	return c.ec.ID
}

// transport adapts a Connection to engine.Transport. Its methods run on
// the actor's loop and must not block.
type transport struct{ c *Connection }

func (t transport) Event(ev *engine.Event, gate *engine.Gate) { t.c.event(ev.Name, ev.Args, gate) }
func (t transport) Close(reason string)                       { t.c.closeFromActor(reason) }

func (c *Connection) event(name string, args []byte, gate *engine.Gate) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= maxQueuedEvents {
		// A subscriber this slow is dropped, not allowed to stall the
		// actor or grow without bound.
		c.mu.Unlock()
		c.closeFromActor("event queue overflow")
		go c.h.c.e.Disconnect(c.ec, c.id, "")
		return
	}
	c.queue = append(c.queue, queuedEvent{name: name, args: args, gate: gate, handlerSeq: c.handlerSeq})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// closeFromActor marks the connection closed by the actor.
func (c *Connection) closeFromActor(reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.reason = true, reason
	fns := c.onClose
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	for _, fn := range fns {
		c.safely("OnClose handler", func() { fn(reason) })
	}
}

// safely runs a handler the user gave the connection (On, OnClose): it
// runs on the runtime's goroutines, so a panic in it is logged with the
// actor's fields and swallowed rather than ending the process.
func (c *Connection) safely(what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			c.h.c.e.ActorLog(c.id).Error("panic in connection "+what, "conn", c.ec.ID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

func (c *Connection) deliver() {
	defer close(c.done)
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			<-c.wake
			continue
		}
		ev := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		<-ev.gate.Done()
		if ev.gate.Err() != nil {
			continue // the turn never became durable: its events never happened
		}
		args, err := codec.SplitArgs(ev.args)
		if err != nil {
			continue
		}
		// The handlers registered when the actor sent the event (and
		// still registered): one registered after it, while the event
		// waited here, must not receive what was sent before it
		// subscribed.
		c.mu.Lock()
		var hs []*eventHandler
		keep := c.handlers[ev.name][:0:0]
		for _, eh := range c.handlers[ev.name] {
			due := eh.seq <= ev.handlerSeq
			if due {
				hs = append(hs, eh)
			}
			if !due || !eh.once {
				keep = append(keep, eh)
			}
		}
		c.handlers[ev.name] = keep
		c.mu.Unlock()
		for _, eh := range hs {
			c.safely("event handler", func() { eh.fn(Args{args}) })
		}
	}
}

// On subscribes fn to an event; it returns a function that unsubscribes.
// Handlers run one at a time, in event order, on the connection's own
// goroutine.
func (c *Connection) On(event string, fn func(args Args)) (unsubscribe func()) {
	return c.on(event, fn, false)
}

// Once is On for a single event.
func (c *Connection) Once(event string, fn func(args Args)) (unsubscribe func()) {
	return c.on(event, fn, true)
}

func (c *Connection) on(event string, fn func(Args), once bool) func() {
	if c.rc != nil {
		h := func(b []byte) {
			if args, err := RawArgs(b); err == nil {
				c.safely("event handler", func() { fn(args) })
			}
		}
		if once {
			return c.rc.Once(event, h)
		}
		return c.rc.On(event, h)
	}
	c.mu.Lock()
	c.handlerSeq++
	eh := &eventHandler{fn: fn, once: once, seq: c.handlerSeq}
	first := len(c.handlers[event]) == 0
	c.handlers[event] = append(c.handlers[event], eh)
	c.mu.Unlock()
	if first {
		_ = c.h.c.e.Subscribe(context.Background(), c.id, c.ec, event, true)
	}
	return func() {
		c.mu.Lock()
		hs := c.handlers[event]
		for i, x := range hs {
			if x == eh {
				c.handlers[event] = append(hs[:i:i], hs[i+1:]...)
				break
			}
		}
		last := len(c.handlers[event]) == 0
		c.mu.Unlock()
		if last {
			_ = c.h.c.e.Subscribe(context.Background(), c.id, c.ec, event, false)
		}
	}
}

// OnEvent subscribes to an event whose first argument decodes as T.
func OnEvent[T any](c *Connection, event string, fn func(T)) (unsubscribe func()) {
	return c.On(event, func(a Args) {
		var v T
		if a.Len() > 0 && a.Decode(0, &v) != nil {
			return
		}
		fn(v)
	})
}

// OnClose registers fn to run when the actor closes the connection.
func (c *Connection) OnClose(fn func(reason string)) {
	if c.rc != nil {
		c.rc.OnClose(func(reason string) { c.safely("OnClose handler", func() { fn(reason) }) })
		return
	}
	c.mu.Lock()
	c.onClose = append(c.onClose, fn)
	c.mu.Unlock()
}

// ErrConnectionClosed is returned by calls on a closed connection.
var ErrConnectionClosed = errors.New("rivet: connection closed")

// Call calls an action as this connection.
func (c *Connection) Call(ctx context.Context, action string, args ...any) (Value, error) {
	if c.rc != nil {
		b, err := codec.MarshalArgs(args)
		if err != nil {
			return Value{}, ErrInvalidArguments.With("%v", err)
		}
		out, err := c.rc.Call(ctx, action, b)
		if errors.Is(err, remote.ErrClosed) {
			return Value{}, ErrConnectionClosed
		}
		if err != nil {
			return Value{}, publicError(err)
		}
		return Value{out}, nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return Value{}, ErrConnectionClosed
	}
	b, err := codec.MarshalArgs(args)
	if err != nil {
		return Value{}, ErrInvalidArguments.With("%v", err)
	}
	out, err := c.h.c.e.Call(ctx, c.id, c.ec, c.h.params, action, b, codec.Marshal, c.h.c.actionTimeout(c.h.name))
	if err != nil {
		return Value{}, publicError(err)
	}
	return Value{out}, nil
}

// Close closes the connection; the actor's onDisconnect runs. Events
// already durable are still delivered before Close returns.
func (c *Connection) Close(ctx context.Context) error {
	if c.rc != nil {
		done := make(chan struct{})
		go func() { c.rc.Close(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		c.h.c.e.Disconnect(c.ec, c.id, "")
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
