package rivet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/gateway"
)

// None is the type parameter for an actor without connection state or vars.
type None = struct{}

// Defaults of actor options, matching RivetKit.
const (
	DefaultSleepTimeout           = 30 * time.Second
	DefaultActionTimeout          = 60 * time.Second
	DefaultMaxSchedules           = 1000
	DefaultCreateVarsTimeout      = 5 * time.Second
	DefaultOnBeforeConnectTimeout = 5 * time.Second
	DefaultCreateConnStateTimeout = 5 * time.Second
	DefaultOnConnectTimeout       = 5 * time.Second
	DefaultSleepGracePeriod       = 15 * time.Second
)

// Time limits of the hooks that have no option, RivetKit's fixed ones.
const (
	createStateTimeout = 5 * time.Second
	onCreateTimeout    = 5 * time.Second
	onStartTimeout     = 30 * time.Second
)

// Options define an actor: its state S, connection state C and vars V, its
// lifecycle hooks and its settings. Every field is optional.
//
// Hooks run inside turns, one at a time per actor, like actions: they may
// read and change state, use KV and schedules, and broadcast. An error or
// panic fails the turn and rolls back what it changed. Every hook but
// OnStateChange, OnBeforeActionResponse (bounded by the action's timeout
// for its caller) and the gateway's runs under a time limit (the *Timeout options, SleepGracePeriod; fixed
// ones for CreateState and OnCreate, 5s, and OnStart, 30s, as in
// RivetKit): past it c.Context() is canceled, the caller gets
// actor.callback_timed_out, and the actor leaves memory without running
// more hooks, as after a crash, so that the next call starts it afresh from
// its durable state. A hook that ignores its context goes on running
// until it returns, but nothing it does any longer has an effect.
type Options[S, C, V any] struct {
	// State is the initial state of a new actor (deep-copied per actor).
	State S
	// CreateState computes the initial state from the create-time input.
	// It runs once, when the actor is created, instead of using State.
	CreateState func(c *Context[S, C, V], input Value) (S, error)
	// OnCreate runs once when the actor is created, after CreateState.
	OnCreate func(c *Context[S, C, V], input Value) error

	// Vars is the initial value of the ephemeral vars, copied for each
	// start of each actor: maps, slices, arrays and structs are copied
	// deeply, so no two actors share them; pointers, channels and funcs
	// are shared (put per-actor objects behind pointers in CreateVars).
	// Vars are never persisted.
	Vars V
	// CreateVars creates the vars on every start, instead of Vars.
	CreateVars func(c *Context[S, C, V]) (V, error)

	// OnStart runs every time the actor starts: on creation, after sleep,
	// after a restart or crash. Connections and actions wait for it.
	OnStart func(c *Context[S, C, V]) error
	// Run is a long-running handler started after every start, once
	// OnStart's changes are committed, on a goroutine of its own (a tick
	// loop, a consumer). It re-enters the actor with bg.Enter. The actor
	// stays awake while it runs; bg.Context() is canceled when the actor
	// stops (c.Sleep, destroy, runtime stop), and the stop waits for Run
	// to return up to SleepGracePeriod. An error or panic is logged; the
	// actor then sleeps when idle. RivetKit's run.
	Run func(bg *Background[S, C, V]) error
	// OnSleep runs before the actor goes to sleep or the runtime stops.
	OnSleep func(c *Context[S, C, V]) error
	// OnStateChange runs at the end of every turn that changed the state.
	OnStateChange func(c *Context[S, C, V], state *S)
	// OnDestroy runs before the actor's data is deleted.
	OnDestroy func(c *Context[S, C, V]) error

	// ConnState is the initial state of each connection, copied for each
	// connection the way Vars is copied for each actor.
	ConnState C
	// CreateConnState computes a connection's state from its params.
	CreateConnState func(c *Context[S, C, V], params Value) (C, error)
	// OnBeforeConnect validates a connection; an error rejects it.
	OnBeforeConnect func(c *Context[S, C, V], params Value) error
	// OnConnect runs when a connection has joined (c.Conn is set).
	OnConnect func(c *Context[S, C, V], conn *Conn[C]) error
	// OnDisconnect runs when a connection has left.
	OnDisconnect func(c *Context[S, C, V], conn *Conn[C])
	// OnBeforeActionResponse may replace an action's output. args are
	// the arguments the action was called with, as the caller sent them
	// (decode them with args.Decode); output is what the action returned.
	// It runs for calls from clients, not for scheduled actions.
	OnBeforeActionResponse func(c *Context[S, C, V], action string, args Args, output any) (any, error)

	// OnAuth runs at the gateway before any actor work, with the request,
	// the connection params and what the caller intends. What it returns
	// is the connection's auth data (Conn.Auth). Calls through the
	// in-process client skip it.
	OnAuth func(a *AuthContext, params Value) (any, error)
	// OnRequest serves raw HTTP requests sent to the actor's
	// /request/* path, as a turn. The response is buffered and sent after
	// the turn's changes are durable.
	OnRequest func(c *Context[S, C, V], w http.ResponseWriter, r *http.Request) error
	// OnWebSocket accepts a raw WebSocket connection to /websocket/*. It
	// runs as a turn: register ws.OnMessage and ws.OnClose there; each
	// message then runs as a turn of its own. An error rejects the socket
	// (close 1011). The socket keeps the actor awake while open.
	OnWebSocket func(c *Context[S, C, V], ws *WebSocket[S, C, V]) error
	// CanHibernateWebSocket lets the actor sleep while raw WebSockets are
	// open: the server keeps the socket and its OnMessage and OnClose
	// handlers, and the next message or close wakes the actor (OnStart
	// runs, OnWebSocket does not run again). Handlers must use the
	// context they are given, not one captured in OnWebSocket. Without
	// it an open raw WebSocket keeps its actor awake. RivetKit's
	// canHibernateWebSocket (true).
	CanHibernateWebSocket bool
	// CanHibernateWebSocketFunc decides per upgrade request instead of
	// CanHibernateWebSocket (RivetKit's canHibernateWebSocket as a
	// function of the request).
	CanHibernateWebSocketFunc func(r *http.Request) bool

	// SleepTimeout is how long the actor stays awake with nothing to do
	// (default 30s).
	SleepTimeout time.Duration
	// NoSleep keeps the actor awake forever.
	NoSleep bool
	// KeepAwakeWhileConnected keeps the actor awake while a client is
	// connected, as RivetKit does. By default an actor whose only
	// activity is open connections sleeps after SleepTimeout: the sockets
	// stay open, and the next message, action, close or alarm wakes it
	// with every connection (id, params, state, subscriptions) rebuilt
	// from storage, without running the connect hooks again. See
	// docs/concepts/connections.md.
	KeepAwakeWhileConnected bool
	// ActionTimeout bounds an action call (default 60s).
	ActionTimeout time.Duration
	// MaxSchedules bounds the actor's pending alarms (default 1000).
	MaxSchedules int

	// CreateVarsTimeout bounds CreateVars (default 5s; RivetKit's
	// createVarsTimeout).
	CreateVarsTimeout time.Duration
	// OnBeforeConnectTimeout bounds OnBeforeConnect (default 5s;
	// onBeforeConnectTimeout).
	OnBeforeConnectTimeout time.Duration
	// CreateConnStateTimeout bounds CreateConnState (default 5s;
	// createConnStateTimeout).
	CreateConnStateTimeout time.Duration
	// OnConnectTimeout bounds OnConnect and OnDisconnect (default 5s;
	// onConnectTimeout, which RivetKit applies to both).
	OnConnectTimeout time.Duration
	// SleepGracePeriod bounds the whole stop of an actor that sleeps or
	// is destroyed: OnSleep or OnDestroy, then the wait for Run,
	// KeepAwake, WaitUntil and RunInBackground work to return (default
	// 15s; sleepGracePeriod, which also replaced RivetKit's
	// onSleepTimeout, onDestroyTimeout and waitUntilTimeout).
	SleepGracePeriod time.Duration
	// CanPublish decides whether a client's send to a queue is accepted.
	// It runs in the send's turn, with c.Conn the sender's temporary
	// connection; false refuses the send with auth.forbidden. Sends made
	// by the actor itself skip it. See Queue.
	CanPublish func(c *Context[S, C, V], queue string) (bool, error)
	// MaxQueueSize bounds the messages waiting in the actor's queue
	// (default 1000; queue.full past it).
	MaxQueueSize int
	// MaxQueueMessageSize bounds a queue message's encoded body (default
	// 64 KiB; queue.message_too_large past it).
	MaxQueueMessageSize int
}

