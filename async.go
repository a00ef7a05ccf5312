package rivet

import (
	"context"
	"log/slog"
	"reflect"

	"github.com/rivetgo/rivet/internal/engine"
)

// AsyncContext is what an async action receives instead of a *Context: an
// action whose first parameter is *AsyncContext[S, C, V] (*rivet.Async[S]
// for actors with state only, as *rivet.Ctx[S]) runs outside the actor, so it can wait on slow work
// (an LLM, another actor, an HTTP API) without holding the actor. It
// touches the actor's state only inside Turn, each call of which is one
// turn of the actor, committed before Turn returns. Between turns the
// actor runs other turns: other callers get answers meanwhile.
//
// Semantics:
//   - The action's arguments are decoded in a turn of the actor when it is
//     called (bad arguments fail at once); the function then runs on the
//     caller's goroutine, outside any turn.
//   - Everything a Turn changed is committed and visible to other turns
//     once it returns; what a later Turn sees is the state as other turns
//     left it, not a snapshot: re-read what you need inside each Turn.
//   - The result is encoded in a last turn, after OnBeforeActionResponse;
//     the caller gets it when that turn is durable.
//   - The action keeps the actor awake while it runs, and its caller's
//     connection open. Its Context ends when the caller gives up, the action
//     timeout (which bounds the whole action) passes, or the actor stops
//     (sleep requested, destroy, shutdown). Turn still works after the
//     caller went away or the timeout passed, so the action can clean up;
//     once the actor stops it fails with actor.stopped, and the changes
//     of the turns already done stay committed. A crash loses the
//     rest of the action; the caller sees the error or a closed connection.
//     An async action is not a durable workflow: make each Turn leave the
//     state consistent on its own.
//   - Its Context does not hold the actor: calls from it to other actors
//     that call back into this one work (see docs/concepts/calls.md).
//
// An AsyncContext is used by the action's own goroutine(s); Turn calls are
// serialized with every other turn of the actor.
type AsyncContext[S, C, V any] struct {
	ctx   context.Context
	enter func(fn func(t *engine.Turn) error) error
	e     *engine.Engine
	info  engine.Info
}

// Async is the AsyncContext of an actor with state only.
type Async[S any] = AsyncContext[S, None, None]

// Context is the action's context.Context: canceled when the caller gives
// up, the action times out or the actor stops. Pass it to slow work.
func (a *AsyncContext[S, C, V]) Context() context.Context { return a.ctx }

// Turn runs fn as one turn of the actor, with the actor's current state,
// and returns once the turn's changes are durable (and its events sent).
// An error from fn rolls the turn back and is returned. Turn works after
// Context ended (to clean up after a caller that went away or a
// timeout), until the actor stops.
func (a *AsyncContext[S, C, V]) Turn(fn func(c *Context[S, C, V]) error) error {
	return a.enter(func(t *engine.Turn) error {
		c := t.Instance().(*instance[S, C, V]).ctx(t)
		return finish(c, fn(c))
	})
}

// ActorID is the actor's unique id.
func (a *AsyncContext[S, C, V]) ActorID() string { return a.info.ID }

// Key is the actor's key.
func (a *AsyncContext[S, C, V]) Key() Key { return append(Key(nil), a.info.Key...) }

// Log carries the actor's name, key and id.
func (a *AsyncContext[S, C, V]) Log() *slog.Logger { return a.info.Log }

// Client returns an in-process client for calling other actors, this one
// included, with the action's Context.
func (a *AsyncContext[S, C, V]) Client() *Client { return &Client{e: a.e, ns: a.info.Namespace} }

// detach returns the part of an async action that runs outside the actor;
// in holds its decoded arguments (in[0] is set here).
func (i *instance[S, C, V]) detach(t *engine.Turn, name string, af *actionFn, in []reflect.Value) *engine.Detached {
	e, info := t.Engine(), i.info
	return &engine.Detached{Run: func(ctx context.Context, enter func(fn func(t *engine.Turn) error) error) (any, error) {
		in[0] = reflect.ValueOf(&AsyncContext[S, C, V]{ctx: ctx, enter: enter, e: e, info: info})
		out := af.fn.Call(in)
		var res any
		var err error
		if af.hasOut {
			res = out[0].Interface()
		}
		if af.hasErr {
			if e := out[len(out)-1]; !e.IsNil() {
				err = detachMetadata(e.Interface().(error))
			}
		}
		return res, err
	}}
}
