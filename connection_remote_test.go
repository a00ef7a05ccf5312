package rivet

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/internal/remote"
)

// TestRemoteConnection: with the remote seam set (as in runner mode,
// here pointed at the runtime's own listener instead of an engine),
// Handle.Connect connects over the network with the client connection
// of internal/remote and keeps the in-process connection's contract:
// Connect returns once the connect hooks ran, with their refusal as its
// error; params reach the connection's state; events and calls over the
// socket; the actor's Disconnect runs OnClose with its reason, and calls
// then fail with ErrConnectionClosed. The engine test is
// TestEngineRunnerActorConnects.
func TestRemoteConnection(t *testing.T) {
	type rctx = Context[struct{}, string, None]
	def := NewActor("room", Options[struct{}, string, None]{
		CreateConnState: func(_ *rctx, p Value) (string, error) {
			var who string
			_ = p.Decode(&who)
			if who == "mallory" {
				return "", UserError("not you", WithCode("refused"))
			}
			return who, nil
		},
	}).
		Action("who", func(c *rctx) string { return *c.Conn.State }).
		Action("emit", func(c *rctx, n int) { c.Broadcast("news", n) }).
		Action("kick", func(c *rctx) { c.Conn.Disconnect("bye") })
	rt, err := Start(context.Background(), MustRegistry(def), &Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	remotes.Store(rt.e, &remote.Client{Endpoint: srv.URL, Namespace: DefaultNamespace, Enc: protocol.BARE, HTTP: srv.Client()})
	t.Cleanup(func() {
		remotes.Delete(rt.e)
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	h := rt.Client().GetOrCreate("room", Key{"r"}, WithParams("ada"))
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if conn.rc == nil || conn.ID() == "" {
		t.Fatalf("not a connection over the network (id %q)", conn.ID())
	}
	got := make(chan int, 10)
	OnEvent(conn, "news", func(n int) { got <- n })
	if who, err := conn.Call(ctx, "who"); err != nil || string(who.b) != "\x63ada" {
		t.Fatalf("who: %x %v", who.b, err)
	}
	if _, err := h.Call(ctx, "emit", 7); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n != 7 {
			t.Fatalf("event: %d", n)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}

	_, err = rt.Client().GetOrCreate("room", Key{"r"}, WithParams("mallory")).Connect(ctx)
	var e *Error
	if !errors.As(err, &e) || e.Group != "user" || e.Code != "refused" {
		t.Fatalf("refused connect: %v", err)
	}

	closed := make(chan string, 1)
	conn.OnClose(func(reason string) { closed <- reason })
	if _, err := conn.Call(ctx, "kick"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-closed:
		if r != "bye" {
			t.Fatalf("close reason %q", r)
		}
	case <-ctx.Done():
		t.Fatal("OnClose did not run")
	}
	if _, err := conn.Call(ctx, "who"); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("call after close: %v", err)
	}
}
