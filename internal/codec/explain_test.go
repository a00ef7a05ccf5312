package codec

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type point struct {
	X int     `json:"x"`
	Y float64 `cbor:"why"`
	Z []uint8 `json:"z"`
	T time.Time
	M map[string]int `json:"m"`
}

func TestExplain(t *testing.T) {
	for _, c := range []struct {
		v    any
		into any
		enc  string
		want string
	}{
		{1.5, int(0), "json", "expected an integer (Go int), got the JSON number 1.5"},
		{1.5, int(0), "cbor", "expected an integer (Go int), got the CBOR float 1.5"},
		{1.5, int(0), "", "expected an integer (Go int), got the number 1.5"},
		{"x", int(0), "bare", `expected an integer (Go int), got the CBOR text string "x"`},
		{300, int8(0), "json", "expected an integer (Go int8), got the JSON number 300 (out of range)"},
		{-1, uint(0), "json", "expected a non-negative integer (Go uint), got the JSON number -1 (out of range)"},
		{uint64(math.MaxUint64), int64(0), "json", "expected an integer (Go int64), got the JSON bigint 18446744073709551615 (out of range)"},
		{true, "", "json", "expected a string (Go string), got the JSON boolean true"},
		{[]byte{1}, "", "json", "expected a string (Go string), got a JSON Uint8Array of 1 bytes"},
		{[]any{1, "a"}, []int{}, "json", `at [1]: expected an integer (Go int), got the JSON string "a"`},
		{map[string]any{"x": "1"}, point{}, "json", `at .x: expected an integer (Go int), got the JSON string "1"`},
		{map[string]any{"why": "1"}, point{}, "cbor", `at .why: expected a number (Go float64), got the CBOR text string "1"`},
		{map[string]any{"T": "soon"}, point{}, "json", `at .T: expected a time (RFC 3339 text or Unix seconds) (Go time.Time), got the JSON string "soon" (not RFC 3339)`},
		{map[string]any{"m": map[string]any{"k": 1.5}}, point{}, "json", "at .m.k: expected an integer (Go int), got the JSON number 1.5"},
		{[]any{1}, point{}, "cbor", "expected an object (Go codec.point), got a CBOR array of 1 elements"},
		{"x", map[string]int{}, "cbor", `expected an object (Go map[string]int), got the CBOR text string "x"`},
	} {
		b := mustMarshal(t, c.v)
		dst := reflect.New(reflect.TypeOf(c.into))
		err := Unmarshal(b, dst.Interface())
		if err == nil {
			t.Errorf("%#v into %T decoded", c.v, c.into)
			continue
		}
		if got := Explain(b, dst.Type().Elem(), c.enc, err).Error(); got != c.want {
			t.Errorf("%#v into %T (%s):\n got %s\nwant %s", c.v, c.into, c.enc, got, c.want)
		}
	}
}

func TestNullElements(t *testing.T) {
	for _, c := range []struct {
		v    []any
		want []int
	}{
		{[]any{}, nil},
		{[]any{1, "a", []any{nil}, map[string]any{"k": nil}}, nil},
		{[]any{nil, 1, nil}, []int{0, 2}},
		{[]any{[]byte{0xf6}, nil}, []int{1}}, // a byte string holding f6 is no null
	} {
		got, err := NullElements(mustMarshal(t, c.v))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("NullElements(%v) = %v, %v; want %v", c.v, got, err, c.want)
		}
	}
	for _, b := range [][]byte{{0x01}, {0x82, 0x01}, {0x81, 0x5a, 0xff}, {0x9f, 0xf6}} {
		if _, err := NullElements(b); err == nil {
			t.Errorf("NullElements(%x) succeeded", b)
		}
	}
}

func TestNullable(t *testing.T) {
	for _, c := range []struct {
		v    any
		want bool
	}{
		{0, false}, {"", false}, {false, false}, {1.5, false}, {point{}, false}, {[2]int{}, false},
		{new(int), true}, {[]int{}, true}, {map[string]int{}, true}, {time.Time{}, true},
	} {
		if got := Nullable(reflect.TypeOf(c.v)); got != c.want {
			t.Errorf("Nullable(%T) = %v", c.v, got)
		}
	}
	if !Nullable(reflect.TypeFor[any]()) {
		t.Error("Nullable(any) = false")
	}
}

// Maps with integer keys come back from the wire, where keys are text.
func TestIntKeysFromText(t *testing.T) {
	type holder struct {
		M map[int8]string      `json:"m"`
		N []map[uint64]float64 `json:"n"`
	}
	b := mustMarshal(t, map[string]any{
		"m": map[string]any{"-3": "a", "7": "b"},
		"n": []any{map[string]any{"18446744073709551615": 1.5}},
	})
	var h holder
	if err := Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	want := holder{M: map[int8]string{-3: "a", 7: "b"}, N: []map[uint64]float64{{math.MaxUint64: 1.5}}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %+v, want %+v", h, want)
	}
	var m map[int]string
	if err := Unmarshal(mustMarshal(t, map[string]any{"x": "a"}), &m); err == nil {
		t.Error("a key that is no integer decoded")
	}
}

// Times keep every nanosecond and come back in UTC.
func TestTimes(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 33, 46, 123456789, time.FixedZone("CET", 3600))
	b := mustMarshal(t, at)
	if want := append([]byte{0xc0, 0x78, 30}, "2026-12-03T09:33:46.123456789Z"...); !bytes.Equal(b, want) {
		t.Errorf("Marshal(%v) = %q", at, b)
	}
	var back time.Time
	if err := Unmarshal(b, &back); err != nil || !back.Equal(at) || back.Location() != time.UTC {
		t.Errorf("Unmarshal = %v, %v", back, err)
	}
	var old time.Time // as earlier versions wrote times: whole seconds
	if err := Unmarshal(mustMarshal(t, int64(1796282532)), &old); err != nil || old.Unix() != 1796282532 {
		t.Errorf("old time = %v, %v", old, err)
	}
	if b := mustMarshal(t, time.Time{}); !bytes.Equal(b, []byte{0xf6}) {
		t.Errorf("zero time = %x", b)
	}
	if _, err := Marshal(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("year 10000 encoded")
	}
}

func FuzzNullElements(f *testing.F) {
	f.Add([]byte{0x83, 0xf6, 0x01, 0xf6})
	f.Add([]byte{0x9f, 0xf6, 0xff})
	f.Add([]byte{0x82, 0xa1, 0x61, 0x61, 0xf6, 0xc0, 0x61, 0x61})
	f.Fuzz(func(t *testing.T, b []byte) {
		nulls, err := NullElements(b)
		if err != nil || Valid(b) != nil {
			return
		}
		var a []Raw
		if decMode.Unmarshal(b, &a) != nil {
			return
		}
		for _, i := range nulls {
			if i >= len(a) || (a[i][0] != 0xf6 && a[i][0] != 0xf7) {
				t.Fatalf("NullElements(%x) = %v", b, nulls)
			}
		}
	})
}

func FuzzExplain(f *testing.F) {
	f.Add([]byte{0xf9, 0x3e, 0x00})
	f.Add([]byte{0xa1, 0x61, 0x78, 0x61, 0x31})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p point
		if err := Unmarshal(b, &p); err != nil {
			if Explain(b, reflect.TypeFor[point](), "json", err).Error() == "" {
				t.Fatal("empty explanation")
			}
		}
	})
}
