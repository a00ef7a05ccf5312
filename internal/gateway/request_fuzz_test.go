package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// fuzzWrites counts the turns of fuzzCounter that changed its state.
var fuzzWrites atomic.Int64

// fuzzCounter is the counter of FuzzGatewayRequest: it counts its writes
// where the fuzz function can read them without a call.
var fuzzCounter = rivet.NewActor("counter", rivet.Opts[count]{}).Queues(rivet.Queue[rivet.Value]("jobs")).
	Action("increment", func(c *rivet.Ctx[count], n int) int {
		c.State.Count += n
		fuzzWrites.Add(1)
		return c.State.Count
	}).
	Action("getCount", func(c *rivet.Ctx[count]) int { return c.State.Count })

// FuzzGatewayRequest sends one HTTP request made of fuzzed parts (method,
// path and query, the headers the gateway reads, body) through the whole
// gateway. Properties: no panic; an error answer is a structured JSON
// error (group, code, message); and an answer that is not 200 changed
// nothing: no increment ran.
func FuzzGatewayRequest(f *testing.F) {
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(fuzzCounter), &rivet.Config{
		Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
		Gateway: rivet.GatewayConfig{Namespaces: []string{"tenant"}, MaxIncomingMessageSize: 4096},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = rt.Stop(context.Background()) })
	h := rt.Handler()
	watched := rt.Client().Namespace("tenant").GetOrCreate("counter", rivet.Key{"w"})
	id, err := watched.ID(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	q := "?rvt-namespace=tenant&rvt-method=getOrCreate&rvt-pool=default&rvt-key=w"
	for _, s := range []struct{ method, target, enc, params, token, body string }{
		{"POST", "/gateway/counter/action/increment" + q, "json", "", "", `{"args":[1]}`},
		{"POST", "/gateway/" + id + "/action/increment", "json", `{"a":1}`, "t", `{"args":[1]}`},
		{"POST", "/gateway/" + id + "/action/increment", "cbor", "", "", "\xa1\x64args\x81\x01"},
		{"POST", "/gateway/" + id + "/action/increment", "bare", "", "", "\x01\x02"},
		{"POST", "/gateway/" + id + "/queue/jobs", "json", "", "", `{"body":1}`},
		{"PUT", "/actors?namespace=tenant", "", "", "", `{"name":"counter","key":"w"}`},
		{"GET", "/actors?namespace=tenant&actor_ids=" + id, "", "", "", ""},
		{"DELETE", "/actors/" + id + "?namespace=default", "", "", "", ""},
		{"POST", "/gateway/x/../" + id + "/action/increment", "json", "{", "", `{"args":[1]}`},
		{"GET", "/request/x", "json", "", "", ""},
	} {
		f.Add(s.method, s.target, s.enc, s.params, s.token, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, target, enc, params, token string, body []byte) {
		switch method {
		case "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH":
		default:
			return
		}
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") {
			return
		}
		// Never the destroy of the watched actor, which changes it by
		// design when nobody guards it.
		if method == "DELETE" {
			target = strings.ReplaceAll(target, id, "x")
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader(string(body)))
		if err != nil {
			return
		}
		for k, v := range map[string]string{"X-Rivet-Encoding": enc, "X-Rivet-Conn-Params": params, "X-Rivet-Token": token, "X-Rivet-Target": "actor", "X-Rivet-Actor": token} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				req.Header.Set(k, v)
			}
		}
		before := fuzzWrites.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 200 || rec.Code == 204 {
			return
		}
		if strings.HasPrefix(target, "/metrics") || strings.HasPrefix(target, "/inspector") || strings.HasPrefix(target, "/ui") {
			return // not the gateway's answers
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["group"] == nil || m["code"] == nil || m["message"] == nil {
			if !(enc == "cbor" || enc == "bare") { // those answer in their encoding
				t.Fatalf("%s %s: %d without a structured JSON error: %q", method, target, rec.Code, rec.Body.String())
			}
		}
		if after := fuzzWrites.Load(); after != before {
			t.Fatalf("%s %s answered %d %s but an increment ran", method, target, rec.Code, rec.Body.String())
		}
	})
}
