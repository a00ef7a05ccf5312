package rivet

import (
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
)

// Schedule calls an actor's own actions later. Alarms are durable: they
// are committed with the turn that made them and survive sleep, restarts
// and crashes. A due alarm wakes its actor and runs at least once; an
// action that fails is logged, not retried.
type Schedule struct{ t *engine.Turn }

// ScheduledEvent is a pending alarm. Returned from an action or stored,
// it keeps every field: {"id":…,"at":…,"action":…,"args":[…]}, the time
// exact to the nanosecond (see docs/concepts/values.md).
type ScheduledEvent struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Args   Args      `json:"args"`
}

// After schedules action(args...) after d. It returns the alarm's id.
func (s *Schedule) After(d time.Duration, action string, args ...any) (string, error) {
	return s.At(s.t.Now().Add(d), action, args...)
}

// At schedules action(args...) at time at.
func (s *Schedule) At(at time.Time, action string, args ...any) (string, error) {
	b, err := codec.MarshalArgs(args)
	if err != nil {
		return "", err
	}
	return s.t.Schedule(at, action, b)
}

// List returns the pending alarms by time.
func (s *Schedule) List() []ScheduledEvent {
	as := s.t.Alarms()
	out := make([]ScheduledEvent, len(as))
	for i, a := range as {
		args, _ := codec.SplitArgs(a.Args)
		out[i] = ScheduledEvent{ID: a.ID, At: a.At, Action: a.Action, Args: Args{args}}
	}
	return out
}

// Cancel removes a pending alarm, reporting whether it existed.
func (s *Schedule) Cancel(id string) bool { return s.t.CancelAlarm(id) }
