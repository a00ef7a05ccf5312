package actorkey

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSerialize(t *testing.T) {
	cases := []struct {
		key  []string
		want string
	}{
		{[]string{}, "/"},
		{nil, "/"},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a/b"},
		{[]string{"a", "b", "c"}, "a/b/c"},
		{[]string{"a/b", ""}, `a\/b/\0`},
		{[]string{""}, `\0`},
		{[]string{"", ""}, `\0/\0`},
		{[]string{"", "a", ""}, `\0/a/\0`},
		{[]string{"/"}, `\/`},
		{[]string{"//"}, `\/\/`},
		{[]string{"/", "/"}, `\//\/`},
		{[]string{`\`}, `\\`},
		{[]string{`c:\`}, `c:\\`},
		{[]string{`\/`}, `\\\/`},
		{[]string{`/\`}, `\/\\`},
		{[]string{`\0`}, `\\0`},
		{[]string{`\0`, ""}, `\\0/\0`},
		{[]string{"0"}, "0"},
		{[]string{"0", "0"}, "0/0"},
		{[]string{`a\0b`}, `a\\0b`},
		{[]string{"héllo", "世界", "🙂"}, "héllo/世界/🙂"},
		{[]string{"a,b", " "}, "a,b/ "},
		{[]string{"\x00", "\xff"}, "\x00/\xff"},
		{[]string{"users", "nathan", "inventory"}, "users/nathan/inventory"},
	}
	for _, c := range cases {
		if got := Serialize(c.key); got != c.want {
			t.Errorf("Serialize(%q) = %q, want %q", c.key, got, c.want)
		}
		if n := serializedLen(c.key); n != len(c.want) {
			t.Errorf("serializedLen(%q) = %d, want %d", c.key, n, len(c.want))
		}
		back, err := Deserialize(c.want)
		if err != nil {
			t.Errorf("Deserialize(%q): %v", c.want, err)
			continue
		}
		want := c.key
		if want == nil {
			want = []string{}
		}
		if back == nil || !slices.Equal(back, want) {
			t.Errorf("Deserialize(%q) = %q, want %q", c.want, back, want)
		}
	}
}

func TestDeserializeRejects(t *testing.T) {
	bad := []string{
		"",       // not a key; the empty key is "/"
		`\`,      // dangling backslash
		`a\`,     // dangling backslash
		`a/\`,    // dangling backslash
		`\\\`,    // dangling after an escape
		`a\x`,    // unknown escape
		`\n`,     // unknown escape
		`\ `,     // unknown escape
		`\1`,     // unknown escape
		"\\\x00", // unknown escape
		"//",     // empty parts
		"a//b",   // empty part in the middle
		"/a",     // empty first part
		"a/",     // empty last part
		"///",    // empty parts
		`\0x`,    // \0 followed by text
		`x\0`,    // text followed by \0
		`\0\0`,   // two \0 in one part
		`\\\0`,   // escape followed by \0
		`\0\/`,   // \0 followed by an escape
		`\/\0`,   // escape followed by \0
		`a/\0b`,  // \0 followed by text in a later part
	}
	for _, s := range bad {
		k, err := Deserialize(s)
		if err == nil {
			t.Errorf("Deserialize(%q) = %q, want an error", s, k)
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Deserialize(%q) error %v does not wrap ErrMalformed", s, err)
		}
	}
}

func TestErrorsAreShort(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 5000) + `\`, strings.Repeat("a/", 5000) + "/", strings.Repeat("é", 3000) + `\x`} {
		_, err := Deserialize(s)
		if err == nil || len(err.Error()) > 300 {
			t.Errorf("Deserialize of %d bytes: error %q", len(s), err)
		}
	}
}

// TestDeserializeResultIsOwned checks the unescaping and that callers may
// modify the returned slice.
func TestDeserializeResultIsOwned(t *testing.T) {
	k, err := Deserialize(`a\/b/c/\0/d\\`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b", "c", "", `d\`}; !slices.Equal(k, want) {
		t.Fatalf("got %q, want %q", k, want)
	}
	k[0] = "changed"
	if k2, _ := Deserialize(`a\/b/c/\0/d\\`); k2[0] != "a/b" {
		t.Fatal("results share state")
	}
}

func TestFromQuery(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{"a,,b", []string{"a", "", "b"}},
		{",", []string{"", ""}},
		{"a/b,c", []string{"a/b", "c"}},
		{`\0`, []string{`\0`}},
		{"héllo,世界", []string{"héllo", "世界"}},
	}
	for _, c := range cases {
		got := FromQuery(c.in)
		if got == nil || !slices.Equal(got, c.want) {
			t.Errorf("FromQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := [][]string{
		nil,
		{},
		{""},
		{strings.Repeat("x", MaxSerializedSize)},
		{strings.Repeat("x", 511), strings.Repeat("y", 512)},
		{strings.Repeat("/", MaxSerializedSize/2)},
		slices.Repeat([]string{""}, 341), // 341 × `\0` + 340 × '/' = 1022 bytes
	}
	for _, k := range ok {
		if err := Validate(k); err != nil {
			t.Errorf("Validate(%d parts, %d bytes serialized): %v", len(k), len(Serialize(k)), err)
		}
	}
	bad := [][]string{
		{strings.Repeat("x", MaxSerializedSize+1)},
		{strings.Repeat("x", 512), strings.Repeat("y", 512)}, // 1025 with the separator
		{strings.Repeat("/", MaxSerializedSize/2+1)},         // 1026 escaped
		{strings.Repeat(`\`, MaxSerializedSize/2), "a"},      // 1026 escaped
		slices.Repeat([]string{""}, 342),                     // 1025
	}
	for _, k := range bad {
		err := Validate(k)
		if err == nil {
			t.Errorf("Validate(%d parts, %d bytes serialized) accepted", len(k), len(Serialize(k)))
			continue
		}
		if !strings.Contains(err.Error(), "1024") {
			t.Errorf("Validate error %q does not name the limit", err)
		}
	}
	// The boundary is on the serialized size, not the raw size.
	for n := MaxSerializedSize - 3; n <= MaxSerializedSize+3; n++ {
		k := []string{strings.Repeat("a", n-3), "/"} // n-3 + 1 + len(`\/`) bytes
		if got := len(Serialize(k)); got != n {
			t.Fatalf("test setup: %d bytes, want %d", got, n)
		}
		if err := Validate(k); (err == nil) != (n <= MaxSerializedSize) {
			t.Errorf("Validate of a %d-byte serialized key: %v", n, err)
		}
	}
}

// randKey makes keys from an alphabet heavy in the characters that matter.
func randKey(r *rand.Rand) []string {
	alpha := []string{"a", "0", `\`, "/", ",", "é", "\x00", "\xff", `\0`}
	k := make([]string, r.IntN(5))
	for i := range k {
		var b strings.Builder
		for range r.IntN(5) {
			b.WriteString(alpha[r.IntN(len(alpha))])
		}
		k[i] = b.String()
	}
	return k
}

func TestPropertyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{}
	for range 100000 {
		k := randKey(r)
		s := Serialize(k)
		if len(s) != serializedLen(k) {
			t.Fatalf("serializedLen(%q) = %d, want %d", k, serializedLen(k), len(s))
		}
		got, err := Deserialize(s)
		if err != nil || !slices.Equal(got, k) {
			t.Fatalf("Deserialize(Serialize(%q)) = %q, %v", k, got, err)
		}
		// Injective: different keys never share a serialization.
		id := fmt.Sprintf("%q", k)
		if prev, ok := seen[s]; ok && prev != id {
			t.Fatalf("%q and %q both serialize to %q", prev, id, s)
		}
		seen[s] = id
	}
}

func BenchmarkSerialize(b *testing.B) {
	k := []string{"users", "nathan", "inventory"}
	for b.Loop() {
		_ = Serialize(k)
	}
}

func BenchmarkDeserialize(b *testing.B) {
	for b.Loop() {
		_, _ = Deserialize(`users/nath\/an/inventory`)
	}
}

func FuzzDeserialize(f *testing.F) {
	for _, s := range []string{"/", "a/b", `a\/b/\0`, `\\0`, `\0/\0`, "", `a\`, "a//b", `\0x`, "é/世"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Deserialize(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Deserialize(%q) error %v does not wrap ErrMalformed", s, err)
			}
			return
		}
		if k == nil {
			t.Fatalf("Deserialize(%q) returned nil without an error", s)
		}
		if got := Serialize(k); got != s {
			t.Fatalf("Serialize(Deserialize(%q)) = %q (key %q)", s, got, k)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("a", "b/c", uint8(2))
	f.Add("", `\0`, uint8(3))
	f.Add(`a\`, "", uint8(1))
	f.Add("/", `\/`, uint8(7))
	f.Add("", "", uint8(0))
	f.Fuzz(func(t *testing.T, a, b string, shape uint8) {
		// shape picks the key's length (0-4) and which of a, b fills each
		// part.
		n := int(shape>>4) % 5
		k := make([]string, n)
		for i := range k {
			if shape>>i&1 == 0 {
				k[i] = a
			} else {
				k[i] = b
			}
		}
		s := Serialize(k)
		if len(s) != serializedLen(k) {
			t.Fatalf("serializedLen(%q) = %d, want %d", k, serializedLen(k), len(s))
		}
		got, err := Deserialize(s)
		if err != nil || !slices.Equal(got, k) {
			t.Fatalf("Deserialize(Serialize(%q)) = %q, %v (serialized %q)", k, got, err, s)
		}
		if !strings.Contains(a, ",") && n > 0 && (n > 1 || a != "") {
			q := FromQuery(strings.Join(slices.Repeat([]string{a}, n), ","))
			if !slices.Equal(q, slices.Repeat([]string{a}, n)) {
				t.Fatalf("FromQuery of %d copies of %q = %q", n, a, q)
			}
		}
	})
}
