package engine

import "time"

// workerIdle is how long a worker goroutine waits for another actor to
// drain before it exits.
const workerIdle = time.Second

// runHost drains h's mailbox on a worker goroutine. Workers are reused:
// an idle one takes the host if there is one, otherwise a new worker
// starts, so a runnable actor never waits for a busy worker (a turn may
// block on another actor) and a burst does not pay for a fresh goroutine,
// and its stack growth, per actor.
func (e *Engine) runHost(h *host) {
	select {
	case e.idle <- h:
	default:
		e.goTracked(func() { e.worker(h) })
	}
}

func (e *Engine) worker(h *host) {
	var t *time.Timer
	for {
		h.drain()
		if t == nil {
			t = time.NewTimer(workerIdle)
		} else {
			t.Reset(workerIdle)
		}
		select {
		case h = <-e.idle:
		case <-t.C:
			return
		case <-e.ctx.Done():
			t.Stop()
			return
		}
	}
}
