package codec

import (
	"encoding"
	"errors"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// ErrTooLarge reports a value whose encoding is longer than the limit
// MarshalLimit was given.
var ErrTooLarge = errors.New("codec: encoding longer than the limit")

// MarshalLimit is Marshal for a value whose encoding must not exceed
// limit bytes. The encoder builds a whole value in memory before anyone
// can look at its length, so MarshalLimit first adds up what the encoding
// must hold at least (the bytes of its strings, one byte per element),
// stopping as soon as that passes the limit: a value far too large fails
// with ErrTooLarge without being encoded. A value that passes is encoded
// and its length checked.
func MarshalLimit(v any, limit int) ([]byte, error) {
	w := sizeWalker{budget: limit}
	w.value(reflect.ValueOf(v), 0)
	if w.over {
		return nil, ErrTooLarge
	}
	b, err := Marshal(v)
	if err == nil && len(b) > limit {
		return nil, ErrTooLarge
	}
	return b, err
}

// sizeWalker adds up a lower bound of a value's encoded length. Every
// encoded item takes at least one byte (its head) plus its content; a
// struct field may be left out when empty (omitempty), so it counts only
// what it holds beyond its own head, which is zero when it is empty.
type sizeWalker struct {
	budget, n int
	over      bool // n passed budget: the walk stops
}

func (w *sizeWalker) add(k int) {
	w.n += k
	if w.n > w.budget {
		w.over = true
	}
}

const maxWalkDepth = 64

var (
	cborMarshaler   = reflect.TypeFor[cbor.Marshaler]()
	binaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	rawType         = reflect.TypeFor[cbor.RawMessage]()
)

// opaqueTypes caches opaque by type.
var opaqueTypes sync.Map // reflect.Type -> bool

// opaque reports a type that encodes itself: nothing is known of its
// encoding but that it takes a byte.
func opaque(t reflect.Type) bool {
	if o, ok := opaqueTypes.Load(t); ok {
		return o.(bool)
	}
	o := false
	for _, i := range []reflect.Type{cborMarshaler, binaryMarshaler, textMarshaler} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			o = true
		}
	}
	opaqueTypes.Store(t, o)
	return o
}

// value adds the lower bound of v's encoding, an encoded item.
func (w *sizeWalker) value(v reflect.Value, depth int) {
	if w.over {
		return
	}
	w.add(1) // the item's head
	if !v.IsValid() || depth > maxWalkDepth {
		return
	}
	t := v.Type()
	if t == rawType {
		w.add(max(v.Len()-1, 0))
		return
	}
	if opaque(t) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			w.n-- // the pointer has no head of its own
			w.value(v.Elem(), depth+1)
		}
	case reflect.String:
		w.add(v.Len())
	case reflect.Slice, reflect.Array:
		n := v.Len()
		w.add(n) // a byte string's bytes, or each element's head
		if t.Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < n && !w.over; i++ {
			w.n-- // counted above
			w.value(v.Index(i), depth+1)
		}
	case reflect.Map:
		w.add(2 * v.Len())
		it := v.MapRange()
		for it.Next() && !w.over {
			w.n -= 2
			w.value(it.Key(), depth+1)
			w.value(it.Value(), depth+1)
		}
	case reflect.Struct:
		for i := 0; i < t.NumField() && !w.over; i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Anonymous || skipped(f) {
				continue
			}
			w.n-- // a field counts beyond its head
			w.value(v.Field(i), depth+1)
		}
	}
}

// skipped reports a field its tags leave out of the encoding.
func skipped(f reflect.StructField) bool {
	tag, ok := f.Tag.Lookup("cbor")
	if !ok {
		tag = f.Tag.Get("json")
	}
	return tag == "-"
}
