package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/rivettype"
)

// Liveness: the gateway pings every WebSocket it serves each PingInterval
// and closes one whose pong has not come back within PingTimeout, so a
// peer that died or vanished behind a half-open TCP connection (a phone
// that lost its network, a proxy that dropped the flow) is disconnected
// within PingInterval + PingTimeout and cannot keep its actor awake. Any
// client that reads its socket answers pings by itself (browsers, the
// official clients, rivetclient).
//
// A pong is only read while the socket's read loop waits for the next
// message: while that loop is busy (a raw WebSocket's message turn, a
// connection at its limit of pending actions), a missing pong is not held
// against the peer and the next ping decides.

// Defaults of the liveness settings.
const (
	// DefaultPingInterval is the time between two pings of a WebSocket.
	DefaultPingInterval = 30 * time.Second
	// DefaultPingTimeout bounds the wait for a pong.
	DefaultPingTimeout = 30 * time.Second
)

var errPingTimeout = &rivettype.Error{Group: "connection", Code: "ping_timeout", Message: "The client did not answer a ping in time.", Public: true}

// readState tells the pinger whether a socket's read loop is waiting for
// a message (and so would read a pong).
type readState struct{ waiting atomic.Bool }

func (r *readState) enter() { r.waiting.Store(true) }
func (r *readState) leave() { r.waiting.Store(false) }

// keepAlive pings c until the returned stop is called (stop waits for the
// pinger). A peer that does not answer while rs reports its read loop
// waiting is closed at once through out (the read loop then ends with
// connection.ping_timeout), without a close handshake: it would not be
// answered either.
func (g *Gateway) keepAlive(ctx context.Context, c *websocket.Conn, out *sender, rs *readState, onDead func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(g.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			waiting := rs.waiting.Load()
			pctx, pcancel := context.WithTimeout(ctx, g.cfg.PingTimeout)
			err := c.Ping(pctx)
			pcancel()
			if err == nil || ctx.Err() != nil {
				continue
			}
			if !waiting || !rs.waiting.Load() {
				continue // the read loop was busy: the pong may be unread
			}
			g.metrics.countError(errPingTimeout)
			if onDead != nil {
				onDead()
			}
			out.kill(errPingTimeout)
			return
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
