package keyenc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func enc(t testing.TB, elems ...any) []byte {
	t.Helper()
	b, err := Encode(elems...)
	if err != nil {
		t.Fatalf("Encode(%#v): %v", elems, err)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var negZero = math.Copysign(0, -1)

// TestGolden pins the byte format: these encodings are stored on disk.
func TestGolden(t *testing.T) {
	cases := []struct {
		tuple []any
		hex   string
	}{
		{nil, ""},
		{[]any{""}, "02 0001"},
		{[]any{"a"}, "02 61 0001"},
		{[]any{"a", ""}, "02 61 0001 02 0001"},
		{[]any{"a\x00"}, "02 61 00ff 0001"},
		{[]any{"\x00\x00"}, "02 00ff 00ff 0001"},
		{[]any{"ab"}, "02 6162 0001"},
		{[]any{"\xff\x01"}, "02 ff01 0001"},
		{[]any{[]byte{}}, "01 0001"},
		{[]any{[]byte{0, 1, 0xff}}, "01 00ff 01 ff 0001"},
		{[]any{0}, "05 8000000000000000"},
		{[]any{42}, "05 800000000000002a"},
		{[]any{-5}, "05 7ffffffffffffffb"},
		{[]any{int64(math.MinInt64)}, "05 0000000000000000"},
		{[]any{int64(math.MaxInt64)}, "05 ffffffffffffffff"},
		{[]any{uint64(math.MaxInt64)}, "05 ffffffffffffffff"},
		{[]any{1.5}, "06 bff8000000000000"},
		{[]any{-1.5}, "06 4007ffffffffffff"},
		{[]any{0.0}, "06 8000000000000000"},
		{[]any{negZero}, "06 7fffffffffffffff"},
		{[]any{math.Inf(1)}, "06 fff0000000000000"},
		{[]any{math.Inf(-1)}, "06 000fffffffffffff"},
		{[]any{math.NaN()}, "06 fff8000000000001"},
		{[]any{false}, "07"},
		{[]any{true}, "08"},
		{[]any{true, []byte{}}, "08 01 0001"},
		{[]any{"users", "nathan", "inventory"}, "02 7573657273 0001 02 6e617468616e 0001 02 696e76656e746f7279 0001"},
		{[]any{"leaderboard", 42}, "02 6c6561646572626f617264 0001 05 800000000000002a"},
	}
	for _, c := range cases {
		want := unhex(t, c.hex)
		got := enc(t, c.tuple...)
		if !bytes.Equal(got, want) {
			t.Errorf("Encode(%#v) = % x, want % x", c.tuple, got, want)
		}
		d, err := Decode(want)
		if err != nil {
			t.Errorf("Decode(% x): %v", want, err)
			continue
		}
		if re := enc(t, d...); !bytes.Equal(re, want) {
			t.Errorf("Encode(Decode(% x)) = % x", want, re)
		}
	}
}

// TestOrder checks that each tuple's encoding sorts strictly after the
// previous one's.
func TestOrder(t *testing.T) {
	ordered := [][]any{
		{},
		{[]byte{}},
		{[]byte{0}},
		{[]byte{0, 0}},
		{[]byte{1}},
		{[]byte{0xff}},
		{"", "x"},
		{"a"},
		{"a", []byte("z")},
		{"a", ""},
		{"a", "", ""},
		{"a", "b"},
		{"a", 0},
		{"a", false},
		{"a\x00"},
		{"a\x00", "b"},
		{"a\x00\x00"},
		{"a\x00b"},
		{"a\x01"},
		{"ab"},
		{"b"},
		{"leaderboard", int64(math.MinInt64)},
		{"leaderboard", -60},
		{"leaderboard", -5},
		{"leaderboard", -1},
		{"leaderboard", 0},
		{"leaderboard", 0, "x"},
		{"leaderboard", 1},
		{"leaderboard", 42},
		{"leaderboard", 60},
		{"leaderboard", 88},
		{"leaderboard", 256},
		{"leaderboard", int64(math.MaxInt64)},
		{"leaderboard", math.Inf(-1)},
		{"leaderboard", -math.MaxFloat64},
		{"leaderboard", -1.5},
		{"leaderboard", -math.SmallestNonzeroFloat64},
		{"leaderboard", negZero},
		{"leaderboard", 0.0},
		{"leaderboard", math.SmallestNonzeroFloat64},
		{"leaderboard", 0.5},
		{"leaderboard", 2.25},
		{"leaderboard", math.MaxFloat64},
		{"leaderboard", math.Inf(1)},
		{"leaderboard", math.NaN()},
		{"leaderboard", false},
		{"leaderboard", true},
		{"leaderboardx"},
		{"users", "nathan"},
		{"users", "nathan", "inventory"},
		{"users", "nathan\x00"},
		{"users", "nathana"},
		{"é"},
		{"\xff"},
		{"\xff\xff"},
		{0},
		{0.0},
		{false},
		{false, false},
		{false, true},
		{true},
	}
	encs := make([][]byte, len(ordered))
	for i, tup := range ordered {
		encs[i] = enc(t, tup...)
	}
	for i := 1; i < len(ordered); i++ {
		if bytes.Compare(encs[i-1], encs[i]) >= 0 {
			t.Errorf("%#v (% x) does not sort before %#v (% x)", ordered[i-1], encs[i-1], ordered[i], encs[i])
		}
		if compareTuples(ordered[i-1], ordered[i]) >= 0 {
			t.Errorf("reference comparator: %#v !< %#v", ordered[i-1], ordered[i])
		}
	}
}

func TestSameKeyAcrossTypes(t *testing.T) {
	type myString string
	type myInt int16
	type myUint uint32
	type myBytes []byte
	type myBool bool
	type myFloat float64
	groups := [][]any{
		{int(5), int8(5), int16(5), int32(5), int64(5), uint(5), uint8(5), uint16(5), uint32(5), uint64(5), uintptr(5), myInt(5), myUint(5)},
		{int(-7), int8(-7), int16(-7), int32(-7), int64(-7), myInt(-7)},
		{"k", myString("k")},
		{[]byte("k"), myBytes("k")},
		{true, myBool(true)},
		{1.5, float32(1.5), myFloat(1.5)},
		{math.NaN(), math.Float64frombits(0x7ff0000000000001), math.Float64frombits(0xfff8000000000000), float32(math.NaN())},
	}
	for _, g := range groups {
		want := enc(t, g[0])
		for _, e := range g[1:] {
			if got := enc(t, e); !bytes.Equal(got, want) {
				t.Errorf("Encode(%T %v) = % x, want % x", e, e, got, want)
			}
		}
	}
	if bytes.Equal(enc(t, "k"), enc(t, []byte("k"))) {
		t.Error("string and []byte encode alike")
	}
	if bytes.Equal(enc(t, 1), enc(t, 1.0)) {
		t.Error("int and float encode alike")
	}
	if bytes.Equal(enc(t, 0.0), enc(t, negZero)) {
		t.Error("-0.0 and +0.0 encode alike")
	}
}

func TestNoPrefixInjection(t *testing.T) {
	cases := []struct {
		p, k   []any
		prefix bool
	}{
		{[]any{"a"}, []any{"ab"}, false},
		{[]any{"a"}, []any{"a", "b"}, true},
		{[]any{"a"}, []any{"a", ""}, true},
		{[]any{"a"}, []any{"a\x00"}, false},
		{[]any{"a"}, []any{"a\x00", "x"}, false},
		{[]any{"a\x00"}, []any{"a", ""}, false},
		{[]any{"a", ""}, []any{"a\x00"}, false},
		{[]any{"a", ""}, []any{"a", "", "x"}, true},
		{[]any{"a", ""}, []any{"a", "x"}, false},
		{[]any{""}, []any{"x"}, false},
		{[]any{"users", "nathan"}, []any{"users", "nathanx"}, false},
		{[]any{"users", "nathan"}, []any{"users", "nathan\x00"}, false},
		{[]any{"users", "nathan"}, []any{"users", "nathan", "inventory"}, true},
		{[]any{"users", "nathan"}, []any{"users/nathan"}, false},
		{[]any{[]byte("a")}, []any{"a"}, false},
		{[]any{[]byte("a")}, []any{[]byte("a"), 1}, true},
		{[]any{"leaderboard"}, []any{"leaderboard", 42}, true},
		{[]any{1}, []any{1, 2}, true},
		{[]any{1}, []any{1.0}, false},
		{[]any{false}, []any{true}, false},
		{[]any{}, []any{"anything"}, true},
	}
	for _, c := range cases {
		if got := bytes.HasPrefix(enc(t, c.k...), enc(t, c.p...)); got != c.prefix {
			t.Errorf("encoding of %#v has encoding of %#v as prefix: %v, want %v", c.k, c.p, got, c.prefix)
		}
		if got := isElemPrefix(c.p, c.k); got != c.prefix {
			t.Errorf("reference: isElemPrefix(%#v, %#v) = %v", c.p, c.k, got)
		}
	}
	if bytes.Equal(enc(t, "a\x00"), enc(t, "a", "")) {
		t.Fatal(`("a\x00") and ("a", "") collide`)
	}
}

func TestAppend(t *testing.T) {
	dst := []byte("pre")
	got, err := Append(dst, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("pre"), enc(t, "a", 1)...); !bytes.Equal(got, want) {
		t.Fatalf("Append = % x, want % x", got, want)
	}
	if string(dst) != "pre" {
		t.Fatal("Append modified dst")
	}
	got, err = Append(dst, "a", struct{}{})
	if err == nil || string(got) != "pre" {
		t.Fatalf("Append with a bad element = %q, %v; want dst back and an error", got, err)
	}
	if b, err := Encode(); err != nil || len(b) != 0 {
		t.Fatalf("Encode() = % x, %v", b, err)
	}
	if d, err := Decode(nil); err != nil || len(d) != 0 {
		t.Fatalf("Decode(nil) = %v, %v", d, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	type pair struct{ a, b int }
	cases := []struct {
		elems []any
		want  []string
	}{
		{[]any{"a", struct{}{}}, []string{"element 1", "struct {}"}},
		{[]any{pair{}}, []string{"element 0", "keyenc.pair"}},
		{[]any{"a", "b", nil}, []string{"element 2", "nil"}},
		{[]any{uint64(math.MaxUint64)}, []string{"element 0", "uint64", "overflows"}},
		{[]any{uint64(math.MaxInt64) + 1}, []string{"element 0", "overflows"}},
		{[]any{1, uint(math.MaxUint)}, []string{"element 1", "uint", "overflows"}},
		{[]any{[]string{"a"}}, []string{"[]string"}},
		{[]any{&[]byte{}}, []string{"*[]uint8"}},
		{[]any{complex(1, 2)}, []string{"complex128"}},
		{[]any{map[string]int{}}, []string{"map[string]int"}},
		{[]any{[]any{"nested"}}, []string{"[]interface {}"}},
	}
	for _, c := range cases {
		_, err := Encode(c.elems...)
		if err == nil {
			t.Errorf("Encode(%#v) accepted", c.elems)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Encode(%#v) error %q does not mention %q", c.elems, err, w)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	bad := []string{
		"00",                   // unused tag
		"03", "04", "09", "ff", // unused tags
		"02",                                  // string without payload
		"02 61",                               // unterminated
		"02 61 00",                            // half terminator
		"02 61 00 02",                         // 0x00 followed by neither 0xff nor 0x01
		"02 61 00 00 01",                      // raw 0x00 in payload
		"02 00 ff",                            // escaped 0x00 then end
		"01 00 fe 00 01",                      // bad escape in bytes
		"05",                                  // empty int
		"05 01 02",                            // truncated int
		"05 80 00 00 00 00 00 00",             // 7-byte int
		"06 7f f8",                            // truncated float
		"06 ff f8 00 00 00 00 00 00",          // NaN, but not the canonical one
		"06 ff f0 00 00 00 00 00 01",          // signalling NaN
		"06 00 07 ff ff ff ff ff ff",          // negative NaN
		"02 61 00 01 0a",                      // good element then an unknown tag
		"08 02 61",                            // good element then an unterminated one
		"02 61 00 01 05 80 00 00 00 00 00 00", // good element then a truncated int
	}
	for _, h := range bad {
		b := unhex(t, h)
		d, err := Decode(b)
		if err == nil {
			t.Errorf("Decode(% x) = %#v, want an error", b, d)
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(% x) error %v does not wrap ErrMalformed", b, err)
		}
	}
}

// TestDecodeTruncated decodes every prefix of valid encodings: a prefix
// that ends on an element boundary decodes to a prefix of the tuple; any
// other prefix is an error.
func TestDecodeTruncated(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		tup := randTuple(r, 5)
		b := enc(t, tup...)
		bounds := map[int]int{0: 0}
		for i := range tup {
			bounds[len(enc(t, tup[:i+1]...))] = i + 1
		}
		for n := 0; n <= len(b); n++ {
			d, err := Decode(b[:n])
			if k, ok := bounds[n]; ok {
				if err != nil || compareTuples(d, tup[:k]) != 0 || len(d) != k {
					t.Fatalf("Decode(% x) = %#v, %v; want %#v", b[:n], d, err, tup[:k])
				}
			} else if err == nil {
				t.Fatalf("Decode(% x) of a truncated key = %#v, want an error", b[:n], d)
			}
		}
	}
}

func TestDecodeCopies(t *testing.T) {
	b := enc(t, []byte("abc"), "def")
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'X'
	}
	if !bytes.Equal(d[0].([]byte), []byte("abc")) || d[1].(string) != "def" {
		t.Fatalf("decoded values alias the input: %#v", d)
	}
	d, err = Decode(enc(t, []byte{}, ""))
	if err != nil || d[0] == nil || d[0].([]byte) == nil || d[1] != "" {
		t.Fatalf("Decode of empty payloads = %#v, %v", d, err)
	}
}

func TestPrefixEnd(t *testing.T) {
	cases := []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}},
		{[]byte("a"), []byte("b")},
		{[]byte{0x01, 0xff}, []byte{0x02}},
		{[]byte{0x01, 0xfe, 0xff, 0xff}, []byte{0x01, 0xff}},
		{[]byte{0xff, 0x00}, []byte{0xff, 0x01}},
		{[]byte{0x02, 'a', 0x00, 0x01}, []byte{0x02, 'a', 0x00, 0x02}},
	}
	for _, c := range cases {
		in := slices.Clone(c.in)
		got := PrefixEnd(in)
		if !bytes.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("PrefixEnd(% x) = % x, want % x", c.in, got, c.want)
		}
		if !bytes.Equal(in, c.in) {
			t.Errorf("PrefixEnd modified its argument")
		}
	}
	// The result must not share memory with the argument.
	p := []byte{1, 2, 3}
	e := PrefixEnd(p[:2])
	e[0] = 9
	if p[0] != 1 || p[2] != 3 {
		t.Fatal("PrefixEnd's result aliases its argument")
	}

	// Property: s has prefix p ⇔ p <= s < PrefixEnd(p).
	r := rand.New(rand.NewPCG(5, 6))
	alpha := []byte{0x00, 0x01, 0x7f, 0xfe, 0xff}
	rb := func(n int) []byte {
		b := make([]byte, r.IntN(n+1))
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return b
	}
	for range 20000 {
		p, s := rb(3), rb(5)
		if r.IntN(3) == 0 {
			s = append(slices.Clone(p), s...)
		}
		end := PrefixEnd(p)
		in := bytes.Compare(s, p) >= 0 && (end == nil || bytes.Compare(s, end) < 0)
		if in != bytes.HasPrefix(s, p) {
			t.Fatalf("p=% x s=% x end=% x: in range %v, HasPrefix %v", p, s, end, in, !in)
		}
		if end != nil && !bytes.HasPrefix(s, p) && bytes.Compare(s, p) > 0 && bytes.Compare(s, end) < 0 {
			t.Fatalf("PrefixEnd(% x) = % x is not the smallest: % x lies between", p, end, s)
		}
	}
}

