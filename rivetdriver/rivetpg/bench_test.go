package rivetpg_test

// Commit-path benchmark against the test database:
//
//	go test ./rivetdriver/rivetpg -run '^$' -bench Commit -benchtime 2s
//
// One commit is one 64-byte state write plus one 64-byte KV put, with the
// fencing check, the same work as rivetembed's BenchmarkCommit; every
// Commit call is one transaction, acknowledged by the server (durable as
// its synchronous_commit setting makes it) before it returns.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
)

var (
	benchState = bytes.Repeat([]byte("s"), 64)
	benchValue = bytes.Repeat([]byte("v"), 64)
)

// BenchmarkCommit: one goroutine calls Commit with batches of 1 and 64
// commits, one per actor: the runtime's committer loop.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			d := openFresh(b)
			ids := make([]string, size)
			gens := make([]uint64, size)
			for i := range ids {
				ids[i] = fmt.Sprintf("b%03d", i)
				if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: ids[i], Name: "bench", Key: []string{ids[i]}}); err != nil {
					b.Fatal(err)
				}
				rec, _, err := d.Activate(ctx, ids[i])
				if err != nil {
					b.Fatal(err)
				}
				gens[i] = rec.Generation
			}
			batch := make([]*rivetdriver.Commit, size)
			var n int64
			for i := 0; b.Loop(); i++ {
				for j, id := range ids {
					batch[j] = &rivetdriver.Commit{ActorID: id, Generation: gens[j], State: benchState,
						KVPut: []rivetdriver.KV{{Key: fmt.Appendf(nil, "key%04d", i%1024), Value: benchValue}}}
				}
				if err := d.Commit(ctx, batch); err != nil {
					b.Fatal(err)
				}
				for _, c := range batch {
					if c.Err != nil {
						b.Fatal(c.Err)
					}
				}
				n += int64(size)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// BenchmarkRuntime: the actor runtime on this driver, durable end to end:
// "hot" is 16 concurrent callers of one actor, "spread" 16 callers with an
// actor each; one op is one acknowledged increment (state and a KV put).
func BenchmarkRuntime(b *testing.B) {
	for _, shape := range []string{"hot", "spread"} {
		b.Run(shape, func(b *testing.B) {
			ctx := context.Background()
			d := openFresh(b)
			rt, err := rivet.Start(ctx, rivet.MustRegistry(counter), &rivet.Config{Driver: d, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Stop(ctx)
			var next atomic.Int64
			b.SetParallelism(8) // 16 callers on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := "shared"
				if shape == "spread" {
					key = fmt.Sprint("k", next.Add(1))
				}
				h := rt.Client().GetOrCreate("counter", rivet.Key{key})
				for pb.Next() {
					if _, err := rivet.Call[int](ctx, h, "increment", 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "actions/s")
		})
	}
}
