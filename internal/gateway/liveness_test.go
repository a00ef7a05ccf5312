package gateway_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// pingedEvents: per actor key, what happened to it ("disconnect", "sleep").
var pingedEvents sync.Map // string -> chan string

func pingedChan(key string) chan string {
	ch, _ := pingedEvents.LoadOrStore(key, make(chan string, 16))
	return ch.(chan string)
}

var pinged = rivet.NewActor("pinged", rivet.Opts[count]{
	SleepTimeout: 100 * time.Millisecond,
	OnDisconnect: func(c *rivet.Ctx[count], _ *rivet.Conn[rivet.None]) {
		pingedChan(c.Key()[0]) <- "disconnect"
	},
	OnSleep: func(c *rivet.Ctx[count]) error {
		pingedChan(c.Key()[0]) <- "sleep"
		return nil
	},
}).Action("getCount", func(c *rivet.Ctx[count]) int { return c.State.Count })

func servePinged(t *testing.T, gw rivet.GatewayConfig) string {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(pinged), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw})
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

// rawWebSocket completes a WebSocket handshake to path over a plain TCP
// connection and returns it, past the 101 response.
func rawWebSocket(t *testing.T, base, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: rivet, rivet_encoding.json\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return c, br
}

// readFrame reads one unmasked server frame.
func readFrame(br *bufio.Reader) (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(br, payload)
	return h[0] & 0x0f, payload, err
}

// writeFrame writes one masked client frame (mask key zero).
func writeFrame(c net.Conn, opcode byte, payload []byte) error {
	if len(payload) > 125 {
		return fmt.Errorf("test frames are small")
	}
	b := append([]byte{0x80 | opcode, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	_, err := c.Write(b)
	return err
}

// waitEvent waits for the event want, skipping others.
func waitEvent(t *testing.T, ch chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

// TestDeadPeerDisconnected: a client that completes the handshake and
// then never reads nor answers a ping (a half-open connection) is
// disconnected by the server's pings, and its actor goes to sleep.
func TestDeadPeerDisconnected(t *testing.T) {
	t.Parallel()
	base := servePinged(t, rivet.GatewayConfig{PingInterval: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	ch := pingedChan("dead")
	rawWebSocket(t, base, "/gateway/pinged/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=dead")
	// Generous bounds: the machine is loaded; the point is that it ends.
	waitEvent(t, ch, "disconnect", 20*time.Second)
	waitEvent(t, ch, "sleep", 20*time.Second)
	fams := scrape(t, base)
	if v := value(fams, "rivet_errors_total", "code", "connection.ping_timeout"); v != 1 {
		t.Fatalf("errors_total{connection.ping_timeout} = %v", v)
	}
}

// TestLivePeerKept: a client that answers the pings stays connected past
// many ping timeouts and keeps getting answers.
func TestLivePeerKept(t *testing.T) {
	t.Parallel()
	base := servePinged(t, rivet.GatewayConfig{PingInterval: 20 * time.Millisecond, PingTimeout: 5 * time.Second})
	ch := pingedChan("live")
	c, br := rawWebSocket(t, base, "/gateway/pinged/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=live")
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	pings := 0
	for pings < 10 {
		op, p, err := readFrame(br)
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if op == 0x9 {
			pings++
			if err := writeFrame(c, 0xA, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := writeFrame(c, 0x1, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1,"name":"getCount","args":[]}}}`)); err != nil {
		t.Fatal(err)
	}
	for {
		op, p, err := readFrame(br)
		if err != nil {
			t.Fatalf("waiting for the action response: %v", err)
		}
		if op == 0x9 {
			_ = writeFrame(c, 0xA, p)
			continue
		}
		if op == 0x1 && strings.Contains(string(p), `"ActionResponse"`) {
			break
		}
	}
	for {
		select {
		case ev := <-ch:
			if ev == "disconnect" {
				t.Fatal("a live client was disconnected")
			}
			continue
		default:
		}
		break
	}
}
