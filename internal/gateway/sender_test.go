package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countConn counts the writes that reach the network connection.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// senderPair is a server socket accepted through the gateway's corkWriter,
// its sender (not running) and the client end.
func senderPair(t *testing.T) (*sender, *countConn, *websocket.Conn) {
	t.Helper()
	type side struct {
		c    *websocket.Conn
		cork *corkConn
	}
	ready := make(chan side, 1)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkWriter{ResponseWriter: w}
		c, err := websocket.Accept(cw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		ready <- side{c, cw.conn}
		<-stop // a hijacked request's context is not canceled
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.CloseNow() })
	s := <-ready
	if s.cork == nil {
		t.Fatal("accept did not go through the corkWriter's Hijack")
	}
	cc := &countConn{Conn: s.cork.Conn}
	s.cork.Conn = cc // nothing was written since the upgrade
	out := newSender(s.c, queueLimits{messages: 1000, bytes: 1 << 20, writeTimeout: 10 * time.Second}, nil, nil)
	out.cork = s.cork
	t.Cleanup(func() { s.c.CloseNow() })
	return out, cc, client
}

func textFrame(s string) frame {
	return frame{size: len(s), build: func() (websocket.MessageType, []byte, error) {
		return websocket.MessageText, []byte(s), nil
	}}
}

// TestSenderBatchOneWrite: the frames a sender finds queued together go to
// the socket in one write, in order.
func TestSenderBatchOneWrite(t *testing.T) {
	out, cc, client := senderPair(t)
	const n = 50
	for i := range n {
		out.push(textFrame(fmt.Sprint(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go out.run(ctx)
	for i := range n {
		_, b, err := client.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != fmt.Sprint(i) {
			t.Fatalf("message %d = %q", i, b)
		}
	}
	if w := cc.writes.Load(); w != 1 {
		t.Fatalf("%d frames took %d writes to the socket, want 1", n, w)
	}
}

// TestSenderSendInline: an answer whose gate is open is written by the
// goroutine that sends it when nothing else is queued, without the
// sender's goroutine (not running here).
func TestSenderSendInline(t *testing.T) {
	out, _, client := senderPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out.send(ctx, textFrame("answer"))
	_, b, err := client.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "answer" {
		t.Fatalf("read %q", b)
	}
	// Something queued goes first: send queues behind it.
	out.push(textFrame("first"))
	out.send(ctx, textFrame("second"))
	go out.run(ctx)
	for _, want := range []string{"first", "second"} {
		_, b, err := client.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Fatalf("read %q, want %q", b, want)
		}
	}
}