// Opts is Options for an actor with state only.
type Opts[S any] = Options[S, None, None]

// Ctx is the Context of an actor with state only.
type Ctx[S any] = Context[S, None, None]

// Intent is what a caller asks for, as onAuth sees it.
type Intent string

// Intents.
const (
	IntentGet     Intent = "get"
	IntentCreate  Intent = "create"
	IntentConnect Intent = "connect"
	IntentAction  Intent = "action"
	// IntentDestroy: DELETE /actors/{id} of the REST API.
	IntentDestroy Intent = "destroy"
	// IntentSleep: POST /actors/{id}/sleep of the REST API.
	IntentSleep Intent = "sleep"
)

// AuthContext is what onAuth receives.
type AuthContext struct {
	Request *http.Request
	// Namespace is the namespace of the actor the request reaches: the
	// one it named, or the actor's own when it names the actor by id.
	// Actors of two namespaces can share a name and key; check this when
	// namespaces separate tenants.
	Namespace string
	Name      string
	Key       Key
	// Token is the token the client presented, wherever the RivetKit
	// client put its token option (RIVET_TOKEN): the @token path
	// segment, rvt-token, the x-rivet-token header, a rivet_token.*
	// subprotocol, or Authorization: Bearer. "" when none. The server
	// checks nothing about it; OnAuth may (docs/concepts/auth.md).
	Token   string
	Intents []Intent
}

