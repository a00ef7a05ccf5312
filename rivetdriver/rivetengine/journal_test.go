package rivetengine

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/rivetgo/rivet/rivetdriver"
)

// TestJournalRoundTrip: a commit's operations survive encoding.
func TestJournalRoundTrip(t *testing.T) {
	o := &ops{
		ranges: [][2][]byte{{{3}, {4}}},
		dels:   [][]byte{{3, 'a'}, {5, 1, 2}},
		puts:   []rivetdriver.KV{{Key: []byte{2}, Value: bytes.Repeat([]byte{7}, 300)}, {Key: []byte{3, 'b'}, Value: []byte{0, 'x'}}},
	}
	got, err := decodeOps(encodeOps(o))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("decoded %+v, want %+v", got, o)
	}
}

// FuzzJournalOps: the journal decoder never panics on stored bytes, and
// what it accepts re-encodes to operations it decodes the same way.
func FuzzJournalOps(f *testing.F) {
	f.Add(encodeOps(&ops{ranges: [][2][]byte{{{3}, {4}}}, dels: [][]byte{{3, 'a'}}, puts: []rivetdriver.KV{{Key: []byte{2}, Value: []byte{0, 1}}}}))
	f.Add([]byte("P\x01\x02\x03"))
	f.Add([]byte("D\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOps(b)
		if err != nil {
			return
		}
		again, err := decodeOps(encodeOps(o))
		if err != nil {
			t.Fatalf("re-encoded journal does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(o)) {
			t.Fatalf("round trip changed the operations: %+v != %+v", again, o)
		}
	})
}

// normalize makes empty and nil slices compare equal.
func normalize(o *ops) *ops {
	n := &ops{}
	c := func(b []byte) []byte { return append([]byte{}, b...) }
	for _, r := range o.ranges {
		n.ranges = append(n.ranges, [2][]byte{c(r[0]), c(r[1])})
	}
	for _, k := range o.dels {
		n.dels = append(n.dels, c(k))
	}
	for _, kv := range o.puts {
		n.puts = append(n.puts, rivetdriver.KV{Key: c(kv.Key), Value: c(kv.Value)})
	}
	return n
}
