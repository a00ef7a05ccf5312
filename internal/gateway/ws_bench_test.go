package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
)

// BenchmarkWebSocketCall is one action over a RivetKit WebSocket
// connection, sequentially, through the gateway and the runtime on the
// embedded store (fsync on): "increment" commits (one fsync per call),
// "get" does not. The client is in the same process; ns/op is a round
// trip, allocs/op both ends'.
//
//	go test -run '^$' -bench WebSocketCall -benchmem ./internal/gateway
func BenchmarkWebSocketCall(b *testing.B) {
	type count struct{ N int }
	def := rivet.NewActor("wscounter", rivet.Opts[count]{}).
		Action("increment", func(c *rivet.Ctx[count]) (int, error) { c.State.N++; return c.State.N, nil }).
		Action("get", func(c *rivet.Ctx[count]) (int, error) { return c.State.N, nil })
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(def), &rivet.Config{DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	b.Cleanup(func() { srv.Close(); _ = rt.Stop(context.Background()) })
	url := strings.Replace(srv.URL, "http", "ws", 1) + "/gateway/wscounter/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=b"
	for _, action := range []string{"increment", "get"} {
		b.Run(action, func(b *testing.B) {
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"rivet", "rivet_encoding.json"}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			if _, _, err := c.Read(ctx); err != nil { // Init
				b.Fatal(err)
			}
			b.ReportAllocs()
			id := 0
			for b.Loop() {
				msg := fmt.Appendf(nil, `{"body":{"tag":"ActionRequest","val":{"id":%d,"name":%q,"args":[]}}}`, id, action)
				id++
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				_, resp, err := c.Read(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if !strings.Contains(string(resp), "ActionResponse") {
					b.Fatalf("answer %s", resp)
				}
			}
		})
	}
}
