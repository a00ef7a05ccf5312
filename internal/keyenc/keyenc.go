// Package keyenc encodes the structured keys of an actor's KV store into
// byte strings whose byte order is the keys' natural order, in the manner
// of FoundationDB's tuple layer.
//
// # Format
//
// A key is a tuple of elements; its encoding is the concatenation of the
// encodings of its elements, with nothing before, between or after them.
// The empty tuple encodes to the empty string. Each element is one type tag
// byte followed by its payload:
//
//	tag   type     payload
//	0x01  []byte   the bytes, each 0x00 written as 0x00 0xff, then 0x00 0x01
//	0x02  string   as []byte (a string is its bytes; UTF-8 is not required)
//	0x05  integer  8 bytes: the int64 two's complement, big-endian, with the
//	               top (sign) bit flipped
//	0x06  float    8 bytes, big-endian: the IEEE-754 binary64 bits, all 64
//	               flipped if the sign bit is set, else only the sign bit
//	0x07  false    none
//	0x08  true     none
//
// Examples:
//
//	("a")            02 61 00 01
//	("a", "")        02 61 00 01  02 00 01
//	("a\x00")        02 61 00 ff 00 01
//	("ab")           02 61 62 00 01
//	(42)             05 80 00 00 00 00 00 00 2a
//	(-5)             05 7f ff ff ff ff ff ff fb
//	(1.5)            06 bf f8 00 00 00 00 00 00
//	(true, []byte{}) 08 01 00 01
//
// Tags 0x00, 0x03, 0x04 and 0x09-0xff are unused; Decode rejects them.
// Within a string or bytes payload, 0x00 is always followed by 0xff (an
// escaped 0x00 byte) or 0x01 (the terminator), never by anything else.
//
// # Types
//
// Every Go integer type (int, int8..int64, uint, uint8..uint64) encodes as
// the integer tag and decodes as int64: int8(5), uint16(5) and int64(5)
// are the same key. A uint or uint64 above math.MaxInt64 is an error.
// float64 and float32 (widened to float64) encode as the float tag and
// decode as float64. Named types whose underlying type is one of the
// supported kinds (type UserID string, type Color int, json.RawMessage)
// encode as that kind and decode as the plain type. Anything else is an
// error naming the element's index and type.
//
// # Order
//
// Byte order of encodings is the following order of tuples. Tuples compare
// element by element; a tuple sorts before every longer tuple it is a prefix
// of. Elements of different types order by tag: bytes < string < integer
// < float < false < true (so the integer 1 sorts before the float 0.5;
// store numbers of one kind under one key position). Within a type:
//
//   - bytes and strings: lexicographically by byte, a proper prefix first.
//     (Where one payload ends and the other goes on, the terminator's 0x00
//     is below any non-zero next byte, and its 0x01 below the 0xff of an
//     escaped 0x00, so the comparison is always decided inside the
//     element, never by what follows it);
//   - integers: numerically, negative < 0 < positive;
//   - floats: IEEE-754 total order, numerically for ordinary values, with
//     -Inf lowest, -0.0 sorting just before (and distinct from) +0.0, and
//     +Inf below NaN. Every NaN is encoded as the one NaN math.NaN()
//     returns (a single key, above +Inf); Decode rejects other NaN bits;
//   - false < true.
//
// # Prefixes
//
// Every element is self-delimiting, so the encoding of tuple P is a byte
// prefix of the encoding of tuple T exactly when P is an element-wise
// prefix of T. ("a") is not a byte prefix of ("ab"), and ("a\x00") and
// ("a", "") are distinct: a key prefix built from user input can only
// select keys that have that exact tuple as their first elements — no key
// injection. [PrefixEnd] turns such a prefix into the exclusive end of the
// range it selects.
//
// The terminator is two bytes (0x00 0x01) rather than FoundationDB's single
// 0x00 so that an encoded element followed by arbitrary raw bytes, even
// bytes starting with 0xff, can never be read as a longer string.
package keyenc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
)

