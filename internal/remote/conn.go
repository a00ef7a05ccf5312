package remote

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

// ErrClosed fails the calls of a connection that closed for good; the
// public APIs map it to their own error.
var ErrClosed = errors.New("connection closed")

// ConnOptions are a connection's choices that differ between its users.
type ConnOptions struct {
	// EndOnActorClose ends the connection for good, reporting the reason
	// to OnClose, when the actor closes it (a normal closure whose reason
	// is not an error code: conn.Disconnect, or the actor destroyed),
	// as the runtime's in-process connection does; otherwise it
	// reconnects, as RivetKit's client does.
	EndOnActorClose bool
}

// Conn is a stateful connection to an actor over the endpoint's WebSocket
// (/connect): the client protocol's handshake (Init), event
// subscriptions, actions over the socket, and automatic reconnection
// with exponential backoff and jitter. Actions called while disconnected
// are queued and sent once connected; subscriptions are renewed on every
// reconnect. It is the one implementation behind rivetclient.Connection
// and, in runner mode, rivet.Connection. Event arguments and action
// results are the encoded CBOR arrays and values.
type Conn struct {
	c    *Client
	url  string
	prot []string
	opts ConnOptions
	ctx  context.Context
	end  context.CancelFunc

	mu        sync.Mutex
	status    Status
	ws        *websocket.Conn
	connID    string
	nextID    uint64
	pending   map[uint64]chan result
	queued    []protocol.ActionRequest
	handlers  map[string][]*handler
	onError   []func(error)
	onStatus  []func(Status)
	onClose   []func(reason string)
	opened    chan struct{} // closed at the first Init
	done      chan struct{} // closed when run returns
	lastError error
	// final is why the connection ended for good (nil: Close, or still
	// running).
	final error
}

type result struct {
	out []byte
	err error
}

type handler struct {
	fn   func(args []byte)
	once bool
}

// Connect opens a connection to t in the background and returns at once;
// use Opened, OnStatus or a first Call to wait for it.
func (c *Client) Connect(t Target, o ConnOptions) *Conn {
	prot := []string{"rivet", "rivet_encoding." + c.Enc.String()}
	if t.Params != "" {
		prot = append(prot, "rivet_conn_params."+url.PathEscape(t.Params))
	}
	cn := newConn(c, o)
	cn.url, cn.prot = c.GatewayURL(t, "/connect", "ws"), prot
	go cn.run()
	return cn
}

// Failed is a connection that could not start (its params or input did
// not encode): idle, err reported to OnError, calls fail.
func Failed(err error) *Conn {
	cn := newConn(nil, ConnOptions{})
	cn.status, cn.lastError, cn.final = StatusIdle, err, err
	cn.end()
	close(cn.done)
	return cn
}

func newConn(c *Client, o ConnOptions) *Conn {
	ctx, end := context.WithCancel(context.Background())
	return &Conn{c: c, opts: o, ctx: ctx, end: end, status: StatusIdle, pending: map[uint64]chan result{},
		handlers: map[string][]*handler{}, opened: make(chan struct{}), done: make(chan struct{})}
}

// Status is the connection's state.
func (cn *Conn) Status() Status {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.status
}

// ID is the current connection id ("" until connected; a reconnect is a
// new connection for the actor, with a new id).
func (cn *Conn) ID() string {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.connID
}

// Opened waits until the connection first opened (nil), ended for good
// (the reason), or ctx ends (the last error seen, else ctx's).
func (cn *Conn) Opened(ctx context.Context) error {
	select {
	case <-cn.opened:
		return nil
	case <-cn.done:
		select {
		case <-cn.opened:
			return nil
		default:
		}
		cn.mu.Lock()
		defer cn.mu.Unlock()
		if cn.final != nil {
			return cn.final
		}
		return ErrClosed
	case <-ctx.Done():
		cn.mu.Lock()
		defer cn.mu.Unlock()
		if cn.lastError != nil {
			return cn.lastError
		}
		return ctx.Err()
	}
}

