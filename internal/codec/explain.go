package codec

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// DecodeError says why a value did not decode into the Go type wanted, in
// words a caller understands: what was expected, what arrived, and where in
// the value.
type DecodeError struct {
	// Path locates the part at fault: "" for the value itself, else
	// something like ".items[2].name".
	Path string
	// Expected describes the Go type, as "an integer (Go int)".
	Expected string
	// Got describes what was received, as "the JSON number 1.5".
	Got string
}

func (e *DecodeError) Error() string {
	s := "expected " + e.Expected + ", got " + e.Got
	if e.Path != "" {
		s = "at " + e.Path + ": " + s
	}
	return s
}

// anyMode decodes a value for inspection: maps keep keys of any type.
var anyMode, _ = cbor.DecOptions{
	MaxNestedLevels:  256,
	MaxArrayElements: 1 << 20,
	MaxMapPairs:      1 << 20,
}.DecMode()

// Explain turns err, the error of decoding data into a value of type t,
// into a *DecodeError where it can say what went wrong. encoding ("json",
// "cbor", "bare" or "") picks the words for what was received: the
// encoding the value arrived in, or plain words for a Go caller.
func Explain(data []byte, t reflect.Type, encoding string, err error) error {
	var v any
	if anyMode.Unmarshal(data, &v) == nil {
		if e := check(v, t, "", encoding); e != nil {
			return e
		}
	}
	var te *cbor.UnmarshalTypeError
	if errors.As(err, &te) {
		e := &DecodeError{Expected: expected(t), Got: "a " + te.CBORType}
		if te.StructFieldName != "" {
			e.Path = "." + te.StructFieldName
			e.Expected = "Go " + te.GoType
		}
		return e
	}
	return errors.New(strings.TrimPrefix(err.Error(), "cbor: "))
}

// NullExplained reports a null received where t has no null: an argument
// of a scalar or struct type. Nil when t takes null.
func NullExplained(t reflect.Type, encoding string) *DecodeError {
	if Nullable(t) {
		return nil
	}
	return &DecodeError{Expected: expected(t), Got: describe(nil, encoding)}
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	bigIntType    = reflect.TypeFor[big.Int]()
	unmarshalerT  = reflect.TypeFor[cbor.Unmarshaler]()
	binaryUnmarsh = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// custom reports whether values of t decode by their own rules.
func custom(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(unmarshalerT) || p.Implements(binaryUnmarsh)
}

// Nullable reports whether null is a meaningful value of t: pointers,
// interfaces, slices, maps, times (the zero time is null) and types with
// their own decoding take it; numbers, strings, booleans, arrays and
// structs would silently become their zero value.
func Nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	}
	return t == timeType || custom(t)
}

// expected describes a Go type for a caller.
func expected(t reflect.Type) string {
	var what string
	switch {
	case t == timeType:
		what = "a time (RFC 3339 text or Unix seconds)"
	case t == bigIntType:
		what = "an integer"
	default:
		switch t.Kind() {
		case reflect.Bool:
			what = "a boolean"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			what = "an integer"
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			what = "a non-negative integer"
		case reflect.Float32, reflect.Float64:
			what = "a number"
		case reflect.String:
			what = "a string"
		case reflect.Slice, reflect.Array:
			if t.Elem().Kind() == reflect.Uint8 {
				what = "bytes"
			} else {
				what = "an array"
			}
		case reflect.Map, reflect.Struct:
			what = "an object"
		case reflect.Pointer:
			return expected(t.Elem())
		default:
			return "Go " + t.String()
		}
	}
	return what + " (Go " + t.String() + ")"
}

