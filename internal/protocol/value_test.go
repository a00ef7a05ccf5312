package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
)

func bigInt(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return b
}

func TestDecodeJSONValue(t *testing.T) {
	for _, c := range []struct {
		in   string
		want any
	}{
		{`null`, nil},
		{`6`, 6},
		{`-0`, 0},
		{`6.0`, 6.0},
		{`1e2`, 100.0},
		{`-1.5E-3`, -1.5e-3},
		{`18446744073709551615`, uint64(math.MaxUint64)},
		{`18446744073709551616`, bigInt("18446744073709551616")},
		{`-9223372036854775809`, bigInt("-9223372036854775809")},
		{`"s"`, "s"},
		{`["$BigInt","123"]`, 123},
		{`["$BigInt","-123"]`, -123},
		{`["$BigInt","007"]`, 7},
		{`["$BigInt","9007199254740993"]`, int64(9007199254740993)},
		{`["$BigInt","-18446744073709551617"]`, bigInt("-18446744073709551617")},
		{`["$Uint8Array","AQID"]`, []byte{1, 2, 3}},
		{`["$ArrayBuffer","AQID"]`, []byte{1, 2, 3}},
		{`["$Uint8Array","AQI"]`, []byte{1, 2}}, // no padding
		{`["$Uint8Array",""]`, []byte{}},
		{`["$Undefined",0]`, nil},
		{`["$Set",[1,"a"]]`, []any{1, "a"}},
		{`["$Set",["$BigInt","5"]]`, []any{"$BigInt", "5"}}, // elements, not a tag
		{`["$Set",[["$BigInt","5"]]]`, []any{5}},
		{`["$$x",1]`, []any{"$x", 1}},
		{`["$$",1]`, []any{"$", 1}},
		{`["$$$x",["$BigInt","1"]]`, []any{"$$x", 1}},
		{`["$$x",["$$y",2]]`, []any{"$x", []any{"$y", 2}}},
		{`["$x"]`, []any{"$x"}},
		{`["$x",1,2]`, []any{"$x", 1, 2}},
		{`[1,"$x"]`, []any{1, "$x"}},
		{`["x",1]`, []any{"x", 1}},
		{`{"a":[["$BigInt","1"],{"b":["$Uint8Array",""]}],"$c":["$Undefined",0]}`,
			map[string]any{"a": []any{1, map[string]any{"b": []byte{}}}, "$c": nil}},
		{`{"k":1,"k":2}`, map[string]any{"k": 2}},
		{" [ 1 ] \n", []any{1}},
	} {
		got, err := DecodeJSONValue([]byte(c.in))
		if err != nil {
			t.Errorf("DecodeJSONValue(%s): %v", c.in, err)
			continue
		}
		if want := val(t, c.want); !bytes.Equal(got, want) {
			t.Errorf("DecodeJSONValue(%s) = %x, want %x", c.in, got, want)
		}
	}
}

