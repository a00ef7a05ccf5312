package rivet_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
)

type seqState struct {
	Max   int `json:"max"`
	Count int `json:"count"`
}

// seqDef records seq in state and in KV in the same turn.
var seqDef = rivet.NewActor("seq", rivet.Opts[seqState]{}).
	Action("append", func(c *rivet.Ctx[seqState], seq int) error {
		if seq != c.State.Max+1 {
			return rivet.UserError(fmt.Sprintf("seq %d after %d", seq, c.State.Max))
		}
		c.State.Max, c.State.Count = seq, c.State.Count+1
		return c.KV().Put(rivet.K("seq", seq), seq)
	}).
	Action("check", func(c *rivet.Ctx[seqState]) (seqState, error) {
		es, err := c.KV().List(rivet.KVListOptions{Prefix: rivet.K("seq")})
		if err != nil {
			return seqState{}, err
		}
		for i, e := range es {
			var v int
			if err := e.Value.Decode(&v); err != nil || v != i+1 {
				return seqState{}, fmt.Errorf("kv entry %d holds %d", i+1, v)
			}
		}
		if len(es) != c.State.Max || c.State.Count != c.State.Max {
			return seqState{}, fmt.Errorf("state %+v but %d KV entries", *c.State, len(es))
		}
		return *c.State, nil
	})

const crashWorkers = 4

// killChild runs the test function named test in a child process with env
// added, reads its stdout line by line (fields passed to line, which
// reports whether the line acknowledged a write), SIGKILLs it after
// killAfter acknowledgements and reads on to EOF: lines the child wrote
// before it died still count (a "send" read after the kill may have been
// committed). It fails the test if the child exits on its own first.
func killChild(t *testing.T, test string, env []string, killAfter int, line func(f []string) (ack bool)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acks, killed := 0, false
	for sc.Scan() {
		if line(strings.Fields(sc.Text())) {
			acks++
		}
		if acks >= killAfter && !killed {
			_ = cmd.Process.Kill()
			killed = true
		}
	}
	_ = cmd.Wait()
	if acks < killAfter {
		t.Fatalf("child %s exited after %d acks", test, acks)
	}
}

// startChild starts the runtime of a crash-test child on dir, or exits.
func startChild(dir string, defs ...rivet.Definition) *rivet.Runtime {
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(defs...), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println("start error:", err)
		os.Exit(2)
	}
	return rt
}

