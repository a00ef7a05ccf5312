package engine

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

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
// name and arguments), the time, and the encoded output. A record must
// outlive every re-send of its request: the gateway waits up to its
// response-start timeout (5 minutes by default) and its tunnel ping
// timeout (30 s) before an attempt fails, and guard makes up to 7
// attempts. So a slot is reused only once its record is older than
// requestLogRetention; while every slot holds a younger record, the actor
// takes a new slot, up to requestLogMaxSlots (an actor serving more
// tunnelled actions than that within the retention reuses its oldest
// record early, and says so in its log). A record is one more put in a
// commit that writes anyway, never a delete (a commit with deletes takes
// the engine driver's slower journal path). A request whose id and
// fingerprint match a record is answered from it, after the record is
// durable, without running the action again. The records of an actor are
// read once per incarnation, at its first tunnelled action.
//
//	ff 72 <slot, u16 big endian>  version 0x02, sequence (u64, big
//	                              endian), time (Unix ms, u64), request
//	                              id (8 bytes), fingerprint (8 bytes),
//	                              flags (1 byte: 1 = output not kept),
//	                              output
//
// Version 1 (slot 1 byte, no time; only 32 slots, reused in turn, so a
// re-send arriving after 32 later calls ran again) is dropped when read.
var requestLogPrefix = []byte{0xff, 'r'}

const (
	requestLogVersion = 2
	// requestLogSize is how many slots an actor uses at least (an idle
	// actor reuses them in turn).
	requestLogSize = 32
	// requestLogMaxSlots bounds the slots of one actor.
	requestLogMaxSlots = 4096
	// requestLogRetention is how long a record is kept at least (while
	// the actor has fewer than requestLogMaxSlots of them).
	requestLogRetention = 5 * time.Minute
	// requestLogMaxOutput bounds the output kept in a record of the
	// first requestLogSize slots, requestLogMaxGrownOutput in the
	// others (so that a busy actor's records stay within 2 MiB + 16
	// MiB). A larger output is not kept; a re-send of that call fails
	// with actor.request_replayed instead of running the action again.
	requestLogMaxOutput      = 64 << 10
	requestLogMaxGrownOutput = 4 << 10
	requestLogHeader         = 1 + 8 + 8 + 8 + 8 + 1
	flagOutputDropped        = 1
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
	slots []requestLogSlot              // by slot number
	// fifo lists the used slots, oldest record first; free lists slots
	// with no record (below len(slots)).
	fifo []uint16
	free []uint16
	next uint64 // the next record's sequence
	// warned: the early reuse of a record was logged.
	warned bool
}

type requestLogEntry struct {
	seq  uint64
	fp   [8]byte
	slot uint16
}

type requestLogSlot struct {
	used bool
	seq  uint64
	at   int64 // Unix ms
	id   RequestID
}

func requestLogKey(slot uint16) []byte {
	return binary.BigEndian.AppendUint16(bytes.Clone(requestLogPrefix), slot)
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
	slot    uint16
	seq     uint64
	at      int64
	id      RequestID
	fp      [8]byte
	dropped bool
	out     []byte
}

// decodeRequestRecord parses a record stored under key.
func decodeRequestRecord(key, val []byte) (requestRecord, error) {
	var r requestRecord
	if len(key) != len(requestLogPrefix)+2 || !bytes.HasPrefix(key, requestLogPrefix) ||
		len(val) < requestLogHeader || val[0] != requestLogVersion || val[33] > flagOutputDropped {
		return r, errRequestLog
	}
	r.slot = binary.BigEndian.Uint16(key[len(requestLogPrefix):])
	if r.slot >= requestLogMaxSlots {
		return r, errRequestLog
	}
	r.seq = binary.BigEndian.Uint64(val[1:9])
	r.at = int64(binary.BigEndian.Uint64(val[9:17]))
	copy(r.id[:], val[17:25])
	copy(r.fp[:], val[25:33])
	r.dropped = val[33] == flagOutputDropped
	r.out = val[requestLogHeader:]
	return r, nil
}

// encodeRequestRecord encodes a record; an output longer than max is
// not kept.
func encodeRequestRecord(seq uint64, at int64, id RequestID, fp [8]byte, out []byte, max int) []byte {
	dropped := len(out) > max
	n := requestLogHeader
	if !dropped {
		n += len(out)
	}
	v := make([]byte, requestLogHeader, n)
	v[0] = requestLogVersion
	binary.BigEndian.PutUint64(v[1:9], seq)
	binary.BigEndian.PutUint64(v[9:17], uint64(at))
	copy(v[17:25], id[:])
	copy(v[25:33], fp[:])
	if dropped {
		v[33] = flagOutputDropped
		return v
	}
	return append(v, out...)
}

