package enginetest

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on a loopback port in front of an engine node, for
// fault tests: put it between a runner and the engine (the runner's
// engine URL is Proxy.URL) and cut or stall the runner's connection while
// turns are in flight. It relays bytes unchanged, so HTTP and WebSockets
// (the runner's socket and its runner-config request) pass through. Its
// methods are safe for concurrent use; it closes when the test ends.
type Proxy struct {
	t        testing.TB
	l        net.Listener
	upstream string // host:port

	mu      sync.Mutex
	conns   map[*proxyConn]struct{}
	stalled bool
	resume  chan struct{} // closed by Resume
	refuse  bool
	dialed  int
	wg      sync.WaitGroup
	closed  bool
}

type proxyConn struct{ down, up net.Conn }

func (c *proxyConn) close() {
	_ = c.down.Close()
	_ = c.up.Close()
}

// StartProxy starts a proxy to upstream, an engine URL (GuardURL) or a
// host:port.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	upstream = strings.TrimPrefix(strings.TrimPrefix(upstream, "http://"), "ws://")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, l: l, upstream: upstream, conns: map[*proxyConn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's address as an engine URL.
func (p *Proxy) URL() string { return "http://" + p.l.Addr().String() }

// Connections is the number of connections the proxy accepted so far.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dialed
}

// Cut closes every relayed connection on both sides at once, without a
// close handshake, as a network failure seen by both ends would. New
// connections are accepted (unless Refuse is on).
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[*proxyConn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.close()
	}
}

// Refuse makes the proxy close new connections at once (on) or relay
// them again (off): the engine looks unreachable to a reconnecting runner.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Stall stops relaying bytes in both directions on every connection, old
// and new, until Resume: a partition in which neither end sees a close.
// Bytes read while stalled are held and delivered on Resume, as TCP
// would after a partition heals, unless a side closed meanwhile.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.resume = make(chan struct{})
	}
}

// Resume ends a Stall.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
}

func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resume
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refuse || p.closed {
			p.mu.Unlock()
			_ = down.Close()
			continue
		}
		p.dialed++
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = down.Close()
			continue
		}
		c := &proxyConn{down: down, up: up}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.close()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.relay(c, c.up, c.down)
		go p.relay(c, c.down, c.up)
	}
}

// relay copies src to dst, waiting at the gate before each write; when
// either side ends, both are closed.
func (p *Proxy) relay(c *proxyConn, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
	p.mu.Unlock()
	if err := p.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Errorf("enginetest: close proxy: %v", err)
	}
	p.Cut()
	p.wg.Wait()
}
