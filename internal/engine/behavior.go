package engine

import (
	"log/slog"
	"time"
)

// Behavior is a type-erased actor definition. Package rivet implements it
// over the user's typed definition; the engine never sees user types.
type Behavior interface {
	Name() string
	Options() Options
	// NewInstance returns an uninitialized instance: the engine calls
	// Create (first activation only) or Load, then Start.
	NewInstance(info Info) Instance
}

// Options are the per-actor settings the engine enforces.
type Options struct {
	SleepTimeout time.Duration
	NoSleep      bool
	// KeepAwakeWhileConnected keeps the actor awake while it has
	// connections (RivetKit's behaviour); by default an actor whose only
	// activity is open connections sleeps, its sockets kept open.
	KeepAwakeWhileConnected bool
	ActionTimeout           time.Duration
	MaxSchedules            int
	// SleepGracePeriod bounds a stop: the onSleep or onDestroy hook and
	// the wait for background work. Without it the hook is not bounded
	// and background work is not awaited.
	SleepGracePeriod time.Duration
	// ConnHooks reports whether the definition has connection hooks, so
	// that a stateless call must run them around its action.
	ConnHooks bool
}

// Info is what an instance knows about the actor it runs.
type Info struct {
	ID        string
	Namespace string
	Name      string
	Key       []string
	Region    string
	Log       *slog.Logger
}

// Instance is one live incarnation of an actor. All methods are called on
// the actor's loop, one at a time; errors and panics fail the current turn.
type Instance interface {
	// Create runs the create hooks (createState, onCreate) with the
	// encoded create-time input (nil when none was given).
	Create(t *Turn, input []byte) error
	// Load decodes persisted state.
	Load(state []byte) error
	// Start runs createVars and onStart; it runs on every activation.
	Start(t *Turn) error
	// EncodeState encodes the current state deterministically.
	EncodeState() ([]byte, error)
	// Restore replaces the in-memory state with a decoded encoding, to
	// roll back a failed turn.
	Restore(state []byte) error

	HasAction(name string) bool
	// Action runs an action with its encoded argument list (a CBOR
	// array; empty means no arguments). The result is encoded by the
	// engine.
	Action(t *Turn, name string, args []byte) (any, error)
	// BeforeActionResponse may replace an action's output; args is the
	// argument list the action was called with, as Action received it.
	BeforeActionResponse(t *Turn, name string, args []byte, out any) (any, error)
	// StateChanged runs onStateChange after a turn changed the state.
	StateChanged(t *Turn) error

	// BeforeConnect validates a connection's params.
	BeforeConnect(t *Turn, params []byte) error
	// CreateConnState sets c.State.
	CreateConnState(t *Turn, c *Conn, params []byte) error
	Connect(t *Turn, c *Conn) error
	Disconnect(t *Turn, c *Conn) error

	Sleep(t *Turn) error
	Destroy(t *Turn) error
}
