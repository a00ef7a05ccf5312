package gateway

import (
	"context"
	"sync"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/engine"
)

// frame is one message waiting to be written to a WebSocket: released
// once its gate opens (the turn that produced it is durable); build makes
// the bytes then, off the actor's goroutine.
type frame struct {
	gate  *engine.Gate
	build func() (websocket.MessageType, []byte, error)
}

// sender writes a WebSocket's outgoing frames in order, each after its
// gate. Its queue is bounded: a client that does not read is closed with
// 1011 rather than stalling the actor that produces its messages.
type sender struct {
	c     *websocket.Conn
	max   int
	onErr func(error) // logs a frame that could not be built

	mu      sync.Mutex
	queue   []frame
	aborted error
	closing bool
	code    websocket.StatusCode
	why     string
	wake    chan struct{}
	done    chan struct{}
}

func newSender(c *websocket.Conn, max int, onErr func(error)) *sender {
	return &sender{c: c, max: max, onErr: onErr, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push queues f; past the bound the socket is aborted.
func (s *sender) push(f frame) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.max {
		s.mu.Unlock()
		s.abort(errSendQueueFull)
		return
	}
	s.queue = append(s.queue, f)
	s.mu.Unlock()
	s.signal()
}

// pushFront queues f ahead of everything else (Init).
func (s *sender) pushFront(f frame) {
	s.mu.Lock()
	s.queue = append([]frame{f}, s.queue...)
	s.mu.Unlock()
	s.signal()
}

// closeAfterQueue closes the socket once the queued frames are written.
func (s *sender) closeAfterQueue(code websocket.StatusCode, why string) {
	s.mu.Lock()
	if !s.closing {
		s.closing, s.code, s.why = true, code, why
	}
	s.mu.Unlock()
	s.signal()
}

// abort drops the queue and closes with 1011 "group.code" in the
// background: the peer may not be reading, so its close frame is not
// awaited here.
func (s *sender) abort(err error) {
	s.mu.Lock()
	first := s.aborted == nil
	if first {
		s.aborted = err
	}
	s.queue, s.closing = nil, true
	s.mu.Unlock()
	if first {
		go func() { _ = s.c.Close(websocket.StatusInternalError, closeReason(err)) }()
	}
	s.signal()
}

// abortErr is the error the socket was aborted with, if any.
func (s *sender) abortErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aborted
}

// run writes frames until the sender closes or ctx ends. It takes every
// frame queued at once and writes them under one write deadline, so a
// busy socket pays for one timer per batch, not per message.
func (s *sender) run(ctx context.Context) {
	defer close(s.done)
	var batch []frame
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			closing, aborted, code, why := s.closing, s.aborted, s.code, s.why
			s.mu.Unlock()
			if closing {
				if aborted == nil {
					_ = s.c.Close(code, why)
				}
				return
			}
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		batch = append(batch[:0], s.queue...)
		clear(s.queue)
		s.queue = s.queue[:0]
		s.mu.Unlock()
		s.write(ctx, batch)
		clear(batch)
	}
}

// write writes a batch of frames in order, each once its gate opens. The
// write deadline starts at the first write, so waiting for a slow commit
// does not eat into it.
func (s *sender) write(ctx context.Context, batch []frame) {
	var w struct {
		ctx  context.Context
		stop context.CancelFunc
	}
	defer func() {
		if w.stop != nil {
			w.stop()
		}
	}()
	for _, f := range batch {
		if s.abortErr() != nil {
			return
		}
		if err := f.gate.Wait(ctx); err != nil {
			continue // the turn never happened
		}
		typ, b, err := f.build()
		if err != nil {
			s.onErr(err)
			continue
		}
		if w.ctx == nil {
			w.ctx, w.stop = context.WithTimeout(ctx, writeTimeout)
		}
		if err := s.c.Write(w.ctx, typ, b); err != nil {
			s.abort(err)
			return
		}
	}
}
