package envoy

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

// Each decoder of untrusted bytes is fuzzed from the goldens and the seeds
// in testdata/fuzz. A decode never panics, allocates in proportion to its
// input, and what it accepts encodes to as many bytes (only the order of
// map keys may change) that decode to the same value and encode to the
// same bytes again.

func FuzzDecodeToRivet(f *testing.F)             { fuzzDecode(f, "ToRivet") }
func FuzzDecodeToEnvoy(f *testing.F)             { fuzzDecode(f, "ToEnvoy") }
func FuzzDecodeToEnvoyConn(f *testing.F)         { fuzzDecode(f, "ToEnvoyConn") }
func FuzzDecodeToGateway(f *testing.F)           { fuzzDecode(f, "ToGateway") }
func FuzzDecodeToOutbound(f *testing.F)          { fuzzDecode(f, "ToOutbound") }
func FuzzDecodeActorCommandKeyData(f *testing.F) { fuzzDecode(f, "ActorCommandKeyData") }

func fuzzDecode(f *testing.F, message string) {
	for _, c := range goldens(f) {
		if c.message == message {
			f.Add(c.bytes)
		}
	}
	c := codecs[message]
	f.Fuzz(func(t *testing.T, in []byte) {
		var v any
		var err error
		// The worst case is about 24 Go bytes per input byte (a list of
		// empty lists: a 1-byte length per 24-byte slice header).
		if n := allocatedBytesOnce(func() { v, err = c.decode(in) }); n > 64*uint64(len(in))+16<<10 {
			t.Fatalf("decoding %d bytes allocated %d", len(in), n)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Message != message || de.Offset < 0 || de.Offset > len(in) {
				t.Fatalf("error %#v", err)
			}
			return
		}
		out, err := c.encode(v)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", v, err)
		}
		if len(out) != len(in) {
			t.Fatalf("re-encoded %d bytes as %d:\n%x\n%x", len(in), len(out), in, out)
		}
		v2, err := c.decode(out)
		if err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", out, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("decode, encode, decode changed\n%#v\nto\n%#v", v, v2)
		}
		if out2, err := c.encode(v2); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable: %x then %x (%v)", out, out2, err)
		}
	})
}

func allocatedBytesOnce(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
