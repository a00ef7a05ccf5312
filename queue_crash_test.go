package rivet_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

type qCrashState struct {
	Done []int `json:"done"`
}

var qCrashJobs = rivet.Queue[int]("jobs")

// qCrashDef records each received job in its state, in the turn that
// receives it.
var qCrashDef = rivet.NewActor("qcrash", rivet.Opts[qCrashState]{MaxQueueSize: 1 << 20}).
	Queues(qCrashJobs).
	Action("take", func(c *rivet.Ctx[qCrashState]) (int, error) {
		m, err := qCrashJobs.Next(c)
		if m == nil {
			return -1, err
		}
		c.State.Done = append(c.State.Done, m.Body)
		return m.Body, nil
	}).
	Action("done", func(c *rivet.Ctx[qCrashState]) []int { return c.State.Done })

// TestQueueCrashChild is the child process of TestQueueCrashDurability:
// it sends numbered jobs over the wire (printing each acknowledgement)
// while a consumer takes them (printing each received job).
func TestQueueCrashChild(t *testing.T) {
	dir := os.Getenv("RIVET_QCRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestQueueCrashDurability")
	}
	ctx := context.Background()
	rt := startChild(dir, qCrashDef)
	cl := rivetclient.InProcess(rt.Handler())
	h := cl.GetOrCreate("qcrash", rivet.Key{os.Getenv("RIVET_QCRASH_KEY")})
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format, args...)
	}
	go func() {
		for {
			n, err := rivetclient.Call[int](ctx, h, "take")
			if err != nil {
				say("take error: %v\n", err)
				os.Exit(2)
			}
			if n >= 0 {
				say("took %d\n", n)
			}
		}
	}()
	for n := 1; ; n++ {
		say("send %d\n", n)
		if _, err := h.Send(ctx, "jobs", n); err != nil {
			say("send error: %v\n", err)
			os.Exit(2)
		}
		say("ack %d\n", n)
	}
}

// TestQueueCrashDurability kills a process that sends and receives queue
// messages with SIGKILL at random points, and checks after the restart
// that every acknowledged send is either received (in the state, by the
// turn that took it) or still queued, that every acknowledged receive is
// in the state, and that no message was received twice or appeared
// without being sent.
func TestQueueCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	dir := t.TempDir()
	rounds := 4
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for round := range rounds {
		key := "r" + strconv.Itoa(round)
		acked, sent := 0, 0
		took := map[int]bool{}
		killChild(t, "TestQueueCrashChild", []string{"RIVET_QCRASH_DIR=" + dir, "RIVET_QCRASH_KEY=" + key}, 50+rng.IntN(300), func(f []string) bool {
			if len(f) != 2 {
				t.Fatalf("round %d: child said %q", round, f)
			}
			n, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "ack":
				acked = max(acked, n)
				return true
			case "send":
				sent = max(sent, n)
			case "took":
				took[n] = true
			}
			return false
		})

		ctx := ctxT(t)
		rt, err := rivet.Start(ctx, rivet.MustRegistry(qCrashDef), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		cl := rivetclient.InProcess(rt.Handler())
		h := cl.GetOrCreate("qcrash", rivet.Key{key})
		seen := map[int]int{}
		done := must[[]int](t)(rivetclient.Call[[]int](ctx, h, "done"))
		for _, n := range done {
			seen[n]++
		}
		for n := range took {
			if seen[n] == 0 {
				t.Fatalf("round %d: job %d was received (acknowledged) but its turn is lost", round, n)
			}
		}
		for {
			n := must[int](t)(rivetclient.Call[int](ctx, h, "take"))
			if n < 0 {
				break
			}
			seen[n]++
		}
		for n := 1; n <= acked; n++ {
			if seen[n] == 0 {
				t.Fatalf("round %d: acknowledged job %d lost (acked up to %d)", round, n, acked)
			}
		}
		for n, k := range seen {
			if k > 1 {
				t.Fatalf("round %d: job %d received %d times", round, n, k)
			}
			if n > sent {
				t.Fatalf("round %d: job %d appeared but only %d were sent", round, n, sent)
			}
		}
		t.Logf("round %d: %d acknowledged sends, %d received before the kill, %d in all", round, acked, len(done), len(seen))
		_ = cl.Close()
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
