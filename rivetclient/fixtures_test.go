package rivetclient_test

import (
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/fixtures"
	"github.com/rivetgo/rivet/rivetclient"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The runtime's behaviours through the wire: state across sleep, schedules,
// KV, vars, connection state, destroy.
func TestFixturesOverTheWire(t *testing.T) {
	eachEncoding(t, func(t *testing.T, c *rivetclient.Client) {
		ctx := ctxT(t)

		// Sleep and wake keep state and run the hooks.
		s := c.GetOrCreate("sleep", rivet.Key{"s"})
		if got := must[fixtures.SleepCounts](t)(rivetclient.Call[fixtures.SleepCounts](ctx, s, "getCounts")); got.StartCount != 1 || got.SleepCount != 0 {
			t.Fatalf("counts %+v", got)
		}
		must[rivet.Value](t)(s.Call(ctx, "triggerSleep"))
		eventually(t, "sleep and wake", func() bool {
			got, err := rivetclient.Call[fixtures.SleepCounts](ctx, s, "getCounts")
			return err == nil && got.SleepCount == 1 && got.StartCount == 2
		})

		// A schedule fires (real time, 50 ms).
		sch := c.GetOrCreate("scheduled", rivet.Key{"sch"})
		must[int64](t)(rivetclient.Call[int64](ctx, sch, "scheduleTaskAfter", 50))
		eventually(t, "scheduled task", func() bool {
			last, err := rivetclient.Call[int64](ctx, sch, "getLastRun")
			return err == nil && last > 0
		})

		// KV.
		kv := c.GetOrCreate("kvActor", rivet.Key{"kv"})
		must[bool](t)(rivetclient.Call[bool](ctx, kv, "putText", "user/1", "ada"))
		must[bool](t)(rivetclient.Call[bool](ctx, kv, "putText", "user/2", "bo"))
		if v := must[*string](t)(rivetclient.Call[*string](ctx, kv, "getText", "user/1")); v == nil || *v != "ada" {
			t.Fatalf("getText %v", v)
		}
		if v := must[*string](t)(rivetclient.Call[*string](ctx, kv, "getText", "nope")); v != nil {
			t.Fatalf("missing key = %q", *v)
		}
		if es := must[[]fixtures.TextEntry](t)(rivetclient.Call[[]fixtures.TextEntry](ctx, kv, "listText", "user/")); len(es) != 2 {
			t.Fatalf("listText %v", es)
		}

		// Vars are per instance and not persisted.
		vars := must[fixtures.StaticVars](t)(rivetclient.Call[fixtures.StaticVars](ctx, c.GetOrCreate("staticVarActor", nil), "getVars"))
		if vars.Name == "" {
			t.Fatalf("vars %+v", vars)
		}

		// Connection state.
		cs := c.GetOrCreate("connStateActor", rivet.Key{"cs"}, rivetclient.WithParams(map[string]string{"username": "ada", "role": "admin"}))
		conn := cs.Connect()
		defer conn.Close()
		st := must[fixtures.ConnStateWithID](t)(rivetclient.Call[fixtures.ConnStateWithID](ctx, conn, "getConnectionState"))
		if st.Username != "ada" || st.Role != "admin" || st.ID != conn.ID() {
			t.Fatalf("conn state %+v (conn %s)", st, conn.ID())
		}
		must[rivet.Value](t)(conn.Call(ctx, "incrementConnCounter", 2))
		if st := must[fixtures.ConnStateWithID](t)(rivetclient.Call[fixtures.ConnStateWithID](ctx, conn, "getConnectionState")); st.Counter != 2 {
			t.Fatalf("counter %d", st.Counter)
		}

		// onStateChange runs once per changing turn.
		osc := c.GetOrCreate("onStateChangeActor", rivet.Key{"o"})
		must[int](t)(rivetclient.Call[int](ctx, osc, "setValue", 5))
		if n := must[int](t)(rivetclient.Call[int](ctx, osc, "getChangeCount")); n != 1 {
			t.Fatalf("change count %d", n)
		}

		// Destroy from inside: the actor is gone, getOrCreate makes a new one.
		d := c.GetOrCreate("destroyActor", rivet.Key{"d"})
		must[int](t)(rivetclient.Call[int](ctx, d, "setValue", 7))
		id := must[string](t)(d.ID(ctx))
		must[rivet.Value](t)(d.Call(ctx, "destroy"))
		eventually(t, "destroyed", func() bool {
			_, err := c.GetForID("destroyActor", id).Call(ctx, "getValue")
			return err != nil
		})
		if v := must[int](t)(rivetclient.Call[int](ctx, d, "getValue")); v != 0 {
			t.Fatalf("recreated actor has value %d", v)
		}
	})
}
