package rivet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/remote"
	"github.com/rivetgo/rivet/rivettype"
)

// Client calls actors in the same process: the runtime's own client, also
// given to actors by Context.Client. Calls skip onAuth, but otherwise
// behave exactly like calls over the network: arguments and results are
// encoded, and errors from actor code arrive masked as callers see them.
//
// In runner mode (StartEngineRunner) its calls go through the engine
// instead, which reaches the actor on whichever runner it is placed: see
// remote.
type Client struct {
	e  *engine.Engine
	ns string
	// remote, when set (runner mode), carries resolve, create, action and
	// destroy calls to the engine; chosen once when the client is made.
	remote *remote.Client
}

// Namespace returns a client for another namespace. Actors in different
// namespaces never meet, even with the same name and key.
func (c *Client) Namespace(ns string) *Client {
	n := &Client{e: c.e, ns: ns}
	if c.remote != nil {
		r := *c.remote
		r.Namespace = ns
		n.remote = &r
	}
	return n
}

// remotes holds the engine client of each runtime in runner mode, keyed
// by its engine; set by StartEngineRunner before any actor runs, removed
// when the runner stops.
var remotes sync.Map // *engine.Engine -> *remote.Client

// newClient is the client of engine e in namespace ns ("" for the
// runtime's default): in-process, or through the engine in runner mode.
func newClient(e *engine.Engine, ns string) *Client {
	v, ok := remotes.Load(e)
	if !ok {
		return &Client{e: e, ns: cmp.Or(ns, DefaultNamespace)}
	}
	r := *v.(*remote.Client)
	r.Namespace = cmp.Or(ns, r.Namespace)
	return &Client{e: e, ns: r.Namespace, remote: &r}
}

// remoteTarget is what h addresses, for the engine.
func (h *Handle) remoteTarget(id string) remote.Target {
	t := remote.Target{Name: h.name, Key: h.key, ID: id, Create: h.mode == modeGetOrCreate, Input: h.input}
	if h.params != nil {
		// The wire carries params as JSON.
		var v any
		if codec.Unmarshal(h.params, &v) == nil {
			if b, err := json.Marshal(v); err == nil {
				t.Params = string(b)
			}
		}
	}
	return t
}

type resolveMode int

const (
	modeGet resolveMode = iota
	modeGetOrCreate
	modeID
)

// Handle addresses one actor. Getting a handle does no work; the actor is
// resolved on the first call (and created then, for GetOrCreate).
type Handle struct {
	c      *Client
	name   string
	key    Key
	mode   resolveMode
	input  []byte
	params []byte
	err    error

	mu sync.Mutex
	id string
}

// HandleOption configures a handle.
type HandleOption func(*Handle)

// WithInput sets the create-time input passed to CreateState and
// OnCreate when the call creates the actor.
func WithInput(v any) HandleOption {
	return func(h *Handle) {
		b, err := encodeValue(v)
		if err != nil {
			h.err = err
		}
		h.input = b
	}
}

// WithParams sets the connection params of the handle's calls and
// connections.
func WithParams(v any) HandleOption {
	return func(h *Handle) {
		b, err := encodeValue(v)
		if err != nil {
			h.err = err
		}
		h.params = b
	}
}

func (c *Client) handle(name string, key Key, mode resolveMode, opts []HandleOption) *Handle {
	h := &Handle{c: c, name: name, key: append(Key{}, key...), mode: mode}
	for _, o := range opts {
		o(h)
	}
	if h.err == nil {
		if err := actorkey.Validate(h.key); err != nil {
			h.err = ErrInvalidKey.With("%v", err)
		}
	}
	return h
}

// Get addresses the existing actor with a name and key; calls fail with
// actor.not_found when there is none.
func (c *Client) Get(name string, key Key, opts ...HandleOption) *Handle {
	return c.handle(name, key, modeGet, opts)
}

// GetOrCreate addresses the actor with a name and key, creating it on
// first use.
func (c *Client) GetOrCreate(name string, key Key, opts ...HandleOption) *Handle {
	return c.handle(name, key, modeGetOrCreate, opts)
}

