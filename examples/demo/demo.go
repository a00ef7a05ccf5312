// Package demo is the registry `rivet serve` runs by default: a counter
// and a chat room, the two actors of RivetKit's quickstarts, used by the
// benchmarks too.
//
//	counter:  increment(n) → new count (event newCount), getCount()
//	chatRoom: sendMessage(user, text) → {user, text, ts} (event newMessage), getHistory()
package demo

import "github.com/rivetgo/rivet"

// Counter is the counter's state.
type Counter struct {
	Count int `json:"count"`
}

// Chat is the chat room's state.
type Chat struct {
	Messages []Message `json:"messages"`
}

// Message is one chat message; TS is the actor's clock in Unix ms.
type Message struct {
	User string `json:"user"`
	Text string `json:"text"`
	TS   int64  `json:"ts"`
}

// Definitions returns the demo actors.
func Definitions() []rivet.Definition {
	counter := rivet.NewActor("counter", rivet.Opts[Counter]{}).
		Action("increment", func(c *rivet.Ctx[Counter], n int) int {
			c.State.Count += n
			c.Broadcast("newCount", c.State.Count)
			return c.State.Count
		}).
		Action("getCount", func(c *rivet.Ctx[Counter]) int { return c.State.Count })
	chatRoom := rivet.NewActor("chatRoom", rivet.Opts[Chat]{}).
		Action("sendMessage", func(c *rivet.Ctx[Chat], user, text string) Message {
			m := Message{User: user, Text: text, TS: c.Now().UnixMilli()}
			c.State.Messages = append(c.State.Messages, m)
			c.Broadcast("newMessage", m)
			return m
		}).
		Action("getHistory", func(c *rivet.Ctx[Chat]) []Message { return c.State.Messages })
	return []rivet.Definition{counter, chatRoom}
}
