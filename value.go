package rivet

import (
	"github.com/rivetgo/rivet/internal/codec"
)

// Value is an encoded value received from a caller or the store: an
// actor's create-time input, connection params, an action result, an event
// argument, a KV value. Decode it into the Go type you expect, the way you
// would with encoding/json.
type Value struct{ b []byte }

// Decode decodes the value into the variable dst points to. An absent
// value leaves dst unchanged.
func (v Value) Decode(dst any) error {
	if len(v.b) == 0 {
		return nil
	}
	if err := codec.Unmarshal(v.b, dst); err != nil {
		return &Error{Group: "request", Code: "invalid", Message: "cannot decode value: " + err.Error(), Public: true}
	}
	return nil
}

// Present reports whether a value was given at all.
func (v Value) Present() bool { return len(v.b) > 0 }

// Bytes returns the value's CBOR encoding.
func (v Value) Bytes() []byte { return v.b }

// Args is an encoded argument list, as events carry them.
type Args struct{ a codec.Args }

// Len is the number of arguments.
func (a Args) Len() int { return len(a.a) }

// Decode decodes argument i into dst.
func (a Args) Decode(i int, dst any) error {
	if i < 0 || i >= len(a.a) {
		return &Error{Group: "request", Code: "invalid", Message: "argument index out of range", Public: true}
	}
	return Value{b: a.a[i]}.Decode(dst)
}

func encodeValue(v any) ([]byte, error) {
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, &Error{Group: "request", Code: "invalid", Message: "cannot encode value: " + err.Error(), Public: true}
	}
	return b, nil
}

// RawValue wraps a value's CBOR encoding, for clients that receive values
// off the wire (rivetclient).
func RawValue(cbor []byte) Value { return Value{b: cbor} }

// RawArgs wraps an encoded argument list (a CBOR array).
func RawArgs(cborArray []byte) (Args, error) {
	a, err := codec.SplitArgs(cborArray)
	if err != nil {
		return Args{}, err
	}
	return Args{a}, nil
}
