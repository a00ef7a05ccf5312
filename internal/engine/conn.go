package engine

import "errors"

// Transport carries a connection's events to its client. Implementations
// must not block: they queue, and release each event only after its gate
// opens (the turn that emitted it is durable), in emission order. A
// transport that cannot keep up closes its connection; it never stalls the
// actor.
type Transport interface {
	Event(name string, args []byte, gate *Gate)
	// Close closes the client side with a reason.
	Close(reason string)
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

	h         *host
	subs      map[string]struct{}
	transport Transport
	closed    bool
	ephemeral bool
}

// NewConn returns a connection for a transport.
func NewConn(id string, params []byte, auth any, t Transport) *Conn {
	return &Conn{ID: id, Params: params, Auth: auth, transport: t, subs: map[string]struct{}{}}
}

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
