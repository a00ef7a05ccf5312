package rivet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

type alarmyState struct {
	Fired  int   `json:"fired"`
	FireAt int64 `json:"fireAt"`
	Sleeps int   `json:"sleeps"`
	Count  int   `json:"count"`
}

// alarmyFired records, per actor key, when its scheduled action ran.
var alarmyFired sync.Map // key → chan time.Time

func alarmyChan(key string) chan time.Time {
	ch, _ := alarmyFired.LoadOrStore(key, make(chan time.Time, 16))
	return ch.(chan time.Time)
}

var alarmyDef = rivet.NewActor("alarmy", rivet.Opts[alarmyState]{
	SleepTimeout: 300 * time.Millisecond,
	OnSleep: func(c *rivet.Ctx[alarmyState]) error {
		c.State.Sleeps++
		return nil
	},
}).
	Action("schedule", func(c *rivet.Ctx[alarmyState], ms int) (int64, error) {
		at := time.Now().Add(time.Duration(ms) * time.Millisecond)
		if _, err := c.Schedule().At(at, "fire"); err != nil {
			return 0, err
		}
		return at.UnixMilli(), nil
	}).
	Action("fire", func(c *rivet.Ctx[alarmyState]) error {
		c.State.Fired++
		c.State.FireAt = time.Now().UnixMilli()
		alarmyChan(c.Key()[0]) <- time.Now()
		return nil
	}).
	Action("increment", func(c *rivet.Ctx[alarmyState], n int) (int, error) {
		c.State.Count += n
		return c.State.Count, nil
	}).
	Action("get", func(c *rivet.Ctx[alarmyState]) alarmyState { return *c.State }).
	Action("destroy", func(c *rivet.Ctx[alarmyState]) { c.Destroy() })

// startAlarmRunner starts a runner of the alarmy registry connected to
// eng; Stop is the test's to call (or the cleanup's).
func startAlarmRunner(t *testing.T, eng *enginetest.Engine) *rivet.EngineRunner {
	t.Helper()
	return startRunnerOf(t, eng, alarmyDef)
}

func alarmyGet(t *testing.T, eng *enginetest.Engine, key string) map[string]any {
	t.Helper()
	status, out := engineCall(t, eng, "alarmy", key, "get")
	if status != 200 {
		t.Fatalf("get: %d %v", status, out)
	}
	return out["output"].(map[string]any)
}

// TestEngineRunnerAlarmWakesSleepingActor: an alarm scheduled by an actor
// that then goes to sleep is kept by the engine (EventActorSetAlarm),
// which wakes the actor at that time; the woken actor runs it and its
// effect is persisted.
func TestEngineRunnerAlarmWakesSleepingActor(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	er := startAlarmRunner(t, eng)
	key := "wake-" + time.Now().Format("150405.000000")
	fired := alarmyChan(key)
	const delay = 4000
	status, out := engineCall(t, eng, "alarmy", key, "schedule", delay)
	if status != 200 {
		t.Fatalf("schedule: %d %v", status, out)
	}
	due := time.UnixMilli(int64(out["output"].(float64)))
	id, _ := engineActorIDOf(t, eng, "alarmy", key)
	// Idle, it asks to sleep, and the engine lists it as sleeping before
	// the alarm is due.
	waitEngine(t, "the idle actor asleep in the engine", func() bool {
		_, a := engineActorIDOf(t, eng, "alarmy", key)
		return a["sleep_ts"] != nil && !er.Runtime().Engine().Awake(id)
	})
	if time.Now().After(due) {
		t.Skipf("the machine is too slow: the actor went to sleep after its alarm was due")
	}
	select {
	case at := <-fired:
		if at.Before(due) {
			t.Fatalf("alarm ran at %v, before it was due (%v)", at, due)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the sleeping actor's alarm did not fire")
	}
	// It goes back to sleep; its state, read after a new wake, comes from
	// the engine's KV.
	waitEngine(t, "the actor asleep again", func() bool {
		_, a := engineActorIDOf(t, eng, "alarmy", key)
		return a["sleep_ts"] != nil && !er.Runtime().Engine().Awake(id)
	})
	st := alarmyGet(t, eng, key)
	if st["fired"] != float64(1) || st["sleeps"].(float64) < 2 {
		t.Fatalf("state after the alarm: %v", st)
	}
	select {
	case <-fired:
		t.Fatal("the alarm ran twice")
	default:
	}
}

// TestEngineRunnerSelfDestroy: an actor that destroys itself from an
// action tells the engine (Intent Stop); the engine destroys it, a
// lookup no longer finds it, and the key then names a new actor.
func TestEngineRunnerSelfDestroy(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	er := startAlarmRunner(t, eng)
	key := "destroy-" + time.Now().Format("150405.000000")
	if _, out := engineCall(t, eng, "alarmy", key, "increment", 5); out["output"] != float64(5) {
		t.Fatalf("increment: %v", out)
	}
	id, _ := engineActorIDOf(t, eng, "alarmy", key)
	if status, out := engineCall(t, eng, "alarmy", key, "destroy"); status != 200 {
		t.Fatalf("destroy: %d %v", status, out)
	}
	waitEngine(t, "the engine to destroy the actor", func() bool {
		var out struct {
			Actors []map[string]any `json:"actors"`
		}
		err := enginetest.Do(context.Background(), http.MethodGet, eng.GuardURL(), "/actors?namespace=default&actor_ids="+id, nil, &out)
		return err == nil && (len(out.Actors) == 0 || out.Actors[0]["destroy_ts"] != nil)
	})
	if er.Runtime().Engine().Awake(id) {
		t.Fatal("destroyed actor still awake in the runtime")
	}
	// get by key: gone.
	var got struct {
		Actors []map[string]any `json:"actors"`
	}
	if err := enginetest.Do(context.Background(), http.MethodGet, eng.GuardURL(), "/actors?namespace=default&name=alarmy&key="+key, nil, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Actors) != 0 {
		t.Fatalf("a lookup of the destroyed actor's key still finds it: %v", got.Actors)
	}
	// The key now names a new actor, which starts from nothing.
	if _, out := engineCall(t, eng, "alarmy", key, "increment", 1); out["output"] != float64(1) {
		t.Fatalf("increment of the new actor: %v", out)
	}
	if nid, _ := engineActorIDOf(t, eng, "alarmy", key); nid == id {
		t.Fatalf("the key still names the destroyed actor %s", id)
	}
}

type moverState struct {
	Count  int `json:"count"`
	Sleeps int `json:"sleeps"`
	Starts int `json:"starts"`
}

var moverDef = rivet.NewActor("mover", rivet.Opts[moverState]{
	OnStart: func(c *rivet.Ctx[moverState]) error {
		c.State.Starts++
		return nil
	},
	OnSleep: func(c *rivet.Ctx[moverState]) error {
		c.State.Sleeps++
		return nil
	},
}).
	Action("increment", func(c *rivet.Ctx[moverState], n int) (int, error) {
		c.State.Count += n
		return c.State.Count, nil
	}).
	Action("get", func(c *rivet.Ctx[moverState]) moverState { return *c.State })

// engineTry is engineCall for goroutines: it returns what went wrong.
func engineTry(ctx context.Context, eng *enginetest.Engine, name, key, action string, args ...any) (int, map[string]any, error) {
	body, _ := json.Marshal(map[string]any{"args": args})
	url := eng.GuardURL() + "/gateway/" + name + "/action/" + action +
		"?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=" + key + "&rvt-crash-policy=sleep"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-rivet-encoding", "json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%d %q", resp.StatusCode, b)
	}
	return resp.StatusCode, out, nil
}

