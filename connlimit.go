package rivet

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter bounds the connections a server holds open. Accept counts a
// connection until it closes (a WebSocket keeps counting after the
// upgrade); at the bound it closes the longest-idle keep-alive connection
// to make room, and if none is idle it answers the newcomer 503 and
// closes it, so that file descriptors never run out for the store and
// for the requests already in progress.
type connLimiter struct {
	net.Listener
	max int
	log *slog.Logger

	mu       sync.Mutex
	open     int
	idle     map[net.Conn]time.Time
	lastWarn atomic.Int64 // unix seconds of the last refusal logged
}

func newConnLimiter(l net.Listener, max int, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: l, max: max, log: log, idle: map[net.Conn]time.Time{}}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open >= l.max {
			victim := l.oldestIdle()
			l.mu.Unlock()
			if victim == nil {
				l.refuse(c)
				continue
			}
			_ = victim.Close()
			l.mu.Lock()
		}
		l.open++
		l.mu.Unlock()
		if _, ok := c.(*tls.Conn); ok {
			// The server must see a TLS connection as one: it is
			// counted down by connState when it closes instead.
			return c, nil
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// oldestIdle removes and returns the longest-idle connection, if any.
func (l *connLimiter) oldestIdle() net.Conn {
	var victim net.Conn
	var since time.Time
	for c, t := range l.idle {
		if victim == nil || t.Before(since) {
			victim, since = c, t
		}
	}
	if victim != nil {
		delete(l.idle, victim)
	}
	return victim
}

const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 95\r\n\r\n" +
	`{"group":"guard","code":"service_unavailable","message":"The server has too many connections."}`

// refuse answers a connection over the bound and closes it.
func (l *connLimiter) refuse(c net.Conn) {
	if now := time.Now().Unix(); l.lastWarn.Swap(now) != now {
		l.log.Warn("rivet: connection refused: max_connections reached", "max_connections", l.max)
	}
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte(refusal))
		_ = c.Close()
	}()
}

// connState is the server's ConnState hook: it tracks idle connections,
// and counts down the connections Accept did not wrap.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateIdle:
		l.idle[c] = time.Now()
	case http.StateActive:
		delete(l.idle, c)
	case http.StateClosed, http.StateHijacked:
		delete(l.idle, c)
		if _, ok := c.(*limitedConn); !ok {
			l.open--
		}
	}
}

// limitedConn counts down its limiter once closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		delete(c.l.idle, c)
		c.l.mu.Unlock()
	})
	return err
}

// defaultMaxConnections is three quarters of the open-file limit, leaving
// the rest to the store and the process; 0 (no bound) where the limit is
// unknown.
func defaultMaxConnections() int {
	return openFileLimit() / 4 * 3
}
