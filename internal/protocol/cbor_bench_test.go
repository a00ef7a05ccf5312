package protocol

import (
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/rivetgo/rivet/internal/codec"
)

// BenchmarkParseCBOR decided which CBOR parser the protocol keeps (issue
// 14): parseCBOR, the hand-written reader of this package, against
// fxamacker/cbor (the library package codec uses for typed Go values)
// decoding the same bytes into a generic value (map[string]any, []any,
// ...), the job parseCBOR does. The library's figure is a lower bound of
// its cost: it still lacks what parseCBOR does on the way (integer map
// keys as text, tags dropped, UTF-8 and float checks of wire input), which
// would be a second walk over its result. Run:
//
//	go test -run '^$' -bench ParseCBOR -benchmem ./internal/protocol
func BenchmarkParseCBOR(b *testing.B) {
	lib, err := cbor.DecOptions{
		DefaultMapType:   reflect.TypeFor[map[string]any](),
		MaxNestedLevels:  256,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 20,
	}.DecMode()
	if err != nil {
		b.Fatal(err)
	}
	msg, err := Encode(CBOR, ActionRequest{ID: 12345, Name: "increment", Args: []byte{0x81, 0x01}})
	if err != nil {
		b.Fatal(err)
	}
	state, err := codec.Marshal(map[string]any{
		"title": "A room", "count": 42, "ratio": 0.25, "open": true,
		"members": []any{"alice", "bob", "carol"},
		"messages": []any{
			map[string]any{"from": "alice", "text": "hello there", "at": 1733200000000},
			map[string]any{"from": "bob", "text": "hi!", "at": 1733200001000},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"args-[1]", []byte{0x81, 0x01}},
		{"ActionRequest", msg},
		{"object", state},
	} {
		b.Run(c.name+"/protocol", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := parseCBOR(c.data, false); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/fxamacker", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				var v any
				if err := lib.Unmarshal(c.data, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
