package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type tally struct {
	Count int `json:"count"`
}

// TestManyActorsAndConnectionsAtOnce runs many actors with several
// WebSocket connections each, all at once (meant for -race): every
// connection subscribes; every actor then sleeps with its connections
// open (they hibernate); all add to their actor concurrently through
// those connections, waking it, while stateless HTTP calls read it; each
// turn writes KV and broadcasts. Afterwards every actor holds exactly
// conns×adds adds in its state and its KV, every connection received
// every one of its actor's events in order, and after the connections
// close the actors sleep and wake with both intact.
//
// By default 10 actors × 5 connections; RIVET_TEST_MANY=1 runs 50 × 10
// (10,000 events; ~12 s under -race on 2 cores). An earlier version,
// whose actors slept only when the machine was slow, stalled once at
// load ~40 with 176 of 500 connections waiting for events; it has not
// happened again with the sleep made certain.
func TestManyActorsAndConnectionsAtOnce(t *testing.T) {
	actors, conns, adds := 10, 5, 2
	if os.Getenv("RIVET_TEST_MANY") != "" {
		actors, conns = 50, 10
	}
	var sleeps atomic.Int32
	def := rivet.NewActor("tally", rivet.Opts[tally]{
		SleepTimeout: 200 * time.Millisecond,
		OnSleep:      func(c *rivet.Ctx[tally]) error { sleeps.Add(1); return nil },
	}).
		Action("add", func(c *rivet.Ctx[tally], n int) (int, error) {
			c.State.Count += n
			if err := c.KV().Put(rivet.K("count"), c.State.Count); err != nil {
				return 0, err
			}
			c.Broadcast("added", c.State.Count)
			return c.State.Count, nil
		}).
		Action("get", func(c *rivet.Ctx[tally]) (string, error) {
			var kv int
			if _, err := c.KV().Get(rivet.K("count"), &kv); err != nil {
				return "", err
			}
			return fmt.Sprintf("%d/%d", c.State.Count, kv), nil
		})
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(def), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	ws := strings.Replace(srv.URL, "http", "ws", 1)
	q := func(a int) string {
		return fmt.Sprintf("?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=t%d", a)
	}

	var subscribed, run sync.WaitGroup
	subscribed.Add(actors * conns)
	start := make(chan struct{})
	errs := make(chan error, actors*conns+actors)
	for a := range actors {
		for range conns {
			run.Add(1)
			go func() {
				defer run.Done()
				errs <- connWorker(ctx, ws+"/gateway/tally/connect"+q(a), adds, conns*adds, &subscribed, start)
			}()
		}
		run.Add(1)
		go func() { // stateless readers, meanwhile
			defer run.Done()
			<-start
			for range adds {
				resp, err := http.Post(srv.URL+"/gateway/tally/action/get"+q(a), "application/json", strings.NewReader(`{"args":[]}`))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("stateless get: %d %s", resp.StatusCode, b)
					return
				}
			}
			errs <- nil
		}()
	}
	subscribed.Wait()
	// Every actor sleeps with its connections open (they hibernate);
	// the adds then wake it through those connections.
	waitSleeps(ctx, t, &sleeps, actors)
	close(start)
	run.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// With the connections closed, every actor goes to sleep; then a
	// call wakes it with its state and KV.
	waitSleeps(ctx, t, &sleeps, 2*actors)
	want := fmt.Sprintf("%d/%d", conns*adds, conns*adds)
	for a := range actors {
		got, err := rivet.Call[string](ctx, rt.Client().Get("tally", rivet.Key{fmt.Sprintf("t%d", a)}), "get")
		if err != nil || got != want {
			t.Fatalf("actor %d after sleep: state/KV %q (%v), want %q", a, got, err, want)
		}
	}
}

// waitSleeps waits until n sleeps have been counted.
func waitSleeps(ctx context.Context, t *testing.T, sleeps *atomic.Int32, n int) {
	t.Helper()
	for int(sleeps.Load()) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d sleeps", sleeps.Load(), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// connWorker opens a connection, subscribes to "added", signals, waits
// for start, adds 1 n times, then reads until it has seen the events
// 1..total in order.
func connWorker(ctx context.Context, url string, n, total int, subscribed *sync.WaitGroup, start chan struct{}) error {
	signalled := false
	defer func() {
		if !signalled {
			subscribed.Done()
		}
	}()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"rivet", "rivet_encoding.json"}})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	type msg struct {
		Body struct {
			Tag string `json:"tag"`
			Val struct {
				Name   string          `json:"name"`
				Args   []int           `json:"args"`
				Output json.RawMessage `json:"output"`
			} `json:"val"`
		} `json:"body"`
	}
	next := 1 // the next event expected
	read := func(tag string) (msg, error) {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return msg{}, err
			}
			var m msg
			if err := json.Unmarshal(b, &m); err != nil {
				return msg{}, fmt.Errorf("%w: %s", err, b)
			}
			switch m.Body.Tag {
			case "Event":
				if len(m.Body.Val.Args) != 1 || m.Body.Val.Args[0] != next {
					return msg{}, fmt.Errorf("event %s %v, want %d next", m.Body.Val.Name, m.Body.Val.Args, next)
				}
				next++
			case "Error":
				return msg{}, fmt.Errorf("error message: %s", b)
			}
			if m.Body.Tag == tag {
				return m, nil
			}
		}
	}
	send := func(s string) error { return c.Write(ctx, websocket.MessageText, []byte(s)) }
	if _, err := read("Init"); err != nil {
		return err
	}
	if err := send(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":"added","subscribe":true}}}`); err != nil {
		return err
	}
	// A call answered after the subscription: the subscription is in.
	if err := send(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"get","args":[]}}}`); err != nil {
		return err
	}
	if _, err := read("ActionResponse"); err != nil {
		return err
	}
	signalled = true
	subscribed.Done()
	select {
	case <-start:
	case <-ctx.Done():
		return ctx.Err()
	}
	last := 0
	for i := range n {
		if err := send(fmt.Sprintf(`{"body":{"tag":"ActionRequest","val":{"id":%d,"name":"add","args":[1]}}}`, i+1)); err != nil {
			return err
		}
		m, err := read("ActionResponse")
		if err != nil {
			return err
		}
		var out int
		if err := json.Unmarshal(m.Body.Val.Output, &out); err != nil || out <= last {
			return fmt.Errorf("add answered %s after %d", m.Body.Val.Output, last)
		}
		last = out
	}
	for next <= total {
		if _, err := read("Event"); err != nil {
			return fmt.Errorf("after event %d of %d: %w", next-1, total, err)
		}
	}
	return c.Close(websocket.StatusNormalClosure, "")
}
