// Package memnet is a net.Listener of in-memory connections: an HTTP
// server serves it while callers in the same process Dial it, with no
// socket. The in-process Go client and the engine runner's tunnelled
// WebSockets use it to reach the gateway handler.
package memnet

import (
	"context"
	"net"
	"sync"
)

// Listener hands connections made by Dial to Accept. It is safe for
// concurrent use.
type Listener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewListener returns an open Listener.
func NewListener() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next Dial, or fails with net.ErrClosed once the
// listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and Dial; connections already made stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is a placeholder address ("in-process").
func (l *Listener) Addr() net.Addr { return addr{} }

// Dial connects to the listener: it returns the client end of a
// net.Pipe whose server end Accept returns.
func (l *Listener) Dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type addr struct{}

func (addr) Network() string { return "pipe" }
func (addr) String() string  { return "in-process" }
