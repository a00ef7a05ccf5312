package rivet_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
)

type crConnState struct {
	Name  string `json:"name"`
	Bumps int    `json:"bumps"`
}

type crState struct {
	// Gone lists what OnDisconnect saw of each connection it ended.
	Gone []crConnState `json:"gone"`
}

// crDef keeps a per-connection counter in connection state; OnDisconnect
// writes what it saw of the connection into the actor's state.
var crDef = rivet.NewActor("connrec", rivet.Options[crState, crConnState, rivet.None]{
	CreateConnState: func(_ *rivet.Context[crState, crConnState, rivet.None], p rivet.Value) (crConnState, error) {
		var name string
		err := p.Decode(&name)
		return crConnState{Name: name}, err
	},
	OnDisconnect: func(c *rivet.Context[crState, crConnState, rivet.None], conn *rivet.Conn[crConnState]) {
		c.State.Gone = append(c.State.Gone, *conn.State)
	},
}).
	Action("bump", func(c *rivet.Context[crState, crConnState, rivet.None]) int {
		c.Conn.State.Bumps++
		return c.Conn.State.Bumps
	}).
	Action("gone", func(c *rivet.Context[crState, crConnState, rivet.None]) []crConnState { return c.State.Gone })

// TestConnRecordCrashChild is the child process of
// TestConnRecordCrashDurability: one connection bumps its connection
// state, printing each acknowledgement.
func TestConnRecordCrashChild(t *testing.T) {
	dir := os.Getenv("RIVET_CRCRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestConnRecordCrashDurability")
	}
	ctx := context.Background()
	rt := startChild(dir, crDef)
	h := rt.Client().GetOrCreate("connrec", rivet.Key{os.Getenv("RIVET_CRCRASH_KEY")}, rivet.WithParams("c1"))
	conn, err := h.Connect(ctx)
	if err != nil {
		fmt.Println("connect error:", err)
		os.Exit(2)
	}
	for n := 1; ; n++ {
		fmt.Printf("send %d\n", n)
		v, err := conn.Call(ctx, "bump")
		var got int
		if err == nil {
			err = v.Decode(&got)
		}
		if err != nil || got != n {
			fmt.Println("bump error:", got, err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", n)
	}
}

// TestConnRecordCrashDurability kills (SIGKILL) a process whose client
// connection keeps changing its connection state, restarts on the same
// data, and checks that the connection's record survived with a state
// between the last acknowledged and the last sent change: the next wake
// ends the dead connection with OnDisconnect, which sees that state.
func TestConnRecordCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for round := range 3 {
		key := "r" + strconv.Itoa(round)
		acked, sent := 0, 0
		killChild(t, "TestConnRecordCrashChild", []string{"RIVET_CRCRASH_DIR=" + dir, "RIVET_CRCRASH_KEY=" + key}, 20+rng.IntN(200), func(f []string) bool {
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
			}
			return false
		})
		ctx := ctxT(t)
		rt, err := rivet.Start(ctx, rivet.MustRegistry(crDef), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		gone := must[[]crConnState](t)(rivet.Call[[]crConnState](ctx, rt.Client().GetOrCreate("connrec", rivet.Key{key}), "gone"))
		if len(gone) != 1 || gone[0].Name != "c1" {
			t.Fatalf("round %d: OnDisconnect saw %+v after the restart, want the one killed connection", round, gone)
		}
		if b := gone[0].Bumps; b < acked || b > sent {
			t.Fatalf("round %d: the connection's record had %d bumps; acknowledged %d, sent %d", round, b, acked, sent)
		}
		t.Logf("round %d: killed after %d acknowledged bumps (%d sent); record had %d", round, acked, sent, gone[0].Bumps)
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := rt.Stop(stop); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}