// OnStatus calls fn on every status change.
func (cn *Conn) OnStatus(fn func(Status)) {
	cn.mu.Lock()
	cn.onStatus = append(cn.onStatus, fn)
	cn.mu.Unlock()
}

// OnError calls fn with connection-level errors (the actor refused the
// connection, or closed it with an error). Connect returns before the
// socket opens, so an error can come before OnError is called: fn then
// receives that error at once, unless the connection has opened since.
func (cn *Conn) OnError(fn func(error)) {
	cn.mu.Lock()
	cn.onError = append(cn.onError, fn)
	missed := cn.lastError
	cn.mu.Unlock()
	if missed != nil {
		fn(missed)
	}
}

// OnClose calls fn once when the connection ends for good other than by
// Close: refused, given up, or (EndOnActorClose) closed by the actor. A
// connection already ended calls fn at once.
func (cn *Conn) OnClose(fn func(reason string)) {
	cn.mu.Lock()
	cn.onClose = append(cn.onClose, fn)
	cn.mu.Unlock()
	select {
	case <-cn.done:
		if r, ok := cn.closeReason(); ok {
			fn(r)
		}
	default:
	}
}

// closeReason is what OnClose reports, once run has returned.
func (cn *Conn) closeReason() (string, bool) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.final == nil {
		return "", false
	}
	var ac *actorClose
	if errors.As(cn.final, &ac) {
		return ac.reason, true
	}
	return cn.final.Error(), true
}

func (cn *Conn) setStatus(s Status) {
	cn.mu.Lock()
	if cn.status == s {
		cn.mu.Unlock()
		return
	}
	cn.status = s
	fns := append([]func(Status){}, cn.onStatus...)
	cn.mu.Unlock()
	for _, f := range fns {
		f(s)
	}
}

// On subscribes fn to an event (its arguments as the encoded array); the
// returned function unsubscribes. Handlers run in event order on the
// connection's goroutine.
func (cn *Conn) On(event string, fn func(args []byte)) (unsubscribe func()) {
	return cn.on(event, fn, false)
}

// Once is On for the next event only.
func (cn *Conn) Once(event string, fn func(args []byte)) (unsubscribe func()) {
	return cn.on(event, fn, true)
}

func (cn *Conn) on(event string, fn func([]byte), once bool) func() {
	hd := &handler{fn: fn, once: once}
	cn.mu.Lock()
	first := len(cn.handlers[event]) == 0
	cn.handlers[event] = append(cn.handlers[event], hd)
	cn.mu.Unlock()
	if first {
		cn.sendSubscription(event, true)
	}
	return func() { cn.remove(event, hd) }
}

func (cn *Conn) remove(event string, hd *handler) {
	cn.mu.Lock()
	hs := cn.handlers[event]
	found := false
	for i, x := range hs {
		if x == hd {
			hs = append(hs[:i:i], hs[i+1:]...)
			found = true
			break
		}
	}
	last := found && len(hs) == 0
	if len(hs) == 0 {
		delete(cn.handlers, event)
	} else {
		cn.handlers[event] = hs
	}
	cn.mu.Unlock()
	if last {
		cn.sendSubscription(event, false)
	}
}

// sendSubscription is sent only while connected; Init renews them all.
func (cn *Conn) sendSubscription(event string, on bool) {
	cn.mu.Lock()
	ws, connected := cn.ws, cn.status == StatusConnected
	cn.mu.Unlock()
	if connected {
		_ = cn.write(ws, protocol.SubscriptionRequest{EventName: event, Subscribe: on})
	}
}

