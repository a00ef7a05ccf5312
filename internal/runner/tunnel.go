package runner

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/envoy"
)

// maxRequestBody bounds a streamed request body buffered before it is
// served (the gateway applies its own, smaller limits after that).
const maxRequestBody = 32 << 20

// pendingRequest is a tunnelled request whose body is still streaming in.
type pendingRequest struct {
	start envoy.ToEnvoyRequestStart
	body  bytes.Buffer
}

func requestKey(id envoy.MessageID) [8]byte {
	var k [8]byte
	copy(k[:4], id.GatewayID[:])
	copy(k[4:], id.RequestID[:])
	return k
}

// tunnel handles a tunnelled HTTP request or WebSocket message.
func (r *Runner) tunnel(ctx context.Context, m envoy.ToEnvoyTunnelMessage) {
	k := requestKey(m.MessageID)
	switch msg := m.MessageKind.(type) {
	case envoy.ToEnvoyRequestStart:
		if msg.Stream {
			p := &pendingRequest{start: msg}
			if msg.Body != nil {
				p.body.Write(*msg.Body)
			}
			r.mu.Lock()
			r.mu.requests[k] = p
			r.mu.Unlock()
			return
		}
		var body []byte
		if msg.Body != nil {
			body = *msg.Body
		}
		r.serve(ctx, m.MessageID, msg, body)
	case envoy.ToEnvoyRequestChunk:
		r.mu.Lock()
		p := r.mu.requests[k]
		if p != nil && msg.Finish {
			delete(r.mu.requests, k)
		}
		r.mu.Unlock()
		if p == nil {
			return
		}
		p.body.Write(msg.Body)
		if p.body.Len() > maxRequestBody {
			r.mu.Lock()
			delete(r.mu.requests, k)
			r.mu.Unlock()
			r.respond(ctx, m.MessageID, http.StatusRequestEntityTooLarge, http.Header{"Content-Type": {"text/plain"}}, []byte("request body too large"))
			return
		}
		if msg.Finish {
			r.serve(ctx, m.MessageID, p.start, p.body.Bytes())
		}
	case envoy.ToEnvoyRequestAbort:
		r.mu.Lock()
		delete(r.mu.requests, k)
		cancel := r.mu.serving[k]
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case envoy.ToEnvoyWebSocketOpen:
		r.openSocket(ctx, m.MessageID, msg)
	case envoy.ToEnvoyWebSocketMessage:
		r.socketMessage(m.MessageID, msg)
	case envoy.ToEnvoyWebSocketClose:
		r.socketClose(m.MessageID, msg)
	}
}

// serve runs a tunnelled request through the handler, on its own
// goroutine, and sends the response back: whole, or as a stream once the
// handler flushes (see tunnelResponse). An abort from the engine (the
// client went away) cancels the request's context.
func (r *Runner) serve(ctx context.Context, id envoy.MessageID, start envoy.ToEnvoyRequestStart, body []byte) {
	k := requestKey(id)
	r.mu.Lock()
	if r.mu.stopping[start.ActorID] {
		// The engine sent it after the stop command (its router and the
		// actor's stop race): answered here it would fail with
		// actor.not_found; left open, the engine sends it again to the
		// actor's next instance once this one is reported stopped.
		r.mu.Unlock()
		r.log.Debug("request for a stopping actor left to the engine", "actor_id", start.ActorID)
		return
	}
	_, held := r.mu.generation[start.ActorID]
	r.mu.Unlock()
	if !held {
		// The actor left this runner (stopped, lost, given up after a
		// stall) before the engine's route caught up: the answer makes
		// guard resolve the route again and re-send the request, which
		// did not run here.
		r.log.Debug("request for an actor not held here sent back to the engine", "actor_id", start.ActorID)
		r.respond(ctx, id, http.StatusServiceUnavailable, notHeldHeader(), notHeldBody)
		return
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The engine re-sends a request with the same ids when the runner
	// it went to died before answering: an action applied by that
	// runner is answered from its record (engine.WithRequestID).
	rctx = engine.WithRequestID(rctx, engine.RequestID(k))
	r.mu.Lock()
	r.mu.serving[k] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	r.inflight.Add(1)
	r.mu.Lock()
	r.mu.actorRequests[start.ActorID]++
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			if r.mu.actorRequests[start.ActorID]--; r.mu.actorRequests[start.ActorID] <= 0 {
				delete(r.mu.actorRequests, start.ActorID)
			}
			delete(r.mu.serving, k)
			r.mu.Unlock()
			cancel()
			r.inflight.Add(-1)
			r.signalDrain()
		}()
		req, err := r.httpRequest(rctx, start, body)
		if err != nil {
			r.respond(ctx, id, http.StatusBadRequest, http.Header{"Content-Type": {"text/plain"}}, []byte(err.Error()))
			return
		}
		r.newTunnelResponse(context.WithoutCancel(ctx), id, start.ResponseStream).serve(r.cfg.Handler, req, r.log)
	}()
}