// Actor is an actor definition. Build it with NewActor and Action, then
// pass it to NewRegistry. It is immutable once registered.
type Actor[S, C, V any] struct {
	name    string
	opts    Options[S, C, V]
	actions map[string]any
	order   []string
	// dups are action names given to Action more than once: NewRegistry
	// refuses the definition rather than let the last one win.
	dups []string
	// queues are the declared queues by name (queue.go).
	queues map[string]QueueDecl
}

// NewActor starts an actor definition.
func NewActor[S, C, V any](name string, opts Options[S, C, V]) *Actor[S, C, V] {
	return &Actor[S, C, V]{name: name, opts: opts, actions: map[string]any{}}
}

// Action adds an action. fn must be a function whose first parameter is
// *Context[S, C, V], whose other parameters are the action's arguments
// (any encodable types), and which returns (R, error), error, R or
// nothing. A signature that cannot be served, or a name used twice, is
// reported by NewRegistry.
func (a *Actor[S, C, V]) Action(name string, fn any) *Actor[S, C, V] {
	if _, dup := a.actions[name]; dup {
		a.dups = append(a.dups, name)
		return a
	}
	a.order = append(a.order, name)
	a.actions[name] = fn
	return a
}

// Name is the actor's registered name.
func (a *Actor[S, C, V]) Name() string { return a.name }

// Definition is an actor definition of any type, for NewRegistry.
type Definition interface {
	Name() string
	build() (engine.Behavior, error)
	// The gateway hooks (serve.go).
	auth(log *slog.Logger, r *http.Request, req gateway.AuthRequest, params []byte) (any, error)
	serveRequest(ctx context.Context, e *engine.Engine, id string, conn *engine.Conn, w http.ResponseWriter, r *http.Request) error
	serveWebSocket(ctx context.Context, e *engine.Engine, id string, conn *engine.Conn, ws *gateway.RawSocket, r *http.Request) error
	sendQueue(ctx context.Context, e *engine.Engine, id, queue string, conn *engine.Conn, body []byte, wait bool, waitTimeout time.Duration) (engine.QueueSendResult, error)
}

var (
	errorType  = reflect.TypeFor[error]()
	valueTypes = map[reflect.Kind]bool{reflect.Chan: true, reflect.Func: true, reflect.UnsafePointer: true, reflect.Complex64: true, reflect.Complex128: true}
)

type actionFn struct {
	fn      reflect.Value
	params  []reflect.Type
	hasOut  bool
	hasErr  bool
	numArgs int
	// optionalFrom is the index of the first of the trailing parameters
	// that may be left out (pointers, slices, maps, interfaces: they get
	// nil); numArgs when none may.
	optionalFrom int
	// argsType is a struct with one field per parameter, encoded as a
	// CBOR array ("toarray"), so that an argument list decodes in one
	// pass; nil without parameters.
	argsType reflect.Type
	// nullChecks: some parameter has no null, so an argument list is
	// checked for nulls (codec.Nullable).
	nullChecks bool
	// async: the first parameter is *AsyncContext; the action runs outside the
	// actor (async.go).
	async bool
}

// argsStruct builds actionFn.argsType.
func argsStruct(params []reflect.Type) reflect.Type {
	if len(params) == 0 {
		return nil
	}
	fields := []reflect.StructField{{Name: "_", PkgPath: "github.com/rivetgo/rivet", Type: reflect.TypeFor[struct{}](), Tag: `cbor:",toarray"`}}
	for i, p := range params {
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("A%d", i), Type: p})
	}
	return reflect.StructOf(fields)
}

