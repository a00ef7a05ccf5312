// Package rivettest runs actors in tests: a runtime on the in-memory store
// with a fake clock, so that schedules and sleep can be tested without
// waiting.
//
//	k := rivettest.New(t, reg)
//	h := k.Client.GetOrCreate("reminders", rivet.Key{"a"})
//	_, _ = h.Call(ctx, "remindIn", time.Hour.Milliseconds(), "stretch")
//	k.Advance(time.Hour) // the alarm fires; Advance returns after its turn
package rivettest

import (
	"container/heap"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/clock"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// Clock is a fake clock. Time moves only in Advance, which runs every
// timer that falls due, in deadline order, each with Now set to its
// deadline, and returns when the work those timers triggered is done.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    int
}

// NewClock returns a fake clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// SyncTimers tells the runtime to make timer callbacks wait for the work
// they trigger, which makes Advance deterministic.
func (c *Clock) SyncTimers() bool { return true }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

type fakeTimer struct {
	c       *Clock
	at      time.Time
	seq     int
	f       func()
	index   int
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped || t.index < 0 {
		return false
	}
	t.stopped = true
	heap.Remove(&t.c.timers, t.index)
	return true
}

type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)   { t := x.(*fakeTimer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}

// AfterFunc schedules f to run in Advance once d has passed.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves time forward by d, running due timers in order. Advance(0)
// runs what is due now.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].at.After(target) {
			c.now = target
			c.mu.Unlock()
			return
		}
		t := heap.Pop(&c.timers).(*fakeTimer)
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Kit is a runtime for tests.
type Kit struct {
	Runtime *rivet.Runtime
	Client  *rivet.Client
	Clock   *Clock
	Driver  rivetdriver.Driver
}

// Option configures New.
type Option func(*config)

type config struct {
	driver rivetdriver.Driver
	start  time.Time
}

// WithDriver runs the kit on another driver (the kit does not close it).
func WithDriver(d rivetdriver.Driver) Option { return func(c *config) { c.driver = d } }

// WithStart sets the fake clock's start time (default 2025-01-01 UTC).
func WithStart(t time.Time) Option { return func(c *config) { c.start = t } }

// New starts a runtime for reg on the memory driver and a fake clock. It
// is stopped when the test ends.
func New(tb testing.TB, reg *rivet.Registry, opts ...Option) *Kit {
	tb.Helper()
	cfg := config{start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.driver == nil {
		cfg.driver = rivetmem.New()
	}
	clk := NewClock(cfg.start)
	rt, err := rivet.Start(context.Background(), reg, &rivet.Config{Driver: cfg.driver, Clock: clk, Logger: testLogger(tb)})
	if err != nil {
		tb.Fatalf("rivettest: start runtime: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			tb.Errorf("rivettest: stop runtime: %v", err)
		}
	})
	return &Kit{Runtime: rt, Client: rt.Client(), Clock: clk, Driver: cfg.driver}
}

// Advance moves the fake clock forward by d: due alarms fire and idle
// actors go to sleep, and Advance returns when that work is done.
// It first waits (up to a second) until the actors have finished the jobs
// already handed to them, so the idle timers they arm after a call see the
// jump.
func (k *Kit) Advance(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	k.Runtime.Engine().Settle(ctx)
	cancel()
	k.Clock.Advance(d)
}

// Awake reports whether the actor with id is in memory.
func (k *Kit) Awake(id string) bool { return k.Runtime.Engine().Awake(id) }
