package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivettype"
)

// QueueHooks is implemented by Hooks that serve queue sends.
type QueueHooks interface {
	// QueueSend enqueues body on the named queue of actor id (of actor
	// name) through conn, a temporary connection, and with wait waits
	// for a turn to receive it (waitTimeout 0: as long as the request
	// lasts).
	QueueSend(ctx context.Context, id, name, queue string, conn *engine.Conn, body []byte, wait bool, waitTimeout time.Duration) (engine.QueueSendResult, error)
}

// Queue send statuses of HTTPQueueSendResponse.
const (
	queueCompleted = "completed"
	queueTimedOut  = "timedOut"
)

// queueSend serves POST /queue/{name}: handle.send and conn.send of the
// official client. The path's name is the queue; the body's name is
// ignored, as RivetKit's server does.
func (g *Gateway) queueSend(w http.ResponseWriter, r *http.Request, t target, rawName string) {
	if r.Method != http.MethodPost {
		g.fail(w, r, errMethodNotAllowed.With("Queue messages must be sent with POST."))
		return
	}
	qh, ok := g.cfg.Hooks.(QueueHooks)
	if !ok {
		g.fail(w, r, errRouteNotFound.With("Actor route '/queue/%s' was not found.", rawName))
		return
	}
	name, err := url.PathUnescape(rawName)
	if err != nil || name == "" || strings.Contains(name, "/") {
		g.fail(w, r, errRouteNotFound.With("Actor route '/queue/%s' was not found.", rawName))
		return
	}
	enc := protocol.HTTPEncoding(r.Header.Get("X-Rivet-Encoding"))
	body, err := g.readBody(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	req, err := protocol.DecodeHTTPQueueSendRequest(enc, body)
	if err != nil {
		g.fail(w, r, errInvalidRequest.With("Invalid %s queue send request: %v", enc, err))
		return
	}
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
	msg := req.Body
	if msg == nil {
		msg = []byte{0xf6} // null
	}
	wait := req.Wait != nil && *req.Wait
	var waitTimeout time.Duration
	if req.Timeout != nil {
		waitTimeout = time.Duration(min(*req.Timeout, uint64(time.Hour/time.Millisecond))) * time.Millisecond
	}
	conn := engine.NewStatelessConn(params, ref.Auth)
	conn.Request = r
	res, err := qh.QueueSend(ctx, ref.ID, ref.Name, name, conn, msg, wait, waitTimeout)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	out := protocol.HTTPQueueSendResponse{Status: queueCompleted, Response: res.Response}
	if !res.Completed {
		out = protocol.HTTPQueueSendResponse{Status: queueTimedOut}
	}
	resp, err := protocol.Encode(enc, out)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if len(resp) > g.cfg.MaxOutgoing {
		g.fail(w, r, rivettype.ErrOutgoingTooLong)
		return
	}
	w.Header().Set("Content-Type", enc.ContentType())
	w.Header().Set("X-Rivet-Actor", ref.ID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}