// TestPrefixRange lists, from a sorted set of encoded tuples, those in
// [enc(P), PrefixEnd(enc(P))): exactly the tuples that extend P.
func TestPrefixRange(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tuples := make([][]any, 3000)
	for i := range tuples {
		tuples[i] = randTuple(r, 4)
	}
	for range 200 {
		p := tuples[r.IntN(len(tuples))]
		p = p[:r.IntN(len(p)+1)]
		lo := enc(t, p...)
		hi := PrefixEnd(lo)
		for _, tup := range tuples {
			e := enc(t, tup...)
			in := bytes.Compare(e, lo) >= 0 && (hi == nil || bytes.Compare(e, hi) < 0)
			if in != isElemPrefix(p, tup) {
				t.Fatalf("prefix %#v, tuple %#v: in range %v", p, tup, in)
			}
		}
	}
}

// Random tuples drawn from small alphabets, so that equal elements,
// shared prefixes and escapes are common.
var (
	strAlphabet = []byte{0x00, 0x01, 'a', 'b', 0xfe, 0xff}
	intPool     = []int64{math.MinInt64, math.MinInt64 + 1, -1 << 32, -256, -255, -2, -1, 0, 1, 2, 255, 256, 1 << 32, math.MaxInt64 - 1, math.MaxInt64}
	floatPool   = []float64{math.Inf(-1), -math.MaxFloat64, -1e300, -2, -1, -0.5, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, 0.5, 1, 2, 1e300, math.MaxFloat64, math.Inf(1), math.NaN()}
)

