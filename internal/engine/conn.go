package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync/atomic"
)

// Transport carries a connection's events to its client. Implementations
// must not block: they queue, and release each event only after its gate
// opens (the turn that emitted it is durable), in emission order. A
// transport that cannot keep up closes its connection; it never stalls the
// actor.
type Transport interface {
	// Event delivers ev, which is shared by every connection a
	// broadcast reaches: a transport may cache its encoding there.
	Event(ev *Event, gate *Gate)
	// Close closes the client side with a reason.
	Close(reason string)
}

// Event is one emitted event. A broadcast makes one Event for all the
// connections it reaches, so that each wire encoding of it is built once
// (Encoded), not once per connection.
type Event struct {
	Name string
	Args []byte
	memo [4]atomic.Pointer[encodedEvent]
}

type encodedEvent struct {
	b   []byte
	err error
}

// Encoded returns build's result for slot (0-3, e.g. a wire encoding),
// calling build at most once per slot unless callers race, in which case
// the first result stored wins. It is safe for concurrent use.
func (ev *Event) Encoded(slot int, build func() ([]byte, error)) ([]byte, error) {
	if slot < 0 || slot >= len(ev.memo) {
		return build()
	}
	if e := ev.memo[slot].Load(); e != nil {
		return e.b, e.err
	}
	b, err := build()
	ev.memo[slot].CompareAndSwap(nil, &encodedEvent{b: b, err: err})
	e := ev.memo[slot].Load()
	return e.b, e.err
}

// Conn is a client connection to an actor. Fields other than the
// identifiers are owned by the actor's loop.
type Conn struct {
	ID     string
	Params []byte
	// State is the typed connection state, owned by package rivet.
	State any
	// Auth is what the gateway's auth hook returned.
	Auth any
	// Request is the HTTP request that opened the connection (the
	// WebSocket upgrade, or a stateless call's request); nil in process.
	Request *http.Request

	// Tunnel describes a socket the Rivet Engine holds; it is persisted
	// in the connection's record (runner mode).
	Tunnel *TunnelMeta
	// Link is the runner's side of such a socket (nil otherwise).
	Link TunnelLink
	// Hibernatable lets a raw WebSocket (ConnectRaw) sleep with its actor:
	// it then does not keep the actor awake, and is re-attached when the
	// actor wakes (it has no record: its handlers live with the socket).
	Hibernatable bool

	h         *host
	subs      map[string]struct{}
	transport Transport
	closed    bool
	ephemeral bool
	raw       bool // a raw WebSocket or HTTP request: not in Conns, no events
	hooked    bool // a raw connection whose connection hooks ran (ConnectRaw)
	// blocks: the connection keeps its actor awake (see host.canSleep);
	// set when it joins.
	blocks bool
	// rec is the record as last written in a commit (nil: none yet).
	rec []byte
	// gone: the client side closed (Engine.Disconnect was called).
	gone atomic.Bool
}

// NewConn returns a connection for a transport.
func NewConn(id string, params []byte, auth any, t Transport) *Conn {
	return &Conn{ID: id, Params: params, Auth: auth, transport: t, subs: map[string]struct{}{}}
}

// NewStatelessConn returns the temporary connection of one stateless
// call: the actor's connection hooks run around the call on it, and it
// never receives events.
func NewStatelessConn(params []byte, auth any) *Conn {
	return &Conn{ID: newConnID(), Params: params, Auth: auth, subs: map[string]struct{}{}, ephemeral: true}
}

// newConnID returns a random UUIDv4, the form RivetKit uses.
func newConnID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// NewConnID returns a fresh connection id.
func NewConnID() string { return newConnID() }

// Subscribed reports whether the connection asked for event.
func (c *Conn) Subscribed(event string) bool {
	_, ok := c.subs[event]
	return ok
}

// Ephemeral reports whether the connection exists only for one stateless
// call.
func (c *Conn) Ephemeral() bool { return c.ephemeral }

var errNoTurn = errors.New("rivet: connection used outside a turn of its actor")

// Send emits an event to this connection from the actor's current turn.
func (c *Conn) Send(name string, args []byte) error {
	if c.h == nil || c.h.cur == nil {
		return errNoTurn
	}
	c.h.cur.Send(c, name, args)
	return nil
}

// Disconnect closes the connection after the actor's current turn.
func (c *Conn) Disconnect(reason string) {
	if c.h != nil && c.h.cur != nil {
		c.h.cur.Disconnect(c, reason)
	}
}
