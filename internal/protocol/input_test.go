package protocol

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rivetgo/rivet/internal/codec"
)

func TestDecodeCBORValue(t *testing.T) {
	// cbor-x output of encodeJsonCompatValue({n: 1n << 64n, b: Uint8Array[1,2]}) style input.
	in := []byte{0xb9, 0x00, 0x02, 0x61, 'x', 0x01, 0x61, 'y', 0x82, 0x67, '$', 'B', 'i', 'g', 'I', 'n', 't', 0x62, '4', '2'}
	out, err := DecodeCBORValue(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := codec.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m["x"] != uint64(1) || m["y"] != uint64(42) {
		t.Fatalf("decoded %#v", m)
	}
	for _, bad := range [][]byte{{}, {0xff}, {0x82, 0x01}, {0x01, 0x02}, {0x82, 0x64, '$', 'N', 'o', 'p', 0x01}} {
		if _, err := DecodeCBORValue(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeCBORValue(% x) = %v, want ErrInvalid", bad, err)
		}
	}
}

// FuzzCBORValue: create-time input from the network never panics, and what
// decodes is deterministic internal CBOR.
func FuzzCBORValue(f *testing.F) {
	f.Add([]byte{0xa1, 0x61, 'x', 0x01})
	f.Add([]byte{0x82, 0x67, '$', 'B', 'i', 'g', 'I', 'n', 't', 0x62, '4', '2'})
	f.Add([]byte{0xd8, 0x40, 0x42, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := DecodeCBORValue(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		var v any
		if err := codec.Unmarshal(out, &v); err != nil {
			t.Fatalf("output is not codec-readable: %v", err)
		}
		again, err := codec.Marshal(v)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("output is not deterministic: % x vs % x (%v)", out, again, err)
		}
	})
}
