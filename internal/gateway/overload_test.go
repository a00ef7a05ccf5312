package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// gated is an actor whose "block" holds it until the test releases it;
// "inc" counts the calls that ran, "get" reads the count.
type gated struct {
	entered chan struct{}
	release chan struct{}
}

func newGated() *gated {
	return &gated{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *gated) def(name string) rivet.Definition {
	return rivet.NewActor(name, rivet.Opts[count]{}).
		Action("block", func(c *rivet.Ctx[count]) int {
			g.entered <- struct{}{}
			<-g.release
			return c.State.Count
		}).
		Action("inc", func(c *rivet.Ctx[count]) int { c.State.Count++; return c.State.Count }).
		Action("get", func(c *rivet.Ctx[count]) int { return c.State.Count })
}

func serveDefs(t *testing.T, cfg rivet.Config, defs ...rivet.Definition) string {
	t.Helper()
	cfg.Driver = rivetmem.New()
	cfg.Logger = slog.New(slog.DiscardHandler)
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(defs...), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	return srv.URL
}

// post calls an action over HTTP and returns the status and body.
func postAction(ctx context.Context, base, actor, action, key string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/gateway/"+actor+"/action/"+action+"?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key="+key, strings.NewReader(`{"args":[]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitMetric polls /metrics until cond holds for the metric's value.
func waitMetric(t *testing.T, base, what string, cond func(float64) bool, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := value(scrape(t, base), name, labels...)
		if cond(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v", what, name, labels, v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func eq(n float64) func(float64) bool { return func(v float64) bool { return v == n } }

// hold calls block over HTTP and returns once it runs; the returned func
// releases the actor and waits for block's answer.
func hold(t *testing.T, base, actor string, g *gated) func() {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		code, body, err := postAction(context.Background(), base, actor, "block", "k")
		if err == nil && code != 200 {
			err = fmt.Errorf("%d %s", code, body)
		}
		done <- err
	}()
	<-g.entered
	var once sync.Once
	free := func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(free) // a failed test must not leave the actor held
	return func() {
		free()
		if err := <-done; err != nil {
			t.Errorf("block: %v", err)
		}
	}
}

// The calls of a client that went away while they waited for a busy
// actor are dropped, not run: over HTTP (the request's context ends when
// the client hangs up) and over a WebSocket (closing the socket drops
// the calls it sent that have not started).
func TestCallsOfGoneClientsAreDropped(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		g := newGated()
		base := serveDefs(t, rivet.Config{}, g.def("gated"))
		if code, body, err := postAction(context.Background(), base, "gated", "get", "k"); err != nil || code != 200 {
			t.Fatalf("get: %d %s %v", code, body, err)
		}
		release := hold(t, base, "gated", g)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() { _, _, _ = postAction(ctx, base, "gated", "inc", "k") })
		}
		waitMetric(t, base, "5 calls queued", eq(5), "rivet_mailbox_jobs")
		cancel()
		wg.Wait()
		// The gateway saw each client hang up (499) before the actor
		// is free again.
		waitMetric(t, base, "5 hang-ups counted", eq(5), "rivet_gateway_requests_total", "kind", "action", "status", "499")
		release()
		if _, body, err := postAction(context.Background(), base, "gated", "get", "k"); err != nil || !strings.Contains(body, `"output":0`) {
			t.Fatalf("count after the callers left: %s %v; want 0 (no dropped call ran)", body, err)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		g := newGated()
		base := serveDefs(t, rivet.Config{}, g.def("gated"))
		ctx := context.Background()
		c := dial(t, base, "/gateway/gated/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k", "rivet", "rivet_encoding.json")
		defer c.CloseNow()
		if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"Init"`) {
			t.Fatalf("first message %s %v, want Init", b, err)
		}
		release := hold(t, base, "gated", g)
		for i := range 5 {
			req := fmt.Sprintf(`{"body":{"tag":"ActionRequest","val":{"id":%d,"name":"inc","args":[]}}}`, i)
			if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
				t.Fatal(err)
			}
		}
		waitMetric(t, base, "5 calls queued", eq(5), "rivet_mailbox_jobs")
		_ = c.CloseNow()
		// The connection's disconnect queues behind them once its calls
		// are dropped (before, it waited for them to run).
		waitMetric(t, base, "the disconnect queued", eq(6), "rivet_mailbox_jobs")
		release()
		if _, body, err := postAction(ctx, base, "gated", "get", "k"); err != nil || !strings.Contains(body, `"output":0`) {
			t.Fatalf("count after the socket closed: %s %v; want 0 (no dropped call ran)", body, err)
		}
	})
}

// MaxConnectionsPerActor: past the bound a new connection to the actor is
// refused with an Error naming the setting and close 1011
// actor.too_many_connections; other actors are not affected, and once a
// connection closes the actor takes a new one.
func TestConnectionsPerActor(t *testing.T) {
	base := serveDefs(t, rivet.Config{MaxConnectionsPerActor: 2}, newGated().def("gated"))
	ctx := context.Background()
	connect := func(key string) *websocket.Conn {
		c := dial(t, base, "/gateway/gated/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key="+key, "rivet", "rivet_encoding.json")
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	}
	opened := func(c *websocket.Conn) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, b, err := c.Read(rctx); err != nil || !strings.Contains(string(b), `"Init"`) {
			t.Fatalf("first message %s %v, want Init", b, err)
		}
	}
	a, b := connect("k"), connect("k")
	opened(a)
	opened(b)
	msg, code, reason := wsError(t, connect("k"))
	if code != websocket.StatusInternalError || reason != "actor.too_many_connections" || !strings.Contains(msg, "max_connections_per_actor") {
		t.Fatalf("third connection: %q, close %d %q; want an Error naming max_connections_per_actor, close 1011 actor.too_many_connections", msg, code, reason)
	}
	opened(connect("other")) // another actor has its own bound
	_ = a.Close(websocket.StatusNormalClosure, "")
	// The disconnect runs on the actor; retry until the slot is free.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := connect("k")
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, m, err := c.Read(rctx)
		cancel()
		if err == nil && strings.Contains(string(m), `"Init"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after one closed: %s %v", m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that stops reading is dropped (send_queue_bytes) without
// slowing the others: while one connection of a chat actor reads nothing,
// the other connections keep receiving every broadcast promptly, and the
// stalled one is closed 1011 message.outgoing_queue_full.
func TestSlowConsumerDoesNotSlowOthers(t *testing.T) {
	room := rivet.NewActor("room", rivet.Opts[count]{}).
		Action("say", func(c *rivet.Ctx[count], n int) int {
			c.Broadcast("said", n, strings.Repeat("x", 64<<10))
			return n
		})
	base := serveDefs(t, rivet.Config{Gateway: rivet.GatewayConfig{SendQueueBytes: 512 << 10}}, room)
	ctx := context.Background()
	const path = "/gateway/room/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=r"
	subscribe := func(c *websocket.Conn) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":"said","subscribe":true}}}`)); err != nil {
			t.Fatal(err)
		}
	}
	stalled := dial(t, base, path, "rivet", "rivet_encoding.json")
	defer stalled.CloseNow()
	subscribe(stalled)
	const readers = 3
	type got struct {
		reader, n int
		at        time.Time
	}
	events := make(chan got, 10000)
	for r := range readers {
		c := dial(t, base, path, "rivet", "rivet_encoding.json")
		defer c.CloseNow()
		subscribe(c)
		go func() {
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				var n int
				if i := strings.Index(string(b), `"args":[`); i >= 0 {
					if _, err := fmt.Sscanf(string(b[i+len(`"args":[`):]), "%d", &n); err == nil {
						events <- got{r, n, time.Now()}
					}
				}
			}
		}()
	}
	// Warm up: every reader sees an event (so every subscription is in).
	say := func(n int) time.Time {
		t.Helper()
		s := time.Now()
		code, body, err := postJSON(base, "room", "say", "r", fmt.Sprintf(`{"args":[%d]}`, n))
		if err != nil || code != 200 {
			t.Fatalf("say %d: %d %s %v", n, code, body, err)
		}
		return s
	}
	seen := map[int]bool{}
	for len(seen) < readers {
		say(-1)
		timeout := time.After(time.Second)
	drain:
		for {
			select {
			case e := <-events:
				seen[e.reader] = true
			case <-timeout:
				break drain
			}
			if len(seen) == readers {
				break
			}
		}
	}
	// 150 events of 64 KiB: ~10 MiB for the stalled client, more than
	// loopback socket buffers absorb, far past its 512 KiB bound.
	const n = 150
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = say(i)
	}
	// The stalled client is dropped (its close frame may not get
	// through its full socket: the drop is counted).
	waitMetric(t, base, "the stalled client dropped", eq(1), "rivet_errors_total", "code", "message.outgoing_queue_full")
	count := map[int]int{}
	var worst time.Duration
	deadline := time.After(20 * time.Second)
	for total := 0; total < readers*n; {
		select {
		case e := <-events:
			if e.n < 0 {
				continue
			}
			count[e.reader]++
			total++
			worst = max(worst, e.at.Sub(sent[e.n]))
		case <-deadline:
			t.Fatalf("readers got %v of %d events each", count, n)
		}
	}
	t.Logf("every reader got all %d events; slowest delivery %s", n, worst)
}

// postJSON posts a body to an action and returns status and body.
func postJSON(base, actor, action, key, body string) (int, string, error) {
	req, _ := http.NewRequest("POST", base+"/gateway/"+actor+"/action/"+action+"?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key="+key, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
