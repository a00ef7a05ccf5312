// Package workflow shows durable schedules: reminders that fire at their
// time even if the server was stopped in between, and a multi-step
// workflow whose steps wait days between them.
//
//	reminders[user]:  remind(text, inMs) → reminder; cancel(id) → bool;
//	                  pending(); fired(); event "reminder" when one fires
//	onboarding[user]: start(email) → status; status(); event "step"
//
// A schedule (c.Schedule().After) is committed with the turn that makes
// it, like state. The runtime keeps every pending alarm in its store and
// reloads them on start, so an alarm that fell due while the process was
// down fires as soon as it is back, and one that is not yet due fires at
// its time. An alarm fires at least once: its action runs in a turn that
// also deletes the alarm, and a crash before that commit fires it again,
// so the actions below are idempotent.
package workflow

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rivetgo/rivet"
)

// Reminder is one reminder.
type Reminder struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	// DueAt is when it fires (Unix ms).
	DueAt int64 `json:"dueAt"`
	// FiredAt is when it fired (Unix ms); 0 while pending.
	FiredAt int64 `json:"firedAt,omitempty"`
}

// Reminders is the state of one user's reminders.
type Reminders struct {
	Pending []Reminder `json:"pending"`
	// Fired holds the latest MaxFired fired reminders, oldest first.
	Fired []Reminder `json:"fired"`
	Next  int        `json:"next"`
}

// Limits of the reminders actor.
const (
	MaxFired     = 100
	MaxDelay     = 366 * 24 * time.Hour
	MaxTextBytes = 1000
)

// errScheduleOnly refuses a client's call of an action meant for the
// schedule.
var errScheduleOnly = rivet.UserError("this action is run by the schedule, not by clients", rivet.WithCode("schedule_only"))

// fromSchedule reports whether the running turn was started by an alarm
// rather than by a client (every client call has a connection).
func fromSchedule[S any](c *rivet.Ctx[S]) bool { return c.Conn == nil }

func newReminders() rivet.Definition {
	return rivet.NewActor("reminders", rivet.Opts[Reminders]{}).
		Action("remind", func(c *rivet.Ctx[Reminders], text string, inMs int64) (Reminder, error) {
			text = strings.TrimSpace(text)
			switch {
			case text == "":
				return Reminder{}, rivet.UserError("a reminder needs a text", rivet.WithCode("invalid_reminder"))
			case len(text) > MaxTextBytes:
				return Reminder{}, rivet.UserError(fmt.Sprintf("a reminder's text is at most %d bytes", MaxTextBytes), rivet.WithCode("invalid_reminder"))
			case inMs < 0 || time.Duration(inMs)*time.Millisecond > MaxDelay:
				return Reminder{}, rivet.UserError("inMs must be between 0 and a year", rivet.WithCode("invalid_reminder"))
			}
			s := c.State
			s.Next++
			r := Reminder{ID: fmt.Sprintf("r%d", s.Next), Text: text, DueAt: c.Now().Add(time.Duration(inMs) * time.Millisecond).UnixMilli()}
			if _, err := c.Schedule().At(time.UnixMilli(r.DueAt), "fire", r.ID); err != nil {
				return Reminder{}, err // schedule.* errors (too many pending) reach the caller
			}
			s.Pending = append(s.Pending, r)
			return r, nil
		}).
		Action("cancel", func(c *rivet.Ctx[Reminders], id string) bool {
			s := c.State
			i := slices.IndexFunc(s.Pending, func(r Reminder) bool { return r.ID == id })
			if i < 0 {
				return false
			}
			// The reminder's alarm is the one that would fire(id).
			for _, a := range c.Schedule().List() {
				var arg string
				if a.Action == "fire" && a.Args.Decode(0, &arg) == nil && arg == id {
					c.Schedule().Cancel(a.ID)
				}
			}
			s.Pending = slices.Delete(s.Pending, i, i+1)
			return true
		}).
		// fire is the alarm's action. A second run of the same alarm
		// (at-least-once) finds nothing pending and does nothing.
		Action("fire", func(c *rivet.Ctx[Reminders], id string) error {
			if !fromSchedule(c) {
				return errScheduleOnly
			}
			s := c.State
			i := slices.IndexFunc(s.Pending, func(r Reminder) bool { return r.ID == id })
			if i < 0 {
				return nil
			}
			r := s.Pending[i]
			s.Pending = slices.Delete(s.Pending, i, i+1)
			r.FiredAt = c.Now().UnixMilli()
			s.Fired = append(s.Fired, r)
			if n := len(s.Fired) - MaxFired; n > 0 {
				s.Fired = slices.Delete(s.Fired, 0, n)
			}
			c.Broadcast("reminder", r)
			return nil
		}).
		Action("pending", func(c *rivet.Ctx[Reminders]) []Reminder { return orEmpty(c.State.Pending) }).
		Action("fired", func(c *rivet.Ctx[Reminders]) []Reminder { return orEmpty(c.State.Fired) })
}

