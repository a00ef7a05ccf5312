package rivetclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivettype"
)

// Status is a connection's state.
type Status string

// Statuses, as RivetKit's client reports them.
const (
	StatusIdle         Status = "idle"         // not connecting (closed, or gave up)
	StatusConnecting   Status = "connecting"   // dialing or waiting for Init
	StatusConnected    Status = "connected"    // Init received
	StatusDisconnected Status = "disconnected" // lost; reconnecting
)

// Reconnection backoff bounds (RivetKit's).
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Connection is a stateful connection to an actor: events, actions as
// this connection, automatic reconnection with exponential backoff and
// jitter. Actions called while disconnected are queued and sent once
// connected; subscriptions are renewed on every reconnect.
type Connection struct {
	h   *Handle
	ctx context.Context
	end context.CancelFunc

	mu        sync.Mutex
	status    Status
	ws        *websocket.Conn
	actorID   string
	connID    string
	nextID    uint64
	pending   map[uint64]chan result
	queued    []protocol.ActionRequest
	handlers  map[string][]*handler
	onError   []func(error)
	onStatus  []func(Status)
	done      chan struct{}
	lastError error
}

type result struct {
	out []byte
	err error
}

type handler struct {
	fn   func(rivet.Args)
	once bool
}

// Connect opens a connection in the background and returns at once; use
// Status, OnStatus or a first Call to wait for it.
func (h *Handle) Connect() *Connection {
	ctx, end := context.WithCancel(context.Background())
	c := &Connection{h: h, ctx: ctx, end: end, status: StatusIdle, pending: map[uint64]chan result{}, handlers: map[string][]*handler{}, done: make(chan struct{})}
	go c.run()
	return c
}

// Status is the connection's state.
func (c *Connection) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// ID is the current connection id ("" until connected).
func (c *Connection) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connID
}

// OnStatus calls fn on every status change.
func (c *Connection) OnStatus(fn func(Status)) {
	c.mu.Lock()
	c.onStatus = append(c.onStatus, fn)
	c.mu.Unlock()
}

// OnError calls fn with connection-level errors (the actor refused the
// connection, or closed it with an error). Connect returns before the
// socket opens, so an error can come before OnError is called: fn then
// receives that error at once, unless the connection has opened since.
func (c *Connection) OnError(fn func(error)) {
	c.mu.Lock()
	c.onError = append(c.onError, fn)
	missed := c.lastError
	c.mu.Unlock()
	if missed != nil {
		fn(missed)
	}
}

func (c *Connection) setStatus(s Status) {
	c.mu.Lock()
	if c.status == s {
		c.mu.Unlock()
		return
	}
	c.status = s
	fns := append([]func(Status){}, c.onStatus...)
	c.mu.Unlock()
	for _, f := range fns {
		f(s)
	}
}

// On subscribes fn to an event; the returned function unsubscribes.
func (c *Connection) On(event string, fn func(args rivet.Args)) (unsubscribe func()) {
	return c.on(event, fn, false)
}

// Once is On for the next event only.
func (c *Connection) Once(event string, fn func(args rivet.Args)) (unsubscribe func()) {
	return c.on(event, fn, true)
}

func (c *Connection) on(event string, fn func(rivet.Args), once bool) func() {
	hd := &handler{fn: fn, once: once}
	c.mu.Lock()
	first := len(c.handlers[event]) == 0
	c.handlers[event] = append(c.handlers[event], hd)
	c.mu.Unlock()
	if first {
		c.sendSubscription(event, true)
	}
	return func() { c.remove(event, hd) }
}

func (c *Connection) remove(event string, hd *handler) {
	c.mu.Lock()
	hs := c.handlers[event]
	for i, x := range hs {
		if x == hd {
			hs = append(hs[:i:i], hs[i+1:]...)
			break
		}
	}
	last := len(hs) == 0 && len(c.handlers[event]) > 0
	if len(hs) == 0 {
		delete(c.handlers, event)
	} else {
		c.handlers[event] = hs
	}
	c.mu.Unlock()
	if last {
		c.sendSubscription(event, false)
	}
}

