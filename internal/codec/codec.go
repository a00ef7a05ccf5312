// Package codec encodes user values (state, action arguments and results,
// event payloads, KV values, alarm arguments) for storage and for in-process
// calls. Everything the runtime persists is CBOR in the deterministic
// ("core deterministic", RFC 8949 §4.2) form, so that equal values encode to
// equal bytes: the runtime detects state changes by comparing encodings.
//
// Struct fields follow `cbor` tags and fall back to `json` tags, so a state
// type written for encoding/json needs no extra tags.
//
// A time.Time is written as CBOR tag 0 on its RFC 3339 text in UTC with
// every nanosecond ("2026-12-03T09:33:46.123456789Z"): the instant survives
// exactly, the zone does not (compare times with Equal). The zero time is
// null; years outside 0000-9999 cannot be written. Times written by
// earlier versions as whole Unix seconds still decode.
package codec

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	opts := cbor.CoreDetEncOptions()
	opts.Time = cbor.TimeRFC3339NanoUTC
	opts.TimeTag = cbor.EncTagRequired
	encMode, err = opts.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DefaultMapType:   reflect.TypeFor[map[string]any](),
		MaxNestedLevels:  256,
		MaxArrayElements: 1 << 20,
		MaxMapPairs:      1 << 20,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v deterministically.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes b into the value v points to. Map keys that arrive
// as decimal text (the wire has only string keys) decode into maps with
// integer keys.
func Unmarshal(b []byte, v any) error {
	err := decMode.Unmarshal(b, v)
	if err != nil {
		if fixed, ok := intKeys(b, reflect.TypeOf(v)); ok {
			return decMode.Unmarshal(fixed, v)
		}
	}
	return err
}

// Raw is one encoded value.
type Raw = cbor.RawMessage

// Valid reports whether b is exactly one well-formed CBOR value.
func Valid(b []byte) error { return decMode.Wellformed(b) }

// MarshalArgs encodes an argument list as a CBOR array.
func MarshalArgs(args []any) ([]byte, error) {
	if args == nil {
		args = []any{}
	}
	b, err := encMode.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encode arguments: %w", err)
	}
	return b, nil
}

// Args is an encoded argument list, split into its elements.
type Args []Raw

// ErrNotArray: an encoded argument list was not an array.
var ErrNotArray = errors.New("arguments are not an array")

// SplitArgs splits an encoded CBOR array. Empty input is an empty list.
func SplitArgs(b []byte) (Args, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var raw []cbor.RawMessage
	if err := decMode.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotArray, err)
	}
	return Args(raw), nil
}

// ArrayLen returns the number of elements of the encoded CBOR array b,
// from its header alone. Empty input is an empty array.
func ArrayLen(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if b[0]>>5 != 4 {
		return 0, ErrNotArray
	}
	info := b[0] & 0x1f
	switch {
	case info < 24:
		return int(info), nil
	case info == 24 && len(b) >= 2:
		return int(b[1]), nil
	case info == 25 && len(b) >= 3:
		return int(b[1])<<8 | int(b[2]), nil
	case info == 26 && len(b) >= 5:
		return int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4]), nil
	}
	// Longer and indefinite-length arrays are not argument lists we accept.
	return 0, fmt.Errorf("%w: unsupported array header", ErrNotArray)
}

// PadArray appends nulls to the encoded CBOR array b until it has n
// elements (for JavaScript callers that leave trailing arguments out).
func PadArray(b []byte, n int) ([]byte, error) {
	have, err := ArrayLen(b)
	if err != nil {
		return nil, err
	}
	if have >= n {
		return b, nil
	}
	hl := 1
	if len(b) > 0 {
		switch b[0] & 0x1f {
		case 24:
			hl = 2
		case 25:
			hl = 3
		case 26:
			hl = 5
		}
	}
	var body []byte
	if len(b) > 0 {
		body = b[hl:]
	}
	out := appendArrayHead(make([]byte, 0, len(body)+n-have+5), n)
	out = append(out, body...)
	for range n - have {
		out = append(out, 0xf6)
	}
	return out, nil
}

func appendArrayHead(b []byte, n int) []byte {
	switch {
	case n < 24:
		return append(b, 0x80|byte(n))
	case n < 1<<8:
		return append(b, 0x98, byte(n))
	case n < 1<<16:
		return append(b, 0x99, byte(n>>8), byte(n))
	}
	return append(b, 0x9a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Decode decodes element i into dst.
func (a Args) Decode(i int, dst any) error {
	return Unmarshal(a[i], dst)
}
