package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type count struct {
	Count int `json:"count"`
}

var counter = rivet.NewActor("counter", rivet.Opts[count]{}).Queues(rivet.Queue[rivet.Value]("jobs")).
	Action("increment", func(c *rivet.Ctx[count], n int) int {
		c.State.Count += n
		c.Broadcast("newCount", c.State.Count)
		return c.State.Count
	}).
	Action("getCount", func(c *rivet.Ctx[count]) int { return c.State.Count }).
	Action("spam", func(c *rivet.Ctx[count], n int) {
		for i := range n {
			c.Broadcast("spam", i, strings.Repeat("x", 1000))
		}
	})

func serve(t *testing.T, gw rivet.GatewayConfig) string {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	return srv.URL
}

const query = "?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k"

func post(t *testing.T, url, enc string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if enc != "" {
		req.Header.Set("X-Rivet-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if resp.StatusCode != 200 {
		if !strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("error response with content-type %q: %s", resp.Header.Get("Content-Type"), b)
		}
	}
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func wantErr(t *testing.T, what string, code int, m map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if code != wantStatus || m["group"].(string)+"."+m["code"].(string) != wantCode {
		t.Fatalf("%s: %d %v, want %d %s", what, code, m, wantStatus, wantCode)
	}
}

func getCount(t *testing.T, base string) float64 {
	t.Helper()
	code, m := post(t, base+"/gateway/counter/action/getCount"+query, "json", []byte(`{"args":[]}`))
	if code != 200 {
		t.Fatalf("getCount: %d %v", code, m)
	}
	return m["output"].(float64)
}

func TestBadHTTPInput(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{MaxIncomingMessageSize: 1024})
	inc := base + "/gateway/counter/action/increment" + query
	if code, m := post(t, inc, "json", []byte(`{"args":[1]}`)); code != 200 || m["output"].(float64) != 1 {
		t.Fatalf("increment: %d %v", code, m)
	}
	for _, tc := range []struct {
		what, enc string
		body      []byte
		status    int
		code      string
	}{
		{"truncated json", "json", []byte(`{"args":[1`), 400, "actor.invalid_request"},
		{"json not an object", "json", []byte(`[1]`), 400, "actor.invalid_request"},
		{"unknown compat tag", "json", []byte(`{"args":[["$Nope",1]]}`), 400, "actor.invalid_request"},
		{"garbage cbor", "cbor", []byte{0xff, 0x00}, 400, "actor.invalid_request"},
		{"truncated cbor", "cbor", []byte{0xb9, 0x00, 0x01, 0x64, 0x61, 0x72}, 400, "actor.invalid_request"},
		{"bare version 5", "bare", []byte{0x05, 0x00, 0x02, 0x81, 0x01}, 400, "actor.invalid_request"},
		{"bare version 0", "bare", []byte{0x00, 0x00, 0x02, 0x81, 0x01}, 400, "actor.invalid_request"},
		{"bare truncated", "bare", []byte{0x04, 0x00, 0x05, 0x81}, 400, "actor.invalid_request"},
		{"bare trailing bytes", "bare", []byte{0x04, 0x00, 0x02, 0x81, 0x01, 0x00}, 400, "actor.invalid_request"},
		{"bare huge length", "bare", []byte{0x04, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f}, 400, "actor.invalid_request"},
		{"wrong argument type", "json", []byte(`{"args":["one"]}`), 400, "actor.invalid_arguments"},
		{"too many arguments", "json", []byte(`{"args":[1,2]}`), 400, "actor.invalid_arguments"},
		{"oversized", "json", []byte(`{"args":["` + strings.Repeat("a", 2000) + `"]}`), 400, "message.incoming_too_long"},
	} {
		code, m := post(t, inc, tc.enc, tc.body)
		wantErr(t, tc.what, code, m, tc.status, tc.code)
	}
	for _, enc := range []string{"json", "cbor", "bare"} {
		code, m := post(t, inc, enc, nil)
		wantErr(t, "empty "+enc+" body", code, m, 400, "actor.invalid_request")
		if msg, _ := m["message"].(string); !strings.Contains(msg, "body is empty") {
			t.Fatalf("empty %s body: message %q does not say the body is empty", enc, msg)
		}
	}
	code, m := post(t, base+"/gateway/counter/action/nope"+query, "json", []byte(`{"args":[]}`))
	wantErr(t, "unknown action", code, m, 404, "actor.action_not_found")
	code, m = post(t, base+"/gateway/nobody/action/x"+query, "json", []byte(`{"args":[]}`))
	wantErr(t, "unregistered actor", code, m, 400, "actor.not_registered")
	code, m = post(t, base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-namespace=x", "json", []byte(`{"args":[1]}`))
	wantErr(t, "duplicate rvt param", code, m, 400, "guard.query_duplicate_param")
	code, m = post(t, base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-input=oA", "json", []byte(`{"args":[1]}`))
	wantErr(t, "get with input", code, m, 400, "guard.query_get_disallowed_params")
	code, m = post(t, base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate", "json", []byte(`{"args":[1]}`))
	wantErr(t, "getOrCreate without pool", code, m, 400, "guard.query_missing_pool")
	code, m = post(t, base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key="+strings.Repeat("k", 1100), "json", []byte(`{"args":[1]}`))
	wantErr(t, "oversized key", code, m, 400, "actor.invalid_key")
	code, m = post(t, base+"/gateway/nosuchid/action/getCount", "json", []byte(`{"args":[]}`))
	wantErr(t, "unknown actor id", code, m, 404, "actor.not_found")
	code, m = post(t, base+"/gateway/counter/connect"+query, "json", nil)
	wantErr(t, "connect without upgrade", code, m, 404, "actor.not_found")

	// REST: bad keys and bodies.
	for _, body := range []string{`{"name":"counter","key":"a\\"}`, `{"name":"counter"`, `{"key":"a"}`} {
		req, _ := http.NewRequest("PUT", base+"/actors?namespace=default", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("PUT /actors %s: %d", body, resp.StatusCode)
		}
	}
	// Nothing above changed the actor.
	if n := getCount(t, base); n != 1 {
		t.Fatalf("count after bad input = %v, want 1", n)
	}
}

func dial(t *testing.T, base, path string, protos ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+path, &websocket.DialOptions{Subprotocols: protos})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "rivet" {
		t.Fatalf("selected subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	c.SetReadLimit(-1)
	return c
}

// readUntilClose reads until the server closes, returning the close status
// and reason.
func readUntilClose(t *testing.T, c *websocket.Conn) (websocket.StatusCode, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if ok := asClose(err, &ce); ok {
				return ce.Code, ce.Reason
			}
			t.Fatalf("read: %v", err)
		}
	}
}

func asClose(err error, ce *websocket.CloseError) bool {
	code := websocket.CloseStatus(err)
	if code == -1 {
		return false
	}
	ce.Code = code
	if e, ok := err.(websocket.CloseError); ok {
		ce.Reason = e.Reason
	} else {
		var x websocket.CloseError
		if errorsAs(err, &x) {
			ce.Reason = x.Reason
		}
	}
	return true
}

func TestBadWebSocketInput(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{MaxIncomingMessageSize: 1024, SendQueue: 16})
	ctx := context.Background()
	// A healthy connection that must keep working throughout.
	good := dial(t, base, "/gateway/counter/connect"+query, "rivet", "rivet_encoding.json")
	defer good.CloseNow()
	if _, msg, err := good.Read(ctx); err != nil || !bytes.Contains(msg, []byte(`"Init"`)) {
		t.Fatalf("init: %s %v", msg, err)
	}

	for _, tc := range []struct {
		what   string
		enc    string
		typ    websocket.MessageType
		frame  []byte
		code   websocket.StatusCode
		reason string
	}{
		{"malformed json", "json", websocket.MessageText, []byte(`{"body":`), 1011, "actor.invalid_request"},
		{"unknown tag", "json", websocket.MessageText, []byte(`{"body":{"tag":"Nope","val":{}}}`), 1011, "actor.invalid_request"},
		{"invalid utf-8", "json", websocket.MessageText, []byte("{\"body\":\"\xff\xfe\"}"), 1011, "actor.invalid_request"},
		{"bare bad version", "bare", websocket.MessageBinary, []byte{0x09, 0x00, 0x00, 0x00, 0x00, 0x00}, 1011, "actor.invalid_request"},
		{"bare truncated", "bare", websocket.MessageBinary, []byte{0x04, 0x00, 0x00, 0x00, 0x09, 'i', 'n'}, 1011, "actor.invalid_request"},
		{"bare unknown union tag", "bare", websocket.MessageBinary, []byte{0x04, 0x00, 0x07}, 1011, "actor.invalid_request"},
		{"cbor garbage", "cbor", websocket.MessageBinary, []byte{0xff}, 1011, "actor.invalid_request"},
		{"oversized", "json", websocket.MessageText, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1,"name":"increment","args":["` + strings.Repeat("a", 2000) + `"]}}}`), 1011, "message.incoming_too_long"},
	} {
		c := dial(t, base, "/gateway/counter/connect"+query, "rivet", "rivet_encoding."+tc.enc)
		if _, _, err := c.Read(ctx); err != nil { // Init
			t.Fatalf("%s: init: %v", tc.what, err)
		}
		if err := c.Write(ctx, tc.typ, tc.frame); err != nil {
			t.Fatalf("%s: write: %v", tc.what, err)
		}
		code, reason := readUntilClose(t, c)
		if code != tc.code || reason != tc.reason {
			t.Fatalf("%s: closed %d %q, want %d %q", tc.what, code, reason, tc.code, tc.reason)
		}
		c.CloseNow()
	}

	// An unknown encoding is refused with 1003.
	c := dial(t, base, "/gateway/counter/connect"+query, "rivet", "rivet_encoding.xml")
	if code, reason := readUntilClose(t, c); code != 1003 || reason != "actor.unsupported_websocket_encoding" {
		t.Fatalf("unknown encoding: %d %q", code, reason)
	}
	c.CloseNow()
	// A routing error completes the upgrade, then closes 1011 group.code.
	c = dial(t, base, "/gateway/nobody/connect"+query, "rivet", "rivet_encoding.json")
	if code, reason := readUntilClose(t, c); code != 1011 || reason != "actor.not_registered" {
		t.Fatalf("unregistered: %d %q", code, reason)
	}
	c.CloseNow()

	// A client that never reads is disconnected; the actor is not stalled.
	slow := dial(t, base, "/gateway/counter/connect"+query, "rivet", "rivet_encoding.json")
	defer slow.CloseNow()
	if _, _, err := slow.Read(ctx); err != nil {
		t.Fatal(err)
	}
	sub := `{"body":{"tag":"SubscriptionRequest","val":{"eventName":"spam","subscribe":true}}}`
	if err := slow.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	// Once the subscription is in, flood it (stateless calls).
	for i := 0; i < 200; i++ {
		if code, m := post(t, base+"/gateway/counter/action/spam"+query, "json", []byte(`{"args":[100]}`)); code != 200 {
			t.Fatalf("spam: %d %v", code, m)
		}
	}

	// The healthy connection and the actor still work.
	req := `{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","7"],"name":"increment","args":[1]}}}`
	if err := good.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, msg, err := good.Read(rctx)
		if err != nil {
			t.Fatalf("healthy connection: %v", err)
		}
		if bytes.Contains(msg, []byte(`"ActionResponse"`)) {
			if !bytes.Contains(msg, []byte(`["$BigInt","7"]`)) {
				t.Fatalf("response %s", msg)
			}
			break
		}
	}
	if n := getCount(t, base); n != 1 {
		t.Fatalf("count = %v, want 1", n)
	}
	// The slow one was cut off: its socket is closed (reading now drains
	// what was buffered, then the close).
	if code, reason := readUntilClose(t, slow); code != 1011 || reason != "message.outgoing_queue_full" {
		t.Fatalf("slow client: %d %q", code, reason)
	}
}

func errorsAs(err error, target *websocket.CloseError) bool { return errors.As(err, target) }