// Type tags; their numeric order is the order of elements of different
// types.
const (
	tagBytes  = 0x01
	tagString = 0x02
	tagInt    = 0x05
	tagFloat  = 0x06
	tagFalse  = 0x07
	tagTrue   = 0x08
)

// Escape bytes inside string and bytes payloads.
const (
	escNul  = 0x00 // first byte of an escape or the terminator
	escByte = 0xff // 0x00 0xff stands for a payload 0x00
	escEnd  = 0x01 // 0x00 0x01 ends the payload
)

// canonicalNaN is the bit pattern every NaN is encoded as.
var canonicalNaN = math.Float64bits(math.NaN())

// ErrMalformed is wrapped by the errors Decode returns for byte strings
// that no tuple encodes to.
var ErrMalformed = errors.New("keyenc: malformed key")

// Append appends the encoding of the tuple elems to dst and returns the
// extended slice. On error (an element of an unsupported type, or an
// unsigned integer above math.MaxInt64) it returns dst with its original
// length, and an error naming the element's index and type.
func Append(dst []byte, elems ...any) ([]byte, error) {
	n0 := len(dst)
	for i, e := range elems {
		var err error
		if dst, err = appendElem(dst, e); err != nil {
			return dst[:n0], fmt.Errorf("keyenc: key element %d: %w", i, err)
		}
	}
	return dst, nil
}

// Encode returns the encoding of the tuple elems. Encode() is empty.
func Encode(elems ...any) ([]byte, error) { return Append(nil, elems...) }

func appendElem(dst []byte, e any) ([]byte, error) {
	switch v := e.(type) {
	case string:
		return appendEscaped(append(dst, tagString), v), nil
	case []byte:
		return appendEscapedBytes(append(dst, tagBytes), v), nil
	case bool:
		return appendBool(dst, v), nil
	case float64:
		return appendFloat(dst, v), nil
	case float32:
		return appendFloat(dst, float64(v)), nil
	case int:
		return appendInt(dst, int64(v)), nil
	case int8:
		return appendInt(dst, int64(v)), nil
	case int16:
		return appendInt(dst, int64(v)), nil
	case int32:
		return appendInt(dst, int64(v)), nil
	case int64:
		return appendInt(dst, v), nil
	case uint:
		return appendUint(dst, uint64(v), e)
	case uint8:
		return appendInt(dst, int64(v)), nil
	case uint16:
		return appendInt(dst, int64(v)), nil
	case uint32:
		return appendInt(dst, int64(v)), nil
	case uint64:
		return appendUint(dst, v, e)
	case nil:
		return dst, errors.New("nil is not a key element (use string, []byte, an integer, float64 or bool)")
	}
	// Named types with a supported underlying kind.
	rv := reflect.ValueOf(e)
	switch rv.Kind() {
	case reflect.String:
		return appendEscaped(append(dst, tagString), rv.String()), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return appendEscapedBytes(append(dst, tagBytes), rv.Bytes()), nil
		}
	case reflect.Bool:
		return appendBool(dst, rv.Bool()), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(dst, rv.Float()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(dst, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return appendUint(dst, rv.Uint(), e)
	}
	return dst, fmt.Errorf("unsupported type %T (use string, []byte, an integer, float64 or bool)", e)
}

// appendEscaped appends s with each 0x00 escaped, and the terminator.
func appendEscaped(dst []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, escNul)
		if i < 0 {
			break
		}
		dst = append(append(dst, s[:i]...), escNul, escByte)
		s = s[i+1:]
	}
	return append(append(dst, s...), escNul, escEnd)
}

// appendEscapedBytes is appendEscaped for a []byte.
func appendEscapedBytes(dst []byte, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, escNul)
		if i < 0 {
			break
		}
		dst = append(append(dst, s[:i]...), escNul, escByte)
		s = s[i+1:]
	}
	return append(append(dst, s...), escNul, escEnd)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, tagTrue)
	}
	return append(dst, tagFalse)
}