// notHeldCode is the answer to a request for an actor this runner does
// not hold, in the x-rivet-error header of a 503: guard (engine 2.3.19,
// guard-core utils.rs should_retry_request_inner) re-resolves the route
// and re-sends a request answered 503 or 504 whose x-rivet-error is one
// of its own retryable errors (guard.service_unavailable,
// guard.actor_stopped_while_waiting, …); any other answer reaches the
// client. RivetKit's TypeScript runner answers 503
// runner.actor_not_found, which engines before May 2026 retried (any
// x-rivet-error) and 2.3.19 no longer does.
const notHeldCode = "guard.actor_stopped_while_waiting"

var notHeldBody = []byte(`{"group":"guard","code":"actor_stopped_while_waiting","message":"The actor is no longer on this runner; the engine routes the request again.","metadata":{}}`)

func notHeldHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}, "X-Rivet-Error": {notHeldCode}}
}

// httpRequest builds the request the gateway sees: the actor-local path
// under /gateway/{actorId}.
func (r *Runner) httpRequest(ctx context.Context, start envoy.ToEnvoyRequestStart, body []byte) (*http.Request, error) {
	path := start.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := "/gateway/" + url.PathEscape(start.ActorID) + path
	req, err := http.NewRequestWithContext(ctx, start.Method, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range start.Headers {
		req.Header.Set(k, v)
	}
	req.Host = req.Header.Get("host")
	if req.Host == "" {
		req.Host = "engine"
	}
	req.RemoteAddr = "engine"
	req.ContentLength = int64(len(body))
	req.RequestURI = target
	return req, nil
}

func (r *Runner) respond(ctx context.Context, id envoy.MessageID, status int, h http.Header, body []byte) {
	err := r.write(context.WithoutCancel(ctx), envoy.ToRivetTunnelMessage{
		MessageID:   envoy.MessageID{GatewayID: id.GatewayID, RequestID: id.RequestID},
		MessageKind: envoy.ToRivetResponseStart{Status: uint16(status), Headers: flatHeaders(h), Body: &body},
	})
	if err != nil {
		r.log.Warn("tunnelled response not sent", "err", err)
	}
}

func flatHeaders(h http.Header) map[string]string {
	headers := make(map[string]string, len(h))
	for k, v := range h {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return headers
}

// tunnelResponse is the http.ResponseWriter of a tunnelled request. It
// buffers the response and sends it whole in one ResponseStart when the
// handler returns. If the engine accepts a streamed response
// (RequestStart's responseStream), a Flush (http.ResponseController)
// turns it into a stream instead: ResponseStart{stream: true}, then a
// ResponseChunk per Flush with what was written since, and a last one
// with finish set when the handler returns. A handler that aborts
// (panics with http.ErrAbortHandler, as a failed stream does) ends a
// stream with ResponseAbort, so that the client does not take it for
// complete, and a response not yet started with a 500.
//
// The engine 2.3.19 sets responseStream=false on every request, and
// answers a ResponseStart{stream: true} to the client as an empty body,
// dropping the chunks (checked by TestEngineRunnerStreamResponse):
// there a Flush sends nothing and the response, streamed or not, goes
// out whole when the handler returns (docs/engine-runner.md §6).
// Response window updates are not waited for.
type tunnelResponse struct {
	// send sends one message of the response; the index is filled in.
	send   func(m envoy.ToRivetTunnelMessageKind) error
	stream bool // the engine accepts a streamed response
	header http.Header
	code   int
	body   []byte
	// streaming: ResponseStart went out.
	streaming bool
	failed    error // a send failed: the rest is dropped
}

// newTunnelResponse returns the writer of the response to request id.
func (r *Runner) newTunnelResponse(ctx context.Context, id envoy.MessageID, stream bool) *tunnelResponse {
	var next envoy.MessageIndex
	return &tunnelResponse{stream: stream, header: http.Header{}, send: func(m envoy.ToRivetTunnelMessageKind) error {
		mid := envoy.MessageID{GatewayID: id.GatewayID, RequestID: id.RequestID, MessageIndex: next}
		next++
		err := r.write(ctx, envoy.ToRivetTunnelMessage{MessageID: mid, MessageKind: m})
		if err != nil {
			r.log.Warn("tunnelled response not sent", "err", err)
		}
		return err
	}}
}

func (t *tunnelResponse) Header() http.Header { return t.header }

func (t *tunnelResponse) WriteHeader(code int) {
	if t.code == 0 {
		t.code = code
	}
}

func (t *tunnelResponse) Write(p []byte) (int, error) {
	if t.failed != nil {
		return 0, t.failed
	}
	if t.code == 0 {
		t.code = http.StatusOK
	}
	if len(t.body)+len(p) > maxResponseBody {
		if !t.stream {
			t.failed = errResponseTooLarge
			return 0, t.failed
		}
		if err := t.FlushError(); err != nil {
			return 0, err
		}
	}
	t.body = append(t.body, p...)
	return len(p), nil
}

// maxResponseBody bounds a response sent whole, and what a stream holds
// between flushes: the engine's response payload limit is 20 MiB.
const maxResponseBody = 16 << 20

var errResponseTooLarge = errors.New("runner: response larger than 16 MiB and the engine does not accept a streamed response")

// FlushError sends what was written so far, starting the stream, when
// the engine accepts one; otherwise it does nothing.
func (t *tunnelResponse) FlushError() error {
	if t.failed != nil {
		return t.failed
	}
	if !t.stream {
		return nil
	}
	if t.code == 0 {
		t.code = http.StatusOK
	}
	if !t.streaming {
		t.streaming = true
		t.sniff()
		if err := t.emit(envoy.ToRivetResponseStart{Status: uint16(t.code), Headers: flatHeaders(t.header), Stream: true}); err != nil {
			return err
		}
	}
	if len(t.body) == 0 {
		return nil
	}
	body := t.body
	t.body = nil
	return t.emit(envoy.ToRivetResponseChunk{Body: body})
}

func (t *tunnelResponse) emit(m envoy.ToRivetTunnelMessageKind) error {
	if err := t.send(m); err != nil {
		t.failed = err
		return err
	}
	return nil
}

// serve runs the handler and sends the response.
func (t *tunnelResponse) serve(h http.Handler, req *http.Request, log *slog.Logger) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				log.Error("panic serving a tunnelled request", "panic", v)
			}
			t.abort()
		}
	}()
	h.ServeHTTP(t, req)
	t.finish()
}

