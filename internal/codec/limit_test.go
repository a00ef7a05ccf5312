package codec

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

type item struct {
	Name    string   `json:"name"`
	Tags    []string `json:"tags,omitempty"`
	Hidden  string   `json:"-"`
	private string
	When    time.Time `json:"when"`
	Next    *item     `json:"next,omitempty"`
}

// TestMarshalLimitLowerBound: the walk never refuses a value whose
// encoding fits, and refuses one far over the limit before encoding it.
func TestMarshalLimitLowerBound(t *testing.T) {
	values := []any{
		nil, 0, -1, 1.5, 0.1, true, "", "abc", []byte{}, []byte("xyz"), [4]byte{1, 2, 3, 4},
		[]int{}, []int{1, 2, 3}, map[string]int{}, map[string]int{"a": 1, "bb": 22},
		item{}, &item{Name: "n", Tags: []string{"", "x"}, Hidden: strings.Repeat("h", 100), private: strings.Repeat("p", 100), Next: &item{}},
		[]any{nil, "s", []any{}, map[string]any{"k": []byte("v")}},
		Raw{0x01}, []Raw{{0xf6}, {0x61, 'a'}},
		struct {
			A string `cbor:"a,omitempty"`
			B []int  `json:"b,omitempty"`
			C string `cbor:"-" json:"c"`
		}{C: strings.Repeat("c", 50)},
	}
	for _, v := range values {
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		w := sizeWalker{budget: len(b)}
		w.value(reflectValueOf(v), 0)
		if w.over || w.n > len(b) {
			t.Errorf("%#v: lower bound %d > encoded length %d", v, w.n, len(b))
		}
		if _, err := MarshalLimit(v, len(b)); err != nil {
			t.Errorf("%#v: MarshalLimit at its exact length: %v", v, err)
		}
		if len(b) > 1 {
			if _, err := MarshalLimit(v, len(b)-1); !errors.Is(err, ErrTooLarge) {
				t.Errorf("%#v: MarshalLimit one byte short: %v", v, err)
			}
		}
	}
}

// TestMarshalLimitStopsEarly: a value that is far too large is refused by
// the walk, which stops soon after the limit (the encoder never runs).
func TestMarshalLimitStopsEarly(t *testing.T) {
	items := make([]string, 100_000)
	for i := range items {
		items[i] = fmt.Sprintf("Item %d with some additional text to increase size", i)
	}
	v := struct {
		Items []string `json:"items"`
	}{items}
	w := sizeWalker{budget: 1 << 20}
	w.value(reflectValueOf(v), 0)
	if !w.over || w.n > 1<<20+100 {
		t.Fatalf("walk: over=%v n=%d", w.over, w.n)
	}
	if _, err := MarshalLimit(v, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MarshalLimit: %v", err)
	}
	// A long slice of small elements is refused from its length alone.
	w = sizeWalker{budget: 1000}
	w.value(reflectValueOf(make([]int, 1_000_000)), 0)
	if !w.over || w.n != 1_000_001 {
		t.Fatalf("ints: over=%v n=%d", w.over, w.n)
	}
}

func reflectValueOf(v any) reflect.Value { return reflect.ValueOf(v) }