// TestEngineRunnerGracefulStop: a runner stopped gracefully tells the
// engine, which moves its actors to another runner; calls in flight
// meanwhile do not fail, no increment is lost, and the actor's sleep
// hook ran once.
func TestEngineRunnerGracefulStop(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	start := func() *rivet.EngineRunner {
		er, err := rivet.StartEngineRunner(context.Background(), rivet.MustRegistry(moverDef), &rivet.Config{
			Logger: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Engine: rivet.EngineConfig{URL: eng.GuardURL()},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := er.Ready(ctx); err != nil {
			t.Fatalf("runner not connected: %v", err)
		}
		return er
	}
	a := start()
	// The actor starts on a, the only runner.
	if _, out := engineCall(t, eng, "mover", "m", "increment", 1); out["output"] != float64(1) {
		t.Fatalf("increment: %v", out)
	}
	id, _ := engineActorIDOf(t, eng, "mover", "m")
	if !a.Runtime().Engine().Awake(id) {
		t.Fatal("the actor is not on runner a")
	}
	b := start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})

	// Callers increment while a stops.
	const callers = 3
	var ok atomic.Int64
	stopCalls := make(chan struct{})
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for {
				select {
				case <-stopCalls:
					errs <- nil
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				status, out, err := engineTry(ctx, eng, "mover", "m", "increment", 1)
				cancel()
				if err != nil || status != 200 {
					errs <- fmt.Errorf("increment during the stop: %d %v %v", status, out, err)
					return
				}
				ok.Add(1)
			}
		})
	}
	waitEngine(t, "calls under way", func() bool { return ok.Load() >= 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := a.Stop(ctx); err != nil {
		t.Errorf("graceful stop of a: %v", err)
	}
	cancel()
	before := ok.Load()
	waitEngine(t, "calls served by b", func() bool { return ok.Load() >= before+5 })
	close(stopCalls)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if !b.Runtime().Engine().Awake(id) {
		t.Fatal("the actor is not on runner b after a stopped")
	}
	_, out := engineCall(t, eng, "mover", "m", "get")
	st := out["output"].(map[string]any)
	if st["count"] != float64(1+ok.Load()) {
		t.Fatalf("count %v, want %d (1 + %d acknowledged increments)", st["count"], 1+ok.Load(), ok.Load())
	}
	if st["sleeps"] != float64(1) || st["starts"] != float64(2) {
		t.Fatalf("hooks: %v; want one sleep (on a) and two starts (a, then b)", st)
	}
}