func appendInt(dst []byte, v int64) []byte {
	dst = append(dst, tagInt)
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func appendUint(dst []byte, v uint64, e any) ([]byte, error) {
	if v > math.MaxInt64 {
		return dst, fmt.Errorf("%T %d overflows int64", e, v)
	}
	return appendInt(dst, int64(v)), nil
}

func appendFloat(dst []byte, f float64) []byte {
	b := math.Float64bits(f)
	if math.IsNaN(f) {
		b = canonicalNaN
	}
	if b>>63 == 1 {
		b = ^b
	} else {
		b ^= 1 << 63
	}
	dst = append(dst, tagFloat)
	return binary.BigEndian.AppendUint64(dst, b)
}

// Decode decodes the encoding of a tuple: strings as string, bytes as
// []byte (never nil, never sharing memory with b), every integer as int64,
// floats as float64, bools as bool. The empty input is the empty tuple
// (nil). Any input that Encode cannot produce — an unknown tag, a
// truncated element, a 0x00 in a payload followed by anything but 0xff or
// 0x01, a NaN other than the canonical one — is an error wrapping
// ErrMalformed; Decode never panics. When Decode succeeds, encoding its
// result gives back b exactly.
func Decode(b []byte) ([]any, error) {
	var out []any
	for off := 0; off < len(b); {
		at := off
		tag := b[off]
		off++
		switch tag {
		case tagBytes, tagString:
			payload, n, err := decodeEscaped(b[off:])
			if err != nil {
				return nil, fmt.Errorf("%w: element %d at offset %d: %s", ErrMalformed, len(out), at, err)
			}
			off += n
			if tag == tagString {
				out = append(out, string(payload))
			} else {
				if payload == nil {
					payload = []byte{}
				}
				out = append(out, payload)
			}
		case tagInt, tagFloat:
			if len(b)-off < 8 {
				return nil, fmt.Errorf("%w: element %d at offset %d: truncated number", ErrMalformed, len(out), at)
			}
			u := binary.BigEndian.Uint64(b[off:])
			off += 8
			if tag == tagInt {
				out = append(out, int64(u^(1<<63)))
				break
			}
			if u>>63 == 1 {
				u ^= 1 << 63
			} else {
				u = ^u
			}
			f := math.Float64frombits(u)
			if math.IsNaN(f) && u != canonicalNaN {
				return nil, fmt.Errorf("%w: element %d at offset %d: non-canonical NaN", ErrMalformed, len(out), at)
			}
			out = append(out, f)
		case tagFalse:
			out = append(out, false)
		case tagTrue:
			out = append(out, true)
		default:
			return nil, fmt.Errorf("%w: element %d at offset %d: unknown tag 0x%02x", ErrMalformed, len(out), at, tag)
		}
	}
	return out, nil
}

// decodeEscaped reads an escaped payload and its terminator from the start
// of b, returning the unescaped payload (a fresh slice, nil when empty) and
// the number of bytes consumed.
func decodeEscaped(b []byte) (payload []byte, n int, err error) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], escNul)
		if j < 0 || i+j+1 >= len(b) {
			return nil, 0, errors.New("unterminated string")
		}
		j += i
		switch b[j+1] {
		case escEnd:
			return append(payload, b[i:j]...), j + 2, nil
		case escByte:
			payload = append(payload, b[i:j+1]...)
			i = j + 2
		default:
			return nil, 0, fmt.Errorf("0x00 followed by 0x%02x in string", b[j+1])
		}
	}
}

// PrefixEnd returns the smallest byte string greater than every string
// that has prefix as a prefix: prefix with its trailing 0xff bytes removed
// and its last remaining byte incremented, in a new slice. It returns nil
// when there is no such string, that is when prefix is empty or all 0xff.
// The keys that start with prefix are exactly those in
// [prefix, PrefixEnd(prefix)), or [prefix, ∞) when PrefixEnd is nil.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}
