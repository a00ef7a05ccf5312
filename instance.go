package rivet

import (
	"context"
	"reflect"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivettype"
)

// instance is one live incarnation of a typed actor; the engine drives it.
type instance[S, C, V any] struct {
	b     *behavior[S, C, V]
	info  engine.Info
	state S
	vars  V
}

func (i *instance[S, C, V]) ctx(t *engine.Turn) *Context[S, C, V] {
	c := &Context[S, C, V]{t: t, inst: i, State: &i.state, Vars: &i.vars, Log: i.info.Log}
	if t.Conn != nil {
		c.Conn = connOf[C](t.Conn)
	}
	return c
}

// finish folds a context's deferred error (for example an event that could
// not be encoded) into a hook's result.
func finish[S, C, V any](c *Context[S, C, V], err error) error {
	if err != nil {
		return detachMetadata(err)
	}
	return c.err
}

// detachMetadata gives a public error's metadata its own copy before the
// turn ends: callers read it, and the gateway encodes it, on other
// goroutines, while the actor may go on changing a map it came from (its
// state, say). Go types are kept (see cloneValue).
func detachMetadata(err error) error {
	e, ok := rivettype.As(err)
	if !ok || !e.Public || e.Metadata == nil || flat(reflect.TypeOf(e.Metadata)) {
		return err
	}
	cp := *e
	cp.Metadata = cloneValue(&e.Metadata)
	return &cp
}

func (i *instance[S, C, V]) Create(t *engine.Turn, input []byte) error {
	o := &i.b.a.opts
	c := i.ctx(t)
	if o.CreateState != nil {
		err := t.Guard("createState", createStateTimeout, func() error {
			s, err := o.CreateState(c, Value{input})
			if err := finish(c, err); err != nil {
				return err
			}
			i.state = s
			return nil
		})
		if err != nil {
			return err
		}
	} else if err := codec.Unmarshal(i.b.initState, &i.state); err != nil {
		return err
	}
	if o.OnCreate != nil {
		return t.Guard("onCreate", onCreateTimeout, func() error { return finish(c, o.OnCreate(c, Value{input})) })
	}
	return finish(c, nil)
}

func (i *instance[S, C, V]) Load(state []byte) error {
	var s S
	if err := codec.Unmarshal(state, &s); err != nil {
		return codec.Explain(state, reflect.TypeFor[S](), "", err) // says what does not fit where
	}
	i.state = s
	return nil
}

func (i *instance[S, C, V]) Start(t *engine.Turn) error {
	o := &i.b.a.opts
	c := i.ctx(t)
	if o.CreateVars != nil {
		err := t.Guard("createVars", i.b.timeouts.createVars, func() error {
			v, err := o.CreateVars(c)
			if err := finish(c, err); err != nil {
				return err
			}
			i.vars = v
			return nil
		})
		if err != nil {
			return err
		}
	} else {
		i.vars = i.b.vars()
	}
	if o.OnStart != nil {
		if err := t.Guard("onStart", onStartTimeout, func() error { return finish(c, o.OnStart(c)) }); err != nil {
			return err
		}
	}
	if o.Run != nil {
		i.startRun(t)
	}
	return nil
}

// startRun starts Options.Run when the start's turn has committed.
func (i *instance[S, C, V]) startRun(t *engine.Turn) {
	run, e, log := i.b.a.opts.Run, t.Engine(), i.info.Log
	t.RunInBackground(true, func(ctx context.Context) {
		err := run(&Background[S, C, V]{ctx: ctx, e: e, inst: i, id: i.info.ID})
		switch {
		case err == nil:
			log.Debug("run handler returned")
		case ctx.Err() != nil:
			log.Debug("run handler returned after its context was canceled", "err", err)
		default:
			log.Error("run handler failed", "err", err)
		}
	})
}

func (i *instance[S, C, V]) EncodeState() ([]byte, error) { return codec.Marshal(&i.state) }

func (i *instance[S, C, V]) Restore(state []byte) error { return i.Load(state) }

func (i *instance[S, C, V]) HasAction(name string) bool {
	_, ok := i.b.actions[name]
	return ok
}

var zeroValue reflect.Value

func (i *instance[S, C, V]) Action(t *engine.Turn, name string, rawArgs []byte) (any, error) {
	af := i.b.actions[name]
	n, err := codec.ArrayLen(rawArgs)
	if err != nil {
		return nil, ErrInvalidArguments.With("action %s: %v", name, err)
	}
	if n < af.numArgs && af.optionalFrom <= n {
		// Trailing optional parameters left out (JavaScript's undefined).
		if rawArgs, err = codec.PadArray(rawArgs, af.numArgs); err != nil {
			return nil, ErrInvalidArguments.With("action %s: %v", name, err)
		}
		n = af.numArgs
	}
	if n != af.numArgs {
		return nil, ErrInvalidArguments.With("action %s: expected %d argument(s), got %d", name, af.numArgs, n)
	}
	c := i.ctx(t)
	in := make([]reflect.Value, 1+af.numArgs)
	in[0] = reflect.ValueOf(c)
	if af.argsType != nil {
		p := reflect.New(af.argsType)
		if err := codec.Unmarshal(rawArgs, p.Interface()); err != nil {
			return nil, argsError(t, name, af, rawArgs, err)
		}
		if af.nullChecks {
			if err := checkNullArgs(t, name, af, rawArgs); err != nil {
				return nil, err
			}
		}
		for j := range af.numArgs {
			in[1+j] = p.Elem().Field(1 + j)
		}
	}
	if af.async {
		return i.detach(t, name, af, in), nil
	}
	out := af.fn.Call(in)
	var res any
	if af.hasOut {
		res = out[0].Interface()
	}
	if af.hasErr {
		e := out[len(out)-1]
		if !e.IsNil() {
			err = e.Interface().(error)
		}
	}
	return res, finish(c, err)
}

