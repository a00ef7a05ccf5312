package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/engine"
)

// frame is one message waiting to be written to a WebSocket: released
// once its gate opens (the turn that produced it is durable); build makes
// the bytes then, off the actor's goroutine.
type frame struct {
	gate  *engine.Gate
	build func() (websocket.MessageType, []byte, error)
	// size is what the frame counts against the queue's byte bound: its
	// payload (known before the frame is built) plus frameOverhead.
	size int
}

// frameOverhead is what a queued frame costs beyond its payload: the
// frame, its closure and the protocol envelope.
const frameOverhead = 64

// queueLimits bound a sender's queue and its writes.
type queueLimits struct {
	messages     int           // frames queued
	bytes        int           // their payload bytes, the frames being written included
	writeTimeout time.Duration // one batch of writes
}

// sender writes a WebSocket's outgoing frames in order, each after its
// gate. Its queue is bounded in messages and in bytes: a client that does
// not read is closed with 1011 "message.outgoing_queue_full" rather than
// stalling the actor that produces its messages or holding its memory.
type sender struct {
	c      *websocket.Conn
	lim    queueLimits
	onErr  func(error) // logs a frame that could not be built
	onFull func(queuedBytes int)

	// cork, when set, gathers the frames of one batch into one write
	// to the socket (see corkConn); nil writes each frame at once.
	cork *corkConn

	mu    sync.Mutex
	queue []frame
	bytes int // sizes of the frames queued or being written
	// busy: a goroutine is writing frames to the socket, run or a
	// send writing inline; the other waits.
	busy    bool
	full    bool
	aborted error
	closing bool
	code    websocket.StatusCode
	why     string
	wake    chan struct{}
	done    chan struct{}
}

// newSender returns a sender for c. onFull, if set, runs when a push finds
// the queue full, before the socket is aborted.
func newSender(c *websocket.Conn, lim queueLimits, onErr func(error), onFull func(queuedBytes int)) *sender {
	if onErr == nil {
		onErr = func(error) {}
	}
	return &sender{c: c, lim: lim, onErr: onErr, onFull: onFull, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push queues f; past a bound the socket is aborted. One frame larger
// than the byte bound still goes through when nothing else is queued.
func (s *sender) push(f frame) {
	f.size += frameOverhead
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.lim.messages || (s.bytes > 0 && s.bytes+f.size > s.lim.bytes) {
		queued := s.bytes
		if s.full {
			s.mu.Unlock()
			return // one drop, counted once
		}
		s.full = true
		s.mu.Unlock()
		if s.onFull != nil {
			s.onFull(queued)
		}
		s.abort(errSendQueueFull)
		return
	}
	s.queue = append(s.queue, f)
	s.bytes += f.size
	s.mu.Unlock()
	// Woken once, when the frame can go (its turn is durable), not
	// now to wait for that: a broadcast to many sockets wakes each
	// writer once, and frames whose commits share an fsync go in one
	// write.
	f.gate.AfterSettle(s.signal)
}

// send writes f from the calling goroutine when its gate is open and
// nothing is queued or being written: the goroutine that learned of the
// commit writes the answer, without a hand-off to the writer goroutine.
// Otherwise it queues f as push does.
func (s *sender) send(ctx context.Context, f frame) {
	if !f.gate.Settled() {
		s.push(f)
		return
	}
	s.mu.Lock()
	if s.busy || s.closing || len(s.queue) > 0 {
		s.mu.Unlock()
		s.push(f)
		return
	}
	f.size += frameOverhead
	s.busy = true
	s.bytes += f.size
	s.mu.Unlock()
	s.write(ctx, []frame{f})
	s.mu.Lock()
	s.busy = false
	more := len(s.queue) > 0 || s.closing
	s.mu.Unlock()
	if more {
		s.signal()
	}
}

// pushFront queues f ahead of everything else (Init).
func (s *sender) pushFront(f frame) {
	f.size += frameOverhead
	s.mu.Lock()
	s.queue = append([]frame{f}, s.queue...)
	s.bytes += f.size
	s.mu.Unlock()
	s.signal()
}

// queuedBytes is the size of the frames queued or being written.
func (s *sender) queuedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
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
	if s.stop(err) {
		go func() { _ = s.c.Close(websocket.StatusInternalError, closeReason(err)) }()
	}
}

// kill drops the queue and closes the connection at once, without a close
// handshake (a peer that stopped answering).
func (s *sender) kill(err error) {
	s.stop(err)
	_ = s.c.CloseNow()
}

// stop records err as the reason the socket ends, unless one was, and
// drops the queue; it reports whether err was the first.
func (s *sender) stop(err error) (first bool) {
	s.mu.Lock()
	first = s.aborted == nil
	if first {
		s.aborted = err
	}
	for _, f := range s.queue {
		s.bytes -= f.size
	}
	s.queue, s.closing = nil, true
	s.mu.Unlock()
	s.signal()
	return first
}

// drop releases the bytes of frames that will not be written.
func (s *sender) drop(fs []frame) {
	s.mu.Lock()
	for _, f := range fs {
		s.bytes -= f.size
	}
	s.mu.Unlock()
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
		if s.busy {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
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
		s.busy = true
		s.mu.Unlock()
		s.write(ctx, batch)
		clear(batch)
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
	}
}

// written releases the queue bytes of a frame the writer is done with
// and reports whether the socket was aborted.
func (s *sender) written(f frame) (aborted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes -= f.size
	return s.aborted != nil
}

// write writes a batch of frames in order, each once its gate opens. The
// write deadline starts at the first write, so waiting for a slow commit
// does not eat into it. Each frame's bytes are released once it is
// written (or dropped). With a cork, the frames whose gates are open go
// to the socket in one write (one syscall, not one per frame).
func (s *sender) write(ctx context.Context, batch []frame) {
	var w struct {
		ctx    context.Context
		stop   context.CancelFunc
		corked bool
	}
	uncork := func() error {
		if !w.corked {
			return nil
		}
		w.corked = false
		return s.cork.uncork(w.ctx)
	}
	defer func() {
		if err := uncork(); err != nil {
			s.abort(err)
		}
		if w.stop != nil {
			w.stop()
		}
	}()
	for i, f := range batch {
		if s.abortErr() != nil {
			s.drop(batch[i:])
			return
		}
		if !f.gate.Settled() {
			if err := uncork(); err != nil {
				s.abort(err)
				s.drop(batch[i:])
				return
			}
		}
		if err := f.gate.Wait(ctx); err != nil {
			s.written(f)
			continue // the turn never happened
		}
		typ, b, err := f.build()
		if err != nil {
			s.onErr(err)
			s.written(f)
			continue
		}
		if w.ctx == nil {
			w.ctx, w.stop = context.WithTimeout(ctx, s.lim.writeTimeout)
		}
		if s.cork != nil && !w.corked && i+1 < len(batch) {
			w.corked = true
			s.cork.cork()
		}
		err = s.c.Write(w.ctx, typ, b)
		s.written(f)
		if err != nil {
			s.abort(err)
			s.drop(batch[i+1:])
			return
		}
	}
}
