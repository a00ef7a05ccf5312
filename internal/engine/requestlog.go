package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// Request log: exactly-once actions through the Rivet Engine.
//
// The engine's gateway re-sends a request to the actor's next runner when
// the runner it sent it to dies (or the actor stops) before answering,
// with the same gateway id and request id: the retry loop of guard reuses
// the request context, and with it the in-flight request id it acquired
// once. Without a record, an action whose turn committed just before its
// runner died would run twice.
//
// A tunnelled action that succeeds therefore writes, in the commit of its
// own turn, a record: the request id, a fingerprint of the call (action
// name and arguments), and the encoded output. The actor keeps the last
// requestLogSize records, in as many slots reused in turn, so that a
// record costs one more put in a commit that writes anyway, never a
// delete (a commit with deletes takes the engine driver's slower journal
// path). A request whose id and fingerprint match a record is answered
// from it, after the record is durable, without running the action
// again. The records of an actor are read once per incarnation, at its
// first tunnelled action.
//
//	ff 72 <slot, 1 byte>  version 0x01, sequence (u64, big endian),
//	                      request id (8 bytes), fingerprint (8 bytes),
//	                      flags (1 byte: 1 = output not kept), output
var requestLogPrefix = []byte{0xff, 'r'}

const (
	requestLogVersion = 1
	// requestLogSize is how many records an actor keeps: the engine
	// re-sends a request within its own request timeout, while the
	// actor serves at most a few requests a millisecond.
	requestLogSize = 32
	// requestLogMaxOutput bounds the output kept in a record. A larger
	// output is not kept; a re-sent request of that call fails with
	// actor.request_replayed instead of running the action again.
	requestLogMaxOutput = 64 << 10
	requestLogHeader    = 1 + 8 + 8 + 8 + 1
	flagOutputDropped   = 1
)

// ErrRequestReplayed answers a re-sent request whose action was applied
// but whose output was too large to keep.
var ErrRequestReplayed = &rivettype.Error{
	Group:   "actor",
	Code:    "request_replayed",
	Message: "The engine re-sent this request after the action was applied; its result was too large to keep, and the action was not run again.",
	Public:  true,
}

// RequestID identifies a request the engine may re-send: its gateway id
// and request id.
type RequestID [8]byte

type requestIDKey struct{}

// WithRequestID marks the context of a tunnelled HTTP request with the
// engine's id for it. An action served from that request (a stateless
// action over HTTP) is then applied at most once per id.
func WithRequestID(ctx context.Context, id RequestID) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestIDOf is the engine id of the HTTP request a stateless call
// serves. Only the gateway's HTTP action sets conn.Request; calls made
// by user code (actor to actor, inside a raw request handler) carry no
// id, so two identical calls from one handler both run.
func requestIDOf(conn *Conn) (RequestID, bool) {
	if conn == nil || !conn.ephemeral || conn.Request == nil {
		return RequestID{}, false
	}
	id, ok := conn.Request.Context().Value(requestIDKey{}).(RequestID)
	return id, ok
}

// requestLog is the in-memory index of an incarnation's records.
type requestLog struct {
	byID  map[RequestID]requestLogEntry // the newest record of each id
	slots [requestLogSize]requestLogSlot
	next  uint64 // the next record's sequence
}

type requestLogEntry struct {
	seq uint64
	fp  [8]byte
}

type requestLogSlot struct {
	used bool
	seq  uint64
	id   RequestID
}

func requestLogKey(seq uint64) []byte {
	return append(bytes.Clone(requestLogPrefix), byte(seq%requestLogSize))
}

func callFingerprint(name string, args []byte) [8]byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(args)
	var fp [8]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

var errRequestLog = errors.New("rivet: malformed request record")

type requestRecord struct {
	seq     uint64
	id      RequestID
	fp      [8]byte
	dropped bool
	out     []byte
}

// decodeRequestRecord parses a record stored under key.
func decodeRequestRecord(key, val []byte) (requestRecord, error) {
	var r requestRecord
	if len(key) != len(requestLogPrefix)+1 || !bytes.HasPrefix(key, requestLogPrefix) ||
		len(val) < requestLogHeader || val[0] != requestLogVersion || val[25] > flagOutputDropped {
		return r, errRequestLog
	}
	r.seq = binary.BigEndian.Uint64(val[1:9])
	if !bytes.Equal(requestLogKey(r.seq), key) {
		return r, errRequestLog
	}
	copy(r.id[:], val[9:17])
	copy(r.fp[:], val[17:25])
	r.dropped = val[25] == flagOutputDropped
	r.out = val[requestLogHeader:]
	return r, nil
}