func randBytes(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(5))
	for i := range b {
		b[i] = strAlphabet[r.IntN(len(strAlphabet))]
	}
	return b
}

func randElem(r *rand.Rand) any {
	switch r.IntN(9) {
	case 0, 1:
		return string(randBytes(r))
	case 2:
		return randBytes(r)
	case 3:
		return intPool[r.IntN(len(intPool))]
	case 4:
		return int64(r.Uint64())
	case 5:
		return floatPool[r.IntN(len(floatPool))]
	case 6:
		return math.Float64frombits(r.Uint64())
	case 7:
		return int64(r.IntN(5) - 2)
	default:
		return r.IntN(2) == 0
	}
}

func randTuple(r *rand.Rand, maxLen int) []any {
	out := make([]any, r.IntN(maxLen+1))
	for i := range out {
		out[i] = randElem(r)
	}
	return out
}

// normalize maps an element to what Decode returns for it.
func normalize(e any) any {
	if f, ok := e.(float64); ok && math.IsNaN(f) {
		return math.NaN()
	}
	return e
}

func typeRank(e any) int {
	switch v := e.(type) {
	case []byte:
		return 0
	case string:
		return 1
	case int64:
		return 2
	case float64:
		return 3
	case bool:
		if v {
			return 5
		}
		return 4
	}
	panic("unexpected element type")
}

