package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivettype"
)

var (
	errSendQueueFull        = &rivettype.Error{Group: "message", Code: "outgoing_queue_full", Message: "The client does not read its messages fast enough.", Public: true}
	errInvalidUTF8          = &rivettype.Error{Group: "message", Code: "invalid_utf8", Message: "Text frame is not valid UTF-8.", Public: true}
	errEventNameTooLong     = &rivettype.Error{Group: "message", Code: "event_name_too_long", Message: "Event name too long.", Public: true}
	errTooManySubscriptions = &rivettype.Error{Group: "connection", Code: "too_many_subscriptions", Message: "Too many event subscriptions.", Public: true}
)

// newSender returns a sender for a socket with the gateway's queue limits;
// a client that falls behind them is logged (log) and counted.
func (g *Gateway) newSender(c *websocket.Conn, log *slog.Logger, onErr func(error)) *sender {
	lim := queueLimits{messages: g.cfg.SendQueue, bytes: g.cfg.SendQueueBytes, writeTimeout: g.cfg.WriteTimeout}
	return newSender(c, lim, onErr, func(queued int) {
		g.metrics.countError(errSendQueueFull)
		log.Warn("websocket client does not read its messages: disconnected",
			"queued_bytes", queued, "send_queue_bytes", lim.bytes, "send_queue", lim.messages)
	})
}

// closeReason is "group.code", at most 123 bytes (the WebSocket limit).
func closeReason(err error) string {
	e := public(err)
	s := e.Group + "." + e.Code
	if len(s) > 123 {
		s = s[:123]
	}
	return s
}

// subprotocols splits the Sec-WebSocket-Protocol header values.
func subprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// accept completes a WebSocket upgrade, selecting subprotocol "rivet".
// The socket's network connection is a corkConn (nil if the
// ResponseWriter could not be hijacked through it).
func (g *Gateway) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *corkConn, error) {
	opts := &websocket.AcceptOptions{Subprotocols: []string{"rivet"}}
	if len(g.cfg.Origins) == 0 {
		opts.InsecureSkipVerify = true // any origin, as with CORS
	} else {
		for _, o := range g.cfg.Origins {
			if u, err := url.Parse(o); err == nil && u.Host != "" {
				opts.OriginPatterns = append(opts.OriginPatterns, u.Host)
			} else {
				opts.OriginPatterns = append(opts.OriginPatterns, o)
			}
		}
	}
	cw := &corkWriter{ResponseWriter: w}
	c, err := websocket.Accept(cw, r, opts)
	if err != nil {
		return nil, nil, err
	}
	c.SetReadLimit(-1) // enforced per message by the gateway
	return c, cw.conn, nil
}

// rejectWebSocket completes the upgrade and closes at once with 1011
// "group.code", as RivetKit's engine does for routing errors.
func (g *Gateway) rejectWebSocket(w http.ResponseWriter, r *http.Request, err error) {
	g.metrics.countError(public(err))
	if !quiet(err) {
		g.log.Error("websocket rejected", "path", r.URL.Path, "err", err)
	}
	c, _, aerr := g.accept(w, r)
	if aerr != nil {
		return
	}
	_ = c.Close(websocket.StatusInternalError, closeReason(err))
}

// wsConn is one RivetKit connection over a WebSocket.
type wsConn struct {
	g       *Gateway
	c       *websocket.Conn
	enc     protocol.Encoding
	actorID string
	log     *slog.Logger // carries actor, key and actor_id
	ec      *engine.Conn
	// link is set for a socket the Rivet Engine holds (runner mode).
	link engine.TunnelLink
	out  *sender
	ctx  context.Context
	// calls is the context of the connection's action calls: canceled
	// when the read loop ends (the client closed the socket or was
	// dropped), so that calls still waiting for the actor are dropped
	// instead of run for a client that cannot get their answers.
	calls       context.Context
	cancelCalls context.CancelFunc
	// subs are the connection's subscriptions (read loop only).
	subs map[string]struct{}
	// slots bound the actions under way (maxPendingActions).
	slots chan struct{}
	// reading: the read loop waits for a message (liveness.go).
	reading readState
	// actions tracks action requests under way; a close from the actor
	// waits for their answers (the action that put the actor to sleep or
	// destroyed it gets its response).
	actions sync.WaitGroup
	mu      sync.Mutex
	running int     // actions under way
	closeOn *string // a close reason waiting for running to reach 0
}

