package rivet

import (
	"fmt"
	"reflect"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/protocol"
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
		return &Error{Group: "request", Code: "invalid", Message: "cannot decode value: " + explain(v.b, dst, err).Error(), Public: true}
	}
	return nil
}

// ResultError reports an action result that arrived but does not decode
// into the Go type the caller asked for. It is the caller's problem, not
// a rejection by the actor: the action ran, and what it changed stands.
type ResultError struct {
	Action string // the action called
	Type   string // the Go type asked for
	Reason error  // what did not fit: "expected …, got …"
}

func (e *ResultError) Error() string {
	return "the result of action " + e.Action + " does not decode into Go " + e.Type + ": " + e.Reason.Error()
}

func (e *ResultError) Unwrap() error { return e.Reason }

// NewResultError builds the ResultError for a result b that failed to
// decode into *dst with err (for clients such as rivetclient).
func NewResultError(action string, b []byte, dst any, err error) *ResultError {
	return &ResultError{Action: action, Type: reflect.TypeOf(dst).Elem().String(), Reason: explain(b, dst, err)}
}

// explain describes a decoding error in a caller's terms.
func explain(b []byte, dst any, err error) error {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer {
		return err
	}
	return codec.Explain(b, t.Elem(), "", err)
}

// MarshalCBOR writes the value as it was received, so a Value kept in
// state or returned from an action stays the value it holds.
func (v Value) MarshalCBOR() ([]byte, error) {
	if len(v.b) == 0 {
		return []byte{0xf6}, nil
	}
	return v.b, nil
}

// UnmarshalCBOR keeps a copy of the encoded value.
func (v *Value) UnmarshalCBOR(b []byte) error {
	v.b = append([]byte(nil), b...)
	return nil
}

// MarshalJSON writes the value as JSON clients receive it.
func (v Value) MarshalJSON() ([]byte, error) { return protocol.EncodeJSONValue(v.b) }

// UnmarshalJSON reads a value as JSON clients send it.
func (v *Value) UnmarshalJSON(b []byte) error {
	c, err := protocol.DecodeJSONValue(b)
	if err != nil {
		return err
	}
	v.b = c
	return nil
}

// MarshalCBOR writes the arguments as an array.
func (a Args) MarshalCBOR() ([]byte, error) {
	raw := make([]any, len(a.a))
	for i, r := range a.a {
		raw[i] = r
	}
	return codec.MarshalArgs(raw)
}

// UnmarshalCBOR reads an array of arguments; null is none.
func (a *Args) UnmarshalCBOR(b []byte) error {
	if len(b) == 1 && b[0] == 0xf6 {
		a.a = nil
		return nil
	}
	args, err := codec.SplitArgs(append([]byte(nil), b...))
	if err != nil {
		return err
	}
	a.a = args
	return nil
}

// MarshalJSON writes the arguments as a JSON array, as JSON clients
// receive them.
func (a Args) MarshalJSON() ([]byte, error) {
	b, err := a.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	return protocol.EncodeJSONValue(b)
}

// UnmarshalJSON reads a JSON array of arguments.
func (a *Args) UnmarshalJSON(b []byte) error {
	c, err := protocol.DecodeJSONValue(b)
	if err != nil {
		return err
	}
	return a.UnmarshalCBOR(c)
}

// Present reports whether a value was given at all.
func (v Value) Present() bool { return len(v.b) > 0 }

// Bytes returns the value's CBOR encoding.
func (v Value) Bytes() []byte { return v.b }

// Args is an encoded argument list, as events carry them.
type Args struct{ a codec.Args }

// Len is the number of arguments.
func (a Args) Len() int { return len(a.a) }

// Decode decodes argument i into dst. A missing argument or one that does
// not fit is a plain error naming it: the receiver's mismatch (an event
// handler's, an alarm list reader's), not a caller's bad request.
func (a Args) Decode(i int, dst any) error {
	if i < 0 || i >= len(a.a) {
		return fmt.Errorf("rivet: argument %d of %d: no such argument", i+1, len(a.a))
	}
	if len(a.a[i]) == 0 {
		return nil
	}
	if err := codec.Unmarshal(a.a[i], dst); err != nil {
		return fmt.Errorf("rivet: argument %d does not decode into Go %s: %w", i+1, reflect.TypeOf(dst).Elem(), explain(a.a[i], dst, err))
	}
	return nil
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
