package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// job is one unit of work for an actor's loop. run executes on the loop;
// fail is called instead when the job can never run (the actor stopped,
// was destroyed, or the runtime is shutting down).
type job struct {
	run  func(h *host)
	fail func(err error)
	// idle marks a job that must not wake a sleeping actor (it fails
	// with errAsleep instead): closing a connection of an actor that
	// already slept.
	idle bool
	// notWork marks bookkeeping that does not count as activity for the
	// sleep timer (the sleep timer's own job).
	notWork bool
	// ctx is the caller's context (nil: none) and deadline its time
	// limit (zero: none): a job whose caller is gone or out of time is
	// failed when it reaches the head of the mailbox instead of running
	// (and does not wake a sleeping actor).
	ctx      context.Context
	deadline time.Time
	// call marks a call from a client or another actor (an action, a
	// queue send): it is refused with actor.overloaded when the actor
	// already has more waiting than it can serve within the mailbox's
	// maxWait, and failed the same way if it waited longer than that.
	call bool
	// queued is when the job entered the mailbox (calls only).
	queued time.Time
}

// mailbox is an actor's FIFO of jobs: a mutex-guarded slice. Pushing never
// blocks; a full mailbox refuses the job. No goroutine waits on an idle
// mailbox: the push that finds it idle starts one to drain it, so an idle
// actor costs memory but no goroutine.
//
// maxWait (0: no bound) bounds the time a call may wait: a call that
// would wait longer, by the estimate of its queue's length times the
// recent time per job (perJob), is refused at once, and one that did
// wait longer is failed when it reaches the head.
type mailbox struct {
	mu      sync.Mutex
	items   []job
	closed  bool
	running bool // a goroutine is draining the mailbox
	limit   int
	maxWait time.Duration
	// perJob is a moving average of the time the drainer spends per job
	// it pops, in nanoseconds, jobs it skipped (their caller gone)
	// included: the queue drains at about one job per perJob.
	perJob atomic.Int64
	// waiting counts the jobs waiting in every mailbox of the engine.
	waiting *atomic.Int64
}

func newMailbox(limit int, maxWait time.Duration, waiting *atomic.Int64) *mailbox {
	return &mailbox{limit: limit, maxWait: maxWait, waiting: waiting}
}

type pushResult int

const (
	pushed pushResult = iota
	pushClosed
	pushFull
	// pushBusy: a call that would wait longer than maxWait.
	pushBusy
)

// push queues j. start reports that no goroutine is draining the mailbox
// and the caller must start one.
func (m *mailbox) push(j job) (res pushResult, start bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return pushClosed, false
	}
	if m.limit > 0 && len(m.items) >= m.limit {
		return pushFull, false
	}
	if j.call && m.maxWait > 0 {
		if len(m.items) > 0 && m.estimateLocked() > m.maxWait {
			return pushBusy, false
		}
		j.queued = time.Now()
	}
	m.items = append(m.items, j)
	m.waiting.Add(1)
	if !m.running {
		m.running = true
		return pushed, true
	}
	return pushed, false
}

// estimateLocked is how long a job pushed now would wait: the jobs ahead
// of it times the recent time per job.
func (m *mailbox) estimateLocked() time.Duration {
	return time.Duration(int64(len(m.items)) * m.perJob.Load())
}

// observe folds the time the drainer spent on one job into perJob (an
// exponential moving average with weight 1/8).
func (m *mailbox) observe(d time.Duration) {
	old := m.perJob.Load()
	if old == 0 {
		m.perJob.Store(int64(d))
		return
	}
	m.perJob.Store(old + (int64(d)-old)/8)
}

// release gives up draining: it reports true when the mailbox is empty and
// the drainer may return, false when a job arrived meanwhile.
func (m *mailbox) release() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.items) > 0 {
		return false
	}
	m.running = false
	return true
}

// empty reports whether no job is waiting.
func (m *mailbox) empty() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items) == 0
}

// seal refuses further jobs but keeps the queued ones for close.
func (m *mailbox) seal() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

// pop returns the next job, or ok=false when the mailbox is empty.
func (m *mailbox) pop() (job, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.items) == 0 {
		return job{}, false
	}
	j := m.items[0]
	m.waiting.Add(-1)
	m.items[0] = job{}
	m.items = m.items[1:]
	if len(m.items) == 0 {
		m.items = m.items[:0:0]
	}
	return j, true
}

// closeIfEmpty closes the mailbox only when no job is waiting, so that a
// decision to stop cannot strand a job pushed just before it.
func (m *mailbox) closeIfEmpty() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.items) > 0 {
		return false
	}
	m.closed = true
	return true
}

// close closes the mailbox and returns the jobs still in it.
func (m *mailbox) close() []job {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	rest := m.items
	m.waiting.Add(-int64(len(rest)))
	m.items = nil
	return rest
}
