package counter_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/counter"
	"github.com/rivetgo/rivet/internal/readmecurl"
	"github.com/rivetgo/rivet/rivetclient"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func start(t *testing.T) *rivet.Runtime {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter.Definitions()...),
		&rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return rt
}

// TestReadmeCurl runs every curl command of README.md, in order, against
// the real handler and checks that each answers exactly what the README
// shows.
func TestReadmeCurl(t *testing.T) {
	cmds := readmecurl.Run(t, "README.md", start(t).Handler())
	if len(cmds) < 6 {
		t.Fatalf("README.md has %d curl commands, want at least 6", len(cmds))
	}
}

// TestNewCountEvent: a connected client sees every increment as a
// newCount event, in order, and the count outlives the connection.
func TestNewCountEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := rivetclient.InProcess(start(t).Handler(), rivetclient.WithEncoding("json"))
	defer c.Close()
	h := c.GetOrCreate("counter", rivet.Key{"events"})
	conn := h.Connect()
	defer conn.Close()
	got := make(chan int, 10)
	conn.On("newCount", func(a rivet.Args) {
		var n int
		if err := a.Decode(0, &n); err != nil {
			t.Errorf("decode newCount: %v", err)
		}
		got <- n
	})
	for _, by := range []int{1, 2, 3} {
		if _, err := conn.Call(ctx, "increment", by); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{1, 3, 6} {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("newCount %d, want %d", n, want)
			}
		case <-ctx.Done():
			t.Fatalf("no newCount %d: %v", want, ctx.Err())
		}
	}
	n, err := rivetclient.Call[int](ctx, c.Get("counter", rivet.Key{"events"}), "getCount")
	if err != nil || n != 6 {
		t.Fatalf("getCount = %d, %v; want 6", n, err)
	}
}