// startAction notes an action request under way.
func (wc *wsConn) startAction() {
	wc.mu.Lock()
	wc.running++
	wc.mu.Unlock()
}

// endAction notes an answered action, closing the socket if that was the
// last one a close waited for.
func (wc *wsConn) endAction() {
	wc.mu.Lock()
	wc.running--
	var reason *string
	if wc.running == 0 {
		reason, wc.closeOn = wc.closeOn, nil
	}
	wc.mu.Unlock()
	if reason != nil {
		wc.out.closeAfterQueue(websocket.StatusNormalClosure, *reason)
	}
}

// Event implements engine.Transport.
// The encoding is built once per broadcast and encoding, shared by every
// connection it reaches.
func (wc *wsConn) Event(ev *engine.Event, gate *engine.Gate) {
	enc := wc.enc
	typ := websocket.MessageText
	if enc.Binary() {
		typ = websocket.MessageBinary
	}
	wc.out.push(frame{gate: gate, size: len(ev.Name) + len(ev.Args), build: func() (websocket.MessageType, []byte, error) {
		b, err := ev.Encoded(int(enc), func() ([]byte, error) {
			return protocol.Encode(enc, protocol.Event{Name: ev.Name, Args: ev.Args})
		})
		return typ, b, err
	}})
}

// Close implements engine.Transport: the actor disconnected the client,
// or stopped. The socket closes once the actions under way have answered.
func (wc *wsConn) Close(reason string) {
	wc.mu.Lock()
	if wc.running > 0 {
		wc.closeOn = &reason
		wc.mu.Unlock()
		return
	}
	wc.mu.Unlock()
	wc.out.closeAfterQueue(websocket.StatusNormalClosure, reason)
}

// message builds m in the connection's encoding. For an action response
// (actionID set) past the outgoing limit, it builds the
// message.outgoing_too_long error instead.
func (wc *wsConn) message(m protocol.Message, actionID *uint64) func() (websocket.MessageType, []byte, error) {
	return func() (websocket.MessageType, []byte, error) {
		b, err := protocol.Encode(wc.enc, m)
		if err == nil && actionID != nil && len(b) > wc.g.cfg.MaxOutgoing {
			e := wc.g.outgoingTooLong()
			wc.g.metrics.countError(e)
			b, err = protocol.Encode(wc.enc, protocol.Error{Group: e.Group, Code: e.Code, Message: e.Message, ActionID: actionID})
		}
		if wc.enc.Binary() {
			return websocket.MessageBinary, b, err
		}
		return websocket.MessageText, b, err
	}
}