// GetForID addresses an actor by id.
func (c *Client) GetForID(name, id string, opts ...HandleOption) *Handle {
	h := c.handle(name, nil, modeID, opts)
	h.id = id
	return h
}

// Create creates a new actor; it fails with actor.duplicate_key when an
// actor with the key exists. The create hooks have run when it returns.
func (c *Client) Create(ctx context.Context, name string, key Key, opts ...HandleOption) (*Handle, error) {
	h := c.handle(name, key, modeGet, opts)
	if h.err != nil {
		return nil, h.err
	}
	if c.remote != nil {
		id, err := c.remote.Create(ctx, name, h.key, h.input)
		if err != nil {
			return nil, publicError(err)
		}
		h.id = id
		return h, nil
	}
	rec, _, err := c.e.Create(ctx, c.ns, name, h.key, h.input, false)
	if err != nil {
		return nil, publicError(err)
	}
	h.id = rec.ID
	return h, nil
}

// ID resolves the handle to its actor's id (creating the actor for a
// GetOrCreate handle).
func (h *Handle) ID(ctx context.Context) (string, error) {
	if h.err != nil {
		return "", h.err
	}
	h.mu.Lock()
	id := h.id
	h.mu.Unlock()
	if id != "" {
		return id, nil
	}
	var err error
	switch {
	case h.c.remote != nil:
		id, err = h.c.remote.Resolve(ctx, h.remoteTarget(""))
	case h.mode == modeGetOrCreate:
		r, _, e := h.c.e.Create(ctx, h.c.ns, h.name, h.key, h.input, true)
		id, err = r.ID, e
	default:
		r, e := h.c.e.Lookup(ctx, h.c.ns, h.name, h.key)
		id, err = r.ID, e
	}
	if err != nil {
		return "", publicError(err)
	}
	h.mu.Lock()
	h.id = id
	h.mu.Unlock()
	return id, nil
}

// forget drops a resolved id that no longer names a live actor, so a
// query handle resolves again (GetOrCreate then creates a fresh actor).
func (h *Handle) forget(id string) bool {
	if h.mode == modeID {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.id == id {
		h.id = ""
	}
	return true
}

// Call calls an action and returns its encoded result.
func (h *Handle) Call(ctx context.Context, action string, args ...any) (Value, error) {
	b, err := codec.MarshalArgs(args)
	if err != nil {
		return Value{}, ErrInvalidArguments.With("%v", err)
	}
	for attempt := 0; ; attempt++ {
		id, err := h.ID(ctx)
		if err != nil {
			return Value{}, err
		}
		var out []byte
		if h.c.remote != nil {
			out, err = h.c.remote.Action(ctx, h.remoteTarget(id), action, b)
		} else {
			out, err = h.c.e.Call(ctx, id, nil, h.params, action, b, codec.Marshal, h.c.actionTimeout(h.name))
		}
		if err != nil && errors.Is(err, rivettype.ErrActorNotFound) && attempt == 0 && h.forget(id) {
			continue
		}
		if err != nil {
			return Value{}, publicError(err)
		}
		return Value{out}, nil
	}
}

func (c *Client) actionTimeout(name string) time.Duration {
	return c.e.ActionTimeout(name)
}

// Call calls an action and decodes its result as R. A result that does
// not fit R is a *ResultError (the action ran), not an actor error.
func Call[R any](ctx context.Context, h *Handle, action string, args ...any) (R, error) {
	var r R
	v, err := h.Call(ctx, action, args...)
	if err != nil {
		return r, err
	}
	if len(v.b) > 0 {
		if err := codec.Unmarshal(v.b, &r); err != nil {
			return r, NewResultError(action, v.b, &r, err)
		}
	}
	return r, nil
}

// Destroy destroys the actor: onDestroy runs and its data is deleted.
func (h *Handle) Destroy(ctx context.Context) error {
	id, err := h.ID(ctx)
	if err != nil {
		return err
	}
	h.forget(id)
	if h.c.remote != nil {
		return publicError(h.c.remote.Destroy(ctx, id))
	}
	return publicError(h.c.e.Destroy(ctx, id))
}
