package rivet_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
)

type kvOp struct {
	Op     string `json:"op"`
	Key    []any  `json:"key"`
	Value  string `json:"value"`
	Prefix []any  `json:"prefix"`
	Start  []any  `json:"start"`
	End    []any  `json:"end"`
	Rev    bool   `json:"rev"`
	Limit  int    `json:"limit"`
}

// kvDef runs a script of KV operations in one turn and returns what each
// read saw, so tests can check read-your-writes inside a turn.
var kvDef = rivet.NewActor("kv", rivet.Opts[struct{}]{}).
	Action("run", func(c *rivet.Ctx[struct{}], ops []kvOp, fail bool) ([]string, error) {
		kv := c.KV()
		var out []string
		for _, op := range ops {
			switch op.Op {
			case "put":
				if err := kv.Put(op.Key, op.Value); err != nil {
					return nil, err
				}
			case "del":
				if err := kv.Delete(op.Key); err != nil {
					return nil, err
				}
			case "clear":
				if err := kv.DeleteAll(); err != nil {
					return nil, err
				}
			case "get":
				var v string
				ok, err := kv.Get(op.Key, &v)
				if err != nil {
					return nil, err
				}
				if !ok {
					v = "<nil>"
				}
				out = append(out, v)
			case "list":
				es, err := kv.List(rivet.KVListOptions{Prefix: op.Prefix, Start: op.Start, End: op.End, Reverse: op.Rev, Limit: op.Limit})
				if err != nil {
					return nil, err
				}
				var parts []string
				for _, e := range es {
					var v string
					_ = e.Value.Decode(&v)
					parts = append(parts, fmt.Sprint(e.Key...)+"="+v)
				}
				out = append(out, strings.Join(parts, ","))
			}
		}
		if fail {
			return nil, rivet.UserError("rollback")
		}
		return out, nil
	}).
	Action("big", func(c *rivet.Ctx[struct{}], n int) error {
		return c.KV().Put(rivet.K("big"), make([]byte, n))
	}).
	Action("emptyKey", func(c *rivet.Ctx[struct{}]) error { return c.KV().Put(nil, 1) }).
	Action("badKey", func(c *rivet.Ctx[struct{}]) error { return c.KV().Put(rivet.K(struct{}{}), 1) })

func put(v string, key ...any) kvOp { return kvOp{Op: "put", Key: key, Value: v} }
func get(key ...any) kvOp           { return kvOp{Op: "get", Key: key} }
func del(key ...any) kvOp           { return kvOp{Op: "del", Key: key} }

func TestKV(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		k := kit(t, open(t), kvDef)
		h := k.Client.GetOrCreate("kv", rivet.Key{"a"})
		run := func(fail bool, ops ...kvOp) []string {
			t.Helper()
			return must[[]string](t)(rivet.Call[[]string](ctx, h, "run", ops, fail))
		}
		check := func(got []string, want ...string) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		}
		// Read your own writes inside one turn.
		check(run(false, put("1", "user", "a"), get("user", "a"), del("user", "a"), get("user", "a")), "1", "<nil>")
		check(run(false,
			put("inv-bread", "users", "nathan", "inventory", "bread"),
			put("inv-sword", "users", "nathan", "inventory", "sword"),
			put("nathan-x", "users", "nathanx"),
			put("kacper", "users", "kacper"),
			put("t", "users", "t"),
			put("s42", "leaderboard", 42), put("s88", "leaderboard", 88), put("s60", "leaderboard", 60), put("neg", "leaderboard", -5),
			get("users", "kacper")), "kacper")
		// Prefix never matches a longer element: ("users","nathan") does not
		// match ("users","nathanx").
		check(run(false, kvOp{Op: "list", Prefix: []any{"users", "nathan"}}),
			"usersnathaninventorybread=inv-bread,usersnathaninventorysword=inv-sword")
		// Integers sort numerically; reverse + limit.
		check(run(false, kvOp{Op: "list", Prefix: []any{"leaderboard"}, Rev: true, Limit: 3}),
			"leaderboard88=s88,leaderboard60=s60,leaderboard42=s42")
		check(run(false, kvOp{Op: "list", Prefix: []any{"leaderboard"}, Limit: 1}), "leaderboard-5=neg")
		// Start inclusive, end exclusive.
		check(run(false, kvOp{Op: "list", Start: []any{"users", "k"}, End: []any{"users", "t"}}),
			"userskacper=kacper,usersnathaninventorybread=inv-bread,usersnathaninventorysword=inv-sword,usersnathanx=nathan-x")
		// A failed turn's writes vanish.
		if _, err := h.Call(ctx, "run", []kvOp{put("ghost", "ghost"), del("users", "kacper")}, true); err == nil {
			t.Fatal("failing script succeeded")
		}
		check(run(false, get("ghost"), get("users", "kacper")), "<nil>", "kacper")
		// Deletes and puts of the same turn combine with the store in
		// lists, with limits applied after merging.
		check(run(false, del("leaderboard", 88), put("s70", "leaderboard", 70),
			kvOp{Op: "list", Prefix: []any{"leaderboard"}, Rev: true, Limit: 2}),
			"leaderboard70=s70,leaderboard60=s60")
		// deleteAll, then writes in the same turn.
		check(run(false, kvOp{Op: "clear"}, put("after", "after"), kvOp{Op: "list"}, get("users", "kacper")), "after=after", "<nil>")
		check(run(false, kvOp{Op: "list"}), "after=after")
		// Other actors never see this actor's keys.
		other := k.Client.GetOrCreate("kv", rivet.Key{"b"})
		if got := must[[]string](t)(rivet.Call[[]string](ctx, other, "run", []kvOp{{Op: "list"}}, false)); !slices.Equal(got, []string{""}) {
			t.Fatalf("other actor sees %q", got)
		}
		// Bad input: clear errors, nothing written.
		for _, action := range []string{"emptyKey", "badKey"} {
			if _, err := h.Call(ctx, action); !errors.Is(err, rivet.ErrKVKeyInvalid) {
				t.Fatalf("%s: %v, want kv.invalid_key", action, err)
			}
		}
		if _, err := h.Call(ctx, "big", 2<<20); !errors.Is(err, rivet.ErrKVValueTooLarge) {
			t.Fatalf("big value: %v", err)
		}
		check(run(false, kvOp{Op: "list"}), "after=after")
	})
}
