package rivet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/gateway"
)

// errNotOnRequest is what StreamResponse returns for a writer that is not
// the one OnRequest was given.
var errNotOnRequest = errors.New("rivet: StreamResponse needs the http.ResponseWriter of OnRequest")

// responseBuffer holds an onRequest response until its turn is durable.
type responseBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
	// stream is set by StreamResponse: the rest of the body is written
	// outside the turn.
	stream *responseStream
}

func (b *responseBuffer) Header() http.Header { return b.header }
func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *responseBuffer) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

// reset empties the buffer for another run of the turn.
func (b *responseBuffer) reset() {
	b.header, b.code = http.Header{}, 0
	b.body.Reset()
	if b.stream != nil {
		b.stream.release(nil) // its turn did not commit: it never starts
		b.stream = nil
	}
}

// responseStream hands the response writer, once the head of the
// response is sent, to the background task StreamResponse started.
type responseStream struct {
	once  sync.Once
	ready chan struct{} // closed by release
	w     http.ResponseWriter
	done  chan struct{} // closed when the task has returned
	err   error         // the task's error, read after done
}

// release starts the stream on w, or cancels it (w nil). Only the first
// call counts.
func (s *responseStream) release(w http.ResponseWriter) {
	s.once.Do(func() {
		s.w = w
		close(s.ready)
	})
}

// streamWriter is the writer of a streamed response: every Write is
// flushed to the client.
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *streamWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, s.rc.Flush()
}

// StreamResponse streams the rest of an OnRequest response, for
// Server-Sent Events, chunked downloads and anything a client reads as it
// arrives. Call it from OnRequest with OnRequest's w, after setting the
// status and headers (and writing the start of the body, if any), then
// return from OnRequest.
//
// Once the turn's changes are durable, the status, headers and body
// written so far are sent, and fn runs outside the turn, on a goroutine
// of its own, writing the rest of the body to w: every Write reaches the
// client at once. The actor is not held while fn runs: its actions and
// other requests run meanwhile, and fn re-enters it with bg.Enter to read
// or change state. The actor stays awake until fn returns.
// bg.Context() is canceled when the client goes away or the actor stops
// (c.Sleep, destroy, runtime stop); the stop waits for fn up to
// SleepGracePeriod. The response ends when fn returns; if fn returns an
// error (or panics), the error is logged and the response is cut short
// so that the client sees an incomplete body, not a complete one.
//
// If the turn fails, fn never runs and the client gets the error
// response. w is not safe for concurrent use.
func (c *Context[S, C, V]) StreamResponse(w http.ResponseWriter, fn func(bg *Background[S, C, V], w io.Writer) error) error {
	buf, ok := w.(*responseBuffer)
	if !ok {
		return errNotOnRequest
	}
	if buf.stream != nil {
		return errors.New("rivet: StreamResponse called twice for one response")
	}
	s := &responseStream{ready: make(chan struct{}), done: make(chan struct{})}
	buf.stream = s
	e, id, inst, log := c.t.Engine(), c.inst.info.ID, c.inst, c.Log
	c.t.RunInBackground(true, func(ctx context.Context) {
		defer close(s.done)
		select {
		case <-s.ready:
		case <-ctx.Done():
			s.err = context.Cause(ctx)
			return
		}
		if s.w == nil {
			return
		}
		s.err = runStream(ctx, s.w, log, func(ctx context.Context, w io.Writer) error {
			return fn(&Background[S, C, V]{ctx: ctx, e: e, inst: inst, id: id}, w)
		})
	})
	return nil
}

// runStream runs a stream's function with a context also canceled when
// the client goes away (the request's context), turning a panic into an
// error.
func runStream(ctx context.Context, w http.ResponseWriter, log *slog.Logger, fn func(ctx context.Context, w io.Writer) error) (err error) {
	req := requestContextOf(w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if req != nil {
		defer context.AfterFunc(req, cancel)()
	}
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in actor code", "in", "StreamResponse", "panic", r)
			err = engine.AsReported(errors.New("panic in StreamResponse"))
		}
	}()
	err = fn(ctx, &streamWriter{w: w, rc: http.NewResponseController(w)})
	if err != nil && !engine.Reported(err) {
		log.Warn("streamed response failed", "err", err)
	}
	return err
}

// streamTarget is the writer a stream writes to and the context of the
// request it answers.
type streamTarget struct {
	http.ResponseWriter
	ctx context.Context
}

func (t streamTarget) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func requestContextOf(w http.ResponseWriter) context.Context {
	if t, ok := w.(streamTarget); ok {
		return t.ctx
	}
	return nil
}

// serveRequest serves a raw HTTP request as a connection of its own: the
// connection hooks run first (onBeforeConnect may refuse it), OnRequest
// runs as a turn serving it (c.Conn set), and onDisconnect runs once the
// response, streamed or not, is done.
func (a *Actor[S, C, V]) serveRequest(ctx context.Context, e *engine.Engine, id string, conn *engine.Conn, w http.ResponseWriter, r *http.Request) error {
	if a.opts.OnRequest == nil {
		return gateway.ErrNoHandler.With("Actor %q has no onRequest handler.", a.name)
	}
	if err := e.ConnectRaw(ctx, id, conn); err != nil {
		return err
	}
	defer e.Disconnect(conn, id, "")
	buf := &responseBuffer{header: http.Header{}}
	err := e.EnterAs(ctx, id, conn, func(t *engine.Turn) error {
		c := t.Instance().(*instance[S, C, V]).ctx(t)
		buf.reset()
		return finish(c, a.opts.OnRequest(c, buf, r))
	})
	s := buf.stream
	if err != nil {
		if s != nil {
			s.release(nil) // the turn may have committed after all: stop its task
		}
		return err
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	if buf.code == 0 {
		buf.code = http.StatusOK
	}
	w.WriteHeader(buf.code)
	_, _ = w.Write(buf.body.Bytes())
	if s == nil {
		return nil
	}
	_ = http.NewResponseController(w).Flush()
	s.release(streamTarget{ResponseWriter: w, ctx: r.Context()})
	<-s.done
	if s.err != nil {
		// Cut the response short: the client must not take a broken
		// stream for a complete body.
		panic(http.ErrAbortHandler)
	}
	return nil
}
