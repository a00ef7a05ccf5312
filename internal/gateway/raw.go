package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/rivettype"
)

var errNoHandler = &rivettype.Error{Group: "actor", Code: "handler_not_found", Message: "The actor does not handle this request.", Public: true}

// ErrNoHandler is what Hooks return when the actor has no onRequest or
// onWebSocket hook.
var ErrNoHandler = errNoHandler

// rawRequest passes /request/* to the actor's onRequest hook.
func (g *Gateway) rawRequest(w http.ResponseWriter, r *http.Request, t target, path, rawQuery string) {
	params, err := connParams(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	ref, err := g.resolve(ctx, r, t, params, IntentAction)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if path == "" {
		path = "/"
	}
	// The request's own context, not ctx: a streamed response may last
	// longer than the time ctx gives the turn.
	r2 := actorRequest(r.Context(), r, path, rawQuery)
	r2.Body = http.MaxBytesReader(w, r.Body, 20<<20)
	conn := engine.NewConn(engine.NewConnID(), params, ref.Auth, nil)
	conn.Request = r2
	if err := g.cfg.Hooks.Request(ctx, ref.ID, ref.Name, conn, w, r2); err != nil {
		if errors.Is(err, errNoHandler) {
			g.failStatus(w, r, http.StatusNotFound, err)
			return
		}
		g.failStatus(w, r, http.StatusInternalServerError, err)
	}
}

// actorRequest is r as the actor sees it: the URL is the path after
// /request or /websocket (escaped as sent), with the query minus rvt-*.
func actorRequest(ctx context.Context, r *http.Request, escPath, rawQuery string) *http.Request {
	r2 := r.Clone(ctx)
	p, err := url.PathUnescape(escPath)
	if err != nil {
		p = escPath
	}
	r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery = p, escPath, rawQuery
	if r2.URL.EscapedPath() != escPath {
		r2.URL.RawPath = "" // escPath was the canonical escaping
	}
	r2.RequestURI = escPath
	if rawQuery != "" {
		r2.RequestURI += "?" + rawQuery
	}
	return r2
}

// failStatus is fail with a fixed status.
func (g *Gateway) failStatus(w http.ResponseWriter, r *http.Request, code int, err error) {
	if g.clientGone(w, r, err) {
		return
	}
	e := public(err)
	g.metrics.countError(e)
	if !quiet(err) {
		g.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"group": e.Group, "code": e.Code, "message": e.Message}
	if md := metadataJSON(e); md != nil {
		body["metadata"] = md
	}
	writeJSON(w, code, body)
}

// RawSocket is a raw WebSocket handed to an actor's onWebSocket hook. It
// is the engine.Transport of the connection the hook attaches: frames sent
// from a turn (events named "text" or "binary") are written after the
// turn is durable, in order.
type RawSocket struct {
	c       *websocket.Conn
	limit   int
	tooLong error // message.incoming_too_long with the limit
	out     *sender
	reading readState // Read waits for a message (liveness.go)
}

// Event implements engine.Transport.
func (s *RawSocket) Event(ev *engine.Event, gate *engine.Gate) {
	typ, data := websocket.MessageBinary, ev.Args
	if ev.Name == "text" {
		typ = websocket.MessageText
	}
	s.out.push(frame{gate: gate, size: len(data), build: func() (websocket.MessageType, []byte, error) { return typ, data, nil }})
}

// Close implements engine.Transport: the actor closed the socket.
func (s *RawSocket) Close(reason string) { s.CloseWith(1000, reason) }

// CloseWith closes the socket after the frames already queued.
func (s *RawSocket) CloseWith(code int, reason string) {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	s.out.closeAfterQueue(websocket.StatusCode(code), reason)
}

// Read returns the next message. A text message that is not valid UTF-8
// closes the socket with 1007 "message.invalid_utf8".
func (s *RawSocket) Read(ctx context.Context) (text bool, data []byte, err error) {
	s.reading.enter()
	defer s.reading.leave()
	typ, rd, err := s.c.Reader(ctx)
	if err != nil {
		return false, nil, err
	}
	data, err = io.ReadAll(io.LimitReader(rd, int64(s.limit)+1))
	if err != nil {
		return false, nil, err
	}
	if len(data) > s.limit {
		s.out.abort(rivettype.ErrIncomingTooLong)
		return false, nil, s.tooLong
	}
	text = typ == websocket.MessageText
	if text && !utf8.Valid(data) {
		go func() { _ = s.c.Close(websocket.StatusInvalidFramePayloadData, "message.invalid_utf8") }()
		return false, nil, errInvalidUTF8
	}
	return text, data, nil
}

// rawWebSocket passes /websocket/* to the actor's onWebSocket hook.
func (g *Gateway) rawWebSocket(w http.ResponseWriter, r *http.Request, t target, path, rawQuery string) {
	var params []byte
	for _, p := range subprotocols(r) {
		if v, ok := cutPrefix(p, "rivet_conn_params."); ok {
			if b, err := decodeParamsProtocol(v); err == nil {
				params = b
			}
		}
	}
	c, cork, err := g.accept(w, r)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	ref, err := g.resolve(ctx, r, t, params, IntentConnect)
	if err != nil {
		_ = c.Close(websocket.StatusInternalError, closeReason(err))
		return
	}
	if path == "" {
		path = "/"
	}
	r2 := actorRequest(ctx, r, path, rawQuery)
	sock := &RawSocket{c: c, limit: g.cfg.MaxIncoming, tooLong: g.incomingTooLong(), out: g.newSender(c, g.actorLog(ref), nil)}
	sock.out.cork = cork
	go sock.out.run(ctx)
	conn := engine.NewConn(engine.NewConnID(), params, ref.Auth, sock)
	conn.Request = r2
	stop := g.keepAlive(ctx, c, sock.out, &sock.reading, func() {
		g.actorLog(ref).Info("websocket client did not answer a ping: disconnected", "ping_timeout", g.cfg.PingTimeout)
	})
	defer stop()
	if err := g.cfg.Hooks.WebSocket(ctx, ref.ID, ref.Name, conn, sock, r2); err != nil {
		if !quiet(err) {
			g.actorLog(ref).Error("raw websocket failed", "err", err)
		}
		sock.out.abort(err)
	} else {
		sock.out.closeAfterQueue(websocket.StatusNormalClosure, "")
	}
	<-sock.out.done
}
