package rivet_test

import (
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
)

type blobState struct {
	Blob string `json:"blob"`
	N    int    `json:"n"`
}

// bigStoreDef writes what does not fit one engine KV request: big state,
// big values, many keys, deletes mixed with puts.
var bigStoreDef = rivet.NewActor("bigstore", rivet.Opts[blobState]{}).
	Action("fill", func(c *rivet.Ctx[blobState], keys, size, stateSize int) error {
		c.State.Blob = strings.Repeat("s", stateSize)
		c.State.N++
		for i := range keys {
			if err := c.KV().Put(rivet.K("k", i), strings.Repeat("v", size)); err != nil {
				return err
			}
		}
		return nil
	}).
	Action("mix", func(c *rivet.Ctx[blobState], del, put int) error {
		c.State.N++
		for i := range del {
			if err := c.KV().Delete(rivet.K("k", i)); err != nil {
				return err
			}
		}
		for i := range put {
			if err := c.KV().Put(rivet.K("p", i), i); err != nil {
				return err
			}
		}
		return nil
	}).
	Action("check", func(c *rivet.Ctx[blobState]) (map[string]int, error) {
		es, err := c.KV().List(rivet.KVListOptions{})
		if err != nil {
			return nil, err
		}
		bytes := 0
		for _, e := range es {
			var s any
			if err := e.Value.Decode(&s); err != nil {
				return nil, err
			}
			if str, ok := s.(string); ok {
				bytes += len(str)
			}
		}
		return map[string]int{"keys": len(es), "bytes": bytes, "state": len(c.State.Blob), "n": c.State.N}, nil
	}).
	Action("longKey", func(c *rivet.Ctx[blobState], n int) error {
		c.State.N += 100 // must not be committed when the put fails
		return c.KV().Put(rivet.K(strings.Repeat("x", n)), 1)
	})

func startStorageRunner(t *testing.T, eng *enginetest.Engine) *rivet.EngineRunner {
	t.Helper()
	return startRunnerOf(t, eng, bigStoreDef)
}

// TestEngineRunnerBigTurns: through the runtime on a real engine, a turn
// that writes 1.5 MiB of state and 200 KV keys (one of them near the
// 1 MiB value limit), then a turn that deletes 150 keys and writes 20,
// read back after the actor slept (so from the engine); a key too long
// for the engine fails the action with kv.invalid_key and commits
// nothing of the turn.
func TestEngineRunnerBigTurns(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	startStorageRunner(t, eng)
	call := func(action string, args ...any) (int, map[string]any) {
		t.Helper()
		return engineCall(t, eng, "bigstore", "b", action, args...)
	}
	if status, out := call("fill", 200, 1000, 1536<<10); status != 200 {
		t.Fatalf("fill: %d %v", status, out)
	}
	if status, out := call("fill", 1, 1000<<10, 10); status != 200 {
		t.Fatalf("fill with a 1000 KiB value: %d %v", status, out)
	}
	engineSleep(t, eng, "bigstore", "b")
	want := map[string]any{"keys": float64(200), "bytes": float64(199*1000 + 1000<<10), "state": float64(10), "n": float64(2)}
	if _, out := call("check"); !sameMap(out["output"], want) {
		t.Fatalf("after sleep: %v, want %v", out["output"], want)
	}
	if status, out := call("fill", 200, 10, 1536<<10); status != 200 {
		t.Fatalf("fill: %d %v", status, out)
	}
	if status, out := call("mix", 150, 20); status != 200 {
		t.Fatalf("mix: %d %v", status, out)
	}
	engineSleep(t, eng, "bigstore", "b")
	want = map[string]any{"keys": float64(70), "bytes": float64(50 * 10), "state": float64(1536 << 10), "n": float64(4)}
	if _, out := call("check"); !sameMap(out["output"], want) {
		t.Fatalf("after mix and sleep: %v, want %v", out["output"], want)
	}
	status, out := call("longKey", 2100)
	if status == 200 || out["group"] != "kv" || out["code"] != "invalid_key" || !strings.Contains(out["message"].(string), "2045") {
		t.Fatalf("key too long: %d %v, want kv.invalid_key naming the limit 2045", status, out)
	}
	if _, out := call("check"); !sameMap(out["output"], want) {
		t.Fatalf("after the refused turn: %v, want %v (nothing committed)", out["output"], want)
	}
}

func sameMap(got any, want map[string]any) bool {
	m, ok := got.(map[string]any)
	if !ok || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}
