package rivetclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/remote"
)

// Status is a connection's state.
type Status = remote.Status

// Statuses, as RivetKit's client reports them.
const (
	StatusIdle         = remote.StatusIdle         // not connecting (closed, or gave up)
	StatusConnecting   = remote.StatusConnecting   // dialing or waiting for Init
	StatusConnected    = remote.StatusConnected    // Init received
	StatusDisconnected = remote.StatusDisconnected // lost; reconnecting
)

// Connection is a stateful connection to an actor: events, actions as
// this connection, automatic reconnection with exponential backoff and
// jitter. Actions called while disconnected are queued and sent once
// connected; subscriptions are renewed on every reconnect. (The
// implementation, internal/remote, is shared with the runtime's
// connections between actors in runner mode.)
type Connection struct {
	h  *Handle
	rc *remote.Conn
}

// Connect opens a connection in the background and returns at once; use
// Status, OnStatus or a first Call to wait for it.
func (h *Handle) Connect() *Connection {
	t, err := h.target()
	if err != nil {
		return &Connection{h: h, rc: remote.Failed(err)}
	}
	return &Connection{h: h, rc: h.c.wire().Connect(t, remote.ConnOptions{})}
}

// Status is the connection's state.
func (c *Connection) Status() Status { return c.rc.Status() }

// ID is the current connection id ("" until connected).
func (c *Connection) ID() string { return c.rc.ID() }

// OnStatus calls fn on every status change.
func (c *Connection) OnStatus(fn func(Status)) { c.rc.OnStatus(fn) }

// OnError calls fn with connection-level errors (the actor refused the
// connection, or closed it with an error). Connect returns before the
// socket opens, so an error can come before OnError is called: fn then
// receives that error at once, unless the connection has opened since.
func (c *Connection) OnError(fn func(error)) { c.rc.OnError(fn) }

// On subscribes fn to an event; the returned function unsubscribes.
func (c *Connection) On(event string, fn func(args rivet.Args)) (unsubscribe func()) {
	return c.rc.On(event, argsHandler(fn))
}

// Once is On for the next event only.
func (c *Connection) Once(event string, fn func(args rivet.Args)) (unsubscribe func()) {
	return c.rc.Once(event, argsHandler(fn))
}

// argsHandler drops an event whose arguments do not decode.
func argsHandler(fn func(rivet.Args)) func([]byte) {
	return func(b []byte) {
		if args, err := rivet.RawArgs(b); err == nil {
			fn(args)
		}
	}
}

// Call calls an action as this connection. While disconnected the call
// is queued.
func (c *Connection) Call(ctx context.Context, action string, args ...any) (rivet.Value, error) {
	a, err := codec.MarshalArgs(args)
	if err != nil {
		return rivet.Value{}, fmt.Errorf("rivetclient: %w", err)
	}
	out, err := c.rc.Call(ctx, action, a)
	if errors.Is(err, remote.ErrClosed) {
		err = errClosed
	}
	return rivet.RawValue(out), err
}

// Close closes the connection for good (code 1000 "Disposed").
func (c *Connection) Close() error {
	c.rc.Close()
	return nil
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
