package rivet_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/rivetclient"
)

// engHibCounts counts the hook runs of engHibDef.
type engHibCounts struct {
	connect, disconnect, sleep, start atomic.Int32
}

func engHibDef(n *engHibCounts) *rivet.Actor[struct{ Pings int }, hibConnState, rivet.None] {
	type S = struct{ Pings int }
	type Ctx = rivet.Context[S, hibConnState, rivet.None]
	return rivet.NewActor("enghib", rivet.Options[S, hibConnState, rivet.None]{
		SleepTimeout: 500 * time.Millisecond,
		CreateConnState: func(_ *Ctx, p rivet.Value) (hibConnState, error) {
			var name string
			_ = p.Decode(&name)
			return hibConnState{Name: name}, nil
		},
		OnConnect: func(_ *Ctx, c *rivet.Conn[hibConnState]) error {
			if c.State.Name != "" {
				n.connect.Add(1)
			}
			return nil
		},
		OnDisconnect: func(_ *Ctx, c *rivet.Conn[hibConnState]) {
			if c.State.Name != "" {
				n.disconnect.Add(1)
			}
		},
		OnSleep: func(*Ctx) error { n.sleep.Add(1); return nil },
		OnStart: func(*Ctx) error { n.start.Add(1); return nil },
	}).
		Action("bump", func(c *Ctx) (hibConnState, error) {
			c.Conn.State.Bumps++
			return *c.Conn.State, nil
		}).
		Action("ping", func(c *Ctx) int {
			c.State.Pings++
			c.Broadcast("news", c.State.Pings)
			return c.State.Pings
		}).
		// counts reports this process's hook runs (the kill -9 test's
		// runner is another process).
		Action("counts", func(*Ctx) map[string]int32 {
			return map[string]int32{"connect": n.connect.Load(), "disconnect": n.disconnect.Load(), "sleep": n.sleep.Load()}
		})
}

// TestEngineRunnerHibernation: through the Rivet Engine, an actor whose
// only activity is an open connection sleeps (onSleep runs, it leaves the
// runner's memory) while the engine keeps the client's socket. The
// connection survives with its id, state and subscriptions, without the
// connect hooks running again: events broadcast after the wake reach it,
// an action it sends while the actor sleeps wakes the actor and is
// handled exactly once, and when the actor wakes on another runner (the
// first one stopped meanwhile) that runner rebuilds the connection from
// its record.
func TestEngineRunnerHibernation(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	var n engHibCounts
	def := engHibDef(&n)
	a := startRunnerOf(t, eng, def)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithEncoding("bare"))
	defer cl.Close()
	h := cl.GetOrCreate("enghib", rivet.Key{"h"}, rivetclient.WithParams("ada"))
	c := connectHib(h, "ada")
	defer c.Close()
	conn := c.Connection
	bump := func(want int) { t.Helper(); c.bump(ctx, t, want) }
	bump(1)
	connID := conn.ID()
	id, _ := engineActorIDOf(t, eng, "enghib", "h")
	asleep := func(sleeps int32) func() bool {
		return func() bool {
			if n.sleep.Load() < sleeps {
				return false
			}
			_, act := engineActorIDOf(t, eng, "enghib", "h")
			return act["sleep_ts"] != nil
		}
	}

	// The open connection does not keep the actor awake.
	waitEngine(t, "the connected actor asleep", asleep(1))
	if a.Runtime().Engine().Awake(id) {
		t.Fatal("the actor is asleep in the engine but still in the runner's memory")
	}
	// A call from another client wakes it; its broadcast reaches the
	// hibernated connection.
	if _, out := engineCall(t, eng, "enghib", "h", "ping"); out["output"] != float64(1) {
		t.Fatalf("ping: %v", out)
	}
	waitEngine(t, "the event on the hibernated connection", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.news) == 1 && c.news[0] == 1
	})
	bump(2)

	// Asleep again: the connection's own action wakes the actor and is
	// handled once.
	waitEngine(t, "the actor asleep again", asleep(2))
	bump(3)

	// The actor wakes on another runner: B rebuilds the connection from
	// its record.
	waitEngine(t, "the actor asleep a third time", asleep(3))
	b := startRunnerOf(t, eng, def)
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := a.Stop(sctx); err != nil {
		t.Fatalf("stop runner A: %v", err)
	}
	scancel()
	bump(4)
	if !b.Runtime().Engine().Awake(id) {
		t.Fatal("the actor woke, but not on runner B")
	}
	if _, out := engineCall(t, eng, "enghib", "h", "ping"); out["output"] != float64(2) {
		t.Fatalf("ping on B: %v", out)
	}
	waitEngine(t, "the event on the connection restored by B", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.news) == 2 && c.news[1] == 2
	})
	bump(5)

	if got := conn.ID(); got != connID {
		t.Fatalf("connection id %q after the moves, want %q", got, connID)
	}
	if c, d := n.connect.Load(), n.disconnect.Load(); c != 1 || d != 0 {
		t.Fatalf("onConnect ran %d times and onDisconnect %d times, want 1 and 0", c, d)
	}
	c.mu.Lock()
	t.Logf("connection statuses %v; onStart ran %d times, onSleep %d", c.statuses, n.start.Load(), n.sleep.Load())
	c.mu.Unlock()
}

// hibRunnerEnv makes the test binary a runner process of engHibDef
// connected to the engine it names (TestHelperHibernationRunner).
const hibRunnerEnv = "RIVET_TEST_HIB_RUNNER"

