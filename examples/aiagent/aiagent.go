// Package aiagent is an AI agent's conversation memory: one actor per
// conversation keeps the messages durably and streams the model's reply,
// token by token, to every connected client as events.
//
//	agent[conversation]: sendMessage(text) → the stored user message
//	                     ask(text)  → the stored assistant message (async)
//	                     history()  → every message, oldest first
//	                     reset()    → forgets the conversation
//	events: "token" {replyTo, index, text} for each token of a reply,
//	        "done" (the assistant message) when the reply is complete,
//	        "failed" {replyTo, error} when the model fails
//
// The model is an interface; FakeModel answers deterministically with no
// network, so the example runs anywhere. A real model (an HTTP streaming
// API) plugs in with NewAgent.
//
// sendMessage returns as soon as the user's message is durable; the reply is
// generated outside the actor's turn (RunInBackground), so the actor
// stays responsive, and each token re-enters the actor to be broadcast.
// The reply is stored when it is complete: a reply cut short by a
// shutdown is not stored, and the next sendMessage starts a new one.
package aiagent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivetgo/rivet"
)

// Message is one message of a conversation.
type Message struct {
	ID      int    `json:"id"`
	Role    string `json:"role"` // "user" or "assistant"
	Content string `json:"content"`
	TS      int64  `json:"ts"` // Unix ms
}

// Token is the event "token": one piece of the reply to message ReplyTo.
type Token struct {
	ReplyTo int    `json:"replyTo"`
	Index   int    `json:"index"`
	Text    string `json:"text"`
}

// Failure is the event "failed".
type Failure struct {
	ReplyTo int    `json:"replyTo"`
	Error   string `json:"error"`
}

// Conversation is the agent's durable state.
type Conversation struct {
	Messages []Message `json:"messages"`
	NextID   int       `json:"nextId"`
}

// vars are the agent's in-memory vars: whether a reply is being
// generated. They are not persisted: after a restart no reply is.
type vars struct {
	replying bool
}

// Model generates a reply to a conversation, calling yield with each
// token in order. It must stop and return ctx.Err() when ctx is done,
// and return yield's error if yield fails.
type Model interface {
	Stream(ctx context.Context, history []Message, yield func(token string) error) error
}

// Limits of a conversation.
const (
	// MaxMessageBytes bounds a user message.
	MaxMessageBytes = 4000
	// MaxMessages bounds the stored conversation: past it the oldest
	// messages are forgotten, so that the state, which is written on
	// every change, stays small.
	MaxMessages = 200
)

// ActorName is the agent's actor name.
const ActorName = "agent"

// Definitions returns the agent actor with a FakeModel that pauses 40 ms
// between tokens, like a real model streaming its answer.
func Definitions() []rivet.Definition {
	return []rivet.Definition{NewAgent(FakeModel{Delay: 40 * time.Millisecond})}
}

// NewAgent returns the agent actor using model.
func NewAgent(model Model) rivet.Definition {
	type ctx = rivet.Context[Conversation, rivet.None, vars]
	return rivet.NewActor(ActorName, rivet.Options[Conversation, rivet.None, vars]{}).
		Action("sendMessage", func(c *ctx, text string) (Message, error) {
			user, history, err := accept(c, text)
			if err != nil {
				return Message{}, err
			}
			c.RunInBackground(func(bg *rivet.Background[Conversation, rivet.None, vars]) {
				_, _ = stream(bg.Context(), bg.Enter, model, user.ID, history)
			})
			return user, nil
		}).
		// ask is sendMessage that answers with the reply: an async
		// action, so the actor answers other clients while the model
		// streams (docs/concepts/calls.md).
		Action("ask", func(a *rivet.AsyncContext[Conversation, rivet.None, vars], text string) (Message, error) {
			var user Message
			var history []Message
			if err := a.Turn(func(c *ctx) error {
				var err error
				user, history, err = accept(c, text)
				return err
			}); err != nil {
				return Message{}, err
			}
			return stream(a.Context(), a.Turn, model, user.ID, history)
		}).
		Action("history", func(c *ctx) []Message {
			if c.State.Messages == nil {
				return []Message{}
			}
			return c.State.Messages
		}).
		Action("reset", func(c *ctx) error {
			if c.Vars.replying {
				return rivet.UserError("the agent is still answering", rivet.WithCode("busy"))
			}
			c.State.Messages = nil
			return nil
		})
}

