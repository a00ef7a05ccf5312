package runner

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/envoy"
)

// recordResponse runs h as a tunnelled request and returns the messages
// it sends, on a channel as they are sent, and a channel closed when h
// has returned.
func recordResponse(t *testing.T, stream bool, h http.HandlerFunc) (<-chan envoy.ToRivetTunnelMessageKind, <-chan struct{}) {
	t.Helper()
	msgs := make(chan envoy.ToRivetTunnelMessageKind, 16)
	done := make(chan struct{})
	tw := &tunnelResponse{stream: stream, header: http.Header{}, send: func(m envoy.ToRivetTunnelMessageKind) error {
		msgs <- m
		return nil
	}}
	go func() {
		defer close(done)
		defer close(msgs)
		tw.serve(h, httptest.NewRequest(http.MethodGet, "/", nil), slog.New(slog.DiscardHandler))
	}()
	return msgs, done
}

func next(t *testing.T, msgs <-chan envoy.ToRivetTunnelMessageKind) envoy.ToRivetTunnelMessageKind {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("no more messages")
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a message")
	}
	return nil
}

// TestTunnelResponseStreams: when the engine accepts a streamed response,
// each flush sends what was written at once (the handler is still
// running), and the end of the handler finishes the stream.
func TestTunnelResponseStreams(t *testing.T) {
	step := make(chan struct{})
	msgs, done := recordResponse(t, true, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		_ = http.NewResponseController(w).Flush()
		<-step
		_, _ = io.WriteString(w, "data: 2\n\n")
		_ = http.NewResponseController(w).Flush()
		<-step
		_, _ = io.WriteString(w, "tail")
	})
	start, ok := next(t, msgs).(envoy.ToRivetResponseStart)
	if !ok || !start.Stream || start.Status != 200 || start.Headers["content-type"] != "text/event-stream" {
		t.Fatalf("start %+v", start)
	}
	if c := next(t, msgs).(envoy.ToRivetResponseChunk); string(c.Body) != "data: 1\n\n" || c.Finish {
		t.Fatalf("first chunk %+v", c)
	}
	step <- struct{}{}
	if c := next(t, msgs).(envoy.ToRivetResponseChunk); string(c.Body) != "data: 2\n\n" || c.Finish {
		t.Fatalf("second chunk %+v", c)
	}
	step <- struct{}{}
	if c := next(t, msgs).(envoy.ToRivetResponseChunk); string(c.Body) != "tail" || !c.Finish {
		t.Fatalf("last chunk %+v", c)
	}
	<-done
}

// TestTunnelResponseWhole: without responseStream (engine 2.3.19), a
// flushed response goes out whole when the handler returns, with the
// Content-Type sniffed as net/http does.
func TestTunnelResponseWhole(t *testing.T) {
	msgs, done := recordResponse(t, false, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "one ")
		_ = http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, "two")
	})
	<-done
	start := next(t, msgs).(envoy.ToRivetResponseStart)
	if start.Stream || start.Status != 200 || start.Body == nil || string(*start.Body) != "one two" || start.Headers["content-type"] != "text/plain; charset=utf-8" {
		t.Fatalf("start %+v", start)
	}
	if m, ok := <-msgs; ok {
		t.Fatalf("extra message %+v", m)
	}
}

// TestTunnelResponseAbort: a handler that aborts a started stream ends it
// with ResponseAbort, not with a finished body; one that aborts before
// anything was sent answers 500.
func TestTunnelResponseAbort(t *testing.T) {
	msgs, done := recordResponse(t, true, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	})
	<-done
	next(t, msgs) // start
	next(t, msgs) // "partial"
	if a, ok := next(t, msgs).(envoy.ToRivetResponseAbort); !ok || a.Reason.Kind != envoy.HTTPStreamAbortReasonKindHandlerError {
		t.Fatalf("got %+v, want an abort", a)
	}

	msgs, done = recordResponse(t, false, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic("boom")
	})
	<-done
	if s := next(t, msgs).(envoy.ToRivetResponseStart); s.Status != 500 {
		t.Fatalf("got %+v, want a 500", s)
	}
}

// TestRequestForActorNotHeld: a request that reaches the runner for an
// actor it does not hold (it left before the engine's route caught up)
// is not served: it is answered 503 with an x-rivet-error guard retries
// (re-resolving the route), not actor.not_found, which reaches the
// client.
func TestRequestForActorNotHeld(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := websocket.Accept(w, req, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_, b, err := c.Read(req.Context())
		if err == nil {
			got <- b
		}
		_, _, _ = c.Read(req.Context())
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	served := make(chan struct{}, 1)
	r := New(Config{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served <- struct{}{} })})
	r.mu.Lock()
	r.mu.conn = conn
	r.mu.Unlock()
	id := envoy.MessageID{GatewayID: envoy.GatewayID{1, 2, 3, 4}, RequestID: envoy.RequestID{5, 6, 7, 8}}
	r.tunnel(ctx, envoy.ToEnvoyTunnelMessage{MessageID: id, MessageKind: envoy.ToEnvoyRequestStart{ActorID: "gone", Method: "POST", Path: "/action/increment"}})
	var b []byte
	select {
	case b = <-got:
	case <-ctx.Done():
		t.Fatal("no answer")
	}
	m, err := envoy.DecodeToRivet(b)
	if err != nil {
		t.Fatal(err)
	}
	tm, ok := m.(envoy.ToRivetTunnelMessage)
	if !ok || tm.MessageID.GatewayID != id.GatewayID || tm.MessageID.RequestID != id.RequestID {
		t.Fatalf("answer %+v", m)
	}
	start, ok := tm.MessageKind.(envoy.ToRivetResponseStart)
	if !ok || start.Status != http.StatusServiceUnavailable || start.Headers["x-rivet-error"] != "guard.actor_stopped_while_waiting" {
		t.Fatalf("answer %+v, want a 503 with x-rivet-error guard.actor_stopped_while_waiting", tm.MessageKind)
	}
	select {
	case <-served:
		t.Fatal("the request was served")
	default:
	}
}