// sniff sets the Content-Type the way net/http's server does for a
// response with a body and none set.
func (t *tunnelResponse) sniff() {
	if _, ok := t.header["Content-Type"]; !ok && len(t.body) > 0 {
		t.header.Set("Content-Type", http.DetectContentType(t.body))
	}
}

// abort ends a response the handler gave up on.
func (t *tunnelResponse) abort() {
	switch {
	case t.streaming && t.failed == nil:
		_ = t.emit(envoy.ToRivetResponseAbort{Reason: envoy.HTTPStreamAbortReason{Kind: envoy.HTTPStreamAbortReasonKindHandlerError}})
	case !t.streaming:
		t.fail()
	}
}

// fail answers 500 to a response not started.
func (t *tunnelResponse) fail() {
	if t.failed != nil && !errors.Is(t.failed, errResponseTooLarge) {
		return // the connection failed
	}
	msg := "internal error"
	if t.failed != nil {
		msg = t.failed.Error()
	}
	body := []byte(msg)
	t.failed = nil
	_ = t.emit(envoy.ToRivetResponseStart{Status: http.StatusInternalServerError, Headers: map[string]string{"content-type": "text/plain"}, Body: &body})
}

// finish sends the response, or the end of the stream.
func (t *tunnelResponse) finish() {
	switch {
	case t.failed != nil && !t.streaming:
		t.fail()
	case t.failed != nil:
	case !t.streaming:
		if t.code == 0 {
			t.code = http.StatusOK
		}
		t.sniff()
		body := t.body
		_ = t.emit(envoy.ToRivetResponseStart{Status: uint16(t.code), Headers: flatHeaders(t.header), Body: &body})
	default:
		body := t.body
		t.body = nil
		_ = t.emit(envoy.ToRivetResponseChunk{Body: body, Finish: true})
	}
}
