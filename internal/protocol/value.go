package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rivetgo/rivet/internal/codec"
)

// A value tree is a user value between the wire and its internal CBOR
// bytes. After parsing and fromWire it holds only nil, bool, int64, uint64,
// *big.Int (outside the 64-bit range only), float64, string, []byte,
// time.Time (in UTC), []any and map[string]any.

const (
	// maxDepth bounds the nesting of arrays and maps in a user value, well
	// inside what codec.Unmarshal accepts (256).
	maxDepth = 128
	// maxElements bounds one array or map, as codec.Unmarshal does.
	maxElements = 1 << 20
	// maxBigBits bounds big integers; maxBigDigits bounds the decimal text
	// parsed for them (2^8192 has 2467 digits).
	maxBigBits   = 8192
	maxBigDigits = 2500
	// maxSafeInt is Number.MAX_SAFE_INTEGER: beyond it a JS number is not
	// an exact integer, so integers are sent as ["$BigInt","N"].
	maxSafeInt = 1<<53 - 1
)

var errDepth = errors.New("value nested too deeply")

// wireValue converts a value decoded from the wire to internal CBOR.
func wireValue(v any, revive bool) ([]byte, error) {
	t, err := fromWire(v, revive, 0)
	if err != nil {
		return nil, err
	}
	return marshalInternal(t)
}

// wireArgs converts decoded action or event arguments to an internal CBOR
// array. Null (or an absent field) is []; any other value that is not an
// array, even after reviving compat tags, is an error (RivetKit would call
// the action with [v]; no client sends that, so it is a mistake).
func wireArgs(v any, revive bool) ([]byte, error) {
	t, err := fromWire(v, revive, 0)
	if err != nil {
		return nil, err
	}
	switch t.(type) {
	case nil:
		t = []any{}
	case []any:
	default:
		return nil, fmt.Errorf("expected an array of arguments, got %s", describe(t))
	}
	return marshalInternal(t)
}

// argsTree makes t an argument array: null is [], and a value that is not
// an array (only internal code could make one) is a list of one.
func argsTree(t any) []any {
	switch x := t.(type) {
	case nil:
		return []any{}
	case []any:
		return x
	}
	return []any{t}
}

func marshalInternal(t any) ([]byte, error) {
	b, err := codec.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode internal value: %w", err)
	}
	return b, nil
}

// parseInternal parses an internal CBOR value for sending. Empty means null.
func parseInternal(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return parseCBOR(b, true)
}

// fromWire finishes a value decoded from the wire: it converts JSON numbers,
// bounds the nesting, and with revive replaces compat tags by the values
// they stand for (reviveJsonCompatValue in encoding.ts). depth is the
// number of arrays and maps around v. It may reuse v's storage.
func fromWire(v any, revive bool, depth int) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, int64, uint64, *big.Int, float64, []byte, time.Time:
		return x, nil
	case json.Number:
		return parseJSONNumber(string(x))
	case []any:
		if revive {
			if tag, ok := compatTag(x); ok {
				return reviveTag(tag, x[1], depth)
			}
		}
		if depth >= maxDepth {
			return nil, errDepth
		}
		for i, e := range x {
			var err error
			if x[i], err = fromWire(e, revive, depth+1); err != nil {
				return nil, err
			}
		}
		return x, nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, errDepth
		}
		for k, e := range x {
			var err error
			if x[k], err = fromWire(e, revive, depth+1); err != nil {
				return nil, err
			}
		}
		return x, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// compatTag reports whether x has the shape of a compat tag: two elements,
// the first a string starting with "$".
func compatTag(x []any) (string, bool) {
	if len(x) != 2 {
		return "", false
	}
	s, ok := x[0].(string)
	return s, ok && strings.HasPrefix(s, "$")
}

func reviveTag(tag string, arg any, depth int) (any, error) {
	switch tag {
	case "$BigInt":
		s, ok := arg.(string)
		if !ok || !isDecimal(s) {
			return nil, fmt.Errorf("$BigInt: want a decimal string, got %v", describe(arg))
		}
		return parseInteger(s)
	case "$Uint8Array", "$ArrayBuffer":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want a base64 string, got %v", tag, describe(arg))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(s)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		return b, nil
	case "$Undefined":
		return nil, nil
	case "$Set":
		items, ok := arg.([]any)
		if !ok {
			return nil, fmt.Errorf("$Set: want an array, got %v", describe(arg))
		}
		if depth >= maxDepth {
			return nil, errDepth
		}
		for i, e := range items { // the elements, not the array: it is no tag
			var err error
			if items[i], err = fromWire(e, true, depth+1); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	if strings.HasPrefix(tag, "$$") {
		if depth >= maxDepth {
			return nil, errDepth
		}
		second, err := fromWire(arg, true, depth+1)
		if err != nil {
			return nil, err
		}
		return []any{tag[1:], second}, nil
	}
	return nil, fmt.Errorf("unknown compat tag %q", tag)
}

// describe names the kind of a decoded value, for error messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, int64, uint64, *big.Int, float64:
		return "a number"
	case string:
		return "a string"
	case []byte:
		return "a byte string"
	case time.Time:
		return "a date"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseJSONNumber keeps integers integers and floats floats: a number with a
// fraction or an exponent is a float.
func parseJSONNumber(s string) (any, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("number %.40q out of range", s)
		}
		return f, nil
	}
	return parseInteger(s)
}

