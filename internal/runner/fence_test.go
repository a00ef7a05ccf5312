package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/envoy"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestWriteFenceOnPingAge: KV writes are allowed only while the engine's
// last ping is younger than its lost threshold minus the margin; reads
// stay allowed while connected; a new ping opens the fence again; a
// closed connection refuses everything.
func TestWriteFenceOnPingAge(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	r := New(Config{Now: clk.Now})
	ctx := context.Background()
	put := envoy.KVPutRequest{Keys: [][]byte{{1}}, Values: [][]byte{{1}}}

	if err := r.Writable(); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("before the init: %v, want ErrNotConnected", err)
	}
	if _, err := r.KV(ctx, "a", put); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("put before the init: %v, want ErrNotConnected", err)
	}
	// The init (no socket in this test: the write of resent events
	// fails harmlessly) sets the threshold and counts as a ping.
	r.handle(ctx, envoy.ToEnvoyInit{Metadata: envoy.ProtocolMetadata{EnvoyLostThreshold: 15000}})
	if err := r.Writable(); err != nil {
		t.Fatalf("right after the init: %v", err)
	}
	clk.advance(9900 * time.Millisecond)
	if err := r.Writable(); err != nil {
		t.Fatalf("9.9 s after the last ping (limit 10 s): %v", err)
	}
	clk.advance(200 * time.Millisecond)
	if err := r.Writable(); !errors.Is(err, ErrWriteFenced) {
		t.Fatalf("10.1 s after the last ping: %v, want ErrWriteFenced", err)
	}
	for _, req := range []envoy.KVRequestData{put, envoy.KVDeleteRequest{Keys: [][]byte{{1}}}, envoy.KVDeleteRangeRequest{Start: []byte{1}, End: []byte{2}}, envoy.KVDropRequest{}} {
		if _, err := r.KV(ctx, "a", req); !errors.Is(err, ErrWriteFenced) {
			t.Fatalf("%T with a stale ping: %v, want ErrWriteFenced", req, err)
		}
	}
	// A read is not fenced: it gets as far as the (missing) socket.
	if _, err := r.KV(ctx, "a", envoy.KVGetRequest{Keys: [][]byte{{1}}}); errors.Is(err, ErrWriteFenced) {
		t.Fatalf("get with a stale ping: %v, want it sent", err)
	}
	r.handle(ctx, envoy.ToEnvoyPing{Ts: 1})
	if err := r.Writable(); err != nil {
		t.Fatalf("after a new ping: %v", err)
	}
	r.disconnected()
	defer r.lose()
	if err := r.Writable(); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("after the connection closed: %v, want ErrNotConnected", err)
	}
}

// TestWriteFenceShortThreshold: with a short lost threshold (tests set
// 1.5 s) the margin is a third of it.
func TestWriteFenceShortThreshold(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	r := New(Config{Now: clk.Now})
	r.handle(context.Background(), envoy.ToEnvoyInit{Metadata: envoy.ProtocolMetadata{EnvoyLostThreshold: 1500}})
	clk.advance(900 * time.Millisecond)
	if err := r.Writable(); err != nil {
		t.Fatalf("0.9 s after the init (limit 1 s): %v", err)
	}
	clk.advance(200 * time.Millisecond)
	if err := r.Writable(); !errors.Is(err, ErrWriteFenced) {
		t.Fatalf("1.1 s after the init: %v, want ErrWriteFenced", err)
	}
}

type stopRecorder struct{ stops chan string }

func (stopRecorder) Start(context.Context, Actor) error { return nil }
func (s stopRecorder) Stop(_ context.Context, id string, gen uint32, reason envoy.StopActorReason) error {
	s.stops <- fmt.Sprintf("%s/%d/%v", id, gen, reason)
	return nil
}

// TestStalledConnectionLosesActors: while the engine's pings arrive the
// runner keeps its actors; once the last one is older than the engine's
// lost threshold on a connection that never closed (a stall), the engine
// has restarted the actors elsewhere without telling this runner, so it
// stops them locally (reason Lost) and closes the connection to
// reconnect.
func TestStalledConnectionLosesActors(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	rec := stopRecorder{stops: make(chan string, 4)}
	r := New(Config{Now: clk.Now, Actors: rec})
	ctx := context.Background()
	r.handle(ctx, envoy.ToEnvoyInit{Metadata: envoy.ProtocolMetadata{EnvoyLostThreshold: 3000}})
	r.mu.Lock()
	r.mu.generation["a"] = 2
	r.mu.Unlock()
	closed := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go r.watchStall(func() { close(closed) }, done)

	clk.advance(2900 * time.Millisecond)
	r.handle(ctx, envoy.ToEnvoyPing{Ts: 1})
	clk.advance(2900 * time.Millisecond) // 2.9 s after the last ping
	if _, _, stalled := r.takeStalled(); stalled {
		t.Fatal("stalled 2.9 s after a ping (threshold 3 s)")
	}
	if r.actorCount() != 1 {
		t.Fatal("the actor was dropped before the threshold")
	}
	clk.advance(200 * time.Millisecond)
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled connection was not closed")
	}
	select {
	case got := <-rec.stops:
		if want := fmt.Sprintf("a/2/%v", envoy.StopActorReasonLost); got != want {
			t.Fatalf("stopped %s, want %s", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the actor was not stopped")
	}
	if r.actorCount() != 0 {
		t.Fatalf("%d actors still held", r.actorCount())
	}
}
