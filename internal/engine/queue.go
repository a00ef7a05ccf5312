package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// Queue messages are rows of the actor's key/value space under a reserved
// prefix that no user key can start with (user keys are keyenc tuples,
// whose first byte is a type tag of at most 0x08). They are written and
// removed by turns like any KV write, so a message is durable once the
// turn that sent it has committed, and it leaves the queue in the commit of
// the turn that received it: a receiving turn that fails puts it back.
//
//	ff 71 6d            metadata: next id (u64 BE), size (u32 BE)
//	ff 71 64 <id u64>   a message: created-at ms (u64 BE), name length
//	                    (uvarint), name, body (internal CBOR)
var (
	// InternalKeyPrefix starts every key the engine keeps in an actor's
	// key/value space for itself.
	InternalKeyPrefix = []byte{0xff}
	queueMetaKey      = []byte{0xff, 'q', 'm'}
	queueMsgPrefix    = []byte{0xff, 'q', 'd'}
)

// Queue errors, as RivetKit names them.
var (
	ErrQueueFull             = &rivettype.Error{Group: "queue", Code: "full", Message: "Queue is full.", Public: true}
	ErrQueueMessageTooLarge  = &rivettype.Error{Group: "queue", Code: "message_too_large", Message: "Queue message is too large.", Public: true}
	ErrQueueAlreadyCompleted = &rivettype.Error{Group: "queue", Code: "already_completed", Message: "Queue message was already completed.", Public: true}
	ErrQueueNotDeclared      = &rivettype.Error{Group: "queue", Code: "not_declared", Message: "Queue is not declared.", Public: true}
	ErrQueueInvalidBody      = &rivettype.Error{Group: "queue", Code: "invalid_body", Message: "Queue message body does not match the queue's type.", Public: true}
)

// QueueMessage is a message of an actor's queue.
type QueueMessage struct {
	ID        uint64
	Name      string
	Body      []byte // internal CBOR
	CreatedAt time.Time
}

func queueMsgKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(queueMsgPrefix), id)
}

func encodeQueueMsg(m QueueMessage) []byte {
	b := make([]byte, 0, 8+binary.MaxVarintLen64+len(m.Name)+len(m.Body))
	b = binary.BigEndian.AppendUint64(b, uint64(m.CreatedAt.UnixMilli()))
	b = binary.AppendUvarint(b, uint64(len(m.Name)))
	b = append(b, m.Name...)
	return append(b, m.Body...)
}

func decodeQueueMsg(key, val []byte) (QueueMessage, error) {
	if len(key) != len(queueMsgPrefix)+8 || len(val) < 9 {
		return QueueMessage{}, errors.New("queue: malformed message row")
	}
	m := QueueMessage{ID: binary.BigEndian.Uint64(key[len(queueMsgPrefix):])}
	m.CreatedAt = time.UnixMilli(int64(binary.BigEndian.Uint64(val)))
	n, k := binary.Uvarint(val[8:])
	if k <= 0 || uint64(len(val)-8-k) < n {
		return QueueMessage{}, errors.New("queue: malformed message row")
	}
	rest := val[8+k:]
	m.Name = string(rest[:n])
	m.Body = bytes.Clone(rest[n:])
	return m, nil
}

type queueMeta struct {
	next uint64
	size uint32
}

func (t *Turn) queueMeta() (queueMeta, error) {
	v, err := t.KVGet([][]byte{queueMetaKey})
	if err != nil {
		return queueMeta{}, err
	}
	if len(v[0]) != 12 {
		return queueMeta{next: 1}, nil
	}
	return queueMeta{next: binary.BigEndian.Uint64(v[0]), size: binary.BigEndian.Uint32(v[0][8:])}, nil
}

func (t *Turn) putQueueMeta(m queueMeta) error {
	b := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, m.next), m.size)
	return t.KVPut([]rivetdriver.KV{{Key: queueMetaKey, Value: b}})
}

