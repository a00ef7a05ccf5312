package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// discardWriter is an http.ResponseWriter that keeps the status and
// nothing else, so that a benchmark counts the gateway's work, not a
// recorder's.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// The deadlines a connection of net/http's server takes.
func (w *discardWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// rewindBody is a request body read again on every iteration.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkHTTPAction is one stateless action call through the gateway's
// handler, the `hot` scenario's request without the network and the
// store (memory driver): routing, CORS, metrics, body read, decoding the
// arguments, resolving the actor by key (getOrCreate, as the official
// client sends it) or by id, the turn, encoding the result and writing
// the response. allocs/op is the guard: it does not move with the
// machine's load. Run:
//
//	go test -run '^$' -bench HTTPAction -benchmem ./internal/gateway
func BenchmarkHTTPAction(b *testing.B) {
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rt.Stop(context.Background()) }()
	h := rt.Handler()
	id, err := rt.Client().GetOrCreate("counter", rivet.Key{"bench"}).ID(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, enc := range []protocol.Encoding{protocol.JSON, protocol.CBOR, protocol.BARE} {
		body, err := protocol.Encode(enc, protocol.HTTPActionRequest{Args: []byte{0x81, 0x01}})
		if err != nil {
			b.Fatal(err)
		}
		for _, form := range []struct{ name, url string }{
			{"query", "http://127.0.0.1/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=bench&rvt-crash-policy=sleep"},
			{"id", "http://127.0.0.1/gateway/" + id + "/action/increment"},
		} {
			b.Run(enc.String()+"/"+form.name, func(b *testing.B) {
				req, err := http.NewRequest("POST", form.url, nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/octet-stream")
				req.Header.Set("X-Rivet-Encoding", enc.String())
				rb := &rewindBody{}
				req.ContentLength = int64(len(body))
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					rb.Reset(body)
					req.Body = rb // the gateway wraps it
					clear(w.h)
					w.status = 0
					h.ServeHTTP(w, req)
					if w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}

// TestKeyTargetAfterDestroyAndSleep: a request by key reaches the actor
// that has the key now. The gateway remembers the id of the keys it
// resolved (for awake actors); after the actor is destroyed, getOrCreate
// by the same key creates a new actor, and after it sleeps the same actor
// wakes with its state.
func TestKeyTargetAfterDestroyAndSleep(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	inc := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key="+key, strings.NewReader(`{"args":[1]}`))
		req.Header.Set("X-Rivet-Encoding", "json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct{ Output int }
		if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("increment %s: %d %s", key, resp.StatusCode, b)
		}
		return out.Output, resp.Header.Get("X-Rivet-Actor")
	}
	send := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	for i := 1; i <= 3; i++ {
		if n, _ := inc("k"); n != i {
			t.Fatalf("increment %d answered %d", i, n)
		}
	}
	_, id := inc("k") // 4
	send("POST", "/actors/"+id+"/sleep?namespace=default")
	if n, id2 := inc("k"); n != 5 || id2 != id {
		t.Fatalf("after sleep: %d from %s, want 5 from %s", n, id2, id)
	}
	send("DELETE", "/actors/"+id+"?namespace=default")
	n, id3 := inc("k")
	if n != 1 || id3 == id {
		t.Fatalf("after destroy: %d from %s, want 1 from a new actor (the destroyed one was %s)", n, id3, id)
	}
	if n, _ := inc("k"); n != 2 {
		t.Fatalf("the new actor answered %d, want 2", n)
	}
}
