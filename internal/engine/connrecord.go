package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/rivetdriver"
)

// Connection records. Every connection of an actor (not the temporary
// connection of a stateless call, not a raw WebSocket) has a record in
// the actor's key/value space, under the engine's reserved prefix, written
// in the commit of the turn that changed it: the connect turn, a turn that
// changed the connection's state, a subscribe or unsubscribe; the
// disconnect turn deletes it. When the actor wakes, its connections are
// rebuilt from these records without running the connect hooks again.
// The same format serves single-node hibernation (the gateway keeps the
// socket) and the Rivet Engine's hibernatable WebSockets (the engine
// keeps it; the transport fields say which socket).
//
//	ff 63 <connection id>  a record: version byte 0x01, then a CBOR map
//	                       with integer keys (ConnRecord's tags)
var connRecordPrefix = []byte{0xff, 'c'}

const connRecordVersion = 1

// ConnRecord is the persisted form of a connection.
type ConnRecord struct {
	ID string `cbor:"-"` // the key holds it
	// Params are the connection params as the client sent them.
	Params []byte `cbor:"1,keyasint,omitempty"`
	// State is the encoded connection state (internal CBOR), nil for an
	// actor without connection state.
	State []byte `cbor:"2,keyasint,omitempty"`
	// Subs are the subscribed event names, sorted.
	Subs []string `cbor:"3,keyasint,omitempty"`
	// Tunnel describes the socket when another party (the Rivet Engine's
	// gateway) holds it; nil for a socket held by this process.
	Tunnel *TunnelMeta `cbor:"4,keyasint,omitempty"`
}

// TunnelMeta identifies a WebSocket the Rivet Engine holds for the actor,
// and how far each direction got.
type TunnelMeta struct {
	Path      string            `cbor:"1,keyasint,omitempty"`
	Headers   map[string]string `cbor:"2,keyasint,omitempty"`
	GatewayID []byte            `cbor:"3,keyasint,omitempty"`
	RequestID []byte            `cbor:"4,keyasint,omitempty"`
	// ClientIndex is the index of the last client message whose turn is
	// committed; ServerIndex the index of the last message sent to the
	// client.
	ClientIndex uint16 `cbor:"5,keyasint"`
	ServerIndex uint16 `cbor:"6,keyasint"`
	// Handled lists the client messages after ClientIndex whose turns are
	// committed too (messages of one connection may finish out of order):
	// after a restore, a replayed message at or below ClientIndex or in
	// Handled is dropped.
	Handled []uint16 `cbor:"7,keyasint,omitempty"`
}

// TunnelLink is the runner's side of a connection whose socket the Rivet
// Engine holds (a hibernatable WebSocket): it numbers the client's
// messages as the engine does, tells the turns what to persist, and
// acknowledges each message to the engine once its turn is durable.
// Implementations are safe for concurrent use.
type TunnelLink interface {
	// Meta is the socket's description for the connection's record.
	Meta() *TunnelMeta
	// Restore is the record of the connection to rebuild (the socket
	// survived the actor's move to this process), nil for a new
	// connection.
	Restore() *ConnRecord
	// Opened reports that the connection joined its actor (or was
	// adopted for a restore), or why it could not.
	Opened(err error)
	// Received returns the engine's index of the next client message
	// read from the socket (messages are read in the order they came).
	Received() uint16
	// Turn notes that client message n is handled by the turn being
	// committed and returns what the connection's record stores: every
	// message up to last is finished, and those in handled as well.
	Turn(n uint16) (last uint16, handled []uint16)
	// Done reports that message n is finished: its turn is durable, or
	// it caused none.
	Done(n uint16)
}

type clientMessageKey struct{}

// WithClientMessage marks ctx as serving the client message with the
// engine's index n: the turn it causes records n in the connection's
// record (see TunnelLink).
func WithClientMessage(ctx context.Context, n uint16) context.Context {
	return context.WithValue(ctx, clientMessageKey{}, n)
}

func clientMessage(ctx context.Context) (uint16, bool) {
	if ctx == nil {
		return 0, false
	}
	n, ok := ctx.Value(clientMessageKey{}).(uint16)
	return n, ok
}

type tunnelLinkKey struct{}

// WithTunnelLink returns ctx carrying l (set by the runner on the
// requests of a tunnelled WebSocket).
func WithTunnelLink(ctx context.Context, l TunnelLink) context.Context {
	return context.WithValue(ctx, tunnelLinkKey{}, l)
}

// TunnelLinkFrom returns the TunnelLink of ctx, nil if none.
func TunnelLinkFrom(ctx context.Context) TunnelLink {
	l, _ := ctx.Value(tunnelLinkKey{}).(TunnelLink)
	return l
}

// ConnRecordPrefix is the key prefix of the connection records in an
// actor's key/value space.
func ConnRecordPrefix() []byte { return bytes.Clone(connRecordPrefix) }

func connRecordKey(id string) []byte {
	return append(bytes.Clone(connRecordPrefix), id...)
}

// EncodeConnRecord returns the stored form of r.
func EncodeConnRecord(r ConnRecord) ([]byte, error) {
	b, err := codec.Marshal(&r)
	if err != nil {
		return nil, err
	}
	return append([]byte{connRecordVersion}, b...), nil
}

var errConnRecord = errors.New("rivet: malformed connection record")