// accept stores a user message and marks the agent as replying; it
// returns the message and the conversation to answer.
func accept(c *rivet.Context[Conversation, rivet.None, vars], text string) (Message, []Message, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return Message{}, nil, rivet.UserError("the message is empty", rivet.WithCode("empty_message"))
	case len(text) > MaxMessageBytes || !utf8.ValidString(text):
		return Message{}, nil, rivet.UserError(fmt.Sprintf("a message is at most %d bytes of UTF-8", MaxMessageBytes), rivet.WithCode("message_too_long"))
	case c.Vars.replying:
		return Message{}, nil, rivet.UserError("the agent is still answering the previous message", rivet.WithCode("busy"))
	}
	user := appendMessage(c, "user", text)
	c.Vars.replying = true
	return user, append([]Message(nil), c.State.Messages...), nil
}

func appendMessage(c *rivet.Context[Conversation, rivet.None, vars], role, content string) Message {
	c.State.NextID++
	m := Message{ID: c.State.NextID, Role: role, Content: content, TS: c.Now().UnixMilli()}
	c.State.Messages = append(c.State.Messages, m)
	if n := len(c.State.Messages) - MaxMessages; n > 0 {
		c.State.Messages = slices.Delete(c.State.Messages, 0, n)
	}
	return m
}

// stream runs the model outside the actor's turns (in background work or
// an async action; enter runs a turn). Each token is broadcast from a
// turn of its own, so connected clients receive them in order as they
// come; the complete reply is stored, announced with "done" and returned.
func stream(ctx context.Context, enter func(fn func(c *rivet.Context[Conversation, rivet.None, vars]) error) error, model Model, replyTo int, history []Message) (Message, error) {
	type actx = rivet.Context[Conversation, rivet.None, vars]
	var reply strings.Builder
	index := 0
	err := model.Stream(ctx, history, func(tok string) error {
		reply.WriteString(tok)
		t := Token{ReplyTo: replyTo, Index: index, Text: tok}
		index++
		return enter(func(c *actx) error {
			c.Broadcast("token", t)
			return nil
		})
	})
	var answer Message
	eerr := enter(func(c *actx) error {
		c.Vars.replying = false
		if err != nil {
			c.Log.Warn("aiagent: the model failed", "error", err)
			c.Broadcast("failed", Failure{ReplyTo: replyTo, Error: "the model failed to answer"})
			return nil
		}
		answer = appendMessage(c, "assistant", reply.String())
		c.Broadcast("done", answer)
		return nil
	})
	switch {
	case eerr != nil:
		return Message{}, eerr // the actor is stopping; nothing can be stored any more
	case err != nil:
		return Message{}, rivet.UserError("the model failed to answer", rivet.WithCode("model_failed"))
	}
	return answer, nil
}

// FakeModel is a deterministic stand-in for a language model: it answers
// from the conversation itself, one word per token, pausing Delay before
// each token. It never touches the network.
type FakeModel struct {
	Delay time.Duration
}

// Stream implements Model.
func (m FakeModel) Stream(ctx context.Context, history []Message, yield func(string) error) error {
	for _, tok := range tokens(FakeReply(history)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if m.Delay > 0 {
			t := time.NewTimer(m.Delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := yield(tok); err != nil {
			return err
		}
	}
	return nil
}

// FakeReply is FakeModel's whole answer to a conversation.
func FakeReply(history []Message) string {
	var last Message
	users := 0
	for _, m := range history {
		if m.Role == "user" {
			last = m
			users++
		}
	}
	switch {
	case users == 0:
		return "Hello! Say something and I will answer."
	case users == 1:
		return fmt.Sprintf("You said %q. I am a fake model: I remember this conversation, but I only echo it back.", last.Content)
	}
	var first string
	for _, m := range history {
		if m.Role == "user" {
			first = m.Content
			break
		}
	}
	return fmt.Sprintf("You said %q. That is message %d of this conversation; the first was %q.", last.Content, users, first)
}

// tokens splits s into words, each with the space that precedes it, so
// that the tokens concatenate back to s.
func tokens(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' {
			out = append(out, s[start:i])
			start = i
		}
	}
	return append(out, s[start:])
}
