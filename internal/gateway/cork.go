package gateway

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
)

// corkMax bounds what a cork holds: past it, the gathered bytes go out at
// once.
const corkMax = 64 << 10

// corkConn is a WebSocket's network connection that a sender can cork:
// coder/websocket writes every message with its own flush (one write
// syscall per message); corked, the writes gather in a buffer and uncork
// sends them in one write. Control frames written meanwhile (pongs,
// pings) join the gathered bytes in order.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > corkMax {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// cork starts gathering writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered and stops gathering. ctx bounds the
// write: when it ends first, the connection is closed.
func (c *corkConn) uncork(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.Close() })
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

// corkWriter is the ResponseWriter a WebSocket is accepted through: its
// Hijack hands coder/websocket a corkConn.
type corkWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: nc}
	// brw.Writer is empty (the upgrade response was flushed) and
	// writes to nc; coder/websocket writes every frame through it.
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}
