package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// alarmReports records what Engine.OnAlarm was told.
type alarmReports struct {
	mu  sync.Mutex
	ats []time.Time
}

func (r *alarmReports) add(_ string, _ uint64, at time.Time) {
	r.mu.Lock()
	r.ats = append(r.ats, at)
	r.mu.Unlock()
}

func (r *alarmReports) take() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ats
	r.ats = nil
	return out
}

// OnAlarm hears of every change of an actor's earliest alarm once the
// commit that made it is durable (before the caller gets its answer),
// nothing when the earliest stays, zero when none is left, and the
// earliest again after a wake.
func TestOnAlarmReportsEarliest(t *testing.T) {
	base := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	var ids []string
	b := hooked{actions: map[string]func(*Turn, *uint64) (any, error){
		"inc":  func(_ *Turn, n *uint64) (any, error) { *n++; return *n, nil },
		"read": func(_ *Turn, n *uint64) (any, error) { return *n, nil },
		"at": func(t *Turn, n *uint64) (any, error) { // schedules at base + n minutes
			id, err := t.Schedule(base.Add(time.Duration(*n)*time.Minute), "read", nil)
			ids = append(ids, id)
			return *n, err
		},
		"cancelAll": func(t *Turn, n *uint64) (any, error) {
			for _, id := range ids {
				t.CancelAlarm(id)
			}
			ids = nil
			return *n, nil
		},
	}}
	e, err := New(Config{Driver: rivetmem.New(), Behaviors: []Behavior{b}})
	if err != nil {
		t.Fatal(err)
	}
	var got alarmReports
	e.OnAlarm(got.add)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	rec, _, err := e.Create(ctx, "", "hooked", []string{"a"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	step := func(action string, want ...time.Time) {
		t.Helper()
		if _, err := call(t, e, rec.ID, action); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		// Reported before the call returned: no waiting here.
		gotAts := got.take()
		if len(gotAts) != len(want) {
			t.Fatalf("after %s: reports %v, want %v", action, gotAts, want)
		}
		for i := range want {
			if !gotAts[i].Equal(want[i]) {
				t.Fatalf("after %s: reports %v, want %v", action, gotAts, want)
			}
		}
	}
	step("inc")                         // n=1, no alarm: nothing
	step("inc")                         // n=2
	step("at", base.Add(2*time.Minute)) // first alarm: reported
	step("inc")                         // n=3
	step("at")                          // later one: the earliest stays
	step("inc")                         // n=4
	step("inc")                         // n=5
	step("inc")                         // n=6
	step("inc")                         // n=7
	step("read")                        // nothing changes
	step("cancelAll", time.Time{})      // none left
	step("at", base.Add(7*time.Minute)) // again
	if err := e.Sleep(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	got.take()
	step("read", base.Add(7*time.Minute)) // the wake reports the stored earliest
}