func checkEncodable(t reflect.Type) error {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type) error
	walk = func(t reflect.Type) error {
		if seen[t] {
			return nil
		}
		seen[t] = true
		if valueTypes[t.Kind()] {
			return fmt.Errorf("type %s cannot be encoded", t)
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			return walk(t.Elem())
		case reflect.Map:
			if err := walk(t.Key()); err != nil {
				return err
			}
			return walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() || f.Tag.Get("json") == "-" || f.Tag.Get("cbor") == "-" {
					continue
				}
				if err := walk(f.Type); err != nil {
					return fmt.Errorf("field %s: %w", f.Name, err)
				}
			}
		}
		return nil
	}
	return walk(t)
}

func (a *Actor[S, C, V]) buildAction(name string, fn any) (*actionFn, error) {
	switch {
	case name == "":
		return nil, errors.New("an action has an empty name")
	case strings.Contains(name, "/"):
		// Not routable: POST /action/{name} is one path segment.
		return nil, fmt.Errorf("action %q: a name may not contain '/'", name)
	case !utf8.ValidString(name):
		return nil, fmt.Errorf("action %q: a name must be valid UTF-8", name)
	}
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return nil, fmt.Errorf("action %q: not a function", name)
	}
	t := v.Type()
	ctxType := reflect.TypeFor[*Context[S, C, V]]()
	asyncType := reflect.TypeFor[*AsyncContext[S, C, V]]()
	if t.NumIn() < 1 || (t.In(0) != ctxType && t.In(0) != asyncType) {
		got := "none"
		if t.NumIn() > 0 {
			got = typeName(t.In(0))
		}
		return nil, fmt.Errorf("action %q: first parameter must be %s, not %s (an async action takes %s)", name, contextName[S, C, V](), got,
			strings.Replace(strings.Replace(contextName[S, C, V](), "Ctx[", "Async[", 1), "Context[", "AsyncContext[", 1))
	}
	if t.IsVariadic() {
		return nil, fmt.Errorf("action %q: variadic actions are not supported", name)
	}
	af := &actionFn{fn: v, async: t.In(0) == asyncType}
	for i := 1; i < t.NumIn(); i++ {
		if err := checkEncodable(t.In(i)); err != nil {
			return nil, fmt.Errorf("action %q: parameter %d: %w", name, i, err)
		}
		af.params = append(af.params, t.In(i))
	}
	af.numArgs = len(af.params)
	af.optionalFrom = af.numArgs
	for i := af.numArgs - 1; i >= 0; i-- {
		switch af.params[i].Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			af.optionalFrom = i
			continue
		}
		break
	}
	af.argsType = argsStruct(af.params)
	for _, p := range af.params {
		af.nullChecks = af.nullChecks || !codec.Nullable(p)
	}
	switch t.NumOut() {
	case 0:
	case 1:
		if t.Out(0) == errorType {
			af.hasErr = true
		} else {
			af.hasOut = true
		}
	case 2:
		if t.Out(1) != errorType {
			return nil, fmt.Errorf("action %q: second result must be error", name)
		}
		af.hasOut, af.hasErr = true, true
	default:
		return nil, fmt.Errorf("action %q: at most two results (value, error)", name)
	}
	if af.hasOut {
		if err := checkEncodable(t.Out(0)); err != nil {
			return nil, fmt.Errorf("action %q: result: %w", name, err)
		}
	}
	return af, nil
}

