package engine

import (
	"container/heap"
	"sync"
	"time"

	"github.com/rivetgo/rivet/internal/clock"
)

// scheduler fires actor alarms. It keeps every known alarm of every actor,
// awake or asleep, in a time-ordered heap with one timer for the earliest.
// Heap entries are hints: the actor's own alarm set is the truth, so a
// canceled alarm's entry simply finds nothing when it fires.
type scheduler struct {
	e  *Engine
	mu sync.Mutex
	h  alarmHeap
	t  clock.Timer
	at time.Time
	// stopped: no more timers.
	stopped bool
}

type alarmEntry struct {
	at      time.Time
	actorID string
	alarmID string
}

type alarmHeap []alarmEntry

func (h alarmHeap) Len() int           { return len(h) }
func (h alarmHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h alarmHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *alarmHeap) Push(x any)        { *h = append(*h, x.(alarmEntry)) }
func (h *alarmHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newScheduler(e *Engine) *scheduler { return &scheduler{e: e} }

func (s *scheduler) add(at time.Time, actorID, alarmID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	heap.Push(&s.h, alarmEntry{at: at, actorID: actorID, alarmID: alarmID})
	if s.t == nil || at.Before(s.at) {
		s.armLocked()
	}
}

func (s *scheduler) armLocked() {
	if s.t != nil {
		s.t.Stop()
		s.t = nil
	}
	if len(s.h) == 0 || s.stopped {
		return
	}
	s.at = s.h[0].at
	s.t = s.e.clock.AfterFunc(max(s.at.Sub(s.e.clock.Now()), 0), s.fire)
}

// fire delivers every due alarm in time order and re-arms the timer.
func (s *scheduler) fire() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	now := s.e.clock.Now()
	var due []alarmEntry
	for len(s.h) > 0 && !s.h[0].at.After(now) {
		due = append(due, heap.Pop(&s.h).(alarmEntry))
	}
	s.t = nil
	s.armLocked()
	s.mu.Unlock()
	for _, a := range due {
		s.e.deliverAlarm(a.actorID, a.alarmID)
	}
}

func (s *scheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.t != nil {
		s.t.Stop()
		s.t = nil
	}
}