// orEmpty makes a nil list encode as [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Definitions returns the reminders and onboarding actors.
func Definitions() []rivet.Definition {
	return []rivet.Definition{newReminders(), newOnboarding()}
}

// Step is one step of the onboarding workflow: it runs Delay after the
// previous one (the first, Delay after start).
type Step struct {
	Name  string
	Delay time.Duration
}

// Steps are the onboarding workflow's steps, in order.
var Steps = []Step{
	{Name: "welcome", Delay: 0},
	{Name: "tips", Delay: 24 * time.Hour},
	{Name: "checkIn", Delay: 48 * time.Hour},
}

// StepRun is a step that ran.
type StepRun struct {
	Step  string `json:"step"`
	RanAt int64  `json:"ranAt"` // Unix ms
	// Message is what the step did (a real workflow would send an
	// email here).
	Message string `json:"message"`
}

// NextStep is the step that runs next.
type NextStep struct {
	Step string `json:"step"`
	At   int64  `json:"at"` // Unix ms
}

// Onboarding is the state and status of one user's onboarding.
type Onboarding struct {
	Email     string    `json:"email"`
	StartedAt int64     `json:"startedAt"`
	Done      []StepRun `json:"done"`
	Next      *NextStep `json:"next"`
	Finished  bool      `json:"finished"`
}

func newOnboarding() rivet.Definition {
	return rivet.NewActor("onboarding", rivet.Opts[Onboarding]{}).
		// start begins the workflow; starting it again changes nothing.
		Action("start", func(c *rivet.Ctx[Onboarding], email string) (Onboarding, error) {
			s := c.State
			if s.StartedAt != 0 {
				return status(s), nil
			}
			if !strings.Contains(email, "@") {
				return Onboarding{}, rivet.UserError("start needs an email address", rivet.WithCode("invalid_email"))
			}
			s.Email, s.StartedAt = email, c.Now().UnixMilli()
			if err := scheduleStep(c, 0); err != nil {
				return Onboarding{}, err
			}
			return status(s), nil
		}).
		Action("status", func(c *rivet.Ctx[Onboarding]) Onboarding { return status(c.State) }).
		// runStep is the alarm's action for step i. It runs each step
		// once: a repeated alarm for a step already done does nothing.
		Action("runStep", func(c *rivet.Ctx[Onboarding], i int) error {
			if !fromSchedule(c) {
				return errScheduleOnly
			}
			s := c.State
			if i != len(s.Done) || i >= len(Steps) {
				return nil
			}
			run := StepRun{Step: Steps[i].Name, RanAt: c.Now().UnixMilli(), Message: fmt.Sprintf("sent the %s email to %s", Steps[i].Name, s.Email)}
			s.Done = append(s.Done, run)
			s.Next = nil
			if i+1 < len(Steps) {
				if err := scheduleStep(c, i+1); err != nil {
					return err
				}
			} else {
				s.Finished = true
			}
			c.Broadcast("step", run)
			return nil
		})
}

// scheduleStep schedules step i, durably with the running turn.
func scheduleStep(c *rivet.Ctx[Onboarding], i int) error {
	at := c.Now().Add(Steps[i].Delay)
	if _, err := c.Schedule().At(at, "runStep", i); err != nil {
		return err
	}
	c.State.Next = &NextStep{Step: Steps[i].Name, At: at.UnixMilli()}
	return nil
}

func status(s *Onboarding) Onboarding {
	out := *s
	out.Done = orEmpty(s.Done)
	return out
}
