package rivet_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
)

var burstDef = rivet.NewActor("burst", rivet.Opts[struct{}]{}).
	Action("burst", func(c *rivet.Ctx[struct{}], n int, tag string) error {
		for i := range n {
			if err := c.Conn.Send("ev", tag, i); err != nil {
				return err
			}
		}
		return nil
	})

// TestConnectionOnSeesOnlyLaterEvents: a handler registered with On
// receives the events the actor sends after it was registered, not those
// sent before that were still on their way to the connection (found by
// TestModel: an event sent to a connection while it had no handler
// reached a handler registered after the call returned).
func TestConnectionOnSeesOnlyLaterEvents(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), burstDef)
	conn := must[*rivet.Connection](t)(k.Client.GetOrCreate("burst", rivet.Key{"b"}).Connect(ctx))
	defer conn.Close(ctx)
	if _, err := conn.Call(ctx, "burst", 2000, "before"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10_000)
	conn.On("ev", func(a rivet.Args) {
		var tag string
		_ = a.Decode(0, &tag)
		got <- tag
	})
	if _, err := conn.Call(ctx, "burst", 1, "after"); err != nil {
		t.Fatal(err)
	}
	var tags []string
	for {
		select {
		case tag := <-got:
			tags = append(tags, tag)
			if tag != "after" {
				continue
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the event sent after On never arrived; got %d events", len(tags))
		}
		break
	}
	if !slices.Equal(tags, []string{"after"}) {
		t.Fatalf("handler received %d events (%d sent before On), want only the one sent after it", len(tags), len(tags)-1)
	}
}