// turnQueue is what a turn did to the queue, acted on once it has been
// flushed (afterFlush).
type turnQueue struct {
	sent  bool
	taken map[uint64]*taken
}

type taken struct {
	completed bool
	response  []byte
}

// QueueSend appends a message to the actor's queue in this turn. maxSize
// bounds the number of messages (0: no bound). It returns the message id.
func (t *Turn) QueueSend(name string, body []byte, maxSize int) (uint64, error) {
	meta, err := t.queueMeta()
	if err != nil {
		return 0, err
	}
	if maxSize > 0 && int(meta.size) >= maxSize {
		return 0, ErrQueueFull.With("Queue is full. Limit is %d messages.", maxSize)
	}
	m := QueueMessage{ID: meta.next, Name: name, Body: body, CreatedAt: t.Now()}
	if err := t.KVPut([]rivetdriver.KV{{Key: queueMsgKey(m.ID), Value: encodeQueueMsg(m)}}); err != nil {
		return 0, err
	}
	meta.next++
	meta.size++
	if err := t.putQueueMeta(meta); err != nil {
		return 0, err
	}
	t.queueState().sent = true
	return m.ID, nil
}

func (t *Turn) queueState() *turnQueue {
	if t.queue == nil {
		t.queue = &turnQueue{}
	}
	return t.queue
}

// QueueList returns up to limit messages (0: all) in queue order, as this
// turn sees them, without removing them. With names, only messages of
// those names. It reads the queue in pages, so that finding the first
// messages does not read the whole queue.
func (t *Turn) QueueList(names []string, limit int) ([]QueueMessage, error) {
	const page = 64
	var out []QueueMessage
	var start []byte
	for {
		lo := rivetdriver.ListOptions{Prefix: queueMsgPrefix, Start: start, Limit: page}
		rows, err := t.KVList(lo)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			m, err := decodeQueueMsg(r.Key, r.Value)
			if err != nil {
				return nil, err
			}
			if len(names) > 0 && !slices.Contains(names, m.Name) {
				continue
			}
			out = append(out, m)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if len(rows) < page {
			return out, nil
		}
		start = append(bytes.Clone(rows[len(rows)-1].Key), 0) // just after the last key
	}
}

// QueueLen is the number of messages in the queue, as this turn sees it.
func (t *Turn) QueueLen() (int, error) {
	meta, err := t.queueMeta()
	return int(meta.size), err
}

// QueueTake removes up to count of the oldest messages with one of names
// (any name when empty) in this turn and returns them. A sender waiting
// for a taken message is answered when the turn has committed, with the
// response given to QueueComplete, if any.
func (t *Turn) QueueTake(names []string, count int) ([]QueueMessage, error) {
	ms, err := t.QueueList(names, count)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	meta, err := t.queueMeta()
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(ms))
	q := t.queueState()
	if q.taken == nil {
		q.taken = map[uint64]*taken{}
	}
	for i, m := range ms {
		keys[i] = queueMsgKey(m.ID)
		q.taken[m.ID] = &taken{}
	}
	if err := t.KVDelete(keys); err != nil {
		return nil, err
	}
	meta.size -= min(meta.size, uint32(len(ms)))
	if err := t.putQueueMeta(meta); err != nil {
		return nil, err
	}
	return ms, nil
}

// QueueComplete sets the response of a message this turn took, for the
// sender waiting for it. A message completes once.
func (t *Turn) QueueComplete(id uint64, response []byte) error {
	var tk *taken
	if t.queue != nil {
		tk = t.queue.taken[id]
	}
	if tk == nil {
		return ErrQueueAlreadyCompleted.With("Queue message %d was not received in this turn, or was already completed.", id)
	}
	if tk.completed {
		return ErrQueueAlreadyCompleted.With("Queue message %d was already completed.", id)
	}
	tk.completed, tk.response = true, bytes.Clone(response)
	return nil
}

