package runner

import (
	"context"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/envoy"
)

// reportingActors reports an alarm while the actor starts, as an
// activation that loads a stored alarm does.
type reportingActors struct {
	r  *Runner
	at time.Time
}

func (a *reportingActors) Start(_ context.Context, act Actor) error {
	a.r.SetAlarm(act.ID, act.Generation, a.at)
	return nil
}

func (a *reportingActors) Stop(context.Context, string, uint32, envoy.StopActorReason) error {
	return nil
}

// describe renders the unacknowledged events, in order, as index:kind.
func describe(r *Runner) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, w := range r.mu.unacked {
		s := ""
		switch ev := w.Inner.(type) {
		case envoy.EventActorStateUpdate:
			switch st := ev.State.(type) {
			case envoy.ActorStateRunning:
				s = "running"
			case envoy.ActorStateStopped:
				s = "stopped:" + st.Code.String()
			}
		case envoy.EventActorSetAlarm:
			s = "alarm:none"
			if ev.AlarmTs != nil {
				s = "alarm:" + time.UnixMilli(*ev.AlarmTs).UTC().Format("15:04:05.000")
			}
		case envoy.EventActorIntent:
			s = "intent"
		}
		out = append(out, string(rune('0'+w.Checkpoint.Index))+":"+s)
	}
	return out
}

// The alarm events of an actor generation: Running, then none, then the
// earliest reported during the start (which waited for Running); later
// changes go out at once, in index order; a stop for good clears the
// alarm before Stopped; reports after the stop are dropped.
func TestAlarmEventsOrder(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	acts := &reportingActors{at: at}
	r := New(Config{Actors: acts}) // never connected: events stay unacknowledged
	acts.r = r
	ctx := context.Background()
	cp := func(i int64) envoy.ActorCheckpoint {
		return envoy.ActorCheckpoint{ActorID: "a", Generation: 3, Index: i}
	}
	r.command(ctx, envoy.CommandWrapper{Checkpoint: cp(1), Inner: envoy.CommandStartActor{Config: envoy.ActorConfig{Name: "x"}}})
	r.SetAlarm("a", 3, at.Add(time.Second))
	r.SetAlarm("a", 3, time.Time{})
	r.command(ctx, envoy.CommandWrapper{Checkpoint: cp(2), Inner: envoy.CommandStopActor{Reason: envoy.StopActorReasonStopIntent}})
	r.SetAlarm("a", 3, at) // after the stop: dropped
	got := describe(r)
	want := []string{"0:running", "1:alarm:none", "2:alarm:03:04:05.000", "3:alarm:03:04:06.000", "4:alarm:none", "5:alarm:none", "6:stopped:" + envoy.StopCodeOK.String()}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
}
