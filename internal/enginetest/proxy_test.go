package enginetest_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
)

// The proxy relays bytes both ways, holds them while stalled and delivers
// them on Resume, and Cut closes the relayed connections (new ones are
// still accepted).
func TestProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }() // echo
		}
	}()
	p := enginetest.StartProxy(t, l.Addr().String())
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	echo := func(c net.Conn, msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
			t.Fatalf("echo %q: %q, %v", msg, b, err)
		}
	}
	c := dial()
	echo(c, "hello")

	p.Stall()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); n != 0 || err == nil {
		t.Fatalf("read %d bytes while stalled (%v)", n, err)
	}
	p.Resume()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "held" {
		t.Fatalf("after Resume: %q, %v", b, err)
	}

	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Cut")
	}
	echo(dial(), "again")
	if n := p.Connections(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