// KVClearUser deletes every user key of the actor, keeping the engine's own
// rows (the queue).
func (t *Turn) KVClearUser() error {
	keep, err := t.KVList(rivetdriver.ListOptions{Prefix: InternalKeyPrefix})
	if err != nil {
		return err
	}
	t.KVClear()
	if len(keep) == 0 {
		return nil
	}
	return t.KVPut(keep)
}

// afterFlush acts on what a successful turn did to the queue: receivers
// are woken, and senders waiting for the messages it took are answered
// behind the turn's gate g.
func (h *host) queueAfterFlush(t *Turn, g *Gate) {
	q := t.queue
	t.queue = nil
	if q == nil {
		return
	}
	w := &h.e.queues
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.m[h.id]
	if a == nil {
		return
	}
	if q.sent && a.signal != nil {
		close(a.signal)
		a.signal = nil
	}
	for id, tk := range q.taken {
		if ch, ok := a.done[id]; ok {
			delete(a.done, id)
			ch <- queueResult{response: tk.response, gate: g}
		}
	}
	w.gc(h.id, a)
}

// queueWaiters are the goroutines waiting on actors' queues: receivers
// waiting for a message and senders waiting for a completion.
type queueWaiters struct {
	mu sync.Mutex
	m  map[string]*actorQueue
}

type actorQueue struct {
	signal    chan struct{} // closed when a message was sent
	receivers int
	done      map[uint64]chan queueResult
}

type queueResult struct {
	response []byte
	gate     *Gate
}

func (w *queueWaiters) get(id string) *actorQueue {
	if w.m == nil {
		w.m = map[string]*actorQueue{}
	}
	a := w.m[id]
	if a == nil {
		a = &actorQueue{done: map[uint64]chan queueResult{}}
		w.m[id] = a
	}
	return a
}

func (w *queueWaiters) gc(id string, a *actorQueue) {
	if a.receivers == 0 && len(a.done) == 0 {
		delete(w.m, id)
	}
}

// QueueSendResult is the outcome of Engine.QueueSend.
type QueueSendResult struct {
	// Completed is false when the sender waited and no turn received
	// the message in time.
	Completed bool
	// Response is what the receiving turn completed the message with.
	Response []byte
}

// QueueSend runs send as a turn of the actor serving conn (a stateless
// call's temporary connection runs the connection hooks around it, as an
// action's does). send enqueues and returns the message's id. The call
// returns once the message is durable; with wait, it then waits until a
// turn that received the message has committed, or until waitTimeout
// (0: until ctx ends) passes, which answers Completed false.
func (e *Engine) QueueSend(ctx context.Context, id string, conn *Conn, timeout time.Duration, wait bool, waitTimeout time.Duration, send func(t *Turn) (uint64, error)) (QueueSendResult, error) {
	var (
		gate  *Gate
		serr  error
		msgID uint64
		ch    chan queueResult
	)
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	err := e.doUntil(ctx, deadline, id, func(h *host) {
		if conn.ephemeral {
			if !h.opts.ConnHooks {
				conn.h = h
			} else {
				if g, err := h.connect(ctx, conn); err != nil {
					gate, serr = g, err
					return
				}
				defer h.disconnect(conn, "queue send done")
			}
		}
		t := newTurn(h, ctx, conn)
		t.deadline = deadline
		h.e.metrics.Turns.Add(1)
		serr = h.call("queue send", "", func() error {
			var err error
			msgID, err = send(t)
			return err
		})
		if serr == nil && wait {
			// Registered on the actor's loop before any later turn can
			// take the message.
			ch = make(chan queueResult, 1)
			e.queues.mu.Lock()
			e.queues.get(h.id).done[msgID] = ch
			e.queues.mu.Unlock()
		}
		gate, serr = h.endTurn(t, serr)
	})
	drop := func() {
		if ch == nil {
			return
		}
		e.queues.mu.Lock()
		defer e.queues.mu.Unlock()
		if a := e.queues.m[id]; a != nil {
			delete(a.done, msgID)
			e.queues.gc(id, a)
		}
	}
	if err == nil {
		err = gate.Wait(ctx)
	}
	if err == nil {
		err = serr
	}
	if err != nil {
		drop()
		if err == errDeadline {
			return QueueSendResult{}, rivettype.ErrActionTimedOut
		}
		return QueueSendResult{}, err
	}
	if !wait {
		return QueueSendResult{Completed: true}, nil
	}
	var timer <-chan time.Time
	if waitTimeout > 0 {
		tm := time.NewTimer(waitTimeout)
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case r := <-ch:
		if werr := r.gate.Wait(ctx); werr != nil {
			return QueueSendResult{}, werr
		}
		return QueueSendResult{Completed: true, Response: r.response}, nil
	case <-timer:
		drop()
		return QueueSendResult{}, nil
	case <-ctx.Done():
		drop()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return QueueSendResult{}, nil // the request's own bound: timed out
		}
		return QueueSendResult{}, ctx.Err()
	}
}

