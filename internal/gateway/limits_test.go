package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// started is signaled by the hang action once it runs.
var started = make(chan struct{}, 1)

var limited = rivet.NewActor("limited", rivet.Opts[count]{}).
	Action("blob", func(c *rivet.Ctx[count], n int) string { return strings.Repeat("x", n) }).
	Action("bumpBlob", func(c *rivet.Ctx[count], n int) []string {
		c.State.Count++
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("Item %d with some additional text to increase size", i)
		}
		return out
	}).
	Action("getCount", func(c *rivet.Ctx[count]) int { return c.State.Count }).
	Action("hang", func(c *rivet.Ctx[count]) error {
		started <- struct{}{}
		<-c.Context().Done()
		return c.Context().Err()
	})

func serveLimits(t *testing.T, gw rivet.GatewayConfig) string {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(limited), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw})
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

const limitedQuery = "?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k"

// TestSendQueueBytes: a client that pipelines large replies and never
// reads is disconnected once its queue holds send_queue_bytes, long
// before the message count bound, and the drop is counted.
func TestSendQueueBytes(t *testing.T) {
	base := serveLimits(t, rivet.GatewayConfig{SendQueueBytes: 256 << 10})
	ctx := context.Background()
	c := dial(t, base, "/gateway/limited/connect"+limitedQuery, "rivet", "rivet_encoding.json")
	defer c.CloseNow()
	// 300 replies of 64 KiB: ~19 MiB, more than the socket buffers hold;
	// 300 messages are far under the count bound (1024).
	for i := range 300 {
		req := fmt.Sprintf(`{"body":{"tag":"ActionRequest","val":{"id":%d,"name":"blob","args":[65536]}}}`, i)
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			break // already disconnected
		}
	}
	if code, reason := readUntilClose(t, c); code != 1011 || reason != "message.outgoing_queue_full" {
		t.Fatalf("closed %d %q, want 1011 message.outgoing_queue_full", code, reason)
	}
	fams := scrape(t, base)
	if v := value(fams, "rivet_errors_total", "code", "message.outgoing_queue_full"); v != 1 {
		t.Fatalf("errors_total{message.outgoing_queue_full} = %v", v)
	}
}

// wsError reads until an Error message and the close that follows it.
func wsError(t *testing.T, c *websocket.Conn) (msg string, code websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !asClose(err, &ce) {
				t.Fatalf("read: %v", err)
			}
			return msg, ce.Code, ce.Reason
		}
		if bytes.Contains(b, []byte(`"tag":"Error"`)) {
			msg = string(b)
		}
	}
}

// TestSubscriptionLimits: subscriptions are bounded per connection, and
// so are event names; past either the client gets an Error naming the
// limit, then close 1011 group.code.
func TestSubscriptionLimits(t *testing.T) {
	base := serveLimits(t, rivet.GatewayConfig{MaxSubscriptions: 3})
	ctx := context.Background()
	sub := func(c *websocket.Conn, name string) {
		m := fmt.Sprintf(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":%q,"subscribe":true}}}`, name)
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, base, "/gateway/limited/connect"+limitedQuery, "rivet", "rivet_encoding.json")
	defer c.CloseNow()
	for _, n := range []string{"a", "b", "c", "a", "b"} { // repeats do not count
		sub(c, n)
	}
	// The connection still works.
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1,"name":"getCount","args":[]}}}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("ActionResponse")) {
			break
		}
	}
	sub(c, "d")
	msg, code, reason := wsError(t, c)
	if code != 1011 || reason != "connection.too_many_subscriptions" || !strings.Contains(msg, "RIVET_MAX_SUBSCRIPTIONS") || !strings.Contains(msg, "limit is 3") {
		t.Fatalf("4th subscription: %d %q %s", code, reason, msg)
	}

	c = dial(t, base, "/gateway/limited/connect"+limitedQuery, "rivet", "rivet_encoding.json")
	defer c.CloseNow()
	sub(c, strings.Repeat("e", 300))
	if _, code, reason := wsError(t, c); code != 1011 || reason != "message.event_name_too_long" {
		t.Fatalf("long event name: %d %q", code, reason)
	}
}

// TestTooLongMessagesNameTheLimit: message.incoming_too_long and
// message.outgoing_too_long say the limit and the setting that raises it;
// a result too large fails its action, whose changes are rolled back.
func TestTooLongMessagesNameTheLimit(t *testing.T) {
	base := serveLimits(t, rivet.GatewayConfig{MaxIncomingMessageSize: 1024})
	url := base + "/gateway/limited/action/"
	code, m := post(t, url+"blob"+limitedQuery, "json", []byte(`{"args":["`+strings.Repeat("a", 2000)+`"]}`))
	wantErr(t, "large body", code, m, 400, "message.incoming_too_long")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "1024 bytes (1 KiB)") || !strings.Contains(msg, "max_incoming_message_size") || !strings.Contains(msg, "RIVET_MAX_INCOMING_MESSAGE_SIZE") {
		t.Fatalf("message: %q", msg)
	}

	code, m = post(t, url+"bumpBlob"+limitedQuery, "json", []byte(`{"args":[1000000]}`))
	wantErr(t, "large result", code, m, 400, "message.outgoing_too_long")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "1048576 bytes (1 MiB)") || !strings.Contains(msg, "RIVET_MAX_OUTGOING_MESSAGE_SIZE") {
		t.Fatalf("message: %q", msg)
	}
	code, m = post(t, url+"getCount"+limitedQuery, "json", []byte(`{"args":[]}`))
	if code != 200 || m["output"] != float64(0) {
		t.Fatalf("count after a refused result: %d %v (want 0: rolled back)", code, m)
	}

	// Over a WebSocket, the message comes before the close.
	c := dial(t, base, "/gateway/limited/connect"+limitedQuery, "rivet", "rivet_encoding.json")
	defer c.CloseNow()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1,"name":"blob","args":["`+strings.Repeat("a", 2000)+`"]}}}`)); err != nil {
		t.Fatal(err)
	}
	if msg, code, reason := wsError(t, c); code != 1011 || reason != "message.incoming_too_long" || !strings.Contains(msg, "RIVET_MAX_INCOMING_MESSAGE_SIZE") {
		t.Fatalf("websocket: %d %q %s", code, reason, msg)
	}
}

// TestSlowBody: a body that does not arrive within body_timeout is
// answered 408 message.incoming_timeout.
func TestSlowBody(t *testing.T) {
	base := serveLimits(t, rivet.GatewayConfig{BodyTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "POST /gateway/limited/action/getCount"+limitedQuery+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"args\""); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(b, []byte(`"code":"incoming_timeout"`)) || !bytes.Contains(b, []byte("RIVET_BODY_TIMEOUT")) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestClientHangUp: a client that hangs up during its action is counted
// as 499, not as an internal error.
func TestClientHangUp(t *testing.T) {
	base := serveLimits(t, rivet.GatewayConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/gateway/limited/action/hang"+limitedQuery, strings.NewReader(`{"args":[]}`))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-started
	cancel()
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := scrape(t, base)
		if value(fams, "rivet_gateway_requests_total", "kind", "action", "status", "499") == 1 {
			if v := value(fams, "rivet_errors_total", "code", "core.internal_error"); v > 0 {
				t.Fatalf("counted as internal errors: %v", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no 499 counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