func encodeRequestRecord(seq uint64, id RequestID, fp [8]byte, out []byte) []byte {
	dropped := len(out) > requestLogMaxOutput
	n := requestLogHeader
	if !dropped {
		n += len(out)
	}
	v := make([]byte, requestLogHeader, n)
	v[0] = requestLogVersion
	binary.BigEndian.PutUint64(v[1:9], seq)
	copy(v[9:17], id[:])
	copy(v[17:25], fp[:])
	if dropped {
		v[25] = flagOutputDropped
		return v
	}
	return append(v, out...)
}

// loadRequestLog reads the actor's records, once per incarnation, through
// turn t (which sees commits still in flight).
func (h *host) loadRequestLog(t *Turn) (*requestLog, error) {
	if l := h.inc.requests; l != nil {
		return l, nil
	}
	rows, err := t.KVList(rivetdriver.ListOptions{Prefix: requestLogPrefix})
	if err != nil {
		return nil, fmt.Errorf("load request records of actor %s: %w", h.id, err)
	}
	l := &requestLog{byID: make(map[RequestID]requestLogEntry, len(rows))}
	for _, row := range rows {
		r, err := decodeRequestRecord(row.Key, row.Value)
		if err != nil {
			h.log().Error("request record unreadable; dropped", "key", fmt.Sprintf("%x", row.Key), "err", err)
			t.kvDelete(row.Key)
			continue
		}
		l.slots[r.seq%requestLogSize] = requestLogSlot{used: true, seq: r.seq, id: r.id}
		if e, ok := l.byID[r.id]; !ok || e.seq < r.seq {
			l.byID[r.id] = requestLogEntry{seq: r.seq, fp: r.fp}
		}
		l.next = max(l.next, r.seq+1)
	}
	h.inc.requests = l
	return l, nil
}

// replayed answers a re-sent request from its record. ok reports that
// the request was answered (out, or err); the caller must not run the
// action then. The answer waits for the returned gate, so that a
// record still in flight is durable before the client hears of it.
func (h *host) replayed(ctx context.Context, id RequestID, name string, args []byte) (out []byte, g *Gate, ok bool, err error) {
	t := newTurn(h, ctx, nil)
	defer func() {
		if h.cur == t {
			h.cur = nil
		}
	}()
	l, err := h.loadRequestLog(t)
	if err != nil {
		return nil, h.lastGate(), true, err
	}
	if !t.kv.empty() {
		// Unreadable records were dropped: commit that.
		if _, err := h.endTurn(t, nil); err != nil {
			return nil, h.lastGate(), true, err
		}
		t = newTurn(h, ctx, nil)
	}
	e, found := l.byID[id]
	if !found || e.fp != callFingerprint(name, args) {
		return nil, nil, false, nil
	}
	vals, err := t.KVGet([][]byte{requestLogKey(e.seq)})
	if err != nil {
		return nil, h.lastGate(), true, err
	}
	r, derr := decodeRequestRecord(requestLogKey(e.seq), vals[0])
	if derr != nil || r.seq != e.seq {
		return nil, h.lastGate(), true, fmt.Errorf("request record of actor %s: %w", h.id, errRequestLog)
	}
	h.log().Info("re-sent request answered from its record, action not run again", "action", name, "request", fmt.Sprintf("%x", id[:]))
	if r.dropped {
		return nil, h.lastGate(), true, ErrRequestReplayed
	}
	return r.out, h.lastGate(), true, nil
}

// recordRequest writes the record of a request whose action succeeded
// into its turn t, in the slot of the oldest record. The in-memory index
// changes only once the turn ends without error (commit).
func (h *host) recordRequest(t *Turn, id RequestID, fp [8]byte, out []byte) (commit func()) {
	l := h.inc.requests
	if l == nil {
		return func() {}
	}
	seq := l.next
	t.kvPut(requestLogKey(seq), encodeRequestRecord(seq, id, fp, out))
	return func() {
		if h.inc == nil || h.inc.requests != l {
			return
		}
		slot := &l.slots[seq%requestLogSize]
		if slot.used {
			if e, ok := l.byID[slot.id]; ok && e.seq == slot.seq {
				delete(l.byID, slot.id)
			}
		}
		*slot = requestLogSlot{used: true, seq: seq, id: id}
		l.byID[id] = requestLogEntry{seq: seq, fp: fp}
		l.next = seq + 1
	}
}
