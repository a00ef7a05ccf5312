package rivet_test

import (
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettest"
)

type remindState struct {
	Fired []string `json:"fired"`
}

var remindDef = rivet.NewActor("reminders", rivet.Opts[remindState]{SleepTimeout: time.Minute}).
	Action("remind", func(c *rivet.Ctx[remindState], after time.Duration, what string) (string, error) {
		return c.Schedule().After(after, "fire", what)
	}).
	Action("remindAt", func(c *rivet.Ctx[remindState], at time.Time, what string) (string, error) {
		return c.Schedule().At(at, "fire", what)
	}).
	Action("fire", func(c *rivet.Ctx[remindState], what string) {
		c.State.Fired = append(c.State.Fired, what)
	}).
	Action("cancel", func(c *rivet.Ctx[remindState], id string) bool { return c.Schedule().Cancel(id) }).
	Action("pending", func(c *rivet.Ctx[remindState]) []string {
		var out []string
		for _, e := range c.Schedule().List() {
			var what string
			_ = e.Args.Decode(0, &what)
			out = append(out, e.Action+":"+what)
		}
		return out
	}).
	Action("fired", func(c *rivet.Ctx[remindState]) []string { return c.State.Fired }).
	Action("bogus", func(c *rivet.Ctx[remindState]) (string, error) {
		return c.Schedule().After(time.Second, "noSuchAction")
	})

func TestSchedulesFireThroughSleepAndRestart(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		d := open(t)
		k := kit(t, d, remindDef)
		h := k.Client.GetOrCreate("reminders", rivet.Key{"r"})
		must[string](t)(rivet.Call[string](ctx, h, "remind", 10*time.Minute, "a"))
		idB := must[string](t)(rivet.Call[string](ctx, h, "remind", 20*time.Minute, "b"))
		must[string](t)(rivet.Call[string](ctx, h, "remind", 2*time.Hour, "c"))
		if got := must[[]string](t)(rivet.Call[[]string](ctx, h, "pending")); len(got) != 3 || got[0] != "fire:a" {
			t.Fatalf("pending = %v", got)
		}
		if !must[bool](t)(rivet.Call[bool](ctx, h, "cancel", idB)) {
			t.Fatal("cancel returned false")
		}
		if must[bool](t)(rivet.Call[bool](ctx, h, "cancel", idB)) {
			t.Fatal("second cancel returned true")
		}
		if _, err := h.Call(ctx, "bogus"); err == nil {
			t.Fatal("scheduling an unknown action succeeded")
		}
		id := must[string](t)(h.ID(ctx))
		k.Advance(5 * time.Minute) // sleeps after 1 minute idle
		if k.Awake(id) {
			t.Fatal("actor did not sleep")
		}
		k.Advance(5 * time.Minute) // "a" is due: wakes the actor
		if got := must[[]string](t)(rivet.Call[[]string](ctx, h, "fired")); len(got) != 1 || got[0] != "a" {
			t.Fatalf("fired after 10m = %v, want [a]", got)
		}
		// Restart: "c" is still pending and fires after the restart.
		if err := k.Runtime.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		k2 := rivettest.New(t, mustRegistry(t, remindDef), rivettest.WithDriver(open(t)), rivettest.WithStart(k.Clock.Now()))
		k2.Advance(3 * time.Hour)
		got := must[[]string](t)(rivet.Call[[]string](ctx, k2.Client.GetOrCreate("reminders", rivet.Key{"r"}), "fired"))
		if len(got) != 2 || got[1] != "c" {
			t.Fatalf("fired after restart = %v, want [a c]", got)
		}
		if p := must[[]string](t)(rivet.Call[[]string](ctx, k2.Client.GetOrCreate("reminders", rivet.Key{"r"}), "pending")); len(p) != 0 {
			t.Fatalf("fired alarms still pending: %v", p)
		}
	})
}

func TestOverdueAlarmFiresOnStart(t *testing.T) {
	ctx := ctxT(t)
	d := newMem()
	k := kit(t, d, remindDef)
	h := k.Client.GetOrCreate("reminders", rivet.Key{"o"})
	must[string](t)(rivet.Call[string](ctx, h, "remind", time.Minute, "late"))
	if err := k.Runtime.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The process was down while the alarm fell due.
	k2 := rivettest.New(t, mustRegistry(t, remindDef), rivettest.WithDriver(d), rivettest.WithStart(k.Clock.Now().Add(time.Hour)))
	k2.Advance(0)
	got := must[[]string](t)(rivet.Call[[]string](ctx, k2.Client.GetOrCreate("reminders", rivet.Key{"o"}), "fired"))
	if len(got) != 1 || got[0] != "late" {
		t.Fatalf("fired = %v, want [late]", got)
	}
}
