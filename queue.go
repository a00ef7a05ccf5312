package rivet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
)

// Defaults of the queue options, matching RivetKit.
const (
	DefaultMaxQueueSize        = 1000
	DefaultMaxQueueMessageSize = 64 << 10
)

// Queue errors.
var (
	// ErrQueueFull: the actor's queue holds MaxQueueSize messages.
	ErrQueueFull = engine.ErrQueueFull
	// ErrQueueMessageTooLarge: a body is over MaxQueueMessageSize.
	ErrQueueMessageTooLarge = engine.ErrQueueMessageTooLarge
	// ErrQueueAlreadyCompleted: Complete was called twice, or outside
	// the turn that received the message.
	ErrQueueAlreadyCompleted = engine.ErrQueueAlreadyCompleted
	// ErrQueueNotDeclared: a send to a queue name the actor does not
	// declare.
	ErrQueueNotDeclared = engine.ErrQueueNotDeclared
	// ErrQueueInvalidBody: a body does not decode into the queue's type.
	ErrQueueInvalidBody = engine.ErrQueueInvalidBody
)

// QueueDecl is a queue declaration made with Queue, for Actor.Queues.
type QueueDecl interface {
	// QueueName is the queue's name.
	QueueName() string
	checkBody(body []byte) error
}

// QueueDef is a declared queue whose messages have bodies of type T.
// Declare it once, pass it to Actor.Queues, and use it in the actor's
// turns to receive (Next) and send (Send) typed messages.
type QueueDef[T any] struct{ name string }

// Queue declares a queue named name whose message bodies are T. A body
// sent by a client must decode into T (queue.invalid_body otherwise);
// use Value for a body of any shape.
func Queue[T any](name string) *QueueDef[T] { return &QueueDef[T]{name: name} }

// QueueName is the queue's name.
func (q *QueueDef[T]) QueueName() string { return q.name }

func (q *QueueDef[T]) checkBody(body []byte) error {
	var v T
	if err := codec.Unmarshal(body, &v); err != nil {
		return ErrQueueInvalidBody.With("Queue %q: %v", q.name, explain(body, &v, err))
	}
	return nil
}

// Queues declares the actor's queues. Clients may send only to declared
// queues; a send to another name fails with queue.not_declared.
func (a *Actor[S, C, V]) Queues(qs ...QueueDecl) *Actor[S, C, V] {
	if a.queues == nil {
		a.queues = map[string]QueueDecl{}
	}
	for _, q := range qs {
		a.queues[q.QueueName()] = q
	}
	return a
}

// checkQueues refuses queue names that cannot be routed (POST
// /queue/{name} is one path segment).
func (a *Actor[S, C, V]) checkQueues() error {
	for name := range a.queues {
		switch {
		case name == "":
			return errors.New("a queue has an empty name")
		case strings.Contains(name, "/"):
			return fmt.Errorf("queue %q: a name may not contain '/'", name)
		case !utf8.ValidString(name):
			return fmt.Errorf("queue %q: a name must be valid UTF-8", name)
		}
	}
	return nil
}

// TurnContext is a turn's Context, of any actor type: what the typed
// queue methods need.
type TurnContext interface {
	queueTurn() (*engine.Turn, queueConfig)
}

type queueConfig struct {
	decls   map[string]QueueDecl
	maxSize int
	maxMsg  int
}

func (a *Actor[S, C, V]) queueConfig() queueConfig {
	qc := queueConfig{decls: a.queues, maxSize: a.opts.MaxQueueSize, maxMsg: a.opts.MaxQueueMessageSize}
	if qc.maxSize <= 0 {
		qc.maxSize = DefaultMaxQueueSize
	}
	if qc.maxMsg <= 0 {
		qc.maxMsg = DefaultMaxQueueMessageSize
	}
	return qc
}

func (c *Context[S, C, V]) queueTurn() (*engine.Turn, queueConfig) {
	return c.t, c.inst.b.a.queueConfig()
}

// Message is a message received from a queue. It has already left the
// queue in the receiving turn: if that turn fails, it is back.
type Message[T any] struct {
	ID        uint64
	Name      string
	Body      T
	CreatedAt time.Time

	t *engine.Turn
}

// Complete answers the sender waiting for this message (a send with
// wait) with response, once the receiving turn has committed. Call it in
// the turn that received the message, at most once
// (queue.already_completed otherwise). A message received and not
// completed answers a waiting sender without a response.
func (m *Message[T]) Complete(c TurnContext, response any) error {
	t, _ := c.queueTurn()
	if t != m.t {
		return ErrQueueAlreadyCompleted.With("Queue message %d must be completed in the turn that received it.", m.ID)
	}
	var b []byte
	if response != nil {
		var err error
		if b, err = encodeValue(response); err != nil {
			return err
		}
	}
	return t.QueueComplete(m.ID, b)
}

func decodeMessages[T any](t *engine.Turn, ms []engine.QueueMessage) ([]*Message[T], error) {
	out := make([]*Message[T], len(ms))
	for i, m := range ms {
		msg := &Message[T]{ID: m.ID, Name: m.Name, CreatedAt: m.CreatedAt, t: t}
		if err := codec.Unmarshal(m.Body, &msg.Body); err != nil {
			return nil, fmt.Errorf("rivet: queue message %d (%s): %w", m.ID, m.Name, explain(m.Body, &msg.Body, err))
		}
		out[i] = msg
	}
	return out, nil
}

