package engine

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// A broadcast's encoding is built once per slot and shared, even when
// the connections' senders ask for it at the same time.
func TestEventEncodedOncePerSlot(t *testing.T) {
	ev := &Event{Name: "newCount", Args: []byte{1}}
	var builds atomic.Int32
	build := func() ([]byte, error) { builds.Add(1); return []byte("frame"), nil }
	var wg sync.WaitGroup
	results := make([][]byte, 64)
	for i := range results {
		wg.Go(func() { results[i], _ = ev.Encoded(1, build) })
	}
	wg.Wait()
	for _, r := range results {
		if &r[0] != &results[0][0] {
			t.Fatal("connections got different copies of one encoding")
		}
	}
	n := builds.Load()
	if _, err := ev.Encoded(1, build); err != nil || builds.Load() != n {
		t.Fatalf("a later call rebuilt the encoding (%d builds, then %d)", n, builds.Load())
	}
	// Another slot (encoding) builds its own; a failed build is remembered.
	fail := errors.New("too big")
	if _, err := ev.Encoded(2, func() ([]byte, error) { return nil, fail }); err != fail {
		t.Fatalf("error = %v", err)
	}
	if _, err := ev.Encoded(2, build); err != fail {
		t.Fatalf("slot 2 rebuilt after its failure: %v", err)
	}
	// Out-of-range slots are not cached.
	before := builds.Load()
	ev.Encoded(9, build)
	ev.Encoded(9, build)
	if builds.Load() != before+2 {
		t.Fatal("an out-of-range slot was cached")
	}
}
