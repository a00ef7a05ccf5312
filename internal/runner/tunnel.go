package runner

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

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
		r.mu.Unlock()
	case envoy.ToEnvoyWebSocketOpen:
		r.openSocket(ctx, m.MessageID, msg)
	case envoy.ToEnvoyWebSocketMessage:
		r.socketMessage(m.MessageID, msg)
	case envoy.ToEnvoyWebSocketClose:
		r.socketClose(m.MessageID, msg)
	}
}

// serve runs a tunnelled request through the handler, on its own
// goroutine, and sends the whole response back.
func (r *Runner) serve(ctx context.Context, id envoy.MessageID, start envoy.ToEnvoyRequestStart, body []byte) {
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
			r.mu.Unlock()
			r.inflight.Add(-1)
			r.signalDrain()
		}()
		req, err := r.httpRequest(ctx, start, body)
		if err != nil {
			r.respond(ctx, id, http.StatusBadRequest, http.Header{"Content-Type": {"text/plain"}}, []byte(err.Error()))
			return
		}
		rec := httptest.NewRecorder()
		r.cfg.Handler.ServeHTTP(rec, req)
		res := rec.Result()
		r.respond(ctx, id, res.StatusCode, res.Header, rec.Body.Bytes())
	}()
}

// httpRequest builds the request the gateway sees: the actor-local path
// under /gateway/{actorId}.
func (r *Runner) httpRequest(ctx context.Context, start envoy.ToEnvoyRequestStart, body []byte) (*http.Request, error) {
	path := start.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := "/gateway/" + url.PathEscape(start.ActorID) + path
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), start.Method, target, bytes.NewReader(body))
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
	headers := make(map[string]string, len(h))
	for k, v := range h {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	err := r.write(context.WithoutCancel(ctx), envoy.ToRivetTunnelMessage{
		MessageID:   envoy.MessageID{GatewayID: id.GatewayID, RequestID: id.RequestID},
		MessageKind: envoy.ToRivetResponseStart{Status: uint16(status), Headers: headers, Body: &body},
	})
	if err != nil {
		r.log.Warn("tunnelled response not sent", "err", err)
	}
}
