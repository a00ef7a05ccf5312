package rivet_test

import (
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

type napperState struct {
	Runs   int `json:"runs"`
	Starts int `json:"starts"`
	Sleeps int `json:"sleeps"`
}

var napperDef = rivet.NewActor("napper", rivet.Opts[napperState]{
	SleepTimeout: time.Minute, // only its own requests put it to sleep
	// The first run asks to sleep at once, while the actor is starting.
	Run: func(bg *rivet.Background[napperState, rivet.None, rivet.None]) error {
		return bg.Enter(func(c *rivet.Ctx[napperState]) error {
			c.State.Runs++
			if c.State.Runs == 1 {
				c.Sleep()
			}
			return nil
		})
	},
	OnStart: func(c *rivet.Ctx[napperState]) error {
		c.State.Starts++
		return nil
	},
	OnSleep: func(c *rivet.Ctx[napperState]) error {
		c.State.Sleeps++
		return nil
	},
}).
	Action("nap", func(c *rivet.Ctx[napperState]) { c.Sleep() }).
	Action("get", func(c *rivet.Ctx[napperState]) napperState { return *c.State })

// TestEngineRunnerSelfSleepStopsOnce: an actor that asks to sleep sleeps
// exactly once and is woken by the next call, whether it asks while
// starting (its run handler) or from an action while calls keep arriving.
// Through the engine a sleep is an intent answered by a stop command; the
// actor serves calls until then. It fails if the intent of a starting
// actor goes out before its Running event (the engine does not act on it:
// the actor never sleeps), if a call that reaches the runner during the
// stop is answered actor.not_found instead of being left to the engine,
// or if the actor sleeps twice.
func TestEngineRunnerSelfSleepStopsOnce(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	startRunnerOf(t, eng, napperDef)
	key := "nap-" + time.Now().Format("150405.000000")
	get := func() map[string]any {
		status, out := engineCall(t, eng, "napper", key, "get")
		if status != 200 {
			t.Fatalf("get: %d %v", status, out)
		}
		return out["output"].(map[string]any)
	}
	// sleptOnce calls until the actor has slept want times and been woken
	// by a call, then a while longer: a further stop would show within it.
	sleptOnce := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		st := get()
		for st["sleeps"].(float64) < want {
			if time.Now().After(deadline) {
				t.Fatalf("the actor did not sleep after asking to: %v", st)
			}
			st = get()
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			st = get()
		}
		if st["sleeps"] != want || st["starts"] != want+1 {
			t.Fatalf("after %v requested sleeps and calls throughout: %v, want sleeps %v and starts %v", want, st, want, want+1)
		}
	}
	sleptOnce(1) // asked by the first run, as the actor started
	if status, out := engineCall(t, eng, "napper", key, "nap"); status != 200 {
		t.Fatalf("nap: %d %v", status, out)
	}
	sleptOnce(2) // asked by an action
}
