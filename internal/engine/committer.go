package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// incarnation is one activation of an actor. When one of its commits fails,
// the incarnation is marked failed: its later commits are refused without
// being written, and the actor restarts from durable state.
type incarnation struct {
	generation uint64
	failed     atomic.Bool
	nm         *nameMetrics // the actor name's metrics, nil if unknown
	// requests indexes the request records (requestlog.go), read at
	// the first tunnelled action; owned by the host's goroutine.
	requests *requestLog
}

// Gate is the durability promise of a turn. A turn's result and the events
// it emitted are released only after its gate opens; a gate that fails
// carries the error the caller sees instead of the result.
type Gate struct {
	commit rivetdriver.Commit
	inc    *incarnation
	done   chan struct{}
	err    error
	// alarm, when set, is the actor's earliest alarm after this commit
	// (zero: none), reported through Engine.OnAlarm once it is durable.
	alarm *time.Time
	// after are the functions AfterSettle registered, run when the gate
	// settles; open marks it settled.
	mu     sync.Mutex
	after  []func()
	opened bool
}

// open settles the gate (its err set): done closes and the functions
// AfterSettle registered run, on the settling goroutine.
func (g *Gate) open() {
	g.mu.Lock()
	g.opened = true
	close(g.done)
	after := g.after
	g.after = nil
	g.mu.Unlock()
	for _, f := range after {
		f()
	}
}

// AfterSettle runs f once the gate is settled: at once on the calling
// goroutine if it is (or the gate is nil), else on the goroutine that
// settles it, so f must not block. A socket's writer uses it to be woken
// once, when the frame it was handed can go, instead of waking to wait.
func (g *Gate) AfterSettle(f func()) {
	if g == nil {
		f()
		return
	}
	g.mu.Lock()
	if g.opened {
		g.mu.Unlock()
		f()
		return
	}
	g.after = append(g.after, f)
	g.mu.Unlock()
}

// Wait blocks until the gate's commit is durable or failed. A nil gate is
// open.
func (g *Gate) Wait(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the gate is settled.
func (g *Gate) Done() <-chan struct{} {
	if g == nil {
		return closedChan
	}
	return g.done
}

// Err is the gate's outcome; valid after Done is closed.
func (g *Gate) Err() error {
	if g == nil {
		return nil
	}
	return g.err
}

// Settled reports whether the gate is open or failed. A nil gate is
// open.
func (g *Gate) Settled() bool {
	if g == nil {
		return true
	}
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// DefaultStoreTimeout is the default of Config.StoreTimeout.
const DefaultStoreTimeout = 30 * time.Second

// maxBatch bounds how many commits share one driver call.
const maxBatch = 4096

// maxInflight bounds the batches handed to a pipelining driver whose
// fsync has not finished.
const maxInflight = 4

// committer writes commits in batches: while one batch is being made
// durable, new commits queue, and the next batch takes all of them. Under
// load many turns share one fsync (group commit); idle, a commit is written
// at once, by the goroutine that submits it when the driver pipelines. With a driver that pipelines (rivetdriver.Pipeliner), the next
// batch is applied while earlier ones are still syncing, and gates open in
// batch order as their fsyncs finish.
type committer struct {
	driver  rivetdriver.Driver
	pipe    rivetdriver.Pipeliner
	metrics *Metrics
	prom    *promMetrics // nil in tests that build a bare committer
	// timeout bounds one driver call (see Config.StoreTimeout); 0
	// means none.
	timeout time.Duration
	mu      struct {
		sync.Mutex
		queue  []*Gate
		closed bool
		// applying: a goroutine is handing a batch to the driver, the
		// committer's own or a submitter writing inline (submit).
		applying bool
		// inflight counts the batches handed to a pipelining driver
		// and not yet settled.
		inflight int
	}
	// onAlarm reports a gate's alarm (see Gate.alarm) before the gate
	// opens.
	onAlarm  func(id string, generation uint64, at time.Time)
	signal   chan struct{}
	inflight chan inflightBatch
	done     chan struct{}
}

// inflightBatch is a batch applied by a pipelining driver and not yet
// settled.
type inflightBatch struct {
	gates []*Gate
	wait  func() error
	err   error
	start time.Time
}

func newCommitter(d rivetdriver.Driver, m *Metrics) *committer {
	c := &committer{driver: d, metrics: m, signal: make(chan struct{}, 1), done: make(chan struct{})}
	if p, ok := d.(rivetdriver.Pipeliner); ok {
		c.pipe = p
		c.inflight = make(chan inflightBatch, maxInflight-1)
	}
	return c
}

var errCommitterClosed = errors.New("rivet: committer closed")

// errStoreTimeout is the cause of a store call that outlived the store
// timeout (Config.StoreTimeout).
var errStoreTimeout = errors.New("rivet: store call timed out")

func (c *committer) submit(g *Gate) { c.submitFrom(g, true) }

// submitFrom queues g; mayApply lets the caller apply it itself when the
// committer is idle. An actor with more calls waiting passes false: its
// next turns' commits then gather behind the committer's wake-up and
// share the first fsync, where applying the first alone would give it an
// fsync of its own (group commit under a hot actor).
func (c *committer) submitFrom(g *Gate, mayApply bool) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		g.err = rivettype.ErrStopping
		g.open()
		return
	}
	c.metrics.Submitted.Add(1)
	if mayApply && c.pipe != nil && !c.mu.applying && c.mu.inflight == 0 && len(c.mu.queue) == 0 {
		// Idle: apply the commit here instead of waking the committer
		// (one goroutine hand-off less on the way to the fsync). The
		// fsync is awaited by the settling goroutine as for any batch,
		// so the caller (the actor's loop) does not wait for it.
		c.mu.applying = true
		c.mu.Unlock()
		c.write([]*Gate{g})
		c.mu.Lock()
		c.mu.applying = false
		more := len(c.mu.queue) > 0 || c.mu.closed
		c.mu.Unlock()
		if more {
			c.wake()
		}
		return
	}
	c.mu.queue = append(c.mu.queue, g)
	c.mu.Unlock()
	c.wake()
}