// DecodeConnRecord parses a record stored under key.
func DecodeConnRecord(key, val []byte) (ConnRecord, error) {
	if !bytes.HasPrefix(key, connRecordPrefix) || len(key) == len(connRecordPrefix) {
		return ConnRecord{}, errConnRecord
	}
	if len(val) < 1 || val[0] != connRecordVersion {
		return ConnRecord{}, fmt.Errorf("%w: unknown version", errConnRecord)
	}
	var r ConnRecord
	if err := codec.Unmarshal(val[1:], &r); err != nil {
		return ConnRecord{}, fmt.Errorf("%w: %v", errConnRecord, err)
	}
	r.ID = string(key[len(connRecordPrefix):])
	return r, nil
}

// ConnStateCodec is implemented by instances whose connections have a
// state that survives sleep: the engine persists what EncodeConnState
// returns and hands it to DecodeConnState when the connection is rebuilt.
type ConnStateCodec interface {
	EncodeConnState(c *Conn) ([]byte, error)
	DecodeConnState(c *Conn, state []byte) error
}

// persisted reports whether c has a connection record.
func (c *Conn) persisted() bool { return !c.ephemeral && !c.raw }

// record builds c's record.
func (h *host) record(c *Conn) ([]byte, error) {
	r := ConnRecord{Params: c.Params, Tunnel: c.Tunnel}
	if cc, ok := h.inst.(ConnStateCodec); ok && c.State != nil {
		st, err := cc.EncodeConnState(c)
		if err != nil {
			return nil, fmt.Errorf("encode state of connection %s: %w", c.ID, err)
		}
		r.State = st
	}
	if len(c.subs) > 0 {
		r.Subs = make([]string, 0, len(c.subs))
		for s := range c.subs {
			r.Subs = append(r.Subs, s)
		}
		slices.Sort(r.Subs)
	}
	return EncodeConnRecord(r)
}

// recordUpdate is a connection record a turn writes; the connection
// remembers it once the turn's commit is built.
type recordUpdate struct {
	c   *Conn
	enc []byte
}

// persistConns writes into the turn the records of the connections it
// may have changed (the connection it serves; all of them when it listed
// them) whose encoding differs from the stored one.
func (h *host) persistConns(t *Turn) ([]recordUpdate, error) {
	var ups []recordUpdate
	check := func(c *Conn) error {
		if c == nil || !c.persisted() || c.closed || c.h != h {
			return nil
		}
		if _, ok := h.conns[c.ID]; !ok {
			return nil
		}
		if c == t.Conn && c.Link != nil && c.Tunnel != nil {
			if n, ok := clientMessage(t.ctx); ok {
				tm := *c.Tunnel
				tm.ClientIndex, tm.Handled = c.Link.Turn(n)
				c.Tunnel = &tm
			}
		}
		enc, err := h.record(c)
		if err != nil {
			return err
		}
		if bytes.Equal(enc, c.rec) {
			return nil
		}
		t.kvPut(connRecordKey(c.ID), enc)
		ups = append(ups, recordUpdate{c: c, enc: enc})
		return nil
	}
	if t.allConns {
		for _, c := range h.connOrder {
			if err := check(c); err != nil {
				return nil, err
			}
		}
	} else if err := check(t.Conn); err != nil {
		return nil, err
	}
	return ups, nil
}

// restoreConns rebuilds the connections recorded in the actor's store when
// it wakes, without running connect hooks: each takes the socket the
// gateway kept for it (parked). A record whose socket is gone is stale:
// its connection is returned, rebuilt without a transport, so that the
// caller disconnects it (onDisconnect runs, the record is deleted). A
// parked socket without a record is closed.
func (h *host) restoreConns(ctx context.Context) ([]*Conn, error) {
	parked := h.e.takeParked(h.id)
	rows, err := h.e.driver.KVList(ctx, h.id, rivetdriver.ListOptions{Prefix: connRecordPrefix})
	if err != nil {
		for _, c := range parked {
			c.closed = true
			c.transport.Close("actor failed to wake")
		}
		return nil, fmt.Errorf("load connections of actor %s: %w", h.id, err)
	}
	byID := make(map[string]*Conn, len(parked))
	for _, c := range parked {
		byID[c.ID] = c
	}
	cc, _ := h.inst.(ConnStateCodec)
	var stale []*Conn
	for _, row := range rows {
		r, err := DecodeConnRecord(row.Key, row.Value)
		if err != nil {
			h.log().Error("connection record unreadable; dropped", "key", fmt.Sprintf("%x", row.Key), "err", err)
			t := newTurn(h, ctx, nil)
			t.kvDelete(row.Key)
			_, _ = h.endTurn(t, nil)
			continue
		}
		c := byID[r.ID]
		delete(byID, r.ID)
		if c == nil {
			c = &Conn{ID: r.ID}
		}
		c.Params, c.Tunnel, c.rec = r.Params, r.Tunnel, row.Value
		c.subs = make(map[string]struct{}, len(r.Subs))
		for _, s := range r.Subs {
			c.subs[s] = struct{}{}
		}
		c.State = nil
		if cc != nil && r.State != nil {
			if err := cc.DecodeConnState(c, r.State); err != nil {
				h.log().Error("connection state unreadable; connection closed", "conn", r.ID, "err", err)
				c.State = nil
				if c.transport != nil {
					c.transport.Close("connection state unreadable")
					c.transport = nil
				}
			}
		}
		c.closed = false
		h.addConn(c)
		if c.transport == nil || c.gone.Load() {
			stale = append(stale, c)
		}
	}
	for _, c := range byID {
		if c.raw {
			// A hibernatable raw WebSocket: no record, nothing to
			// restore but its place among the connections.
			c.closed = false
			h.addConn(c)
			continue
		}
		c.closed = true
		c.transport.Close("connection record not found")
	}
	return stale, nil
}
