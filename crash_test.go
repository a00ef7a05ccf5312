package rivet_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
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

// TestCrashChild is the child process of TestCrashDurability: it appends
// sequence numbers to several actors and prints each acknowledgement.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("RIVET_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashDurability")
	}
	ctx := context.Background()
	rt, err := rivet.Start(ctx, rivet.MustRegistry(seqDef), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println("start error:", err)
		os.Exit(2)
	}
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
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "RIVET_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := make([]int, crashWorkers)
		sent := make([]int, crashWorkers)
		killAfter := 50 + rng.IntN(400)
		// Read to EOF: lines the child wrote before it died still count
		// (a "send" read after the kill may have been committed).
		sc := bufio.NewScanner(out)
		acks, killed := 0, false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				t.Fatalf("round %d: child said %q", round, sc.Text())
			}
			w, _ := strconv.Atoi(f[1])
			seq, _ := strconv.Atoi(f[2])
			if f[0] == "ack" {
				acked[w] = max(acked[w], seq)
				acks++
			} else {
				sent[w] = max(sent[w], seq)
			}
			if acks >= killAfter && !killed {
				_ = cmd.Process.Kill()
				killed = true
			}
		}
		_ = cmd.Wait()
		if acks < killAfter {
			t.Fatalf("round %d: child exited after %d acks", round, acks)
		}
		totalAcks += acks

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
		}
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d rounds, %d acknowledged writes verified", rounds, totalAcks)
}