// sendSubscription is sent only while connected; Init renews them all.
func (c *Connection) sendSubscription(event string, on bool) {
	c.mu.Lock()
	ws, connected := c.ws, c.status == StatusConnected
	c.mu.Unlock()
	if connected {
		_ = c.write(ws, protocol.SubscriptionRequest{EventName: event, Subscribe: on})
	}
}

// Call calls an action as this connection. While disconnected the call
// is queued.
func (c *Connection) Call(ctx context.Context, action string, args ...any) (rivet.Value, error) {
	a, err := codec.MarshalArgs(args)
	if err != nil {
		return rivet.Value{}, fmt.Errorf("rivetclient: %w", err)
	}
	ch := make(chan result, 1)
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return rivet.Value{}, errClosed
	default:
	}
	id := c.nextID
	c.nextID++
	c.pending[id] = ch
	req := protocol.ActionRequest{ID: id, Name: action, Args: a}
	ws, connected := c.ws, c.status == StatusConnected
	if !connected {
		c.queued = append(c.queued, req)
	}
	c.mu.Unlock()
	if connected {
		if err := c.write(ws, req); err != nil {
			c.mu.Lock()
			c.queued = append(c.queued, req) // resent after reconnecting
			c.mu.Unlock()
		}
	}
	select {
	case r := <-ch:
		return rivet.RawValue(r.out), r.err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return rivet.Value{}, ctx.Err()
	}
}

// Close closes the connection for good (code 1000 "Disposed").
func (c *Connection) Close() error {
	c.end()
	<-c.done
	return nil
}

func (c *Connection) write(ws *websocket.Conn, m protocol.Message) error {
	if ws == nil {
		return errClosed
	}
	b, err := protocol.Encode(c.h.c.enc, m)
	if err != nil {
		return err
	}
	typ := websocket.MessageBinary
	if !c.h.c.enc.Binary() {
		typ = websocket.MessageText
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	return ws.Write(ctx, typ, b)
}

// run connects, reconnects and reads until Close.
func (c *Connection) run() {
	defer func() {
		c.failAll(errClosed)
		c.setStatus(StatusIdle)
		close(c.done)
	}()
	backoff := minBackoff
	for c.ctx.Err() == nil {
		c.setStatus(StatusConnecting)
		reachedInit, err := c.session()
		if c.ctx.Err() != nil {
			return
		}
		c.failInflight(err)
		var e *rivettype.Error
		if errors.As(err, &e) {
			c.report(err)
		}
		if reachedInit {
			backoff = minBackoff
		} else if !retryable(err) {
			return
		}
		c.setStatus(StatusDisconnected)
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, maxBackoff)
		select {
		case <-time.After(wait):
		case <-c.ctx.Done():
			return
		}
	}
}

// retryable: errors before Init worth retrying (transport failures, and
// the lifecycle codes RivetKit's client retries).
func retryable(err error) bool {
	var e *rivettype.Error
	if !errors.As(err, &e) {
		return true
	}
	switch e.Group {
	case "guard":
		return true
	case "actor":
		switch e.Code {
		case "stopped", "stopping", "starting", "restarting", "not_found", "overloaded":
			return true
		}
	case "ws":
		return e.Code == "going_away"
	}
	return false
}

func (c *Connection) report(err error) {
	c.mu.Lock()
	c.lastError = err
	fns := append([]func(error){}, c.onError...)
	c.mu.Unlock()
	for _, f := range fns {
		f(err)
	}
}

