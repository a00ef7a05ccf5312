package rivet_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// serveLimited runs a runtime behind ServeHandler with gw and returns its
// address.
func serveLimited(t *testing.T, gw rivet.GatewayConfig) string {
	t.Helper()
	ping := rivet.NewActor("ping", rivet.Opts[rivet.None]{}).Action("ping", func(*rivet.Ctx[rivet.None]) string { return "pong" })
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(ping), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.ServeHandler(ctx, l, rt.Handler()) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = rt.Stop(context.Background())
	})
	return l.Addr().String()
}

// keepAlive opens a connection and makes one request on it, leaving it
// open and idle.
func keepAlive(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	return c, br
}

// closedByServer waits (bounded) for the server to close c.
func closedByServer(c net.Conn, br *bufio.Reader, within time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout()) // EOF or reset

}

// TestIdleConnectionsClosed: a keep-alive connection without a request
// is closed after idle_timeout.
func TestIdleConnectionsClosed(t *testing.T) {
	addr := serveLimited(t, rivet.GatewayConfig{IdleTimeout: 100 * time.Millisecond})
	c, br := keepAlive(t, addr)
	if !closedByServer(c, br, 10*time.Second) {
		t.Fatal("idle connection still open")
	}
}

// TestMaxConnections: at the bound a new connection closes the
// longest-idle one; with none idle it gets 503 and the server goes on.
func TestMaxConnections(t *testing.T) {
	addr := serveLimited(t, rivet.GatewayConfig{MaxConnections: 2})
	c1, br1 := keepAlive(t, addr)
	c2, br2 := keepAlive(t, addr)
	// A third connection is served: an idle one (c1 unless the server has
	// not yet noted it idle) is closed to make room, the other stays.
	keepAlive(t, addr)
	closed1 := closedByServer(c1, br1, 5*time.Second)
	wait := 5 * time.Second
	if closed1 {
		wait = 100 * time.Millisecond
	}
	closed2 := closedByServer(c2, br2, wait)
	if closed1 == closed2 {
		t.Fatalf("closed: c1 %v, c2 %v; want exactly one", closed1, closed2)
	}

	// Busy connections (actions waiting for the rest of their bodies)
	// are never closed to make room: the newcomer gets 503.
	addr = serveLimited(t, rivet.GatewayConfig{MaxConnections: 2})
	type busy struct {
		c  net.Conn
		br *bufio.Reader
	}
	var conns []busy
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /gateway/ping/action/ping?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"args\":"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, busy{c, bufio.NewReader(c)})
	}
	// Wait until the server has seen both connections turn active.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.HasPrefix(string(b), "HTTP/1.1 503") {
			if !strings.Contains(string(b), `"code":"service_unavailable"`) {
				t.Fatalf("refusal: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 503 at the bound: %q", b)
		}
	}
	// Finishing the requests answers them and makes room again.
	for _, x := range conns {
		_ = x.c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(x.c, "[]}"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(x.br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("busy request: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	keepAlive(t, addr)
}