func (c *committer) wake() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// run is the committer loop; it returns after close once the queue is
// drained and every batch settled.
func (c *committer) run() {
	if c.pipe != nil {
		settled := make(chan struct{})
		go func() {
			defer close(settled)
			for b := range c.inflight {
				err := b.err
				if err == nil {
					err = b.wait()
				}
				// Counted out before its gates open: the commit an
				// answered caller sends next finds the pipeline idle.
				c.mu.Lock()
				c.mu.inflight--
				c.mu.Unlock()
				c.observeBatch(b.start, len(b.gates))
				c.settle(b.gates, err)
			}
		}()
		defer func() {
			close(c.inflight)
			<-settled
			close(c.done)
		}()
	} else {
		defer close(c.done)
	}
	var batch []*Gate
	for {
		c.mu.Lock()
		for len(c.mu.queue) == 0 || c.mu.applying {
			if c.mu.closed && !c.mu.applying {
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			<-c.signal
			c.mu.Lock()
		}
		n := min(len(c.mu.queue), maxBatch)
		batch = append(batch[:0], c.mu.queue[:n]...)
		rest := copy(c.mu.queue, c.mu.queue[n:])
		clear(c.mu.queue[rest:])
		c.mu.queue = c.mu.queue[:rest]
		c.mu.applying = true
		c.mu.Unlock()
		c.write(batch)
		c.mu.Lock()
		c.mu.applying = false
		c.mu.Unlock()
	}
}

// write hands one batch to the driver. Commits of incarnations that
// already failed are refused without being written.
func (c *committer) write(batch []*Gate) {
	live := make([]*Gate, 0, len(batch))
	commits := make([]*rivetdriver.Commit, 0, len(batch))
	for _, g := range batch {
		if g.inc.failed.Load() {
			g.err = rivettype.ErrCommitFailed.With("an earlier commit of this actor failed")
			g.open()
			continue
		}
		live = append(live, g)
		commits = append(commits, &g.commit)
	}
	if len(live) == 0 {
		return
	}
	if c.metrics != nil {
		c.metrics.Commits.Add(uint64(len(live)))
		c.metrics.Batches.Add(1)
	}
	start := time.Now()
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if c.timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(ctx, c.timeout, errStoreTimeout)
	}
	defer cancel()
	if c.pipe == nil {
		err := c.driver.Commit(ctx, commits)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w after %v: %w", errStoreTimeout, c.timeout, err)
		}
		c.observeBatch(start, len(live))
		c.settle(live, err)
		return
	}
	// The timeout bounds applying the batch; its fsync (wait) takes no
	// context: a disk that hangs an fsync holds the store.
	wait, err := c.pipe.CommitAsync(ctx, commits)
	c.mu.Lock()
	c.mu.inflight++
	c.mu.Unlock()
	c.inflight <- inflightBatch{gates: live, wait: wait, err: err, start: start}
}

// observeBatch records a written batch's size and its write + fsync
// time.
func (c *committer) observeBatch(start time.Time, n int) {
	if c.prom == nil {
		return
	}
	c.prom.commitSeconds.Observe(time.Since(start).Seconds())
	c.prom.batchSize.Observe(float64(n))
}

// settle opens (or fails) the gates of a batch the driver finished.
func (c *committer) settle(live []*Gate, err error) {
	for _, g := range live {
		switch {
		case err != nil:
			g.inc.failed.Store(true)
			g.err = fmt.Errorf("%w: %w", rivettype.ErrCommitFailed, err)
		case g.commit.Err != nil:
			g.inc.failed.Store(true)
			g.err = fmt.Errorf("%w: %w", rivettype.ErrCommitFailed, g.commit.Err)
		}
		if g.err != nil && g.inc.nm != nil {
			g.inc.nm.commitFailed.Inc()
		}
		if g.err == nil && g.alarm != nil && c.onAlarm != nil {
			c.onAlarm(g.commit.ActorID, g.commit.Generation, *g.alarm)
		}
		g.open()
	}
}

// close stops accepting commits and waits until the queue is written.
func (c *committer) close() {
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	c.wake()
	<-c.done
}