// connect serves a RivetKit connection: /connect.
func (g *Gateway) connect(w http.ResponseWriter, r *http.Request, t target) {
	enc := protocol.JSON
	var params []byte
	var encErr, paramErr error
	for _, p := range subprotocols(r) {
		switch {
		case strings.HasPrefix(p, "rivet_encoding."):
			enc, encErr = protocol.ParseEncoding(strings.TrimPrefix(p, "rivet_encoding."))
		case strings.HasPrefix(p, "rivet_conn_params."):
			var err error
			if params, err = decodeParamsProtocol(strings.TrimPrefix(p, "rivet_conn_params.")); err != nil {
				paramErr = errInvalidRequest.With("Invalid connection params: %v", err)
			}
		}
	}
	c, cork, err := g.accept(w, r)
	if err != nil {
		return
	}
	if encErr != nil {
		_ = c.Close(websocket.StatusUnsupportedData, "actor.unsupported_websocket_encoding")
		return
	}
	if paramErr != nil {
		_ = c.Close(websocket.StatusInternalError, closeReason(paramErr))
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	ref, err := g.resolve(ctx, r, t, params, IntentConnect)
	if err != nil {
		g.openFailed(c, enc, err)
		return
	}
	wc := &wsConn{g: g, c: c, enc: enc, actorID: ref.ID, log: g.actorLog(ref), ctx: protocol.WithEncoding(ctx, enc),
		subs: map[string]struct{}{}, slots: make(chan struct{}, maxPendingActions)}
	wc.calls, wc.cancelCalls = context.WithCancel(wc.ctx)
	defer wc.cancelCalls()
	wc.out = g.newSender(c, wc.log, func(err error) { wc.log.Error("encode message", "err", err) })
	wc.out.cork = cork
	wc.ec = engine.NewConn(engine.NewConnID(), params, ref.Auth, wc)
	wc.ec.Request = r
	// A socket the Rivet Engine holds (runner mode): its messages carry
	// the engine's indexes, and a restored one rejoins under its old id.
	wc.link = engine.TunnelLinkFrom(r.Context())
	var restore *engine.ConnRecord
	if wc.link != nil {
		wc.ec.Link, wc.ec.Tunnel = wc.link, wc.link.Meta()
		restore = wc.link.Restore()
	}
	if restore != nil {
		// The client has its Init already; the actor's next start
		// rebuilds the connection from its record.
		wc.ec.ID = restore.ID
		for _, s := range restore.Subs {
			wc.subs[s] = struct{}{}
		}
		err = g.e.Adopt(ref.ID, wc.ec)
		wc.link.Opened(err)
		if err != nil {
			_ = c.Close(websocket.StatusInternalError, "rivetgo.restore_failed")
			return
		}
	} else {
		err := g.e.Connect(ctx, ref.ID, wc.ec)
		if wc.link != nil {
			wc.link.Opened(err)
		}
		if err != nil {
			g.openFailed(c, enc, err)
			return
		}
		// Init goes first, ahead of anything the connect hooks emitted.
		wc.out.pushFront(frame{build: wc.message(protocol.Init{ActorID: ref.ID, ConnectionID: wc.ec.ID}, nil)})
	}
	go wc.out.run(ctx)
	stop := g.keepAlive(ctx, c, wc.out, &wc.reading, func() {
		wc.log.Info("websocket client did not answer a ping: disconnected", "ping_timeout", g.cfg.PingTimeout)
	})
	defer stop()

	reason := wc.read(ref)
	g.e.Disconnect(wc.ec, ref.ID, reason)
	wc.out.closeAfterQueue(websocket.StatusNormalClosure, "")
	<-wc.out.done
}

// openFailed reports an error opening a connection: an Error message with
// actionId null, then close 1011 "group.code".
func (g *Gateway) openFailed(c *websocket.Conn, enc protocol.Encoding, err error) {
	e := public(err)
	g.metrics.countError(e)
	if !quiet(err) {
		g.log.Error("connection rejected", "err", err)
	}
	b, eerr := protocol.Encode(enc, protocol.Error{Group: e.Group, Code: e.Code, Message: e.Message, Metadata: metadataCBOR(e)})
	if eerr == nil {
		typ := websocket.MessageBinary
		if !enc.Binary() {
			typ = websocket.MessageText
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.WriteTimeout)
		_ = c.Write(ctx, typ, b)
		cancel()
	}
	_ = c.Close(websocket.StatusInternalError, closeReason(err))
}

// read handles client messages until the socket closes; it returns the
// disconnect reason.
func (wc *wsConn) read(ref actorRef) string {
	defer wc.actions.Wait()
	// First (deferred last) drop the calls still waiting: nobody can
	// receive their answers.
	defer wc.cancelCalls()
	timeout := wc.g.e.ActionTimeout(ref.Name)
	for {
		wc.reading.enter()
		typ, rd, err := wc.c.Reader(wc.ctx)
		if err != nil {
			wc.reading.leave()
			if aborted := wc.out.abortErr(); aborted != nil {
				return aborted.Error()
			}
			if st := websocket.CloseStatus(err); st != -1 {
				return "client closed: " + strconv.Itoa(int(st))
			}
			return "connection lost"
		}
		data, err := io.ReadAll(io.LimitReader(rd, int64(wc.g.cfg.MaxIncoming)+1))
		wc.reading.leave()
		if err != nil {
			if aborted := wc.out.abortErr(); aborted != nil {
				return aborted.Error()
			}
			return "read failed"
		}
		if len(data) > wc.g.cfg.MaxIncoming {
			wc.fail(wc.g.incomingTooLong())
			return "incoming message too long"
		}
		_ = typ
		// The engine's index of this message: the turn it causes
		// records it, and it is acknowledged once finished.
		ctx, done := wc.calls, func() {}
		if wc.link != nil {
			n := wc.link.Received()
			ctx = engine.WithClientMessage(ctx, n)
			done = func() { wc.link.Done(n) }
		}
		msg, err := protocol.DecodeToServer(wc.enc, data)
		if err != nil {
			done()
			wc.fail(errInvalidRequest.With("%v", err))
			return "invalid message"
		}
		switch m := msg.(type) {
		case protocol.ActionRequest:
			// Past maxPendingActions the next message waits for an
			// action to finish: the client is slowed, not refused.
			select {
			case wc.slots <- struct{}{}:
			case <-wc.ctx.Done():
				done()
				return "connection lost"
			}
			wc.startAction()
			wc.actions.Go(func() {
				defer func() { <-wc.slots }()
				defer wc.endAction()
				defer done()
				wc.dispatch(ctx, m, timeout)
			})
		case protocol.SubscriptionRequest:
			err := wc.subscribe(ctx, m)
			done()
			if err != nil {
				wc.fail(err)
				return "subscription failed"
			}
		default:
			done()
		}
	}
}

// subscribe applies a subscription request within the connection's
// limits on event names and subscriptions.
func (wc *wsConn) subscribe(ctx context.Context, m protocol.SubscriptionRequest) error {
	_, had := wc.subs[m.EventName]
	if m.Subscribe && !had {
		if len(m.EventName) > maxEventName {
			return errEventNameTooLong.With("Event name too long: %d bytes, the limit is %d.", len(m.EventName), maxEventName)
		}
		if len(wc.subs) >= wc.g.cfg.MaxSubscriptions {
			return errTooManySubscriptions.With("Too many event subscriptions: the limit is %d per connection (setting max_subscriptions, environment RIVET_MAX_SUBSCRIPTIONS).", wc.g.cfg.MaxSubscriptions)
		}
	}
	if !m.Subscribe && !had {
		return nil
	}
	if err := wc.g.e.Subscribe(ctx, wc.actorID, wc.ec, m.EventName, m.Subscribe); err != nil {
		return err
	}
	if m.Subscribe {
		wc.subs[m.EventName] = struct{}{}
	} else {
		delete(wc.subs, m.EventName)
	}
	return nil
}

// fail answers a protocol error of the client: an Error message with
// actionId null, then close 1011 "group.code" once it is written.
func (wc *wsConn) fail(err error) {
	e := public(err)
	wc.g.metrics.countError(e)
	if pe, ok := rivettype.As(err); !ok || !pe.Public {
		wc.log.Error("connection failed", "err", err)
	}
	wc.out.push(frame{size: len(e.Message), build: wc.message(protocol.Error{Group: e.Group, Code: e.Code, Message: e.Message, Metadata: metadataCBOR(e)}, nil)})
	wc.out.closeAfterQueue(websocket.StatusInternalError, closeReason(err))
}

// dispatch runs one action of the connection and queues its answer.
func (wc *wsConn) dispatch(ctx context.Context, m protocol.ActionRequest, timeout time.Duration) {
	out, err := wc.g.e.Call(ctx, wc.actorID, wc.ec, nil, m.Name, m.Args, wc.g.encodeOutput(wc.enc), timeout)
	id := m.ID
	if err != nil {
		if wc.calls.Err() != nil {
			return
		}
		e := public(err)
		wc.g.metrics.countError(e)
		if !quiet(err) {
			wc.log.Error("action failed", "action", m.Name, "err", err)
		}
		wc.out.push(frame{build: wc.message(protocol.Error{Group: e.Group, Code: e.Code, Message: e.Message, Metadata: metadataCBOR(e), ActionID: &id}, nil)})
		return
	}
	wc.out.send(wc.ctx, frame{size: len(out), build: wc.message(protocol.ActionResponse{ID: id, Output: out}, &id)})
}

// decodeParamsProtocol decodes the value of a rivet_conn_params.*
// subprotocol: percent-encoded JSON.
func decodeParamsProtocol(v string) ([]byte, error) {
	raw, err := url.PathUnescape(v)
	if err != nil {
		return nil, err
	}
	return protocol.DecodePlainJSONValue([]byte(raw))
}

func cutPrefix(s, prefix string) (string, bool) { return strings.CutPrefix(s, prefix) }
