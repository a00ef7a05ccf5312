package aiagent_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/aiagent"
	"github.com/rivetgo/rivet/internal/readmecurl"
	"github.com/rivetgo/rivet/rivetclient"
	"github.com/rivetgo/rivet/rivettest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recorder collects a connection's events in the order they arrive.
type recorder struct {
	mu     sync.Mutex
	events []string // "token:<text>", "done:<content>", "failed:<error>"
	tokens []aiagent.Token
	done   chan aiagent.Message
	failed chan aiagent.Failure
}

func newRecorder() *recorder {
	return &recorder{done: make(chan aiagent.Message, 4), failed: make(chan aiagent.Failure, 4)}
}

func (r *recorder) token(t aiagent.Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "token")
	r.tokens = append(r.tokens, t)
}

func (r *recorder) finished(m aiagent.Message) {
	r.mu.Lock()
	r.events = append(r.events, "done")
	r.mu.Unlock()
	r.done <- m
}

func (r *recorder) snapshot() ([]string, []aiagent.Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), append([]aiagent.Token(nil), r.tokens...)
}

func wait[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("no %s: %v", what, ctx.Err())
		panic("unreachable")
	}
}

// checkStream checks one streamed reply: tokens numbered 0..n-1 in order,
// all for replyTo, then done; the tokens concatenate to the stored reply.
func checkStream(t *testing.T, events []string, toks []aiagent.Token, replyTo int, done aiagent.Message) {
	t.Helper()
	if len(toks) < 3 {
		t.Fatalf("%d tokens, want a streamed reply", len(toks))
	}
	if events[len(events)-1] != "done" || strings.Count(strings.Join(events, ","), "done") != 1 {
		t.Fatalf("events %v: want every token before one done", events)
	}
	var b strings.Builder
	for i, tok := range toks {
		if tok.Index != i || tok.ReplyTo != replyTo {
			t.Fatalf("token %d is %+v, want index %d replyTo %d", i, tok, i, replyTo)
		}
		b.WriteString(tok.Text)
	}
	if b.String() != done.Content || done.Role != "assistant" {
		t.Fatalf("tokens say %q, done says %+v", b.String(), done)
	}
}

// TestStreamedReply: a connected client receives the reply as ordered
// token events then done, and history holds the whole conversation,
// which the model sees on the next message.
func TestStreamedReply(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(aiagent.FakeModel{})))
	h := k.Client.GetOrCreate(aiagent.ActorName, rivet.Key{"conv-1"})
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rec := newRecorder()
	rivet.OnEvent(conn, "token", rec.token)
	rivet.OnEvent(conn, "done", rec.finished)

	user, err := rivet.Call[aiagent.Message](ctx, h, "sendMessage", "  hello there ")
	if err != nil {
		t.Fatal(err)
	}
	if user.Role != "user" || user.Content != "hello there" || user.ID != 1 {
		t.Fatalf("send returned %+v", user)
	}
	done := wait(t, ctx, rec.done, "done event")
	events, toks := rec.snapshot()
	checkStream(t, events, toks, user.ID, done)
	if want := aiagent.FakeReply([]aiagent.Message{user}); done.Content != want {
		t.Fatalf("reply %q, want %q", done.Content, want)
	}

	// The second reply shows the agent remembers the first message.
	rec2 := newRecorder()
	rivet.OnEvent(conn, "done", rec2.finished)
	if _, err := rivet.Call[aiagent.Message](ctx, h, "sendMessage", "what did I say first?"); err != nil {
		t.Fatal(err)
	}
	second := wait(t, ctx, rec2.done, "second done event")
	if !strings.Contains(second.Content, `the first was "hello there"`) {
		t.Fatalf("second reply %q does not recall the first message", second.Content)
	}
	hist, err := rivet.Call[[]aiagent.Message](ctx, h, "history")
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range hist {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "user,assistant,user,assistant" || hist[1] != done || hist[3] != second {
		t.Fatalf("history %+v", hist)
	}

	// reset forgets the conversation; ids keep growing.
	if _, err := h.Call(ctx, "reset"); err != nil {
		t.Fatal(err)
	}
	if hist, err := rivet.Call[[]aiagent.Message](ctx, h, "history"); err != nil || len(hist) != 0 {
		t.Fatalf("history after reset: %+v, %v", hist, err)
	}
	if m, err := rivet.Call[aiagent.Message](ctx, h, "sendMessage", "again"); err != nil || m.ID != 5 {
		t.Fatalf("after reset: %+v, %v; want id 5", m, err)
	}
}