// TestHelperHibernationRunner is not a test: run by
// TestEngineRunnerHibernationKill9 as a separate process (the runner it
// kills with -9). It prints READY once connected and serves until killed.
func TestHelperHibernationRunner(t *testing.T) {
	url := os.Getenv(hibRunnerEnv)
	if url == "" {
		t.Skip("helper process only")
	}
	var n engHibCounts
	er, err := rivet.StartEngineRunner(context.Background(), rivet.MustRegistry(engHibDef(&n)), &rivet.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Engine: rivet.EngineConfig{URL: url},
	})
	if err != nil {
		fmt.Println("FAILED", err)
		os.Exit(1)
	}
	if err := er.Ready(context.Background()); err != nil {
		os.Exit(1)
	}
	fmt.Println("READY")
	select {}
}

// TestEngineRunnerHibernationKill9: the runner holding a hibernated
// connection's actor (asleep) is killed with -9 while a second runner
// is connected. The client's next action, sent meanwhile, is held by the
// engine, which starts the actor on the second runner listing the
// socket; that runner rebuilds the connection from its record (same id,
// state, subscriptions; no connect hooks there) and answers the action
// once; events broadcast after that reach the client.
func TestEngineRunnerHibernationKill9(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{Pegboard: map[string]any{
		"envoy_update_ping_interval": 1000, "envoy_ping_timeout": 3000, "envoy_lost_threshold": 3000,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Runner A: this test binary in another process.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHibernationRunner$")
	cmd.Env = append(os.Environ(), hibRunnerEnv+"="+eng.GuardURL())
	logPath := filepath.Join(t.TempDir(), "runner-a.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "READY") || strings.HasPrefix(line, "FAILED") {
				ready <- line
			}
		}
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 16<<10 {
				b = b[len(b)-16<<10:]
			}
			t.Logf("runner A log (tail):\n%s", b)
		}
	})
	select {
	case line := <-ready:
		if line != "READY" {
			t.Fatalf("runner A: %s", line)
		}
	case <-exited:
		t.Fatal("runner A exited")
	case <-ctx.Done():
		t.Fatal("runner A not connected")
	}

	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithEncoding("cbor"))
	defer cl.Close()
	c := connectHib(cl.GetOrCreate("enghib", rivet.Key{"k9"}, rivetclient.WithParams("bob")), "bob")
	defer c.Close()
	conn := c.Connection
	bump := func(want int) { t.Helper(); c.bump(ctx, t, want) }
	bump(1)
	bump(2)
	connID := conn.ID()
	asleep := func() bool {
		_, act := engineActorIDOf(t, eng, "enghib", "k9")
		return act["sleep_ts"] != nil
	}
	waitEngine(t, "the connected actor asleep on runner A", asleep)

	// Runner B joins; A dies with the actor asleep and its socket held by
	// the engine.
	var n engHibCounts
	b := startRunnerOf(t, eng, engHibDef(&n))
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := time.Now()
	bump(3)
	id, _ := engineActorIDOf(t, eng, "enghib", "k9")
	if !b.Runtime().Engine().Awake(id) {
		t.Fatal("the actor answered, but not from runner B")
	}
	moved := time.Since(killed)
	if _, out := engineCall(t, eng, "enghib", "k9", "ping"); out["output"] != float64(1) {
		t.Fatalf("ping on B: %v", out)
	}
	waitEngine(t, "the event on the connection restored by B", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Contains(c.news, 1)
	})
	bump(4)
	if got := conn.ID(); got != connID {
		c.mu.Lock()
		t.Logf("statuses %v", c.statuses)
		c.mu.Unlock()
		t.Fatalf("connection id %q after the kill, want %q", got, connID)
	}
	if c, d := n.connect.Load(), n.disconnect.Load(); c != 0 || d != 0 {
		t.Fatalf("on runner B onConnect ran %d times and onDisconnect %d times, want 0 and 0", c, d)
	}
	c.mu.Lock()
	t.Logf("MEASURED: the action sent after kill -9 of the runner was answered by the other runner %v later; connection statuses %v", moved.Round(time.Millisecond), c.statuses)
	c.mu.Unlock()
}

// hibConn is a connection of the hibernation tests to an enghib actor:
// it records the "news" events and the statuses it sees.
type hibConn struct {
	*rivetclient.Connection
	name     string
	mu       sync.Mutex
	news     []int
	statuses []rivetclient.Status
}

func connectHib(h *rivetclient.Handle, name string) *hibConn {
	c := &hibConn{Connection: h.Connect(), name: name}
	c.OnStatus(func(s rivetclient.Status) { c.mu.Lock(); c.statuses = append(c.statuses, s); c.mu.Unlock() })
	c.On("news", func(args rivet.Args) {
		var v int
		if args.Decode(0, &v) == nil {
			c.mu.Lock()
			c.news = append(c.news, v)
			c.mu.Unlock()
		}
	})
	return c
}

// bump calls bump and checks that the connection's state counts want
// bumps: each handled once, the state kept across sleeps and moves.
func (c *hibConn) bump(ctx context.Context, t *testing.T, want int) {
	t.Helper()
	v, err := c.Call(ctx, "bump")
	if err != nil {
		t.Fatalf("bump: %v", err)
	}
	var got hibConnState
	if err := v.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got != (hibConnState{Name: c.name, Bumps: want}) {
		t.Fatalf("bump = %+v, want Bumps %d (each bump handled once, state kept)", got, want)
	}
}
