package rivetembed_test

// Commit-path benchmarks of the driver, and of a minimal bbolt prototype
// doing the same work, so that the choice of store is measured (CHOICE.md):
//
//	go test ./rivetdriver/rivetembed -run '^$' -bench . -benchtime 1s
//
// One commit is one small state write plus one KV put, with the fencing
// check; every Commit call is made durable with fsync before it returns.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	bolt "go.etcd.io/bbolt"
)

// committer is the part of a store the benchmarks drive.
type committer interface {
	Commit(ctx context.Context, batch []*rivetdriver.Commit) error
}

// stores open each candidate store, with n live actors "b000"... at
// generation 1.
var stores = []struct {
	name string
	open func(b *testing.B, n int) committer
}{
	{"pebble", openPebbleBench},
	{"bbolt", func(b *testing.B, n int) committer { return openBolt(b, n, false) }},
}

func actorID(i int) string { return fmt.Sprintf("b%03d", i) }

func openPebbleBench(b *testing.B, n int) committer {
	ctx := context.Background()
	d, err := rivetembed.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	for i := range n {
		id := actorID(i)
		if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: id, Name: "bench", Key: []string{id}}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := d.Activate(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

var (
	state = bytes.Repeat([]byte("s"), 64)
	value = bytes.Repeat([]byte("v"), 64)
)

func benchCommit(i int, id string) *rivetdriver.Commit {
	return &rivetdriver.Commit{ActorID: id, Generation: 1, State: state,
		KVPut: []rivetdriver.KV{{Key: fmt.Appendf(nil, "key%04d", i%1024), Value: value}}}
}

func reportCommits(b *testing.B, commits int64) {
	b.ReportMetric(float64(commits)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkCommit: one goroutine calls Commit with batches of 1, 16 and 128
// commits, one per actor: the runtime's committer loop.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	for _, s := range stores {
		for _, size := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("store=%s/batch=%d", s.name, size), func(b *testing.B) {
				c := s.open(b, size)
				ids := make([]string, size)
				for i := range ids {
					ids[i] = actorID(i)
				}
				batch := make([]*rivetdriver.Commit, size)
				var n int64
				for i := 0; b.Loop(); i++ {
					for j, id := range ids {
						batch[j] = benchCommit(i, id)
					}
					if err := c.Commit(ctx, batch); err != nil {
						b.Fatal(err)
					}
					for _, cm := range batch {
						if cm.Err != nil {
							b.Fatal(cm.Err)
						}
					}
					n += int64(size)
				}
				reportCommits(b, n)
			})
		}
	}
}

// BenchmarkCommitParallel: 16 goroutines per CPU, each with its own actor,
// each calling Commit with one commit: what each store's own group commit
// makes of uncoordinated writers. bbolt's group commit is DB.Batch, so it
// runs both with Update (one fsync per call) and with Batch (tuned).
func BenchmarkCommitParallel(b *testing.B) {
	ctx := context.Background()
	const perCPU = 16
	candidates := append(stores[:len(stores):len(stores)], struct {
		name string
		open func(b *testing.B, n int) committer
	}{"bbolt-batch", func(b *testing.B, n int) committer { return openBolt(b, n, true) }})
	for _, s := range candidates {
		b.Run("store="+s.name, func(b *testing.B) {
			n := perCPU * runtime.GOMAXPROCS(0)
			c := s.open(b, n)
			var next, commits atomic.Int64
			b.SetParallelism(perCPU)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := actorID(int(next.Add(1)-1) % n)
				for i := 0; pb.Next(); i++ {
					cm := benchCommit(i, id)
					if err := c.Commit(ctx, []*rivetdriver.Commit{cm}); err != nil || cm.Err != nil {
						b.Errorf("commit: %v / %v", err, cm.Err)
						return
					}
					commits.Add(1)
				}
			})
			reportCommits(b, commits.Load())
		})
	}
}

// boltStore is a minimal bbolt prototype of the commit path, for
// measurement only: the same fencing check against an in-memory generation
// map, the same value framing, one read-write transaction (fsync on commit)
// per Commit call, or per group of calls with DB.Batch.
type boltStore struct {
	db    *bolt.DB
	batch bool
	mu    sync.Mutex
	gens  map[string]uint64
}

var (
	bucketState = []byte("s")
	bucketKV    = []byte("k")
)

func openBolt(b *testing.B, n int, batch bool) committer {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bolt.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketState, bucketKV} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if batch {
		// Tuned for the benchmark: a group is written as soon as every
		// writer has joined it, or after 1ms (the default waits 10ms).
		db.MaxBatchSize, db.MaxBatchDelay = n, time.Millisecond
	}
	s := &boltStore{db: db, batch: batch, gens: map[string]uint64{}}
	for i := range n {
		s.gens[actorID(i)] = 1
	}
	return s
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

func boltFrame(p []byte) []byte {
	out := make([]byte, 5+len(p))
	out[0] = 1
	binary.BigEndian.PutUint32(out[1:5], crc32c(p))
	copy(out[5:], p)
	return out
}

func (s *boltStore) Commit(_ context.Context, batch []*rivetdriver.Commit) error {
	s.mu.Lock()
	for _, c := range batch {
		c.Err = nil
		if g, ok := s.gens[c.ActorID]; !ok || g != c.Generation {
			c.Err = rivetdriver.ErrFenced
		}
	}
	s.mu.Unlock()
	fn := func(tx *bolt.Tx) error {
		st, kvb := tx.Bucket(bucketState), tx.Bucket(bucketKV)
		for _, c := range batch {
			if c.Err != nil {
				continue
			}
			if c.State != nil {
				if err := st.Put([]byte(c.ActorID), boltFrame(c.State)); err != nil {
					return err
				}
			}
			for _, p := range c.KVPut {
				k := append(append(append([]byte{}, c.ActorID...), 0), p.Key...)
				if err := kvb.Put(k, boltFrame(p.Value)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if s.batch {
		return s.db.Batch(fn)
	}
	return s.db.Update(fn)
}