// TestHistoryBounded: the stored conversation keeps the latest
// MaxMessages messages.
func TestHistoryBounded(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(failingModel{})))
	h := k.Client.GetOrCreate(aiagent.ActorName, rivet.Key{"long"})
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	failed := make(chan aiagent.Failure, 1)
	rivet.OnEvent(conn, "failed", func(f aiagent.Failure) { failed <- f })
	// The failing model stores no reply: one message per send.
	for i := range aiagent.MaxMessages + 5 {
		if _, err := h.Call(ctx, "sendMessage", "m"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		wait(t, ctx, failed, "failed event")
	}
	hist, err := rivet.Call[[]aiagent.Message](ctx, h, "history")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != aiagent.MaxMessages || hist[0].Content != "m5" || hist[len(hist)-1].Content != "m"+strconv.Itoa(aiagent.MaxMessages+4) {
		t.Fatalf("history has %d messages, %q … %q", len(hist), hist[0].Content, hist[len(hist)-1].Content)
	}
}

// TestStreamOverGateway: the same through the gateway's WebSocket, as
// the official clients receive it, with the fake model's real delays.
func TestStreamOverGateway(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(aiagent.FakeModel{Delay: time.Millisecond})))
	c := rivetclient.InProcess(k.Runtime.Handler(), rivetclient.WithEncoding("json"))
	defer c.Close()
	conn := c.GetOrCreate(aiagent.ActorName, rivet.Key{"conv-ws"}).Connect()
	defer conn.Close()
	rec := newRecorder()
	conn.On("token", func(a rivet.Args) {
		var tok aiagent.Token
		if err := a.Decode(0, &tok); err != nil {
			t.Errorf("token: %v", err)
		}
		rec.token(tok)
	})
	conn.On("done", func(a rivet.Args) {
		var m aiagent.Message
		if err := a.Decode(0, &m); err != nil {
			t.Errorf("done: %v", err)
		}
		rec.finished(m)
	})
	v, err := conn.Call(ctx, "sendMessage", "stream me")
	if err != nil {
		t.Fatal(err)
	}
	var user aiagent.Message
	if err := v.Decode(&user); err != nil {
		t.Fatal(err)
	}
	done := wait(t, ctx, rec.done, "done event")
	events, toks := rec.snapshot()
	checkStream(t, events, toks, user.ID, done)
}

// blockingModel streams one token, then waits for release.
type blockingModel struct{ release chan struct{} }

func (m blockingModel) Stream(ctx context.Context, _ []aiagent.Message, yield func(string) error) error {
	if err := yield("thinking"); err != nil {
		return err
	}
	select {
	case <-m.release:
		return yield(" done")
	case <-ctx.Done():
		return ctx.Err()
	}
}

type failingModel struct{}

func (failingModel) Stream(context.Context, []aiagent.Message, func(string) error) error {
	return errors.New("upstream 500")
}

// TestOneReplyAtATime: a message sent while the agent is answering is
// refused with user.busy, and the agent answers again afterwards.
func TestOneReplyAtATime(t *testing.T) {
	ctx := testCtx(t)
	m := blockingModel{release: make(chan struct{})}
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(m)))
	h := k.Client.GetOrCreate(aiagent.ActorName, rivet.Key{"busy"})
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rec := newRecorder()
	rivet.OnEvent(conn, "done", rec.finished)
	if _, err := h.Call(ctx, "sendMessage", "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Call(ctx, "sendMessage", "two"); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("send while answering: %v, want user.busy", err)
	}
	close(m.release)
	if got := wait(t, ctx, rec.done, "done").Content; got != "thinking done" {
		t.Fatalf("reply %q", got)
	}
	if _, err := h.Call(ctx, "sendMessage", "three"); err != nil {
		t.Fatalf("send after the reply: %v", err)
	}
}