// check finds the first place where v (decoded by anyMode) does not fit t.
func check(v any, t reflect.Type, path, enc string) *DecodeError {
	fail := func(why string) *DecodeError {
		e := &DecodeError{Path: path, Expected: expected(t), Got: describe(v, enc)}
		if why != "" {
			e.Got += " (" + why + ")"
		}
		return e
	}
	for t.Kind() == reflect.Pointer {
		if v == nil {
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface || (t != timeType && t != bigIntType && custom(t)) {
		return nil
	}
	if v == nil {
		return nil // null leaves a value as it is, as in encoding/json
	}
	switch {
	case t == timeType:
		switch x := v.(type) {
		case time.Time, int64, uint64, float64:
			return nil
		case string:
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				return fail("not RFC 3339")
			}
			return nil
		}
		return fail("")
	case t == bigIntType:
		switch v.(type) {
		case int64, uint64, big.Int:
			return nil
		}
		return fail("")
	}
	switch t.Kind() {
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fail("")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		switch x := v.(type) {
		case int64:
			if bits < 64 && (x < -1<<(bits-1) || x >= 1<<(bits-1)) {
				return fail("out of range")
			}
		case uint64:
			if x >= 1<<(bits-1) {
				return fail("out of range")
			}
		case big.Int:
			return fail("out of range")
		default:
			return fail("")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch x := v.(type) {
		case uint64:
			if t.Bits() < 64 && x >= 1<<t.Bits() {
				return fail("out of range")
			}
		case int64, big.Int:
			return fail("out of range")
		default:
			return fail("")
		}
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case int64, uint64, float64:
		default:
			return fail("")
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fail("")
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.([]byte); ok {
				return nil
			}
		}
		a, ok := v.([]any)
		if !ok {
			return fail("")
		}
		if t.Kind() == reflect.Array && len(a) > t.Len() {
			return fail(fmt.Sprintf("more than %d elements", t.Len()))
		}
		for i, e := range a {
			if d := check(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", enc); d != nil {
				return d
			}
		}
	case reflect.Map:
		m, ok := v.(map[any]any)
		if !ok {
			return fail("")
		}
		for k, e := range m {
			ks := fmt.Sprint(k)
			if d := check(k, t.Key(), path+"["+strconv.Quote(ks)+"]", enc); d != nil {
				d.Expected = "a key: " + d.Expected
				return d
			}
			if d := check(e, t.Elem(), path+"."+ks, enc); d != nil {
				return d
			}
		}
	case reflect.Struct:
		m, ok := v.(map[any]any)
		if !ok {
			if _, isArray := v.([]any); isArray && toArray(t) {
				return nil
			}
			return fail("")
		}
		fields := fieldsByName(t)
		for k, e := range m {
			name, ok := k.(string)
			if !ok {
				continue
			}
			f, ok := fields[name]
			if !ok {
				f, ok = fields[strings.ToLower(name)]
			}
			if !ok {
				continue
			}
			if d := check(e, f.Type, path+"."+name, enc); d != nil {
				return d
			}
		}
	}
	return nil
}

// toArray reports whether a struct is encoded as an array.
func toArray(t reflect.Type) bool {
	for i := range t.NumField() {
		if f := t.Field(i); f.Name == "_" && strings.Contains(f.Tag.Get("cbor"), "toarray") {
			return true
		}
	}
	return false
}

// fieldsByName maps the encoded names of a struct's fields (cbor tag, else
// json tag, else the field name; also lower-cased) to the fields.
func fieldsByName(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("cbor") == "" && f.Tag.Get("json") == "" {
			continue
		}
		tag := f.Tag.Get("cbor")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := out[name]; !dup {
			out[name] = f
		}
		if l := strings.ToLower(name); l != name {
			if _, dup := out[l]; !dup {
				out[l] = f
			}
		}
	}
	return out
}

