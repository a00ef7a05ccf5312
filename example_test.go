package rivet_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettest"
)

// quiet is a runtime config for examples: memory driver, no logs.
func quiet() *rivet.Config {
	return &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)}
}

// A counter: typed state, an action with an argument, a read-only action.
func Example_counter() {
	type State struct {
		Count int `json:"count"`
	}
	counter := rivet.NewActor("counter", rivet.Opts[State]{}).
		Action("increment", func(c *rivet.Ctx[State], by int) int {
			c.State.Count += by
			return c.State.Count
		}).
		Action("get", func(c *rivet.Ctx[State]) int { return c.State.Count })

	ctx := context.Background()
	rt, err := rivet.Start(ctx, rivet.MustRegistry(counter), quiet())
	if err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)

	// One actor per key: "a" and "b" count separately.
	a := rt.Client().GetOrCreate("counter", rivet.Key{"a"})
	b := rt.Client().GetOrCreate("counter", rivet.Key{"b"})
	rivet.Call[int](ctx, a, "increment", 5)
	n, _ := rivet.Call[int](ctx, a, "increment", 2)
	m, _ := rivet.Call[int](ctx, b, "get")
	fmt.Println("a:", n, "b:", m)
	// Output: a: 7 b: 0
}

// A chat room: connections with params and state, events broadcast to
// subscribers, history kept in state.
func Example_chatRoom() {
	type Message struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	type Room struct {
		History []Message `json:"history"`
	}
	type Member struct {
		Name string
	}
	room := rivet.NewActor("chatRoom", rivet.Options[Room, Member, rivet.None]{
		CreateConnState: func(c *rivet.Context[Room, Member, rivet.None], params rivet.Value) (Member, error) {
			var p struct {
				Name string `json:"name"`
			}
			if err := params.Decode(&p); err != nil || p.Name == "" {
				return Member{}, rivet.UserError("a name is required", rivet.WithCode("name_required"))
			}
			return Member{Name: p.Name}, nil
		},
	}).
		Action("send", func(c *rivet.Context[Room, Member, rivet.None], text string) {
			msg := Message{From: c.Conn.State.Name, Text: text}
			c.State.History = append(c.State.History, msg)
			c.Broadcast("message", msg)
		}).
		Action("history", func(c *rivet.Context[Room, Member, rivet.None]) []Message { return c.State.History })

	ctx := context.Background()
	rt, err := rivet.Start(ctx, rivet.MustRegistry(room), quiet())
	if err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)

	c := rt.Client()
	alice, err := c.GetOrCreate("chatRoom", rivet.Key{"lobby"}, rivet.WithParams(map[string]string{"name": "alice"})).Connect(ctx)
	if err != nil {
		panic(err)
	}
	defer alice.Close(ctx)
	bob, err := c.GetOrCreate("chatRoom", rivet.Key{"lobby"}, rivet.WithParams(map[string]string{"name": "bob"})).Connect(ctx)
	if err != nil {
		panic(err)
	}
	defer bob.Close(ctx)

	got := make(chan Message, 1)
	bob.On("message", func(args rivet.Args) {
		var m Message
		args.Decode(0, &m)
		got <- m
	})
	if _, err := alice.Call(ctx, "send", "hi bob"); err != nil {
		panic(err)
	}
	m := <-got
	fmt.Printf("bob received %q from %s\n", m.Text, m.From)

	// Connecting without a name is rejected by createConnState.
	_, err = c.GetOrCreate("chatRoom", rivet.Key{"lobby"}).Connect(ctx)
	fmt.Println("anonymous:", err)
	// Output:
	// bob received "hi bob" from alice
	// anonymous: user.name_required: a name is required
}

// Reminders: durable schedules that fire later, tested with the fake clock
// of rivettest instead of waiting.
func Example_reminders() {
	type Reminder struct {
		Text string `json:"text"`
	}
	type State struct {
		Due []string `json:"due"`
	}
	reminders := rivet.NewActor("reminders", rivet.Opts[State]{}).
		Action("remind", func(c *rivet.Ctx[State], in time.Duration, text string) (string, error) {
			return c.Schedule().After(in, "due", Reminder{Text: text})
		}).
		Action("due", func(c *rivet.Ctx[State], r Reminder) {
			c.State.Due = append(c.State.Due, r.Text)
		}).
		Action("pending", func(c *rivet.Ctx[State]) int { return len(c.Schedule().List()) }).
		Action("fired", func(c *rivet.Ctx[State]) []string { return c.State.Due })

	ctx := context.Background()
	clock := rivettest.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	cfg := quiet()
	cfg.Clock = clock
	rt, err := rivet.Start(ctx, rivet.MustRegistry(reminders), cfg)
	if err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)

	h := rt.Client().GetOrCreate("reminders", rivet.Key{"ada"})
	rivet.Call[string](ctx, h, "remind", time.Hour, "stand up")
	rivet.Call[string](ctx, h, "remind", 2*time.Hour, "lunch")

	clock.Advance(90 * time.Minute) // the first reminder fires
	fired, _ := rivet.Call[[]string](ctx, h, "fired")
	pending, _ := rivet.Call[int](ctx, h, "pending")
	fmt.Println("fired:", fired, "pending:", pending)

	clock.Advance(time.Hour)
	fired, _ = rivet.Call[[]string](ctx, h, "fired")
	fmt.Println("fired:", fired)
	// Output:
	// fired: [stand up] pending: 1
	// fired: [stand up lunch]
}

// A leaderboard kept in the actor's KV: keys (score, player) sort by
// score, so the top N is a reverse range scan.
func Example_leaderboard() {
	type Entry struct {
		Player string `json:"player"`
		Score  int    `json:"score"`
	}
	board := rivet.NewActor("leaderboard", rivet.Opts[struct{}]{}).
		Action("submit", func(c *rivet.Ctx[struct{}], player string, score int) error {
			// Replace the player's previous score, if any.
			var old int
			if ok, err := c.KV().Get(rivet.K("player", player), &old); err != nil {
				return err
			} else if ok {
				if err := c.KV().Delete(rivet.K("score", old, player)); err != nil {
					return err
				}
			}
			return c.KV().PutBatch(
				rivet.KVPair{Key: rivet.K("player", player), Value: score},
				rivet.KVPair{Key: rivet.K("score", score, player), Value: Entry{player, score}},
			)
		}).
		Action("top", func(c *rivet.Ctx[struct{}], n int) ([]Entry, error) {
			es, err := c.KV().List(rivet.KVListOptions{Prefix: rivet.K("score"), Reverse: true, Limit: n})
			if err != nil {
				return nil, err
			}
			out := make([]Entry, len(es))
			for i, e := range es {
				if err := e.Value.Decode(&out[i]); err != nil {
					return nil, err
				}
			}
			return out, nil
		})

	ctx := context.Background()
	rt, err := rivet.Start(ctx, rivet.MustRegistry(board), quiet())
	if err != nil {
		panic(err)
	}
	defer rt.Stop(ctx)

	h := rt.Client().GetOrCreate("leaderboard", rivet.Key{"season-1"})
	for _, s := range []Entry{{"ada", 120}, {"bo", 95}, {"cy", 300}, {"bo", 310}, {"di", 7}} {
		if _, err := h.Call(ctx, "submit", s.Player, s.Score); err != nil {
			panic(err)
		}
	}
	top, _ := rivet.Call[[]Entry](ctx, h, "top", 3)
	for i, e := range top {
		fmt.Printf("%d. %s %d\n", i+1, e.Player, e.Score)
	}
	// Output:
	// 1. bo 310
	// 2. cy 300
	// 3. ada 120
}
