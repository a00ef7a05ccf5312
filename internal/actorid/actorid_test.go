package actorid

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// bigEncode is a reference encoder written with math/big.
func bigEncode(b [Size]byte) string {
	be := make([]byte, Size)
	for i := range b {
		be[Size-1-i] = b[i]
	}
	s := []byte(new(big.Int).SetBytes(be).Text(36))
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return string(s) + strings.Repeat("0", Len-len(s))
}

func checkShape(t *testing.T, id string) {
	t.Helper()
	if len(id) != Len {
		t.Fatalf("id %q has length %d", id, len(id))
	}
	if strings.Trim(id, digits) != "" {
		t.Fatalf("id %q has characters outside 0-9a-z", id)
	}
	if url.PathEscape(id) != id || url.QueryEscape(id) != id || strings.Contains(id, "@") {
		t.Fatalf("id %q is not URL-safe", id)
	}
	if id[Len-1] > '4' {
		t.Fatalf("id %q: last digit above 4", id)
	}
}

func TestNew(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for i := range n {
		label := uint16(i * 7919)
		id := New(label)
		checkShape(t, id)
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = struct{}{}
		b, err := Parse(id)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != Version || b[7]>>4 != 4 || b[9]>>6 != 2 || b[17] != byte(label>>8) || b[18] != byte(label) {
			t.Fatalf("id %q decodes to % x", id, b)
		}
		if got, err := Label(id); err != nil || got != label {
			t.Fatalf("Label(%q) = %d, %v; want %d", id, got, err, label)
		}
		if encode(b) != id || bigEncode(b) != id {
			t.Fatalf("re-encoding %q differs", id)
		}
	}
}

// TestRandomBits checks that every random bit of the UUID varies.
func TestRandomBits(t *testing.T) {
	var or, and [Size]byte
	for i := range and {
		and[i] = 0xff
	}
	for range 2000 {
		b, err := Parse(New(0xabcd))
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			or[i] |= b[i]
			and[i] &= b[i]
		}
	}
	for i := 1; i <= 16; i++ {
		fixed := byte(0)
		switch i {
		case 7:
			fixed = 0xf0
		case 9:
			fixed = 0xc0
		}
		if varying := or[i] &^ and[i]; varying != ^fixed {
			t.Errorf("byte %d: varying bits %08b, want %08b", i, varying, ^fixed)
		}
	}
}

func TestNewConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			local := make([]string, 2000)
			for i := range local {
				local[i] = New(1)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %q", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}

func TestKnownIDs(t *testing.T) {
	cases := []struct {
		id    string
		bytes [Size]byte
	}{
		// The engine's example id: UUID 3f2504e0-4f89-41d3-9a0c-0305e82c3301, label 1.
		{"dl0cdxyxq0wt6bjksjgjrn6zteal00", [Size]byte{1, 0x3f, 0x25, 0x04, 0xe0, 0x4f, 0x89, 0x41, 0xd3, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01, 0x00, 0x01}},
		// Only the version byte: the value 1.
		{"1" + strings.Repeat("0", 29), [Size]byte{1}},
		// Version 1 and every other byte 0xff: the largest valid id.
		{bigEncode([Size]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
			[Size]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, c := range cases {
		b, err := Parse(c.id)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.id, err)
			continue
		}
		if b != c.bytes {
			t.Errorf("Parse(%q) = % x, want % x", c.id, b, c.bytes)
		}
		if got := encode(c.bytes); got != c.id {
			t.Errorf("encode(% x) = %q, want %q", c.bytes, got, c.id)
		}
	}
	if l, err := Label("dl0cdxyxq0wt6bjksjgjrn6zteal00"); err != nil || l != 1 {
		t.Errorf("Label of the example = %d, %v; want 1", l, err)
	}
}

func TestEncodeMatchesBig(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b [Size]byte
		for i := range b {
			switch r.IntN(4) {
			case 0:
				b[i] = 0
			case 1:
				b[i] = 0xff
			default:
				b[i] = byte(r.Uint32())
			}
		}
		want := bigEncode(b)
		if got := encode(b); got != want {
			t.Fatalf("encode(% x) = %q, want %q", b, got, want)
		}
		got, err := Parse(want)
		if b[0] != Version {
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) with version %d: %v", want, b[0], err)
			}
			continue
		}
		if err != nil || got != b {
			t.Fatalf("Parse(%q) = % x, %v; want % x", want, got, err, b)
		}
	}
}

func TestParseRejects(t *testing.T) {
	valid := "dl0cdxyxq0wt6bjksjgjrn6zteal00"
	// 2^152, the smallest value that does not fit in 19 bytes.
	var limit [20]byte
	limit[0] = 1
	over := new(big.Int).SetBytes(limit[:]).Text(36)
	overRev := []byte(over)
	for i, j := 0, len(overRev)-1; i < j; i, j = i+1, j-1 {
		overRev[i], overRev[j] = overRev[j], overRev[i]
	}
	bad := []string{
		"",
		"short",
		valid[:Len-1],
		valid + "0",
		strings.Repeat("z", Len),      // far above 2^152
		string(overRev),               // exactly 2^152
		strings.Repeat("0", Len),      // version 0
		"2" + strings.Repeat("0", 29), // version 2
		strings.ToUpper(valid),
		"Dl0cdxyxq0wt6bjksjgjrn6zteal00",
		"dl0cdxyxq0wt6bjksjgjrn6zteal0@",
		"dl0cdxyxq0wt6bjksjgjrn6zteal0 ",
		"dl0cdxyxq0wt6bjksjgjrn6zteal0\x00",
		"dl0cdxyxq0wt6bjksjgjrn6zte-l00",
		"dl0cdxyxq0wt6bjksjgjrn6zteal0é"[:Len],
		"3f2504e0-4f89-41d3-9a0c-0305e82c3301",
	}
	if len(string(overRev)) != Len {
		t.Fatalf("2^152 has %d digits", len(overRev))
	}
	for _, s := range bad {
		if b, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = % x, want an error", s, b)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
		}
		if Valid(s) {
			t.Errorf("Valid(%q)", s)
		}
		if _, err := Label(s); err == nil {
			t.Errorf("Label(%q) accepted", s)
		}
	}
	if !Valid(valid) {
		t.Fatal("the example id is not Valid")
	}
}

func TestErrorsAreShort(t *testing.T) {
	_, err := Parse(strings.Repeat("é", 10000))
	if err == nil || len(err.Error()) > 100 {
		t.Fatalf("Parse error %q", err)
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		_ = New(1)
	}
}

func BenchmarkParse(b *testing.B) {
	id := New(1)
	for b.Loop() {
		_, _ = Parse(id)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("dl0cdxyxq0wt6bjksjgjrn6zteal00")
	f.Add(New(0))
	f.Add(New(0xffff))
	f.Add(strings.Repeat("z", Len))
	f.Add("1" + strings.Repeat("0", 29))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			if Valid(s) {
				t.Fatalf("Valid(%q) but Parse fails", s)
			}
			return
		}
		if b[0] != Version {
			t.Fatalf("Parse(%q) accepted version %d", s, b[0])
		}
		if got := encode(b); got != s {
			t.Fatalf("Parse(%q) re-encodes to %q", s, got)
		}
		if got := bigEncode(b); got != s {
			t.Fatalf("Parse(%q) = % x, which is %q", s, b, got)
		}
	})
}