// TestModelFailure: a failing model is reported with a failed event, no
// reply is stored, and the agent accepts the next message.
func TestModelFailure(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(failingModel{})))
	h := k.Client.GetOrCreate(aiagent.ActorName, rivet.Key{"fail"})
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	failed := make(chan aiagent.Failure, 1)
	rivet.OnEvent(conn, "failed", func(f aiagent.Failure) { failed <- f })
	user, err := rivet.Call[aiagent.Message](ctx, h, "sendMessage", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if f := wait(t, ctx, failed, "failed event"); f.ReplyTo != user.ID {
		t.Fatalf("failed %+v", f)
	}
	hist, err := rivet.Call[[]aiagent.Message](ctx, h, "history")
	if err != nil || len(hist) != 1 {
		t.Fatalf("history %+v, %v: want only the user message", hist, err)
	}
	if _, err := h.Call(ctx, "sendMessage", ""); err == nil || !strings.Contains(err.Error(), "empty_message") {
		t.Fatalf("empty message: %v", err)
	}
}

// TestReadmeCurl runs the curl commands of README.md and checks every
// answer shown.
func TestReadmeCurl(t *testing.T) {
	const readme = "README.md"
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(aiagent.FakeModel{})), rivettest.WithStart(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	cmds := readmecurl.Parse(t, readme)
	if len(cmds) != 2 {
		t.Fatalf("%s has %d curl commands, want 2", readme, len(cmds))
	}
	readmecurl.Exec(t, readme, cmds[:1], k.Runtime.Handler())
	// "A moment later": wait until the reply is stored.
	h := k.Client.Get(aiagent.ActorName, rivet.Key{"conv-1"})
	for {
		hist, err := rivet.Call[[]aiagent.Message](ctx, h, "history")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reply stored: %+v", hist)
		case <-time.After(5 * time.Millisecond):
		}
	}
	readmecurl.Exec(t, readme, cmds[1:], k.Runtime.Handler())
}

// TestAskAnswersOthersWhileStreaming: ask is an async action: while the
// model streams, a connected client gets the tokens and other callers get
// answers (history shows the question, committed before the wait); ask
// returns the reply once it is stored.
func TestAskAnswersOthersWhileStreaming(t *testing.T) {
	ctx := testCtx(t)
	m := blockingModel{release: make(chan struct{})}
	k := rivettest.New(t, rivet.MustRegistry(aiagent.NewAgent(m)))
	h := k.Client.GetOrCreate(aiagent.ActorName, rivet.Key{"ask"})
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	first := make(chan aiagent.Token, 4)
	rivet.OnEvent(conn, "token", func(tok aiagent.Token) { first <- tok })

	type result struct {
		m   aiagent.Message
		err error
	}
	asked := make(chan result, 1)
	go func() {
		m, err := rivet.Call[aiagent.Message](ctx, h, "ask", "hello")
		asked <- result{m, err}
	}()
	if tok := wait(t, ctx, first, "first token"); tok.Text != "thinking" {
		t.Fatalf("first token %+v", tok)
	}
	// The model is mid-reply: another caller is answered.
	hist, err := rivet.Call[[]aiagent.Message](ctx, h, "history")
	if err != nil || len(hist) != 1 || hist[0].Content != "hello" {
		t.Fatalf("history during the reply: %+v, %v", hist, err)
	}
	if _, err := h.Call(ctx, "sendMessage", "two"); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("send during the reply: %v, want user.busy", err)
	}
	close(m.release)
	r := wait(t, ctx, asked, "ask's answer")
	if r.err != nil || r.m.Role != "assistant" || r.m.Content != "thinking done" {
		t.Fatalf("ask: %+v, %v", r.m, r.err)
	}
	if hist, _ := rivet.Call[[]aiagent.Message](ctx, h, "history"); len(hist) != 2 || hist[1] != r.m {
		t.Fatalf("history after: %+v", hist)
	}
}
