package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxParseDepth bounds the nesting of a whole CBOR item (envelope, tags and
// compat tags included) so that parsing cannot exhaust the stack.
const maxParseDepth = 4 * maxDepth

var errTruncated = errors.New("truncated input")

// parseCBOR parses one CBOR item into a value tree (see value.go). It accepts
// any well-formed encoding: non-minimal lengths, indefinite lengths, tags.
//   - Tags 2 and 3 are big integers; every other tag is dropped and its
//     content kept (tag 64 on a Uint8Array, 258 on a Set, 1 on a Date...).
//   - undefined is null; other simple values are rejected.
//   - Map keys are strings; integer keys become their decimal text.
//
// Wire input (internal false) must have valid UTF-8 text, and integral
// floats are passed through jsNumber. Internal input (from codec) is read
// leniently: invalid UTF-8 is replaced, floats are kept.
func parseCBOR(data []byte, internal bool) (any, error) {
	r := cborReader{data: data, internal: internal}
	v, err := r.item(0)
	if err != nil {
		return nil, err
	}
	if r.off != len(data) {
		return nil, fmt.Errorf("%d trailing bytes", len(data)-r.off)
	}
	return v, nil
}

type cborReader struct {
	data     []byte
	off      int
	internal bool
}

func (r *cborReader) remaining() uint64 { return uint64(len(r.data) - r.off) }

func (r *cborReader) take(n uint64) ([]byte, error) {
	if n > r.remaining() {
		return nil, errTruncated
	}
	b := r.data[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *cborReader) initial() (major, info byte, err error) {
	b, err := r.take(1)
	if err != nil {
		return 0, 0, err
	}
	return b[0] >> 5, b[0] & 0x1f, nil
}

// argument reads the argument that follows an initial byte.
func (r *cborReader) argument(info byte) (uint64, error) {
	if info < 24 {
		return uint64(info), nil
	}
	if info > 27 {
		return 0, fmt.Errorf("reserved additional information %d", info)
	}
	b, err := r.take(1 << (info - 24))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n, nil
}

func (r *cborReader) item(depth int) (any, error) {
	if depth > maxParseDepth {
		return nil, errDepth
	}
	major, info, err := r.initial()
	if err != nil {
		return nil, err
	}
	if major == 7 {
		return r.simple(info)
	}
	if info == 31 {
		return r.indefinite(major, depth)
	}
	n, err := r.argument(info)
	if err != nil {
		return nil, err
	}
	switch major {
	case 0:
		if n <= math.MaxInt64 {
			return int64(n), nil
		}
		return n, nil
	case 1:
		if n <= math.MaxInt64 {
			return -1 - int64(n), nil
		}
		b := new(big.Int).SetUint64(n)
		return b.Sub(big.NewInt(-1), b), nil
	case 2:
		b, err := r.take(n)
		return append([]byte{}, b...), err
	case 3:
		b, err := r.take(n)
		if err != nil {
			return nil, err
		}
		return r.text(b)
	case 4:
		if n > r.remaining() {
			return nil, errTruncated
		}
		if n > maxElements {
			return nil, fmt.Errorf("array of %d elements is too long", n)
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = r.item(depth + 1); err != nil {
				return nil, err
			}
		}
		return a, nil
	case 5:
		if n > r.remaining()/2 {
			return nil, errTruncated
		}
		if n > maxElements {
			return nil, fmt.Errorf("map of %d pairs is too long", n)
		}
		m := make(map[string]any, min(n, 64))
		for range n {
			if err := r.pair(m, depth); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	return r.tag(n, depth)
}

func (r *cborReader) text(b []byte) (string, error) {
	if utf8.Valid(b) {
		return string(b), nil
	}
	if r.internal {
		return strings.ToValidUTF8(string(b), "\uFFFD"), nil
	}
	return "", errors.New("invalid UTF-8 in text string")
}

func (r *cborReader) pair(m map[string]any, depth int) error {
	k, err := r.item(depth + 1)
	if err != nil {
		return err
	}
	v, err := r.item(depth + 1)
	if err != nil {
		return err
	}
	switch k := k.(type) {
	case string:
		m[k] = v
	case int64:
		m[strconv.FormatInt(k, 10)] = v
	case uint64:
		m[strconv.FormatUint(k, 10)] = v
	case *big.Int:
		m[k.String()] = v
	default:
		return fmt.Errorf("unsupported map key of type %s", describe(k))
	}
	return nil
}

func (r *cborReader) tag(number uint64, depth int) (any, error) {
	content, err := r.item(depth + 1)
	if err != nil {
		return nil, err
	}
	switch number {
	case 0:
		return dateText(content)
	case 1:
		return dateEpoch(content)
	case 2, 3:
	default:
		return content, nil
	}
	b, ok := content.([]byte)
	if !ok {
		return nil, fmt.Errorf("bignum tag %d on %s", number, describe(content))
	}
	if len(b) > maxBigBits/8+1 {
		return nil, fmt.Errorf("bignum of %d bytes is too large", len(b))
	}
	n := new(big.Int).SetBytes(b)
	if number == 3 {
		n.Sub(big.NewInt(-1), n)
	}
	return bigValue(n)
}

// dateText reads the content of tag 0: an RFC 3339 date and time.
func dateText(content any) (any, error) {
	s, ok := content.(string)
	if !ok {
		return nil, fmt.Errorf("date tag 0 on %s", describe(content))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("date tag 0: invalid RFC 3339 time %.40q", s)
	}
	return t.UTC(), nil
}

// dateEpoch reads the content of tag 1: seconds since the Unix epoch. A
// fraction is rounded to the millisecond, as cbor-x turns it into a JS Date.
func dateEpoch(content any) (any, error) {
	switch x := content.(type) {
	case int64:
		return time.Unix(x, 0).UTC(), nil
	case uint64:
		if x <= math.MaxInt64 {
			return time.Unix(int64(x), 0).UTC(), nil
		}
	case float64:
		ms := math.Round(x * 1000)
		if !math.IsNaN(ms) && math.Abs(ms) <= 8.64e15 { // a JS Date's range
			return time.UnixMilli(int64(ms)).UTC(), nil
		}
		return nil, fmt.Errorf("date tag 1: invalid date (%v seconds)", x)
	}
	return nil, fmt.Errorf("date tag 1 on %s", describe(content))
}

func (r *cborReader) simple(info byte) (any, error) {
	var f float64
	switch info {
	case 20:
		return false, nil
	case 21:
		return true, nil
	case 22, 23: // null, undefined
		return nil, nil
	case 25, 26, 27:
		b, err := r.take(1 << (info - 24))
		if err != nil {
			return nil, err
		}
		switch info {
		case 25:
			f = halfToFloat(binary.BigEndian.Uint16(b))
		case 26:
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		default:
			f = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
		if r.internal {
			return f, nil
		}
		return jsNumber(f), nil
	case 31:
		return nil, errors.New("unexpected break")
	}
	return nil, fmt.Errorf("unsupported simple value (additional information %d)", info)
}

func halfToFloat(h uint16) float64 {
	exp, frac := int(h>>10)&0x1f, float64(h&0x3ff)
	var f float64
	switch exp {
	case 0:
		f = math.Ldexp(frac, -24)
	case 31:
		f = math.Inf(1)
		if frac != 0 {
			f = math.NaN()
		}
	default:
		f = math.Ldexp(frac+1024, exp-25)
	}
	if h&0x8000 != 0 {
		f = -f
	}
	return f
}

// atBreak consumes a break byte if one is next.
func (r *cborReader) atBreak() (bool, error) {
	if r.off >= len(r.data) {
		return false, errTruncated
	}
	if r.data[r.off] == 0xff {
		r.off++
		return true, nil
	}
	return false, nil
}

func (r *cborReader) indefinite(major byte, depth int) (any, error) {
	switch major {
	case 2, 3:
		var s []byte
		for {
			end, err := r.atBreak()
			if err != nil {
				return nil, err
			}
			if end {
				break
			}
			m, info, err := r.initial()
			if err != nil {
				return nil, err
			}
			if m != major || info == 31 {
				return nil, errors.New("invalid chunk in indefinite-length string")
			}
			n, err := r.argument(info)
			if err != nil {
				return nil, err
			}
			chunk, err := r.take(n)
			if err != nil {
				return nil, err
			}
			s = append(s, chunk...)
		}
		if major == 3 {
			return r.text(s)
		}
		return append([]byte{}, s...), nil
	case 4:
		a := []any{}
		for {
			end, err := r.atBreak()
			if err != nil {
				return nil, err
			}
			if end {
				return a, nil
			}
			if len(a) == maxElements {
				return nil, errors.New("array is too long")
			}
			v, err := r.item(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case 5:
		m := map[string]any{}
		for n := 0; ; n++ {
			end, err := r.atBreak()
			if err != nil {
				return nil, err
			}
			if end {
				return m, nil
			}
			if n == maxElements {
				return nil, errors.New("map is too long")
			}
			if err := r.pair(m, depth); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("indefinite length on major type %d", major)
}

// appendCBORHead writes an initial byte and its argument in the shortest
// form.
func appendCBORHead(b []byte, major byte, n uint64) []byte {
	major <<= 5
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= math.MaxUint8:
		return append(b, major|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, major|27), n)
}
