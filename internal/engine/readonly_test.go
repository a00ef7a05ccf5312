package engine

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// blockingDriver holds every Commit until release is closed.
type blockingDriver struct {
	rivetdriver.Driver
	entered chan struct{} // receives once per Commit that started
	release chan struct{}
}

func (d *blockingDriver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	d.entered <- struct{}{}
	<-d.release
	return d.Driver.Commit(ctx, batch)
}

type callResult struct {
	out []byte
	err error
}

func callAsync(e *Engine, id, action string) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		out, err := e.Call(context.Background(), id, nil, nil, action, nil, encodeCount, 0)
		ch <- callResult{out, err}
	}()
	return ch
}

// A turn that changes nothing waits for no fsync, unless it could reveal
// state that is not durable yet: then it waits for that commit.
func TestReadOnlyTurnWaitsOnlyForWhatItReveals(t *testing.T) {
	d := &blockingDriver{Driver: rivetmem.New(), entered: make(chan struct{}, 16), release: make(chan struct{})}
	e, err := New(Config{Driver: d, Behaviors: []Behavior{benchActor}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		select {
		case <-d.release:
		default:
			close(d.release)
		}
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	// Two actors, created while commits go through.
	var ids []string
	for _, key := range []string{"x", "y"} {
		res := make(chan error, 1)
		var id string
		go func() {
			rec, _, err := e.Create(ctx, "", "hooked", []string{key}, nil, false)
			id = rec.ID
			res <- err
		}()
		<-d.entered
		d.release <- struct{}{}
		if err := <-res; err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	x, y := ids[0], ids[1]

	// y's increment is stuck in its commit.
	incY := callAsync(e, y, "inc")
	select {
	case <-d.entered:
	case <-ctx.Done():
		t.Fatal("y's commit never started")
	}
	// Reading x reveals nothing pending: it answers while the store is
	// stuck.
	select {
	case r := <-callAsync(e, x, "read"):
		if r.err != nil || !reflect.DeepEqual(r.out, counter(0)) {
			t.Fatalf("read x = %x, %v", r.out, r.err)
		}
	case <-ctx.Done():
		t.Fatal("a read-only turn of another actor waited for a commit")
	}
	// Reading y would reveal the uncommitted 1: it waits for the commit.
	readY := callAsync(e, y, "read")
	select {
	case r := <-readY:
		t.Fatalf("read y answered %x, %v before y's commit was durable", r.out, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	close(d.release)
	for _, ch := range []<-chan callResult{incY, readY} {
		if r := <-ch; r.err != nil || !reflect.DeepEqual(r.out, counter(1)) {
			t.Fatalf("after the commit: %x, %v; want 1", r.out, r.err)
		}
	}
}