// describe names a received value in the terms of its encoding.
func describe(v any, enc string) string {
	json := enc == "json"
	prefix := ""
	switch enc {
	case "json":
		prefix = "JSON "
	case "cbor", "bare":
		prefix = "CBOR "
	}
	switch x := v.(type) {
	case nil:
		return prefix + "null"
	case bool:
		return "the " + prefix + "boolean " + strconv.FormatBool(x)
	case int64, uint64:
		s := fmt.Sprint(x)
		switch {
		case json && !fitsSafe(x):
			return "the JSON bigint " + s
		case enc == "cbor" || enc == "bare":
			return "the CBOR integer " + s
		}
		return "the " + prefix + "number " + s
	case big.Int:
		if json {
			return "the JSON bigint " + x.String()
		}
		return "the " + prefix + "integer " + x.String()
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			s = fmt.Sprint(x)
		}
		if enc == "cbor" || enc == "bare" {
			return "the CBOR float " + s
		}
		return "the " + prefix + "number " + s
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		if enc == "cbor" || enc == "bare" {
			return "the CBOR text string " + strconv.Quote(x)
		}
		return "the " + prefix + "string " + strconv.Quote(x)
	case []byte:
		if json {
			return fmt.Sprintf("a JSON Uint8Array of %d bytes", len(x))
		}
		return fmt.Sprintf("a %sbyte string of %d bytes", prefix, len(x))
	case time.Time:
		return "the " + prefix + "date " + x.UTC().Format(time.RFC3339Nano)
	case []any:
		return fmt.Sprintf("a %sarray of %d elements", prefix, len(x))
	case map[any]any:
		if json || enc == "" {
			return "a " + prefix + "object"
		}
		return "a CBOR map"
	}
	return fmt.Sprintf("a %svalue of Go type %T", prefix, v)
}

func fitsSafe(x any) bool {
	const maxSafe = 1<<53 - 1
	switch n := x.(type) {
	case int64:
		return n >= -maxSafe && n <= maxSafe
	case uint64:
		return n <= maxSafe
	}
	return true
}

// NullElements returns the indexes of the elements of the CBOR array b
// that are null (or undefined), nil when there are none.
func NullElements(b []byte) ([]int, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, off, err := head(b, 0)
	if err != nil || b[0]>>5 != 4 || b[0]&0x1f == 31 {
		return nil, ErrNotArray
	}
	var out []int
	for i := range int(n) {
		if off >= len(b) {
			return nil, ErrNotArray
		}
		if b[off] == 0xf6 || b[off] == 0xf7 {
			out = append(out, i)
		}
		if off, err = skip(b, off, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var errMalformed = errors.New("malformed CBOR")

// head reads the argument of the data item at off and returns it and the
// offset after the head.
func head(b []byte, off int) (uint64, int, error) {
	if off >= len(b) {
		return 0, 0, errMalformed
	}
	info := b[off] & 0x1f
	off++
	switch {
	case info < 24:
		return uint64(info), off, nil
	case info == 31:
		return 0, off, nil
	case info > 27:
		return 0, 0, errMalformed
	}
	size := 1 << (info - 24)
	if off+size > len(b) {
		return 0, 0, errMalformed
	}
	var n uint64
	for _, c := range b[off : off+size] {
		n = n<<8 | uint64(c)
	}
	return n, off + size, nil
}

// skip returns the offset after the data item at off.
func skip(b []byte, off, depth int) (int, error) {
	if depth > 256 {
		return 0, errMalformed
	}
	major, info := b[off]>>5, b[off]&0x1f
	n, next, err := head(b, off)
	if err != nil {
		return 0, err
	}
	if info == 31 { // indefinite length: items until a break
		if major == 7 {
			return 0, errMalformed
		}
		for {
			if next >= len(b) {
				return 0, errMalformed
			}
			if b[next] == 0xff {
				return next + 1, nil
			}
			if next, err = skip(b, next, depth+1); err != nil {
				return 0, err
			}
		}
	}
	switch major {
	case 2, 3:
		if n > uint64(len(b)-next) {
			return 0, errMalformed
		}
		return next + int(n), nil
	case 4, 5:
		if major == 5 {
			n *= 2
		}
		if n > uint64(len(b)-next) {
			return 0, errMalformed
		}
		for range n {
			if next >= len(b) {
				return 0, errMalformed
			}
			if next, err = skip(b, next, depth+1); err != nil {
				return 0, err
			}
		}
		return next, nil
	case 6:
		if next >= len(b) {
			return 0, errMalformed
		}
		return skip(b, next, depth+1)
	}
	return next, nil
}
