package rivetpg

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pool is a small bounded pool of pgx connections.
//
// pgx's own pool (pgxpool) needs github.com/jackc/puddle/v2, which is not
// a dependency of this module; this pool does the part the driver needs:
// at most max connections, acquisition that honours ctx, connections that
// failed or were closed by a canceled context are discarded, and a
// connection idle for longer than pingAfter is pinged before reuse so that
// a server restart costs one failed ping, not a failed commit.
type pool struct {
	cfg *pgx.ConnConfig
	// pingAfter is how long a connection may sit idle before it is
	// checked with a ping when it is next taken.
	pingAfter time.Duration
	// slots holds one token per connection that may be open or opening.
	slots chan struct{}

	mu struct {
		sync.Mutex
		idle   []idleConn
		closed bool
	}
}

type idleConn struct {
	c     *pgx.Conn
	since time.Time
}

func newPool(cfg *pgx.ConnConfig, maxConns int) *pool {
	return &pool{cfg: cfg, pingAfter: time.Second, slots: make(chan struct{}, maxConns)}
}

// acquire returns a connection; it waits for a free slot until ctx is done.
// Every successful acquire is paired with release.
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.mu.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, errClosed
		}
		var ic idleConn
		if n := len(p.mu.idle); n > 0 {
			ic = p.mu.idle[n-1]
			p.mu.idle = p.mu.idle[:n-1]
		}
		p.mu.Unlock()
		if ic.c == nil {
			break
		}
		if ic.c.IsClosed() {
			continue
		}
		if time.Since(ic.since) < p.pingAfter || ic.c.Ping(ctx) == nil {
			return ic.c, nil
		}
		closeConn(ic.c)
		if err := ctx.Err(); err != nil {
			<-p.slots
			return nil, err
		}
	}
	c, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// release returns c to the pool. A connection that is closed, that is
// inside a transaction, or that the caller marks broken is closed instead.
func (p *pool) release(c *pgx.Conn, broken bool) {
	defer func() { <-p.slots }()
	if broken || c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		closeConn(c)
		return
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		closeConn(c)
		return
	}
	p.mu.idle = append(p.mu.idle, idleConn{c: c, since: time.Now()})
	p.mu.Unlock()
}

// close closes the idle connections; connections in use are closed when
// they are released.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.mu.idle
	p.mu.idle, p.mu.closed = nil, true
	p.mu.Unlock()
	for _, ic := range idle {
		closeConn(ic.c)
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
