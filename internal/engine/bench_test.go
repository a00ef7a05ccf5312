package engine

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// Benchmarks of the engine's hot paths, each short by default:
//
//	go test -run '^$' -bench . -benchmem ./internal/engine
//
// "embedded" runs on the Pebble store with fsync, in the test's temporary
// directory; "memory" on rivetmem. Durable figures depend on the disk's
// fsync latency.

func benchDriver(b *testing.B, kind string) rivetdriver.Driver {
	b.Helper()
	switch kind {
	case "memory":
		return rivetmem.New()
	case "embedded":
		d, err := rivetembed.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
		return d
	}
	b.Fatalf("unknown driver %q", kind)
	return nil
}

// benchActor counts and broadcasts; "inc" changes state (one commit per
// turn), "read" does not (no commit), "bcast" broadcasts "n" without
// changing state.
var benchActor = hooked{actions: map[string]func(*Turn, *uint64) (any, error){
	"inc":  func(_ *Turn, n *uint64) (any, error) { *n++; return *n, nil },
	"read": func(_ *Turn, n *uint64) (any, error) { return *n, nil },
	"bcast": func(t *Turn, n *uint64) (any, error) {
		t.Broadcast("n", []byte{0x81, 0x01})
		return *n, nil
	},
}}

func benchEngine(b *testing.B, kind string) *Engine {
	b.Helper()
	e, err := New(Config{Driver: benchDriver(b, kind), Behaviors: []Behavior{benchActor}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			b.Error(err)
		}
	})
	return e
}

func encodeCount(v any) ([]byte, error) { return counter(v.(uint64)), nil }

func benchCall(b *testing.B, e *Engine, id, action string) {
	if _, err := e.Call(context.Background(), id, nil, nil, action, nil, encodeCount, 0); err != nil {
		b.Fatal(err)
	}
}

func benchCreate(b *testing.B, e *Engine, key string) string {
	rec, _, err := e.Create(context.Background(), "", "hooked", []string{key}, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	return rec.ID
}

// BenchmarkCall is turn dispatch on one awake actor: Engine.Call from one
// caller (the latency of a turn, including its commit's fsync for "inc"
// on the embedded store) and from GOMAXPROCS×8 callers (throughput).
func BenchmarkCall(b *testing.B) {
	for _, kind := range []string{"memory", "embedded"} {
		for _, action := range []string{"inc", "read"} {
			b.Run(kind+"/"+action+"/serial", func(b *testing.B) {
				e := benchEngine(b, kind)
				id := benchCreate(b, e, "a")
				b.ReportAllocs()
				for b.Loop() {
					benchCall(b, e, id, action)
				}
			})
			b.Run(kind+"/"+action+"/parallel", func(b *testing.B) {
				e := benchEngine(b, kind)
				id := benchCreate(b, e, "a")
				b.ReportAllocs()
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						benchCall(b, e, id, action)
					}
				})
			})
		}
	}
}

// BenchmarkCreate is a getOrCreate of a new key followed by its first
// action, as the gateway runs it: serially (the latency of a cold start)
// and from GOMAXPROCS×8 callers. fsyncs/op counts the committer's batches
// (each one WAL fsync on the embedded store; creates and activations add
// none of their own).
func BenchmarkCreate(b *testing.B) {
	for _, kind := range []string{"memory", "embedded"} {
		b.Run(kind+"/serial", func(b *testing.B) {
			e := benchEngine(b, kind)
			b.ReportAllocs()
			i := 0
			before := e.Metrics().Batches.Load()
			for b.Loop() {
				i++
				rec, _, err := e.GetOrCreateForWork(context.Background(), "", "hooked", []string{strconv.Itoa(i)}, nil)
				if err != nil {
					b.Fatal(err)
				}
				benchCall(b, e, rec.ID, "inc")
			}
			b.ReportMetric(float64(e.Metrics().Batches.Load()-before)/float64(i), "fsyncs/op")
		})
		b.Run(kind+"/parallel", func(b *testing.B) {
			e := benchEngine(b, kind)
			b.ReportAllocs()
			b.SetParallelism(8)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := strconv.FormatInt(next.Add(1), 10)
					rec, _, err := e.GetOrCreateForWork(context.Background(), "", "hooked", []string{key}, nil)
					if err != nil {
						b.Fatal(err)
					}
					benchCall(b, e, rec.ID, "inc")
				}
			})
		})
	}
}

// BenchmarkCommitter is the group committer alone on the embedded store:
// one actor's commits, serially (one fsync each) and from many
// goroutines (batched), and commits spread over 1,000 actors.
func BenchmarkCommitter(b *testing.B) {
	setup := func(b *testing.B, actors int) (*committer, []*incarnation, []string) {
		d := benchDriver(b, "embedded")
		ctx := context.Background()
		incs := make([]*incarnation, actors)
		ids := make([]string, actors)
		for i := range actors {
			ids[i] = fmt.Sprintf("actor-%04d", i)
			if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: ids[i], Name: "hooked", Key: []string{ids[i]}}); err != nil {
				b.Fatal(err)
			}
			rec, _, err := d.Activate(ctx, ids[i])
			if err != nil {
				b.Fatal(err)
			}
			incs[i] = &incarnation{generation: rec.Generation}
		}
		c := newCommitter(d, &Metrics{})
		done := make(chan struct{})
		go func() { c.run(); close(done) }()
		b.Cleanup(func() { c.close(); <-done })
		return c, incs, ids
	}
	commit := func(b *testing.B, c *committer, inc *incarnation, id string, n uint64) {
		g := &Gate{commit: rivetdriver.Commit{ActorID: id, Generation: inc.generation, State: counter(n)}, inc: inc, done: make(chan struct{})}
		c.submit(g)
		if err := g.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("one-actor/serial", func(b *testing.B) {
		c, incs, ids := setup(b, 1)
		b.ReportAllocs()
		n := uint64(0)
		for b.Loop() {
			n++
			commit(b, c, incs[0], ids[0], n)
		}
	})
	// Commits of one actor must come from one goroutine (the engine
	// orders them); here many goroutines each own a distinct actor.
	for _, actors := range []int{64, 1000} {
		b.Run(fmt.Sprintf("%d-actors/parallel", actors), func(b *testing.B) {
			c, incs, ids := setup(b, actors)
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(max(1, actors/2))
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)-1) % actors
				n := uint64(0)
				for pb.Next() {
					n++
					commit(b, c, incs[i], ids[i], n)
				}
			})
		})
	}
}

// countingTransport counts the events delivered to one connection.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) Event(*Event, *Gate) { c.n.Add(1) }
func (c *countingTransport) Close(string)        {}

// BenchmarkBroadcast is one broadcast to N subscribed connections (the
// turn that emits it, and its hand-off to every connection's transport).
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			e := benchEngine(b, "memory")
			id := benchCreate(b, e, "room")
			ctx := context.Background()
			ts := make([]*countingTransport, n)
			for i := range n {
				ts[i] = &countingTransport{}
				c := NewConn(NewConnID(), nil, nil, ts[i])
				if err := e.Connect(ctx, id, c); err != nil {
					b.Fatal(err)
				}
				if err := e.Subscribe(ctx, id, c, "n", true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			calls := 0
			for b.Loop() {
				calls++
				benchCall(b, e, id, "bcast")
			}
			for i, t := range ts {
				if got := t.n.Load(); got != int64(calls) {
					b.Fatalf("connection %d got %d events, want %d", i, got, calls)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(calls*n), "ns/event")
		})
	}
}