func TestDecodePlainJSONValue(t *testing.T) {
	got, err := DecodePlainJSONValue([]byte(`{"p":["$BigInt","1"],"q":["$Nope",0]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := val(t, map[string]any{"p": []any{"$BigInt", "1"}, "q": []any{"$Nope", 0}})
	if !bytes.Equal(got, want) {
		t.Errorf("DecodePlainJSONValue = %x, want %x", got, want)
	}
}

func TestDecodeJSONValueErrors(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for _, in := range []string{
		``, `  `, `[`, `1 2`, `{} x`, "\"\xff\"",
		`["$Foo",1]`, `["$",1]`, `["$BigInt",5]`, `["$BigInt","1.5"]`, `["$BigInt",""]`,
		`["$BigInt","-"]`, `["$BigInt"," 1"]`, `["$BigInt","0x10"]`, `["$BigInt","+1"]`,
		`["$BigInt","` + strings.Repeat("9", maxBigDigits+1) + `"]`,
		`["$Uint8Array","!!"]`, `["$Uint8Array",null]`, `["$Set",1]`, `["$Set",{}]`,
		`[["$Foo",1]]`, `{"a":["$Foo",1]}`, `["$Set",[["$Foo",1]]]`, `["$$x",["$Foo",1]]`,
		`1e400`, `-1e400`, deep, `{"a":` + deep + `}`,
	} {
		_, err := DecodeJSONValue([]byte(in))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeJSONValue(%.60s) = %v, want ErrInvalid", in, err)
		}
	}
	// The nesting limit itself is accepted.
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := DecodeJSONValue([]byte(ok)); err != nil {
		t.Errorf("depth %d: %v", maxDepth, err)
	}
	if _, err := DecodeJSONValue([]byte(`["$BigInt","` + strings.Repeat("9", 2466) + `"]`)); err != nil {
		t.Errorf("2466-digit big int: %v", err)
	}
}

func TestEncodeJSONValue(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{nil, `null`},
		{true, `true`},
		{int64(-5), `-5`},
		{int64(maxSafeInt), `9007199254740991`},
		{int64(-maxSafeInt), `-9007199254740991`},
		{int64(maxSafeInt + 1), `["$BigInt","9007199254740992"]`},
		{int64(-maxSafeInt - 1), `["$BigInt","-9007199254740992"]`},
		{uint64(math.MaxUint64), `["$BigInt","18446744073709551615"]`},
		{bigInt("-18446744073709551617"), `["$BigInt","-18446744073709551617"]`},
		{6.0, `6.0`},
		{1.5, `1.5`},
		{-0.25, `-0.25`},
		{math.Copysign(0, -1), `-0.0`},
		{1e20, `100000000000000000000.0`},
		{1e21, `1e+21`},
		{1.5e-7, `1.5e-07`},
		{math.NaN(), `null`},
		{math.Inf(-1), `null`},
		{"a\"b\\\n\r\t\x01\x7f<>&é🙂", `"a\"b\\\n\r\t\u0001` + "\x7f<>&é🙂" + `"`},
		{[]byte{1, 2, 3}, `["$Uint8Array","AQID"]`},
		{[]byte{}, `["$Uint8Array",""]`},
		{[]any{"$x", 1}, `["$$x",1]`},
		{[]any{"$$x", 1}, `["$$$x",1]`},
		{[]any{"$BigInt", "1"}, `["$$BigInt","1"]`},
		{[]any{"$x"}, `["$x"]`},
		{[]any{"$x", 1, 2}, `["$x",1,2]`},
		{[]any{"x", 1}, `["x",1]`},
		{[]any{[]byte{1}, "$x"}, `[["$Uint8Array","AQ=="],"$x"]`},
		{[]any{"$a", []any{"$b", []any{"c", 2}}}, `["$$a",["$$b",["c",2]]]`},
		{map[string]any{"b": 1, "a": []any{"$x", nil}}, `{"a":["$$x",null],"b":1}`},
		{map[int]string{2: "b", 10: "a"}, `{"10":"a","2":"b"}`},
		{[]any{}, `[]`},
		{map[string]any{}, `{}`},
		// A time is its RFC 3339 text, as JSON.stringify writes a Date, with
		// every nanosecond; it reads back as a string, which decodes into a
		// time.Time.
		{time.Date(2026, 12, 3, 9, 33, 46, 123456789, time.UTC), `"2026-12-03T09:33:46.123456789Z"`},
	} {
		got, err := EncodeJSONValue(val(t, c.in))
		if err != nil {
			t.Errorf("EncodeJSONValue(%#v): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("EncodeJSONValue(%#v) = %s, want %s", c.in, got, c.want)
		}
		// Floats other than NaN and infinities read back as they were.
		if f, ok := c.in.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			continue
		}
		if tm, ok := c.in.(time.Time); ok {
			back, err := DecodeJSONValue(got)
			var dec time.Time
			if err == nil {
				err = codec.Unmarshal(back, &dec)
			}
			if err != nil || !dec.Equal(tm) {
				t.Errorf("time %v read back as %v, %v", tm, dec, err)
			}
			continue
		}
		back, err := DecodeJSONValue(got)
		if err != nil {
			t.Errorf("DecodeJSONValue(%s): %v", got, err)
		} else if want := val(t, c.in); !bytes.Equal(back, want) && !isIntKeyed(c.in) {
			t.Errorf("round trip of %#v: %x, want %x", c.in, back, want)
		}
	}
	if got, err := EncodeJSONValue(nil); err != nil || string(got) != "null" {
		t.Errorf("EncodeJSONValue(nil) = %s, %v", got, err)
	}
	if _, err := EncodeJSONValue([]byte{0x1c}); err == nil {
		t.Error("EncodeJSONValue of bad CBOR succeeded")
	}
	// Invalid UTF-8 in a value built by Go code is replaced.
	if got, err := EncodeJSONValue([]byte("\x62\xff\x41")); err != nil || string(got) != "\"\uFFFDA\"" {
		t.Errorf("EncodeJSONValue(invalid UTF-8) = %q, %v", got, err)
	}
}

func isIntKeyed(v any) bool { _, ok := v.(map[int]string); return ok }

// cborIn reads hex as a CBOR value from the client (no revive).
func cborIn(t *testing.T, h string) ([]byte, error) {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := parseCBOR(b, false)
	if err != nil {
		return nil, err
	}
	return wireValue(tree, false)
}

func TestCBORInput(t *testing.T) {
	for _, c := range []struct {
		hex  string
		want any
	}{
		{"b9 0001 61 61 01", map[string]any{"a": 1}},     // cbor-x map header
		{"ba 00000001 61 61 01", map[string]any{"a": 1}}, // 32-bit length
		{"9b 0000000000000001 01", []any{1}},             // 64-bit length
		{"1b 0000000000000005", 5},                       // bigint 5n
		{"3b 0000000000000004", -5},                      // bigint -5n
		{"1b ffffffffffffffff", uint64(math.MaxUint64)},
		{"3b ffffffffffffffff", bigInt("-18446744073709551616")},
		{"c2 49 010000000000000000", bigInt("18446744073709551616")}, // tag 2
		{"c3 49 010000000000000000", bigInt("-18446744073709551617")},
		{"c2 41 05", 5}, // small bignum
		{"c2 5f 41 01 41 00 ff", 256},
		{"d8 40 43 010203", []byte{1, 2, 3}},                      // Uint8Array
		{"d8 55 44 0000803f", []byte{0, 0, 0x80, 0x3f}},           // Float32Array: its bytes
		{"d9 0102 82 01 02", []any{1, 2}},                         // Set (tag 258)
		{"c1 1a 5f5e1000", time.Unix(1600000000, 0)},              // Date, whole seconds
		{"c1 fb 41dac4462907df3b", time.UnixMilli(1796282532123)}, // Date with milliseconds
		{"c1 fb bff0000000000000", time.Unix(-1, 0)},              // before 1970
		{"c0 74 323032302d30392d31335431323a32363a34305a", time.Unix(1600000000, 0)},
		{"c0 78 1e 323032362d31322d30335430393a33333a34362e3132333435363738395a", time.Date(2026, 12, 3, 9, 33, 46, 123456789, time.UTC)},
		{"c0 78 19 323032302d30392d31335431343a32363a34302b30323a3030", time.Unix(1600000000, 0)}, // an offset
		{"f7", nil}, // undefined
		{"82 f7 f6", []any{nil, nil}},
		{"f9 3e00", 1.5},
		{"fa 3fc00000", 1.5},
		{"fb 3ff8000000000000", 1.5},
		{"f9 7c00", math.Inf(1)},
		{"f9 fc00", math.Inf(-1)},
		{"f9 0001", 5.960464477539063e-8},
		{"fb 4014000000000000", 5.0},               // integral, in cbor-x's integer range: a float
		{"fb 4278bcfe56800000", 1_700_000_000_000}, // Date.now(): an integer
		{"fb c1e0000000200000", -(1<<31 + 1)},      // below -2^31: an integer
		{"fb 41f0000000000000", 1 << 32},
		{"fb 433fffffffffffff", maxSafeInt},                           // 2^53-1
		{"fb 4340000000000000", 9007199254740992.0},                   // 2^53: stays a float
		{"fb 4278bcfe56800001", 1700000000000.0002},                   // not integral
		{"9f 01 9f ff ff", []any{1, []any{}}},                         // indefinite arrays
		{"bf 61 61 01 ff", map[string]any{"a": 1}},                    // indefinite map
		{"7f 61 61 62 62 63 ff", "abc"},                               // indefinite text
		{"5f 41 01 ff", []byte{1}},                                    // indefinite bytes
		{"a2 01 61 61 20 61 62", map[string]any{"1": "a", "-1": "b"}}, // integer keys
		{"a2 61 61 01 61 61 02", map[string]any{"a": 2}},              // duplicate key: last wins
		{"82 62 2478 01", []any{"$x", 1}},                             // not revived
	} {
		got, err := cborIn(t, c.hex)
		if err != nil {
			t.Errorf("%s: %v", c.hex, err)
			continue
		}
		if want := val(t, c.want); !bytes.Equal(got, want) {
			t.Errorf("%s = %x, want %x", c.hex, got, want)
		}
	}
}

func TestCBORInputErrors(t *testing.T) {
	deep := strings.Repeat("81", maxParseDepth+1) + "01"
	for _, h := range []string{
		"", "18", "19 01", "1b 0000", "1c", "1d", "1e", "3f", "ff",
		"62 61", "5a ffffffff 00", "7b ffffffffffffffff 61",
		"9b ffffffffffffffff", "9a 00100001 " + strings.Repeat("00", 16), "bb ffffffffffffffff",
		"b9 ffff 01", "a1 01", "a1 f6 01", "a1 41 61 01", "a1 81 01 01", "a1 f9 3e00 01",
		"62 ff fe", "7f 61 ff ff", "7f 41 61 ff", "5f 7f ff ff", "7f 5f ff ff", "5f 01 ff", "9f 01", "bf 01 ff", "bf 61 61 ff",
		"df 01", "1f", "ff",
		"e0", "f0", "f8 20", "fc", "fd", "fe",
		"c2 01", "c2 61 61", "c3 f6", "c0 01", "c0 61 61", "c1 61 61", "c1 f9 7e00", "c1 fb 7ff0000000000000",
		"c1 fb 42a2309ce5400000", // a Date in the year 318857: beyond RFC 3339 "c2 5a 00000401" + strings.Repeat("ff", 1025),
		"01 01", "80 00",
		deep,
		"82 01", "c0",
	} {
		if _, err := cborIn(t, h); err == nil {
			t.Errorf("%.40s: no error", h)
		}
	}
	// The largest nesting the parser takes still has to pass the value
	// limit.
	if _, err := cborIn(t, strings.Repeat("81", maxDepth+1)+"01"); !errors.Is(err, errDepth) {
		t.Errorf("depth %d: %v", maxDepth+1, err)
	}
}

// TestCBOROutput checks what the server writes in CBOR frames and BARE
// values: compat escaping and tagging, and integers that cbor-x reads as
// numbers.
func TestCBOROutput(t *testing.T) {
	for _, c := range []struct {
		in          any
		frame, blob string // CBOR of the value in a frame and in a BARE value
	}{
		{int64(5), "05", "05"},
		{uint64(math.MaxUint32), "1a ffffffff", "1a ffffffff"},
		{int64(-1 << 32), "3a ffffffff", "3a ffffffff"},
		{int64(1 << 32), "fa 4f800000", "fa 4f800000"}, // a float
		{int64(1_700_000_000_000), "fb 4278bcfe56800000", "fb 4278bcfe56800000"},
		{int64(maxSafeInt), "fb 433fffffffffffff", "fb 433fffffffffffff"},
		{int64(maxSafeInt + 1), "82 67 2442696749 6e74 70 39303037313939323534373430393932", ""},
		{[]byte{1, 2}, "42 0102", "82 6b 2455696e743841727261 79 64 4151493d"},
		{[]any{"$x", 1}, "82 63 242478 01", "82 63 242478 01"},
		{map[string]any{"a": []any{"$", []byte{}}}, "a1 61 61 82 62 2424 40", ""},
		{1.5, "f9 3e00", "f9 3e00"},
		// Times are tag 0 on RFC 3339 text: cbor-x reads a Date, a Go
		// client the exact time.
		{time.Date(2026, 12, 3, 9, 33, 46, 123456789, time.FixedZone("", 3600)),
			"c0 78 1e 323032362d31322d30335430383a33333a34362e3132333435363738395a",
			"c0 78 1e 323032362d31322d30335430383a33333a34362e3132333435363738395a"},
	} {
		check := func(got []byte, want string, what string) {
			if want == "" {
				return
			}
			w, err := hex.DecodeString(strings.ReplaceAll(want, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, w) {
				t.Errorf("%s of %#v = %x, want %x", what, c.in, got, w)
			}
		}
		// An ActionResponse frame ends with the output.
		frame, err := Encode(CBOR, ActionResponse{ID: 0, Output: val(t, c.in)})
		if err != nil {
			t.Fatal(err)
		}
		prefix, _ := Encode(CBOR, ActionResponse{ID: 0, Output: nil})
		check(frame[len(prefix)-1:], c.frame, "frame")
		bare, err := Encode(BARE, HTTPActionResponse{Output: val(t, c.in)})
		if err != nil {
			t.Fatal(err)
		}
		check(bare[3:], c.blob, "BARE value")

		// Both read back to the same value.
		back, err := DecodeToClient(CBOR, frame)
		if err != nil {
			t.Errorf("decode frame %x: %v", frame, err)
		} else if got := back.(ActionResponse).Output; !bytes.Equal(got, val(t, c.in)) {
			t.Errorf("frame of %#v read back as %x", c.in, got)
		}
		r, err := DecodeHTTPActionResponse(BARE, bare)
		if err != nil {
			t.Errorf("decode BARE %x: %v", bare, err)
		} else if !bytes.Equal(r.Output, val(t, c.in)) {
			t.Errorf("BARE of %#v read back as %x", c.in, r.Output)
		}
	}

	// A Go float that is an integer beyond 32 bits reads back as an
	// integer: JS cannot tell them apart.
	b, _ := Encode(CBOR, ActionResponse{Output: val(t, 5e9)})
	back, _ := DecodeToClient(CBOR, b)
	if got := back.(ActionResponse).Output; !bytes.Equal(got, val(t, int64(5e9))) {
		t.Errorf("5e9 read back as %x", got)
	}

	// From a client, CBOR values are written as they are.
	req, _ := Encode(CBOR, ActionRequest{Name: "a", Args: val(t, []any{[]any{"$x", 1}, int64(1 << 40), []byte{1}})})
	if want := "8382622478011b000001000000000041 01"; !strings.HasSuffix(hex.EncodeToString(req), strings.ReplaceAll(want, " ", "")) {
		t.Errorf("client args = %x", req)
	}
}
