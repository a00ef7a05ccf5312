package engine

import "sync"

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
}

// mailbox is an actor's FIFO of jobs: a mutex-guarded slice. Pushing never
// blocks; a full mailbox refuses the job. No goroutine waits on an idle
// mailbox: the push that finds it idle starts one to drain it, so an idle
// actor costs memory but no goroutine.
type mailbox struct {
	mu      sync.Mutex
	items   []job
	closed  bool
	running bool // a goroutine is draining the mailbox
	limit   int
}

func newMailbox(limit int) *mailbox {
	return &mailbox{limit: limit}
}

type pushResult int

const (
	pushed pushResult = iota
	pushClosed
	pushFull
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
	m.items = append(m.items, j)
	if !m.running {
		m.running = true
		return pushed, true
	}
	return pushed, false
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
	m.items = nil
	return rest
}