// maxOutput is how much output a record in slot keeps.
func maxOutput(slot uint16) int {
	if slot < requestLogSize {
		return requestLogMaxOutput
	}
	return requestLogMaxGrownOutput
}

// take picks the slot of the next record, at now: a free one, a new one
// while the actor has fewer than requestLogSize, the oldest record's if
// that is past the retention (or the actor has requestLogMaxSlots), else
// a new one. It changes nothing; commit does.
func (l *requestLog) take(now time.Time) (slot uint16, early bool) {
	switch {
	case len(l.free) > 0:
		return l.free[len(l.free)-1], false
	case len(l.slots) < requestLogSize || len(l.fifo) == 0:
		return uint16(len(l.slots)), false
	}
	oldest := l.fifo[0]
	if now.UnixMilli()-l.slots[oldest].at >= requestLogRetention.Milliseconds() {
		return oldest, false
	}
	if len(l.slots) < requestLogMaxSlots {
		return uint16(len(l.slots)), false
	}
	return oldest, true
}

// commit records that the record seq of id is now in slot.
func (l *requestLog) commit(slot uint16, seq uint64, at int64, id RequestID, fp [8]byte) {
	switch {
	case len(l.free) > 0 && l.free[len(l.free)-1] == slot:
		l.free = l.free[:len(l.free)-1]
	case int(slot) == len(l.slots):
		l.slots = append(l.slots, requestLogSlot{})
	case len(l.fifo) > 0 && l.fifo[0] == slot:
		l.fifo = l.fifo[1:]
		if old := l.slots[slot]; old.used {
			if e, ok := l.byID[old.id]; ok && e.seq == old.seq {
				delete(l.byID, old.id)
			}
		}
	}
	l.slots[slot] = requestLogSlot{used: true, seq: seq, at: at, id: id}
	l.fifo = append(l.fifo, slot)
	l.byID[id] = requestLogEntry{seq: seq, fp: fp, slot: slot}
	l.next = seq + 1
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
	var recs []requestRecord
	for _, row := range rows {
		r, err := decodeRequestRecord(row.Key, row.Value)
		if err != nil {
			if len(row.Key) == len(requestLogPrefix)+1 {
				h.log().Info("request record of an earlier version dropped", "key", fmt.Sprintf("%x", row.Key))
			} else {
				h.log().Error("request record unreadable; dropped", "key", fmt.Sprintf("%x", row.Key), "err", err)
			}
			t.kvDelete(row.Key)
			continue
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b requestRecord) int { return cmp.Compare(a.seq, b.seq) })
	for _, r := range recs {
		for int(r.slot) >= len(l.slots) {
			l.free = append(l.free, uint16(len(l.slots)))
			l.slots = append(l.slots, requestLogSlot{})
		}
		l.free = slices.DeleteFunc(l.free, func(s uint16) bool { return s == r.slot })
		l.slots[r.slot] = requestLogSlot{used: true, seq: r.seq, at: r.at, id: r.id}
		l.fifo = append(l.fifo, r.slot)
		l.byID[r.id] = requestLogEntry{seq: r.seq, fp: r.fp, slot: r.slot}
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
	vals, err := t.KVGet([][]byte{requestLogKey(e.slot)})
	if err != nil {
		return nil, h.lastGate(), true, err
	}
	r, derr := decodeRequestRecord(requestLogKey(e.slot), vals[0])
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
// into its turn t, in the slot take picks. The in-memory index changes
// only once the turn ends without error (commit).
func (h *host) recordRequest(t *Turn, id RequestID, fp [8]byte, out []byte) (commit func()) {
	l := h.inc.requests
	if l == nil {
		return func() {}
	}
	now := h.e.clock.Now()
	slot, early := l.take(now)
	seq, at := l.next, now.UnixMilli()
	t.kvPut(requestLogKey(slot), encodeRequestRecord(seq, at, id, fp, out, maxOutput(slot)))
	return func() {
		if h.inc == nil || h.inc.requests != l {
			return
		}
		if early && !l.warned {
			l.warned = true
			h.log().Warn("more tunnelled actions than request records kept; the oldest record is reused before its retention, so a late re-send of its request would run again",
				"records", requestLogMaxSlots, "retention", requestLogRetention)
		}
		l.commit(slot, seq, at, id, fp)
	}
}