// Call calls an action as this connection; args is the encoded argument
// array. While disconnected the call is queued.
func (cn *Conn) Call(ctx context.Context, action string, args []byte) ([]byte, error) {
	ch := make(chan result, 1)
	cn.mu.Lock()
	select {
	case <-cn.done:
		cn.mu.Unlock()
		return nil, ErrClosed
	default:
	}
	id := cn.nextID
	cn.nextID++
	cn.pending[id] = ch
	req := protocol.ActionRequest{ID: id, Name: action, Args: args}
	ws, connected := cn.ws, cn.status == StatusConnected
	if !connected {
		cn.queued = append(cn.queued, req)
	}
	cn.mu.Unlock()
	if connected {
		if err := cn.write(ws, req); err != nil {
			cn.mu.Lock()
			cn.queued = append(cn.queued, req) // resent after reconnecting
			cn.mu.Unlock()
		}
	}
	select {
	case r := <-ch:
		return r.out, r.err
	case <-ctx.Done():
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Close closes the connection for good (code 1000 "Disposed") and waits
// for its goroutine to end.
func (cn *Conn) Close() {
	cn.end()
	<-cn.done
}

// Done is closed once the connection has ended for good.
func (cn *Conn) Done() <-chan struct{} { return cn.done }

func (cn *Conn) write(ws *websocket.Conn, m protocol.Message) error {
	if ws == nil {
		return ErrClosed
	}
	b, err := protocol.Encode(cn.c.Enc, m)
	if err != nil {
		return err
	}
	typ := websocket.MessageBinary
	if !cn.c.Enc.Binary() {
		typ = websocket.MessageText
	}
	ctx, cancel := context.WithTimeout(cn.ctx, 10*time.Second)
	defer cancel()
	return ws.Write(ctx, typ, b)
}

// actorClose is a normal closure by the actor (EndOnActorClose).
type actorClose struct{ reason string }

func (e *actorClose) Error() string { return "connection closed by the actor: " + e.reason }

// run connects, reconnects and reads until Close or an end for good.
func (cn *Conn) run() {
	var final error
	defer func() {
		cn.mu.Lock()
		cn.final = final
		cn.mu.Unlock()
		fail := final
		var ac *actorClose
		if fail == nil || errors.As(fail, &ac) {
			fail = ErrClosed
		}
		cn.failAll(fail)
		cn.setStatus(StatusIdle)
		close(cn.done)
		if r, ok := cn.closeReason(); ok {
			cn.mu.Lock()
			fns := append([]func(string){}, cn.onClose...)
			cn.mu.Unlock()
			for _, f := range fns {
				f(r)
			}
		}
	}()
	backoff := minBackoff
	for cn.ctx.Err() == nil {
		cn.setStatus(StatusConnecting)
		reachedInit, err := cn.session()
		if cn.ctx.Err() != nil {
			return
		}
		var ac *actorClose
		if errors.As(err, &ac) {
			final = err
			return
		}
		cn.failInflight(err)
		var e *rivettype.Error
		if errors.As(err, &e) {
			cn.report(err)
		}
		if reachedInit {
			backoff = minBackoff
		} else if !retryable(err) {
			final = err
			return
		}
		cn.setStatus(StatusDisconnected)
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, maxBackoff)
		select {
		case <-time.After(wait):
		case <-cn.ctx.Done():
			return
		}
	}
}

// retryable: errors before Init worth retrying (transport failures, the
// engine's routing timeouts, and the lifecycle codes RivetKit's client
// retries).
func retryable(err error) bool {
	var e *rivettype.Error
	if !errors.As(err, &e) {
		return true
	}
	switch e.Group {
	case "guard", "pegboard":
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

func (cn *Conn) report(err error) {
	cn.mu.Lock()
	cn.lastError = err
	fns := append([]func(error){}, cn.onError...)
	cn.mu.Unlock()
	for _, f := range fns {
		f(err)
	}
}

// session runs one WebSocket until it closes.
func (cn *Conn) session() (reachedInit bool, err error) {
	hdr := http.Header{}
	for k, v := range cn.c.Header {
		hdr[k] = v
	}
	ws, _, err := websocket.Dial(cn.ctx, cn.url, &websocket.DialOptions{HTTPClient: cn.c.HTTP, HTTPHeader: hdr, Subprotocols: cn.prot})
	if err != nil {
		return false, cn.c.scrub(err)
	}
	ws.SetReadLimit(-1)
	defer func() {
		reason := ""
		if cn.ctx.Err() != nil {
			reason = "Disposed"
		}
		_ = ws.Close(websocket.StatusNormalClosure, reason)
		cn.mu.Lock()
		if cn.ws == ws {
			cn.ws = nil
		}
		cn.mu.Unlock()
	}()
	for {
		_, data, err := ws.Read(cn.ctx)
		if err != nil {
			return reachedInit, cn.closeError(err, reachedInit)
		}
		msg, err := protocol.DecodeToClient(cn.c.Enc, data)
		if err != nil {
			return reachedInit, fmt.Errorf("rivet: %w", err)
		}
		switch m := msg.(type) {
		case protocol.Init:
			reachedInit = true
			cn.mu.Lock()
			cn.ws, cn.connID = ws, m.ConnectionID
			cn.status = StatusConnected
			cn.lastError = nil
			events := make([]string, 0, len(cn.handlers))
			for ev := range cn.handlers {
				events = append(events, ev)
			}
			queued := cn.queued
			cn.queued = nil
			fns := append([]func(Status){}, cn.onStatus...)
			select {
			case <-cn.opened:
			default:
				close(cn.opened)
			}
			cn.mu.Unlock()
			for _, f := range fns {
				f(StatusConnected)
			}
			for _, ev := range events {
				_ = cn.write(ws, protocol.SubscriptionRequest{EventName: ev, Subscribe: true})
			}
			for _, q := range queued {
				_ = cn.write(ws, q)
			}
		case protocol.ActionResponse:
			cn.settle(m.ID, result{out: m.Output})
		case protocol.Error:
			e := &rivettype.Error{Group: m.Group, Code: m.Code, Message: m.Message, Public: true}
			if m.Metadata != nil {
				var md any
				if codec.Unmarshal(m.Metadata, &md) == nil {
					e.Metadata = md
				}
			}
			if m.ActionID != nil {
				cn.settle(*m.ActionID, result{err: e})
				continue
			}
			return reachedInit, e
		case protocol.Event:
			cn.dispatch(m)
		}
	}
}

// closeError turns a close frame's "group.code" reason into an *Error; a
// normal closure with any other reason after Init is the actor's, an
// *actorClose when EndOnActorClose.
func (cn *Conn) closeError(err error, reachedInit bool) error {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return err
	}
	if g, code, ok := strings.Cut(strings.SplitN(ce.Reason, "#", 2)[0], "."); ok {
		return &rivettype.Error{Group: g, Code: code, Message: "Connection closed: " + ce.Reason, Public: true}
	}
	if cn.opts.EndOnActorClose && reachedInit && ce.Code == websocket.StatusNormalClosure {
		return &actorClose{reason: ce.Reason}
	}
	return fmt.Errorf("rivet: connection closed (%d %s)", ce.Code, ce.Reason)
}

func (cn *Conn) settle(id uint64, r result) {
	cn.mu.Lock()
	ch := cn.pending[id]
	delete(cn.pending, id)
	cn.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// failInflight fails the actions sent on a socket that closed; queued ones
// stay for the next socket.
func (cn *Conn) failInflight(err error) {
	if err == nil {
		err = ErrClosed
	}
	cn.mu.Lock()
	queued := map[uint64]bool{}
	for _, q := range cn.queued {
		queued[q.ID] = true
	}
	var fail []chan result
	for id, ch := range cn.pending {
		if !queued[id] {
			fail = append(fail, ch)
			delete(cn.pending, id)
		}
	}
	cn.mu.Unlock()
	for _, ch := range fail {
		ch <- result{err: err}
	}
}

func (cn *Conn) failAll(err error) {
	cn.mu.Lock()
	pending := cn.pending
	cn.pending = map[uint64]chan result{}
	cn.queued = nil
	cn.mu.Unlock()
	for _, ch := range pending {
		ch <- result{err: err}
	}
}

func (cn *Conn) dispatch(m protocol.Event) {
	cn.mu.Lock()
	hs := append([]*handler{}, cn.handlers[m.Name]...)
	cn.mu.Unlock()
	for _, hd := range hs {
		if hd.once {
			cn.remove(m.Name, hd)
		}
		hd.fn(m.Args)
	}
}