func (a *Actor[S, C, V]) build() (engine.Behavior, error) {
	if a.name == "" {
		return nil, errors.New("rivet: actor with an empty name")
	}
	if len(a.dups) > 0 {
		return nil, fmt.Errorf("rivet: actor %q: action %q is defined twice", a.name, a.dups[0])
	}
	if err := a.checkQueues(); err != nil {
		return nil, fmt.Errorf("rivet: actor %q: %w", a.name, err)
	}
	b := &behavior[S, C, V]{a: a, actions: map[string]*actionFn{}}
	for _, name := range a.order {
		af, err := a.buildAction(name, a.actions[name])
		if err != nil {
			return nil, fmt.Errorf("rivet: actor %q: %w", a.name, err)
		}
		b.actions[name] = af
	}
	if err := checkEncodable(reflect.TypeFor[S]()); err != nil {
		return nil, fmt.Errorf("rivet: actor %q: state: %w", a.name, err)
	}
	init, err := codec.Marshal(&a.opts.State)
	if err != nil {
		return nil, fmt.Errorf("rivet: actor %q: encode initial state: %w", a.name, err)
	}
	b.initState = init
	b.copyVars = !reflect.ValueOf(&a.opts.Vars).Elem().IsZero() && !flat(reflect.TypeFor[V]())
	b.copyConnState = !reflect.ValueOf(&a.opts.ConnState).Elem().IsZero() && !flat(reflect.TypeFor[C]())
	o := a.opts
	b.engOpts = engine.Options{
		SleepTimeout:            o.SleepTimeout,
		NoSleep:                 o.NoSleep,
		KeepAwakeWhileConnected: o.KeepAwakeWhileConnected,
		ActionTimeout:           o.ActionTimeout,
		MaxSchedules:            o.MaxSchedules,
		SleepGracePeriod:        orDefault(o.SleepGracePeriod, DefaultSleepGracePeriod),
		ConnHooks:               o.OnBeforeConnect != nil || o.CreateConnState != nil || o.OnConnect != nil || o.OnDisconnect != nil || !reflect.ValueOf(&o.ConnState).Elem().IsZero(),
	}
	b.timeouts = hookTimeouts{
		createVars:      orDefault(o.CreateVarsTimeout, DefaultCreateVarsTimeout),
		onBeforeConnect: orDefault(o.OnBeforeConnectTimeout, DefaultOnBeforeConnectTimeout),
		createConnState: orDefault(o.CreateConnStateTimeout, DefaultCreateConnStateTimeout),
		onConnect:       orDefault(o.OnConnectTimeout, DefaultOnConnectTimeout),
	}
	if b.engOpts.SleepTimeout <= 0 {
		b.engOpts.SleepTimeout = DefaultSleepTimeout
	}
	if b.engOpts.ActionTimeout <= 0 {
		b.engOpts.ActionTimeout = DefaultActionTimeout
	}
	if b.engOpts.MaxSchedules <= 0 {
		b.engOpts.MaxSchedules = DefaultMaxSchedules
	}
	return b, nil
}

// orDefault is d, or def when d is not set.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// hookTimeouts are the time limits of hooks, defaults applied.
type hookTimeouts struct {
	createVars, onBeforeConnect, createConnState, onConnect time.Duration
}

// behavior adapts a typed definition to the engine.
type behavior[S, C, V any] struct {
	a         *Actor[S, C, V]
	actions   map[string]*actionFn
	initState []byte
	engOpts   engine.Options
	timeouts  hookTimeouts
	// copyVars and copyConnState: Options.Vars and Options.ConnState
	// hold maps, slices or interfaces, so each use needs its own copy.
	copyVars, copyConnState bool
}

// vars returns the initial vars of an actor start.
func (b *behavior[S, C, V]) vars() V {
	if b.copyVars {
		return cloneValue(&b.a.opts.Vars)
	}
	return b.a.opts.Vars
}

// connState returns the initial state of a new connection.
func (b *behavior[S, C, V]) connState() C {
	if b.copyConnState {
		return cloneValue(&b.a.opts.ConnState)
	}
	return b.a.opts.ConnState
}

func (b *behavior[S, C, V]) Name() string            { return b.a.name }
func (b *behavior[S, C, V]) Options() engine.Options { return b.engOpts }
func (b *behavior[S, C, V]) NewInstance(info engine.Info) engine.Instance {
	return &instance[S, C, V]{b: b, info: info}
}

// contextName is how a user writes *Context[S, C, V]: *rivet.Ctx[S] for
// an actor with state only, as the docs do, else with rivet.None for the
// unused parameters.
func contextName[S, C, V any]() string {
	none := reflect.TypeFor[None]()
	c, v := reflect.TypeFor[C](), reflect.TypeFor[V]()
	if c == none && v == none {
		return "*rivet.Ctx[" + typeName(reflect.TypeFor[S]()) + "]"
	}
	return "*rivet.Context[" + typeName(reflect.TypeFor[S]()) + ", " + typeName(c) + ", " + typeName(v) + "]"
}

// typeName is t as Go source names it: reflect's spelling with the import
// paths of type arguments cut to the package name, without the numbers
// of function-local types, struct{} as rivet.None and
// *rivet.Context[S,rivet.None,rivet.None] as *rivet.Ctx[S].
func typeName(t reflect.Type) string {
	s := importDirs.ReplaceAllString(t.String(), "")
	s = localSuffix.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "struct {}", "rivet.None")
	const ctx, tail = "rivet.Context[", ",rivet.None,rivet.None]"
	if i := strings.Index(s, ctx); i >= 0 && strings.HasSuffix(s, tail) && !strings.Contains(s[i+len(ctx):len(s)-len(tail)], "rivet.Context[") {
		s = s[:i] + "rivet.Ctx[" + s[i+len(ctx):len(s)-len(tail)] + "]"
	}
	return s
}

var (
	importDirs  = regexp.MustCompile(`(?:[\w.~-]+/)+`)
	localSuffix = regexp.MustCompile(`·\d+`)
)
