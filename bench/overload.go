package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

// slowState is the state of the bench's deliberately slow actor.
type slowState struct {
	Count int `json:"count"`
}

// slowActor is the actor the overload scenario saturates: work(ms) holds
// the actor for ms milliseconds (a turn that waits on slow I/O the
// simple way, in the turn) and then increments its count, a durable
// write; count() reads it. It is registered by the in-process target
// only.
func slowActor() rivet.Definition {
	return rivet.NewActor("slow", rivet.Opts[slowState]{}).
		Action("work", func(c *rivet.Ctx[slowState], ms int) int {
			time.Sleep(time.Duration(ms) * time.Millisecond)
			c.State.Count++
			return c.State.Count
		}).
		Action("count", func(c *rivet.Ctx[slowState]) int { return c.State.Count })
}

// overloadOpts are the overload scenario's parameters.
type overloadOpts struct {
	duration      time.Duration // how long the callers run
	clientTimeout time.Duration // each call's bound on the caller's side
	work          time.Duration // the actor's time per call
	backoff       time.Duration // a caller's pause after actor.overloaded
}

// overload runs c callers against one slow actor for o.duration. Each
// caller loops: a call bounded by o.clientTimeout (the caller gives up
// and calls again), a pause of o.backoff after an actor.overloaded
// answer. It reports the successes (answers within the caller's
// timeout): their rate and latency; and in the note the attempts, the
// time-outs, the refusals and how many turns the actor ran for callers
// that had already given up (wasted work).
func overload(ctx context.Context, client *rivetclient.Client, c int, o overloadOpts, r *result) error {
	h := client.GetOrCreate("slow", rivet.Key{"overload"})
	ms := max(1, int(o.work/time.Millisecond))
	if err := warmUp(ctx, func(ctx context.Context) error { _, err := h.Call(ctx, "work", ms); return err }); err != nil {
		return err
	}
	before, err := rivetclient.Call[int](ctx, h, "count")
	if err != nil {
		return err
	}
	var attempts, timedOut, refused, other atomic.Int64
	var firstOther atomic.Value
	lats := make([][]time.Duration, c)
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	meter.mark()
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range c {
		wg.Go(func() {
			for runCtx.Err() == nil {
				attempts.Add(1)
				s := time.Now()
				cctx, ccancel := context.WithTimeout(runCtx, o.clientTimeout)
				_, err := h.Call(cctx, "work", ms)
				ccancel()
				var re *rivet.Error
				switch {
				case err == nil:
					lats[g] = append(lats[g], time.Since(s))
				case runCtx.Err() != nil:
					attempts.Add(-1) // cut short by the end of the run
				case errors.Is(err, context.DeadlineExceeded):
					timedOut.Add(1)
				case errors.As(err, &re) && re.Group == "actor" && re.Code == "overloaded":
					refused.Add(1)
					select {
					case <-time.After(o.backoff):
					case <-runCtx.Done():
					}
				default:
					other.Add(1)
					firstOther.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	summarize(r, slices.Concat(lats...), elapsed)
	// Let the calls still queued drain before counting the turns.
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	after, err := rivetclient.Call[int](cctx, h, "count")
	if err != nil {
		return fmt.Errorf("count after the run: %w", err)
	}
	turns := after - before
	r.N = int(attempts.Load())
	r.Lost = r.N - r.OK
	r.Note = fmt.Sprintf("capacity %.0f/s; %d attempts: %d answered in time (%.1f%%), %d timed out at the caller, %d refused (actor.overloaded), %d other errors; the actor ran %d turns, %d of them for callers that were no longer waiting",
		float64(time.Second)/float64(o.work), r.N, r.OK, 100*float64(r.OK)/float64(max(1, r.N)), timedOut.Load(), refused.Load(), other.Load(), turns, max(0, turns-r.OK))
	if err, _ := firstOther.Load().(error); err != nil {
		r.Note += fmt.Sprintf("; first other error: %v", err)
	}
	if r.OK == 0 {
		return fmt.Errorf("no call succeeded: %s", r.Note)
	}
	return nil
}