// argsError explains why an argument list did not decode, naming the
// first argument at fault, in the terms of the request's encoding.
func argsError(t *engine.Turn, name string, af *actionFn, rawArgs []byte, err error) error {
	enc := protocol.EncodingName(t.Context())
	if args, serr := codec.SplitArgs(rawArgs); serr == nil && len(args) == af.numArgs {
		for j, pt := range af.params {
			if derr := args.Decode(j, reflect.New(pt).Interface()); derr != nil {
				return ErrInvalidArguments.With("action %s: argument %d: %v", name, j+1, codec.Explain(args[j], pt, enc, derr))
			}
		}
	}
	return ErrInvalidArguments.With("action %s: %v", name, codec.Explain(rawArgs, af.argsType, enc, err))
}

// checkNullArgs refuses null for a parameter that has no null (a number,
// string, boolean or struct would silently get its zero value). Padding
// for left-out trailing parameters only ever reaches nullable ones.
func checkNullArgs(t *engine.Turn, name string, af *actionFn, rawArgs []byte) error {
	nulls, err := codec.NullElements(rawArgs)
	if err != nil {
		return ErrInvalidArguments.With("action %s: %v", name, err)
	}
	for _, j := range nulls {
		if e := codec.NullExplained(af.params[j], protocol.EncodingName(t.Context())); e != nil {
			return ErrInvalidArguments.With("action %s: argument %d: %v", name, j+1, e)
		}
	}
	return nil
}

func (i *instance[S, C, V]) BeforeActionResponse(t *engine.Turn, name string, rawArgs []byte, out any) (any, error) {
	if f := i.b.a.opts.OnBeforeActionResponse; f != nil {
		args, err := codec.SplitArgs(rawArgs) // the action decoded them: valid
		if err != nil {
			return nil, err
		}
		c := i.ctx(t)
		res, err := f(c, name, Args{args}, out)
		return res, finish(c, err)
	}
	return out, nil
}

func (i *instance[S, C, V]) StateChanged(t *engine.Turn) error {
	if f := i.b.a.opts.OnStateChange; f != nil {
		c := i.ctx(t)
		f(c, &i.state)
		return c.err
	}
	return nil
}

func (i *instance[S, C, V]) BeforeConnect(t *engine.Turn, params []byte) error {
	if f := i.b.a.opts.OnBeforeConnect; f != nil {
		c := i.ctx(t)
		return t.Guard("onBeforeConnect", i.b.timeouts.onBeforeConnect, func() error { return finish(c, f(c, Value{params})) })
	}
	return nil
}

func (i *instance[S, C, V]) CreateConnState(t *engine.Turn, ec *engine.Conn, params []byte) error {
	o := &i.b.a.opts
	conn := &Conn[C]{ec: ec, State: new(C)}
	if o.CreateConnState != nil {
		c := i.ctx(t)
		err := t.Guard("createConnState", i.b.timeouts.createConnState, func() error {
			s, err := o.CreateConnState(c, Value{params})
			if err := finish(c, err); err != nil {
				return err
			}
			*conn.State = s
			return nil
		})
		if err != nil {
			return err
		}
	} else {
		*conn.State = i.b.connState()
	}
	ec.State = conn
	return nil
}

func (i *instance[S, C, V]) Connect(t *engine.Turn, ec *engine.Conn) error {
	if f := i.b.a.opts.OnConnect; f != nil {
		c := i.ctx(t)
		return t.Guard("onConnect", i.b.timeouts.onConnect, func() error { return finish(c, f(c, c.Conn)) })
	}
	return nil
}

func (i *instance[S, C, V]) Disconnect(t *engine.Turn, ec *engine.Conn) error {
	if f := i.b.a.opts.OnDisconnect; f != nil {
		c := i.ctx(t)
		// RivetKit bounds onDisconnect with onConnectTimeout too.
		return t.Guard("onDisconnect", i.b.timeouts.onConnect, func() error {
			f(c, c.Conn)
			return c.err
		})
	}
	return nil
}

func (i *instance[S, C, V]) Sleep(t *engine.Turn) error {
	if f := i.b.a.opts.OnSleep; f != nil {
		c := i.ctx(t)
		return finish(c, f(c))
	}
	return nil
}

func (i *instance[S, C, V]) Destroy(t *engine.Turn) error {
	if f := i.b.a.opts.OnDestroy; f != nil {
		c := i.ctx(t)
		return finish(c, f(c))
	}
	return nil
}

// EncodeConnState implements engine.ConnStateCodec: the connection's
// state as its record stores it.
func (i *instance[S, C, V]) EncodeConnState(ec *engine.Conn) ([]byte, error) {
	return codec.Marshal(connOf[C](ec).State)
}

// DecodeConnState implements engine.ConnStateCodec: a connection rebuilt
// from its record after the actor slept gets its state back.
func (i *instance[S, C, V]) DecodeConnState(ec *engine.Conn, b []byte) error {
	c := &Conn[C]{ec: ec, State: new(C)}
	if err := codec.Unmarshal(b, c.State); err != nil {
		return err
	}
	ec.State = c
	return nil
}

// connOf returns the typed view of an engine connection.
func connOf[C any](ec *engine.Conn) *Conn[C] {
	if c, ok := ec.State.(*Conn[C]); ok {
		return c
	}
	c := &Conn[C]{ec: ec, State: new(C)}
	ec.State = c
	return c
}