// TestCrashChild is the child process of TestCrashDurability: it appends
// sequence numbers to several actors and prints each acknowledgement.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("RIVET_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashDurability")
	}
	ctx := context.Background()
	rt := startChild(dir, seqDef)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() {
			h := rt.Client().GetOrCreate("seq", rivet.Key{strconv.Itoa(w)})
			st, err := rivet.Call[seqState](ctx, h, "check")
			if err != nil {
				fmt.Println("check error:", err)
				os.Exit(2)
			}
			for seq := st.Max + 1; ; seq++ {
				mu.Lock()
				fmt.Printf("send %d %d\n", w, seq)
				mu.Unlock()
				if _, err := h.Call(ctx, "append", seq); err != nil {
					fmt.Println("append error:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("ack %d %d\n", w, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashDurability kills a child process at random points with SIGKILL
// and checks after each restart that every acknowledged write is present,
// no write that was never sent appears, and state and KV (one commit) agree.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	dir := t.TempDir()
	rounds := 12
	if n, err := strconv.Atoi(os.Getenv("RIVET_CRASH_ROUNDS")); err == nil {
		rounds = n
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	totalAcks := 0
	// durable is each worker's max after the previous restart: a child
	// killed before a worker sent anything leaves that max in place.
	durable := make([]int, crashWorkers)
	for round := range rounds {
		acked := make([]int, crashWorkers)
		sent := slices.Clone(durable)
		killChild(t, "TestCrashChild", []string{"RIVET_CRASH_DIR=" + dir}, 50+rng.IntN(400), func(f []string) bool {
			if len(f) != 3 {
				t.Fatalf("round %d: child said %q", round, f)
			}
			w, _ := strconv.Atoi(f[1])
			seq, _ := strconv.Atoi(f[2])
			if f[0] == "ack" {
				acked[w] = max(acked[w], seq)
				totalAcks++
				return true
			}
			sent[w] = max(sent[w], seq)
			return false
		})

		ctx := ctxT(t)
		rt, err := rivet.Start(ctx, rivet.MustRegistry(seqDef), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		for w := range crashWorkers {
			st, err := rivet.Call[seqState](ctx, rt.Client().GetOrCreate("seq", rivet.Key{strconv.Itoa(w)}), "check")
			if err != nil {
				t.Fatalf("round %d worker %d: %v", round, w, err)
			}
			if st.Max < acked[w] {
				t.Fatalf("round %d worker %d: acknowledged seq %d lost (durable max %d)", round, w, acked[w], st.Max)
			}
			if st.Max > sent[w] {
				t.Fatalf("round %d worker %d: seq %d appeared but only %d was sent", round, w, st.Max, sent[w])
			}
			durable[w] = st.Max
		}
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds, %d acknowledged writes verified", rounds, totalAcks)
}

type alarmState struct {
	Fired map[int]int `json:"fired"` // alarm number -> times fired
}

// alarmDef schedules numbered alarms and records each firing.
var alarmDef = rivet.NewActor("alarms", rivet.Opts[alarmState]{State: alarmState{Fired: map[int]int{}}}).
	Action("arm", func(c *rivet.Ctx[alarmState], n int, delayMs int) error {
		_, err := c.Schedule().After(time.Duration(delayMs)*time.Millisecond, "fire", n)
		return err
	}).
	Action("fire", func(c *rivet.Ctx[alarmState], n int) {
		if c.State.Fired == nil {
			c.State.Fired = map[int]int{}
		}
		c.State.Fired[n]++
	}).
	Action("fired", func(c *rivet.Ctx[alarmState]) map[int]int { return c.State.Fired })

// TestAlarmCrashChild is the child process of TestAlarmCrashDurability: it
// arms alarms 100–400 ms ahead, one after another, and prints each
// acknowledgement.
func TestAlarmCrashChild(t *testing.T) {
	dir := os.Getenv("RIVET_ALARM_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestAlarmCrashDurability")
	}
	ctx := context.Background()
	rt := startChild(dir, alarmDef)
	start, _ := strconv.Atoi(os.Getenv("RIVET_ALARM_CRASH_START"))
	h := rt.Client().GetOrCreate("alarms", rivet.Key{"a"})
	for n := start; ; n++ {
		fmt.Printf("send %d\n", n)
		if _, err := h.Call(ctx, "arm", n, 100+n*37%300); err != nil {
			fmt.Println("arm error:", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", n)
		time.Sleep(time.Millisecond) // pace, so that some alarms fire before the kill
	}
}

// TestAlarmCrashDurability kills a process that keeps arming alarms, with
// SIGKILL at random points, and checks after each restart that every
// acknowledged alarm fires (at least once) and no alarm that was never
// sent does.
func TestAlarmCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	dir := t.TempDir()
	rounds := 6
	if n, err := strconv.Atoi(os.Getenv("RIVET_CRASH_ROUNDS")); err == nil {
		rounds = max(1, n/2)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	next, pendingAtKill := 0, 0
	acks := map[int]bool{} // every acknowledged alarm, over all rounds
	for round := range rounds {
		acked, sent := -1, -1
		env := []string{"RIVET_ALARM_CRASH_DIR=" + dir, fmt.Sprintf("RIVET_ALARM_CRASH_START=%d", next)}
		killChild(t, "TestAlarmCrashChild", env, 20+rng.IntN(400), func(f []string) bool {
			n, err := 0, error(nil)
			if len(f) == 2 {
				n, err = strconv.Atoi(f[1])
			}
			switch {
			case len(f) != 2 || err != nil:
				t.Fatalf("round %d: child said %q", round, f)
			case f[0] == "ack":
				acked, acks[n] = max(acked, n), true
				return true
			case f[0] == "send":
				sent = max(sent, n)
			}
			return false
		})

		ctx := ctxT(t)
		rt, err := rivet.Start(ctx, rivet.MustRegistry(alarmDef), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		h := rt.Client().GetOrCreate("alarms", rivet.Key{"a"})
		var fired map[int]int
		var missing []int
		first := true
		waitFor(t, func() bool {
			f, err := rivet.Call[map[int]int](ctx, h, "fired")
			if err != nil {
				t.Fatalf("round %d: fired: %v", round, err)
			}
			if first {
				// Alarms acknowledged but not yet fired when the child died.
				for n := next; n <= acked; n++ {
					if acks[n] && f[n] == 0 {
						pendingAtKill++
					}
				}
				first = false
			}
			fired = f
			missing = missing[:0]
			for n := range acks {
				if fired[n] == 0 {
					missing = append(missing, n)
				}
			}
			return len(missing) == 0
		}, func() string {
			return fmt.Sprintf("round %d: acknowledged alarms never fired: %v (acked up to %d)", round, missing, acked)
		})
		for n := range fired {
			if n > sent {
				t.Fatalf("round %d: alarm %d fired but only %d was sent", round, n, sent)
			}
		}
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		next = sent + 1
	}
	if pendingAtKill == 0 {
		t.Fatal("no alarm was pending at any kill: the test did not exercise recovery")
	}
	t.Logf("%d rounds, %d alarms armed, %d were pending at a kill and fired after restart", rounds, next, pendingAtKill)
}
