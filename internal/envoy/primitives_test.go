package envoy

import (
	"bytes"
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestPrimitives: every primitive and shape the generator supports
// (gen/testdata/primitives.bare, most of them unused by the envoy schema)
// has the wire form the BARE specification gives it.
func TestPrimitives(t *testing.T) {
	t.Parallel()
	m := PrimAll{
		U: 300, I: -3, A: 0xab, B: 0x1234, C: 0xdeadbeef, D: 1,
		E: -1, F: -2, G: -3, H: -4, X: 1, Y: -2, T: true,
		S: "é", Bs: []byte{1, 2}, Fx: [3]byte{7, 8, 9}, En: PrimEnumBig,
		Ou: ptr(uint64(0)), Lfx: [][2]byte{{1, 2}},
		Mi:  map[int32]string{5: "b", -1: "a"},
		Mfx: map[string][2]byte{"k": {3, 4}},
		Ll:  [][]uint8{nil, {1}},
		Ol:  new([]string),
	}
	want := strings.Join([]string{
		"00",                     // union tag
		"ac02",                   // uint 300
		"05",                     // int -3, zigzag
		"ab", "3412", "efbeadde", // u8, u16, u32
		"0100000000000000",                           // u64
		"ff", "feff", "fdffffff", "fcffffffffffffff", // i8 .. i64
		"0000803f", "00000000000000c0", // f32 1, f64 -2
		"01",     // bool
		"02c3a9", // str
		"020102", // data
		"070809", // data[3]
		"c801",   // enum value 200
		"0100",   // optional<uint> present, 0
		"00",     // optional<data[2]> absent
		"010102", // list<data[2]>
		"02" + "ffffffff" + "0161" + "05000000" + "0162", // map<i32><str>, keys ascending
		"00",                 // empty map<uint><PrimEnum>
		"01016b0304",         // map<str><data[2]>
		"02" + "00" + "0101", // list<list<u8>>
		"0100",               // optional<list<str>> present, empty
	}, "")
	got, err := EncodePrimMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != want {
		t.Fatalf("encoded\n%x\nwant\n%s", got, want)
	}
	back, err := DecodePrimMessage(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("decoded\n%#v\nwant\n%#v", back, m)
	}

	if v, err := DecodePrimMessage([]byte{7}); err != nil || v != (PrimVoid{}) {
		t.Errorf("tag 7: %#v, %v; want PrimVoid", v, err)
	}
	if _, err := DecodePrimMessage([]byte{1}); err == nil {
		t.Error("tag 1 decoded; the variant after 0 is 7")
	}
}

// TestPrimitiveExtremes: the largest and smallest values round-trip,
// varints at their ten-byte limit included.
func TestPrimitiveExtremes(t *testing.T) {
	t.Parallel()
	for _, m := range []PrimAll{
		{U: math.MaxUint64, I: math.MinInt64, A: math.MaxUint8, B: math.MaxUint16, C: math.MaxUint32, D: math.MaxUint64,
			E: math.MinInt8, F: math.MinInt16, G: math.MinInt32, H: math.MinInt64, X: float32(math.Inf(-1)), Y: math.MaxFloat64},
		{I: math.MaxInt64, E: math.MaxInt8, F: math.MaxInt16, G: math.MaxInt32, H: math.MaxInt64, X: math.SmallestNonzeroFloat32, Y: math.Copysign(0, -1)},
	} {
		b, err := EncodePrimMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodePrimMessage(b)
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		again, err := EncodePrimMessage(back)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%x re-encoded as %x (%v)", b, again, err)
		}
	}
	// uint 2^64-1 is ten bytes, the last 0x01; 0x02 there overflows.
	max := append(append([]byte{0}, bytes.Repeat([]byte{0xff}, 9)...), 0x01)
	if _, err := DecodePrimMessage(append(max, make([]byte, 60)...)); err != nil && strings.Contains(err.Error(), "overflows") {
		t.Errorf("2^64-1 rejected: %v", err)
	}
	max[10] = 0x02
	if _, err := DecodePrimMessage(max); err == nil || !strings.Contains(err.Error(), "overflows 64 bits") {
		t.Errorf("2^65-1: error %v, want overflow", err)
	}
	// int: zigzag 2 is +1; the same value with a redundant byte is refused.
	if _, err := DecodePrimMessage([]byte{0, 0, 0x82, 0x00}); err == nil || !strings.Contains(err.Error(), "byte 2: varint not in shortest form") {
		t.Errorf("padded int: error %v", err)
	}
}