func cmp[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareFloats is IEEE-754 total order with all NaNs equal: numeric,
// -0 below +0, NaN above everything.
func compareFloats(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	if c := cmp(a, b); c != 0 {
		return c
	}
	if a == 0 {
		return cmp(float64(b2i(math.Signbit(b))), float64(b2i(math.Signbit(a))))
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareElems is the reference order of elements, written from the
// documented rules and not from the encoding.
func compareElems(a, b any) int {
	if ra, rb := typeRank(a), typeRank(b); ra != rb {
		return cmp(int64(ra), int64(rb))
	}
	switch x := a.(type) {
	case []byte:
		return bytes.Compare(x, b.([]byte))
	case string:
		return strings.Compare(x, b.(string))
	case int64:
		return cmp(x, b.(int64))
	case float64:
		return compareFloats(x, b.(float64))
	}
	return 0 // bools: the rank decided
}

func compareTuples(a, b []any) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareElems(toCanon(a[i]), toCanon(b[i])); c != 0 {
			return c
		}
	}
	return cmp(int64(len(a)), int64(len(b)))
}

// toCanon widens the literal element types used in tables to the decoded
// types the reference comparator knows.
func toCanon(e any) any {
	switch v := e.(type) {
	case int:
		return int64(v)
	case float32:
		return float64(v)
	}
	return e
}

func isElemPrefix(p, k []any) bool {
	return len(p) <= len(k) && compareTuples(p, k[:len(p)]) == 0
}

func sign(c int) int { return cmp(int64(c), 0) }

func TestPropertyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tuples := make([][]any, 5000)
	encs := make([][]byte, len(tuples))
	for i := range tuples {
		tuples[i] = randTuple(r, 4)
		encs[i] = enc(t, tuples[i]...)
	}
	// Pairwise: byte order equals the reference order.
	for range 200000 {
		i, j := r.IntN(len(tuples)), r.IntN(len(tuples))
		if got, want := sign(bytes.Compare(encs[i], encs[j])), compareTuples(tuples[i], tuples[j]); got != want {
			t.Fatalf("compare(%#v, %#v): bytes say %d, reference %d\n% x\n% x", tuples[i], tuples[j], got, want, encs[i], encs[j])
		}
	}
	// Sorting by encoding sorts by the reference comparator.
	idx := make([]int, len(tuples))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(encs[a], encs[b]) })
	for k := 1; k < len(idx); k++ {
		if compareTuples(tuples[idx[k-1]], tuples[idx[k]]) > 0 {
			t.Fatalf("sorted by encoding, %#v precedes %#v", tuples[idx[k-1]], tuples[idx[k]])
		}
	}
}

func TestPropertyPrefixAndRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 50000 {
		k := randTuple(r, 5)
		var p []any
		switch r.IntN(4) {
		case 0: // an element-wise prefix
			p = slices.Clone(k[:r.IntN(len(k)+1)])
		case 1: // a prefix with its last element altered
			p = slices.Clone(k[:r.IntN(len(k)+1)])
			if len(p) > 0 {
				p[len(p)-1] = mutate(r, p[len(p)-1])
			}
		default:
			p = randTuple(r, 3)
		}
		ke, pe := enc(t, k...), enc(t, p...)
		if got, want := bytes.HasPrefix(ke, pe), isElemPrefix(p, k); got != want {
			t.Fatalf("HasPrefix(enc %#v, enc %#v) = %v, want %v", k, p, got, want)
		}
		d, err := Decode(ke)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)): %v", k, err)
		}
		want := make([]any, len(k))
		for i, e := range k {
			want[i] = normalize(e)
		}
		if len(k) == 0 {
			want = nil
		}
		if !deepEqualKeys(d, want) {
			t.Fatalf("round trip %#v -> %#v", k, d)
		}
		if re := enc(t, d...); !bytes.Equal(re, ke) {
			t.Fatalf("re-encoding %#v differs", k)
		}
	}
}

// deepEqualKeys is reflect.DeepEqual, except that NaN equals NaN.
func deepEqualKeys(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, oka := a[i].(float64)
		fb, okb := b[i].(float64)
		if oka && okb {
			if math.Float64bits(fa) != math.Float64bits(fb) && !(math.IsNaN(fa) && math.IsNaN(fb)) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// mutate returns an element close to e: same type, slightly changed.
func mutate(r *rand.Rand, e any) any {
	switch v := e.(type) {
	case string:
		switch {
		case len(v) > 0 && r.IntN(2) == 0:
			return v[:len(v)-1]
		default:
			return v + string(strAlphabet[r.IntN(len(strAlphabet))])
		}
	case []byte:
		return append(slices.Clone(v), strAlphabet[r.IntN(len(strAlphabet))])
	case int64:
		return v + 1
	case float64:
		return math.Nextafter(v, math.Inf(1))
	case bool:
		return !v
	}
	return e
}

func BenchmarkEncode(b *testing.B) {
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf, _ = Append(buf[:0], "users", "nathan", "inventory", 42)
	}
}

func BenchmarkDecode(b *testing.B) {
	k, _ := Encode("users", "nathan", "inventory", 42)
	for b.Loop() {
		_, _ = Decode(k)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range [][]any{
		{"a"}, {"a\x00b", 42}, {[]byte{0xff}, -1.5, true}, {}, {"", []byte{}},
		{math.NaN(), math.Inf(-1), negZero, false}, {int64(math.MinInt64), int64(math.MaxInt64)},
	} {
		f.Add(enc(f, s...))
	}
	f.Add([]byte{0x02, 0x00})
	f.Add([]byte{0x06, 0xff, 0xf8, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(% x) error %v does not wrap ErrMalformed", b, err)
			}
			return
		}
		re, err := Encode(d...)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", d, err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("Encode(Decode(% x)) = % x", b, re)
		}
		// Every element boundary is a valid prefix, and PrefixEnd bounds b.
		for i := range d {
			p := enc(t, d[:i]...)
			if !bytes.HasPrefix(b, p) {
				t.Fatalf("encoding of %#v is not a prefix of % x", d[:i], b)
			}
			if end := PrefixEnd(p); end != nil && bytes.Compare(b, end) >= 0 {
				t.Fatalf("% x is not below PrefixEnd(% x) = % x", b, p, end)
			}
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("a", "ab", []byte{0}, int64(42), int64(-5), 1.5, math.NaN(), uint16(0xffff))
	f.Add("a\x00", "a", []byte{}, int64(0), int64(0), 0.0, negZero, uint16(0))
	f.Add("", "\xff", []byte{0xff, 0}, int64(math.MinInt64), int64(math.MaxInt64), math.Inf(-1), math.Inf(1), uint16(0x1234))
	f.Fuzz(func(t *testing.T, s1, s2 string, b []byte, i1, i2 int64, f1, f2 float64, shape uint16) {
		pool := []any{s1, s2, b, i1, i2, f1, f2, shape&1 == 0}
		// shape picks up to five elements from the pool, 3 bits each.
		n := int(shape>>13) % 6
		tup := make([]any, n)
		for k := range tup {
			tup[k] = pool[int(shape>>(3*k))&7]
		}
		e, err := Encode(tup...)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(e)
		if err != nil {
			t.Fatalf("Decode(Encode(%#v)): %v", tup, err)
		}
		want := make([]any, n)
		for k, x := range tup {
			want[k] = normalize(x)
			if bb, ok := x.([]byte); ok && bb == nil {
				want[k] = []byte{}
			}
		}
		if n == 0 {
			want = nil
		}
		if !deepEqualKeys(d, want) {
			t.Fatalf("round trip %#v -> %#v", tup, d)
		}
		// Element prefixes are byte prefixes.
		for k := 0; k <= n; k++ {
			if !bytes.HasPrefix(e, enc(t, tup[:k]...)) {
				t.Fatalf("encoding of %#v lacks the prefix %#v", tup, tup[:k])
			}
		}
		// Single elements: byte order is value order, and a byte prefix
		// only for equal values.
		for _, pair := range [][2]any{{s1, s2}, {i1, i2}, {f1, f2}, {b, s1}, {[]byte(s1), b}, {i1, f1}} {
			x, y := enc(t, pair[0]), enc(t, pair[1])
			want := compareElems(normalize(pair[0]), normalize(pair[1]))
			if got := sign(bytes.Compare(x, y)); got != want {
				t.Fatalf("compare(%#v, %#v): bytes say %d, reference %d", pair[0], pair[1], got, want)
			}
			if got := bytes.HasPrefix(y, x); got != (want == 0) {
				t.Fatalf("enc(%#v) prefix of enc(%#v): %v", pair[0], pair[1], got)
			}
			// Extending a tuple keeps it above its prefix and below PrefixEnd.
			xy := enc(t, pair[0], pair[1])
			if end := PrefixEnd(x); bytes.Compare(x, xy) >= 0 || (end != nil && bytes.Compare(xy, end) >= 0) {
				t.Fatalf("(%#v, %#v) outside the range of its prefix", pair[0], pair[1])
			}
		}
	})
}