// QueueWait waits until the actor's queue holds a message with one of
// names (any name when empty), or timeout passes (0: no timeout), or ctx
// ends. It reports whether a message is there; a turn must still take it
// (QueueTake), and another receiver may take it first. It runs outside
// the actor's turns, from a background task of the actor (started with
// Turn.RunInBackground), which does not keep the actor awake while it
// waits.
func (e *Engine) QueueWait(ctx context.Context, id string, names []string, timeout time.Duration) (bool, error) {
	var timer <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		timer = tm.C
	}
	e.queues.mu.Lock()
	e.queues.get(id).receivers++
	e.queues.mu.Unlock()
	defer func() {
		e.queues.mu.Lock()
		if a := e.queues.m[id]; a != nil {
			a.receivers--
			e.queues.gc(id, a)
		}
		e.queues.mu.Unlock()
	}()
	for {
		// Take the signal before looking, so that a message sent after
		// the look is not missed.
		e.queues.mu.Lock()
		a := e.queues.get(id)
		if a.signal == nil {
			a.signal = make(chan struct{})
		}
		sig := a.signal
		e.queues.mu.Unlock()
		var found bool
		var h *host
		err := e.Enter(ctx, id, func(t *Turn) error {
			h = t.h
			ms, err := t.QueueList(names, 1)
			found = len(ms) > 0
			return err
		})
		if err != nil || found {
			return found, err
		}
		if !e.waitSleepable(ctx, h, sig, timer) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			return false, nil
		}
	}
}

// waitSleepable waits for sig (true), or for timer or ctx (false). The
// caller is background work of h, which keeps the actor awake; while it
// waits here it does not, so that an actor whose worker waits for
// messages can sleep as RivetKit's can (its context then ends: the
// worker is started again by the next start's OnStart).
func (e *Engine) waitSleepable(ctx context.Context, h *host, sig chan struct{}, timer <-chan time.Time) bool {
	h.bg.awake.Add(-1)
	e.pushTo(h, job{run: func(*host) {}, fail: func(error) {}, idle: true, notWork: true})
	defer h.bg.awake.Add(1)
	select {
	case <-sig:
		return true
	case <-timer:
		return false
	case <-ctx.Done():
		return false
	}
}

// QueueMessages lists an actor's committed queue messages from the store,
// for the inspector. It does not wake the actor.
func (e *Engine) QueueMessages(ctx context.Context, id string, limit int) ([]QueueMessage, error) {
	rows, err := e.driver.KVList(ctx, id, rivetdriver.ListOptions{Prefix: queueMsgPrefix, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]QueueMessage, 0, len(rows))
	for _, r := range rows {
		m, err := decodeQueueMsg(r.Key, r.Value)
		if err != nil {
			return nil, fmt.Errorf("actor %s: %w", id, err)
		}
		out = append(out, m)
	}
	return out, nil
}