// session runs one WebSocket until it closes.
func (c *Connection) session() (reachedInit bool, err error) {
	h := c.h
	u, err := h.gatewayURL("/connect", "ws")
	if err != nil {
		return false, err
	}
	protos := []string{"rivet", "rivet_encoding." + h.c.enc.String()}
	if p, err := h.paramsJSON(); err != nil {
		return false, err
	} else if p != "" {
		protos = append(protos, "rivet_conn_params."+url.PathEscape(p))
	}
	hdr := http.Header{}
	for k, v := range h.c.header {
		hdr[k] = v
	}
	ws, _, err := websocket.Dial(c.ctx, u, &websocket.DialOptions{HTTPClient: h.c.http, HTTPHeader: hdr, Subprotocols: protos})
	if err != nil {
		return false, err
	}
	ws.SetReadLimit(-1)
	defer func() {
		code := websocket.StatusNormalClosure
		reason := ""
		if c.ctx.Err() != nil {
			reason = "Disposed"
		}
		_ = ws.Close(code, reason)
		c.mu.Lock()
		if c.ws == ws {
			c.ws = nil
		}
		c.mu.Unlock()
	}()
	for {
		typ, data, err := ws.Read(c.ctx)
		if err != nil {
			return reachedInit, closeError(err)
		}
		_ = typ
		msg, err := protocol.DecodeToClient(h.c.enc, data)
		if err != nil {
			return reachedInit, fmt.Errorf("rivetclient: %w", err)
		}
		switch m := msg.(type) {
		case protocol.Init:
			reachedInit = true
			c.mu.Lock()
			c.ws, c.actorID, c.connID = ws, m.ActorID, m.ConnectionID
			c.status = StatusConnected
			c.lastError = nil
			events := make([]string, 0, len(c.handlers))
			for ev := range c.handlers {
				events = append(events, ev)
			}
			queued := c.queued
			c.queued = nil
			fns := append([]func(Status){}, c.onStatus...)
			c.mu.Unlock()
			for _, f := range fns {
				f(StatusConnected)
			}
			for _, ev := range events {
				_ = c.write(ws, protocol.SubscriptionRequest{EventName: ev, Subscribe: true})
			}
			for _, q := range queued {
				_ = c.write(ws, q)
			}
		case protocol.ActionResponse:
			c.settle(m.ID, result{out: m.Output})
		case protocol.Error:
			e := &rivettype.Error{Group: m.Group, Code: m.Code, Message: m.Message, Public: true}
			if m.Metadata != nil {
				var md any
				if codec.Unmarshal(m.Metadata, &md) == nil {
					e.Metadata = md
				}
			}
			if m.ActionID != nil {
				c.settle(*m.ActionID, result{err: e})
				continue
			}
			return reachedInit, e
		case protocol.Event:
			c.dispatch(m)
		}
	}
}

// closeError turns a close frame's "group.code" reason into an *Error.
func closeError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if g, code, ok := strings.Cut(strings.SplitN(ce.Reason, "#", 2)[0], "."); ok {
			return &rivettype.Error{Group: g, Code: code, Message: "Connection closed: " + ce.Reason, Public: true}
		}
		return fmt.Errorf("rivetclient: connection closed (%d %s)", ce.Code, ce.Reason)
	}
	return err
}

func (c *Connection) settle(id uint64, r result) {
	c.mu.Lock()
	ch := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// failInflight fails the actions sent on a socket that closed; queued ones
// stay for the next socket.
func (c *Connection) failInflight(err error) {
	if err == nil {
		err = errClosed
	}
	c.mu.Lock()
	queued := map[uint64]bool{}
	for _, q := range c.queued {
		queued[q.ID] = true
	}
	var fail []chan result
	for id, ch := range c.pending {
		if !queued[id] {
			fail = append(fail, ch)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	for _, ch := range fail {
		ch <- result{err: err}
	}
}

func (c *Connection) failAll(err error) {
	c.mu.Lock()
	pending := c.pending
	c.pending = map[uint64]chan result{}
	c.queued = nil
	c.mu.Unlock()
	for _, ch := range pending {
		ch <- result{err: err}
	}
}

func (c *Connection) dispatch(m protocol.Event) {
	args, err := rivet.RawArgs(m.Args)
	if err != nil {
		return
	}
	c.mu.Lock()
	hs := append([]*handler{}, c.handlers[m.Name]...)
	c.mu.Unlock()
	for _, hd := range hs {
		if hd.once {
			c.remove(m.Name, hd)
		}
		hd.fn(args)
	}
}

// WebSocket opens a raw WebSocket to the actor's onWebSocket handler;
// path is relative to the actor ("/chat?room=1").
func (h *Handle) WebSocket(ctx context.Context, path string) (*websocket.Conn, error) {
	u, err := h.gatewayURL("/websocket"+ensureSlash(path), "ws")
	if err != nil {
		return nil, err
	}
	protos := []string{"rivet", "rivet_encoding.bare"}
	if p, err := h.paramsJSON(); err != nil {
		return nil, err
	} else if p != "" {
		protos = append(protos, "rivet_conn_params."+url.PathEscape(p))
	}
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: h.c.http, Subprotocols: protos})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	return ws, nil
}
