package protocol_test

import (
	"testing"

	"github.com/rivetgo/rivet/internal/protocol"
)

// Benchmarks of the client protocol's hot messages in every encoding:
// what one action round trip over a WebSocket (ActionRequest in,
// ActionResponse out), one broadcast (Event) and one connection (Init)
// cost to encode and decode. Run:
//
//	go test -run '^$' -bench . -benchmem ./internal/protocol

var encodings = []protocol.Encoding{protocol.JSON, protocol.CBOR, protocol.BARE}

// Internal CBOR values as the runtime holds them: an argument array [1]
// and an output object {"count": 42, "by": "alice"}.
var (
	argsOne   = []byte{0x81, 0x01}
	outputObj = []byte{0xa2, 0x65, 'c', 'o', 'u', 'n', 't', 0x18, 42, 0x62, 'b', 'y', 0x65, 'a', 'l', 'i', 'c', 'e'}
)

func hotMessages() []struct {
	name     string
	msg      protocol.Message
	toServer bool
} {
	return []struct {
		name     string
		msg      protocol.Message
		toServer bool
	}{
		{"ActionRequest", protocol.ActionRequest{ID: 12345, Name: "increment", Args: argsOne}, true},
		{"ActionResponse", protocol.ActionResponse{ID: 12345, Output: outputObj}, false},
		{"Event", protocol.Event{Name: "newCount", Args: argsOne}, false},
		{"Init", protocol.Init{ActorID: "01jq2v3k4m5n6p7q8r9s0t1u2v", ConnectionID: "c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f"}, false},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, m := range hotMessages() {
		for _, enc := range encodings {
			b.Run(m.name+"/"+enc.String(), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := protocol.Encode(enc, m.msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, m := range hotMessages() {
		for _, enc := range encodings {
			data, err := protocol.Encode(enc, m.msg)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(m.name+"/"+enc.String(), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					var err error
					if m.toServer {
						_, err = protocol.DecodeToServer(enc, data)
					} else {
						_, err = protocol.DecodeToClient(enc, data)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkHTTPAction is the body of one stateless action call: the
// request decoded by the server and its response encoded.
func BenchmarkHTTPAction(b *testing.B) {
	for _, enc := range encodings {
		req, err := protocol.Encode(enc, protocol.HTTPActionRequest{Args: argsOne})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(enc.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := protocol.DecodeHTTPActionRequest(enc, req); err != nil {
					b.Fatal(err)
				}
				if _, err := protocol.Encode(enc, protocol.HTTPActionResponse{Output: outputObj}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
