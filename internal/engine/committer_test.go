package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// pipeDriver is a pipelining driver whose fsyncs wait for the test: each
// CommitAsync records its batch size and returns a wait that blocks until
// the batch is released.
type pipeDriver struct {
	*rivetmem.Driver
	mu      sync.Mutex
	sizes   []int
	release []chan struct{}
}

func (d *pipeDriver) CommitAsync(_ context.Context, batch []*rivetdriver.Commit) (func() error, error) {
	ch := make(chan struct{})
	d.mu.Lock()
	d.sizes = append(d.sizes, len(batch))
	d.release = append(d.release, ch)
	d.mu.Unlock()
	return func() error { <-ch; return nil }, nil
}

func (d *pipeDriver) batches() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.sizes...)
}

func (d *pipeDriver) sync(i int) {
	d.mu.Lock()
	ch := d.release[i]
	d.mu.Unlock()
	close(ch)
}

// TestCommitterIdleAppliesInline: an idle committer applies a commit on
// the submitting goroutine (no hand-off to the committer's own), still
// opens its gate only once the commit is durable, and commits submitted
// while that one syncs are grouped into one batch by the committer.
func TestCommitterIdleAppliesInline(t *testing.T) {
	d := &pipeDriver{Driver: rivetmem.New()}
	c := newCommitter(d, &Metrics{})
	inc := &incarnation{}
	gate := func() *Gate {
		return &Gate{commit: rivetdriver.Commit{ActorID: "a"}, inc: inc, done: make(chan struct{})}
	}
	first := gate()
	c.submit(first) // the committer's goroutine is not even running
	if got := d.batches(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("after submit to an idle committer, batches %v, want [1] (applied by the submitter)", got)
	}
	if first.Settled() {
		t.Fatal("gate open before its commit was durable")
	}
	// The first batch is syncing: the next commits queue for the
	// committer and share one batch.
	rest := make([]*Gate, 10)
	for i := range rest {
		rest[i] = gate()
		c.submit(rest[i])
	}
	if got := d.batches(); len(got) != 1 {
		t.Fatalf("commits submitted during a sync were applied at once: batches %v", got)
	}
	done := make(chan struct{})
	go func() { c.run(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(d.batches()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("batches %v, want the queued commits written", d.batches())
		}
		time.Sleep(time.Millisecond)
	}
	if got := d.batches(); len(got) != 2 || got[1] != len(rest) {
		t.Fatalf("batches %v, want [1 %d]", got, len(rest))
	}
	for _, g := range rest {
		if g.Settled() {
			t.Fatal("gate open before its commit was durable")
		}
	}
	d.sync(0)
	if err := first.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, g := range rest {
		if g.Settled() {
			t.Fatal("gate of the second batch open before its fsync")
		}
	}
	d.sync(1)
	for _, g := range rest {
		if err := g.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Idle again: the next commit is applied inline once more.
	last := gate()
	c.submit(last)
	if got := d.batches(); len(got) != 3 {
		t.Fatalf("batches %v, want a third applied by the submitter", got)
	}
	d.sync(2)
	if err := last.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.close()
	<-done
}

// TestGateAfterSettle: AfterSettle runs at once on a settled (or nil)
// gate, and on the settling goroutine, after done is closed, otherwise.
func TestGateAfterSettle(t *testing.T) {
	ran := 0
	var nilGate *Gate
	nilGate.AfterSettle(func() { ran++ })
	if ran != 1 {
		t.Fatal("AfterSettle on a nil gate did not run at once")
	}
	g := &Gate{done: make(chan struct{})}
	g.AfterSettle(func() {
		if !g.Settled() {
			t.Error("ran before the gate settled")
		}
		ran++
	})
	if ran != 1 {
		t.Fatal("AfterSettle ran before the gate settled")
	}
	g.open()
	if ran != 2 {
		t.Fatal("AfterSettle did not run when the gate settled")
	}
	g.AfterSettle(func() { ran++ })
	if ran != 3 {
		t.Fatal("AfterSettle on a settled gate did not run at once")
	}
}