// Next takes the oldest message of this queue, or returns nil when there
// is none. It does not wait (wait outside turns with
// Background.WaitQueue). The message leaves the queue in this turn's
// commit.
func (q *QueueDef[T]) Next(c TurnContext) (*Message[T], error) {
	ms, err := q.NextBatch(c, 1)
	if len(ms) == 0 {
		return nil, err
	}
	return ms[0], err
}

// NextBatch takes up to count of the oldest messages of this queue.
func (q *QueueDef[T]) NextBatch(c TurnContext, count int) ([]*Message[T], error) {
	t, _ := c.queueTurn()
	ms, err := t.QueueTake([]string{q.name}, max(count, 1))
	if err != nil {
		return nil, err
	}
	return decodeMessages[T](t, ms)
}

// Send appends a message to this queue of the actor running the turn,
// committed with the turn.
func (q *QueueDef[T]) Send(c TurnContext, body T) error {
	t, qc := c.queueTurn()
	return queueSend(t, qc, q.name, body)
}

func queueSend(t *engine.Turn, qc queueConfig, name string, body any) error {
	b, err := encodeValue(body)
	if err != nil {
		return err
	}
	if _, ok := qc.decls[name]; !ok {
		return ErrQueueNotDeclared.With("Queue %q is not declared by this actor.", name)
	}
	if len(b) > qc.maxMsg {
		return ErrQueueMessageTooLarge.With("Queue message is %d bytes; the limit is %d.", len(b), qc.maxMsg)
	}
	_, err = t.QueueSend(name, b, qc.maxSize)
	return err
}

// Queue returns the actor's queue for this turn, untyped: bodies are
// Values.
func (c *Context[S, C, V]) Queue() *Queues {
	t, qc := c.queueTurn()
	return &Queues{t: t, qc: qc}
}

// Queues is an actor's queue seen from one turn, with untyped bodies.
type Queues struct {
	t  *engine.Turn
	qc queueConfig
}

// Next takes the oldest message with one of names (any name when none are
// given), or returns nil when there is none. It does not wait.
func (q *Queues) Next(names ...string) (*Message[Value], error) {
	ms, err := q.NextBatch(1, names...)
	if len(ms) == 0 {
		return nil, err
	}
	return ms[0], err
}

// NextBatch takes up to count of the oldest messages with one of names
// (any name when none are given).
func (q *Queues) NextBatch(count int, names ...string) ([]*Message[Value], error) {
	ms, err := q.t.QueueTake(names, max(count, 1))
	if err != nil {
		return nil, err
	}
	return decodeMessages[Value](q.t, ms)
}

// Send appends a message to a declared queue of this actor, committed
// with the turn.
func (q *Queues) Send(name string, body any) error {
	if d, ok := q.qc.decls[name]; ok {
		b, err := encodeValue(body)
		if err != nil {
			return err
		}
		if err := d.checkBody(b); err != nil {
			return err
		}
	}
	return queueSend(q.t, q.qc, name, body)
}

// Len is the number of messages in the queue, as this turn sees it.
func (q *Queues) Len() (int, error) {
	return q.t.QueueLen()
}

// WaitQueue waits, outside the actor's turns, until the actor's queue
// holds a message with one of names (any name when none are given). It
// returns false when timeout (0: none) passes first, and an error when
// the actor stops (the background context ends). Take the message in a
// turn with Enter; another receiver may have taken it first, so loop:
//
//	for {
//		if ok, err := bg.WaitQueue(0, "jobs"); err != nil || !ok {
//			return
//		}
//		bg.Enter(func(c *Ctx) error {
//			m, err := Jobs.Next(c)
//			if m == nil {
//				return err
//			}
//			c.State.Done++
//			return m.Complete(c, "ok")
//		})
//	}
func (b *Background[S, C, V]) WaitQueue(timeout time.Duration, names ...string) (bool, error) {
	ok, err := b.e.QueueWait(b.ctx, b.id, names, timeout)
	return ok, publicError(err)
}

// sendQueue serves a client's send (gateway.QueueHooks).
func (a *Actor[S, C, V]) sendQueue(ctx context.Context, e *engine.Engine, id, queue string, conn *engine.Conn, body []byte, wait bool, waitTimeout time.Duration) (engine.QueueSendResult, error) {
	qc := a.queueConfig()
	d, ok := qc.decls[queue]
	if !ok {
		return engine.QueueSendResult{}, ErrQueueNotDeclared.With("Queue %q is not declared by actor %q.", queue, a.name)
	}
	if len(body) > qc.maxMsg {
		return engine.QueueSendResult{}, ErrQueueMessageTooLarge.With("Queue message is %d bytes; the limit is %d.", len(body), qc.maxMsg)
	}
	if err := d.checkBody(body); err != nil {
		return engine.QueueSendResult{}, err
	}
	res, err := e.QueueSend(ctx, id, conn, e.ActionTimeout(a.name), wait, waitTimeout, func(t *engine.Turn) (uint64, error) {
		if a.opts.CanPublish != nil {
			c := t.Instance().(*instance[S, C, V]).ctx(t)
			ok, err := a.opts.CanPublish(c, queue)
			if err = finish(c, err); err != nil {
				return 0, err
			}
			if !ok {
				return 0, Forbidden(fmt.Sprintf("Publishing to queue %q is not allowed.", queue))
			}
		}
		return t.QueueSend(queue, body, qc.maxSize)
	})
	return res, publicError(err)
}
