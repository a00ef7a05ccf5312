package engine

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxAwake is Config.MaxAwake's default: at ~5 KiB for a small
// idle actor (BENCHMARKS.md), about 500 MiB of awake actors.
const DefaultMaxAwake = 100_000

// evictMinIdle: an actor that did work more recently than this is not
// put to sleep early; it goes back to the end of the idle list instead.
const evictMinIdle = 100 * time.Millisecond

// awakeSet bounds the actors awake at once. Every activated host counts;
// a host whose sleep timer is armed (idle, nothing keeping it awake) is
// also on idle, oldest armed first. When an activation takes the count
// past max, the oldest idle actors are asked to sleep early, as their
// sleep timeout would have done later. The bound is soft: busy actors,
// and actors that may not sleep, are never put to sleep for it.
type awakeSet struct {
	max int // 0: no bound
	// minIdle: an actor that worked more recently stays awake
	// (evictMinIdle; tests shorten it).
	minIdle time.Duration
	count   atomic.Int64
	mu      sync.Mutex
	idle    list.List // of *host
	// Evicted counts actors put to sleep early by the bound.
	evicted atomic.Uint64
}

// awakeAdded counts an activation of h and evicts past the bound.
func (e *Engine) awakeAdded() {
	n := e.awake.count.Add(1)
	if e.awake.max <= 0 || n <= int64(e.awake.max) {
		return
	}
	e.evict(int(n) - e.awake.max)
}

// awakeRemoved uncounts h as it leaves.
func (e *Engine) awakeRemoved(h *host) {
	e.awake.count.Add(-1)
	e.idleRemove(h)
}

// idleAdd puts h at the end of the idle list (its sleep timer was just
// armed).
func (e *Engine) idleAdd(h *host) {
	if e.awake.max <= 0 {
		return
	}
	e.awake.mu.Lock()
	if h.idleElem != nil {
		e.awake.idle.MoveToBack(h.idleElem)
	} else {
		h.idleElem = e.awake.idle.PushBack(h)
	}
	e.awake.mu.Unlock()
}

func (e *Engine) idleRemove(h *host) {
	e.awake.mu.Lock()
	if h.idleElem != nil {
		e.awake.idle.Remove(h.idleElem)
		h.idleElem = nil
	}
	e.awake.mu.Unlock()
}

// evict asks the n oldest idle actors to sleep.
func (e *Engine) evict(n int) {
	var hs []*host
	e.awake.mu.Lock()
	for range n {
		el := e.awake.idle.Front()
		if el == nil {
			break
		}
		h := el.Value.(*host)
		e.awake.idle.Remove(el)
		h.idleElem = nil
		hs = append(hs, h)
	}
	e.awake.mu.Unlock()
	for _, h := range hs {
		e.pushTo(h, job{run: (*host).evictIfIdle, fail: func(error) {}, idle: true, notWork: true})
	}
}

// evictIfIdle puts the actor to sleep before its sleep timeout, for the
// bound on awake actors, if it is still idle; one that worked within
// minIdle goes back to the end of the idle list.
func (h *host) evictIfIdle() {
	if h.exited || !h.active || h.sleepAsked || !h.canSleep() {
		return
	}
	if h.e.clock.Now().Sub(h.lastWork) < h.e.awake.minIdle {
		h.e.idleAdd(h)
		return
	}
	if h.sleepT != nil {
		h.sleepT.Stop()
		h.sleepT = nil // if it does not sleep now, drain re-arms it
	}
	h.e.awake.evicted.Add(1)
	if fn := h.e.sleepThrough; fn != nil {
		h.sleepAsked = true
		h.log().Debug("actor asks to sleep (max_awake_actors)")
		fn(h.id)
		return
	}
	h.sleepNow(false)
}

// Evicted is the number of actors put to sleep before their sleep
// timeout because more than Config.MaxAwake were awake.
func (e *Engine) Evicted() uint64 { return e.awake.evicted.Load() }