// parseInteger parses a decimal integer to int64, uint64 or *big.Int.
func parseInteger(s string) (any, error) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	if len(s) > maxBigDigits {
		return nil, fmt.Errorf("integer of %d digits is too large", len(s))
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("invalid integer %.40q", s)
	}
	return bigValue(b)
}

// bigValue returns b as int64 or uint64 when it fits.
func bigValue(b *big.Int) (any, error) {
	switch {
	case b.IsInt64():
		return b.Int64(), nil
	case b.IsUint64():
		return b.Uint64(), nil
	case b.BitLen() > maxBigBits:
		return nil, fmt.Errorf("integer of %d bits is too large", b.BitLen())
	}
	return b, nil
}

// jsNumber undoes how cbor-x writes JS numbers: an integer outside
// [-2^31, 2^32-1] is written as a float, so an integral float beyond that
// range (up to 2^53-1) becomes an integer again. Date.now() thus arrives as
// an integer, as it does in JSON.
func jsNumber(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInt && (f < -(1<<31) || f > 1<<32-1) {
		return int64(f)
	}
	return f
}

// toCompat prepares a value for a CBOR frame (bytesAsTag false) or a BARE
// blob (bytesAsTag true) to the client, which decodes both with
// decodeCborCompat: encodeJsonCompatValue in encoding.ts, plus the integer
// rules of the package doc.
func toCompat(v any, bytesAsTag bool, depth int) (any, error) {
	switch x := v.(type) {
	case int64:
		if x >= -(1<<32) && x < 1<<32 {
			return x, nil
		}
		if x >= -maxSafeInt && x <= maxSafeInt {
			return float64(x), nil
		}
		return []any{"$BigInt", strconv.FormatInt(x, 10)}, nil
	case uint64:
		if x < 1<<32 {
			return x, nil
		}
		if x <= maxSafeInt {
			return float64(x), nil
		}
		return []any{"$BigInt", strconv.FormatUint(x, 10)}, nil
	case *big.Int:
		return []any{"$BigInt", x.String()}, nil
	case []byte:
		if bytesAsTag {
			return []any{"$Uint8Array", base64.StdEncoding.EncodeToString(x)}, nil
		}
		return x, nil
	case []any:
		if depth >= maxDepth {
			return nil, errDepth
		}
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = toCompat(e, bytesAsTag, depth+1); err != nil {
				return nil, err
			}
		}
		if s, ok := compatTag(out); ok {
			out[0] = "$" + s
		}
		return out, nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, errDepth
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			var err error
			if out[k], err = toCompat(e, bytesAsTag, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// parseJSON parses one JSON document with numbers kept as json.Number.
func parseJSON(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty input")
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// appendJSONValue writes a value as compat-tagged JSON (jsonStringifyCompat
// in encoding.ts).
func appendJSONValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		if x >= -maxSafeInt && x <= maxSafeInt {
			return strconv.AppendInt(b, x, 10), nil
		}
		return appendBigIntTag(b, strconv.FormatInt(x, 10)), nil
	case uint64:
		if x <= maxSafeInt {
			return strconv.AppendUint(b, x, 10), nil
		}
		return appendBigIntTag(b, strconv.FormatUint(x, 10)), nil
	case *big.Int:
		return appendBigIntTag(b, x.String()), nil
	case float64:
		return appendJSONFloat(b, x), nil
	case string:
		return appendJSONString(b, x), nil
	case time.Time:
		// What JSON.stringify makes of a Date, with every nanosecond.
		return appendJSONString(b, x.UTC().Format(time.RFC3339Nano)), nil
	case []byte:
		b = append(b, `["$Uint8Array","`...)
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, `"]`...), nil
	case []any:
		if depth >= maxDepth {
			return nil, errDepth
		}
		b = append(b, '[')
		tag, escape := compatTag(x)
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if i == 0 && escape {
				b = appendJSONString(b, "$"+tag)
				continue
			}
			var err error
			if b, err = appendJSONValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, errDepth
		}
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSONValue(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

func appendBigIntTag(b []byte, digits string) []byte {
	b = append(b, `["$BigInt","`...)
	b = append(b, digits...)
	return append(b, `"]`...)
}

// appendJSONFloat writes a float so that it reads back as a float: with a
// fraction or an exponent. NaN and infinities become null, as in
// JSON.stringify.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	start := len(b)
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		b = strconv.AppendFloat(b, f, 'e', -1, 64)
	} else {
		b = strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}
