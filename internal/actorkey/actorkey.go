// Package actorkey converts actor keys (tuples of strings) to and from the
// forms RivetKit puts on the wire.
//
// # Serialized form
//
// The serialized form, which the engine stores and compares, is the one
// RivetKit's serializeActorKey produces:
//
//   - the empty key [] is "/";
//   - otherwise the parts are joined with '/', each part written as:
//     an empty part as `\0` (backslash, zero); any other part with every
//     '\' replaced by `\\` and then every '/' by `\/`.
//
// For example ["a", "b"] is `a/b`, ["a/b", ""] is `a\/b/\0`, ["0"] is `0`,
// [`\0`] (the two characters) is `\\0`, and [""] is `\0`.
//
// Deserialize is the exact inverse and accepts nothing else. The one rule
// that keeps this unambiguous: `\0` means "empty part" only as a whole part
// by itself; everywhere else a backslash quotes the next character, which
// must be '\' or '/'. So the part "0" is `0`, the empty part is `\0`, and
// the two-character text \0 is `\\0` (the backslash is quoted, the '0'
// is literal). Every part is non-empty as written, and only an unquoted '/'
// separates parts. Each key therefore has exactly one serialized form and
// each accepted string exactly one key: Deserialize(Serialize(k)) equals k,
// and when Deserialize(s) succeeds, Serialize of its result is s.
// (RivetKit's own deserializer is lenient and also reads strings its
// serializer never writes, such as `a\`; this package rejects
// them.)
//
// # Query form
//
// The query-gateway form (the rvt-key query parameter) joins the raw parts
// with ',' without escaping: it cannot express a part containing ',', and
// the empty string is the empty key.
package actorkey

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxSerializedSize is the largest serialized key, in bytes, that the
// engine accepts.
const MaxSerializedSize = 1024

// emptyKey is the serialized form of the key with no parts.
const emptyKey = "/"

// ErrMalformed is wrapped by the errors Deserialize returns.
var ErrMalformed = errors.New("malformed serialized actor key")

// Serialize writes a key in the serialized form.
func Serialize(key []string) string {
	if len(key) == 0 {
		return emptyKey
	}
	var b strings.Builder
	b.Grow(serializedLen(key))
	for i, p := range key {
		if i > 0 {
			b.WriteByte('/')
		}
		if p == "" {
			b.WriteString(`\0`)
			continue
		}
		for {
			j := strings.IndexAny(p, `\/`)
			if j < 0 {
				break
			}
			b.WriteString(p[:j])
			b.WriteByte('\\')
			b.WriteByte(p[j])
			p = p[j+1:]
		}
		b.WriteString(p)
	}
	return b.String()
}

// serializedLen is len(Serialize(key)).
func serializedLen(key []string) int {
	if len(key) == 0 {
		return len(emptyKey)
	}
	n := len(key) - 1 // separators
	for _, p := range key {
		if p == "" {
			n += 2
			continue
		}
		n += len(p) + strings.Count(p, `\`) + strings.Count(p, "/")
	}
	return n
}

// Deserialize reads the serialized form; it is the exact inverse of
// Serialize. Strings Serialize cannot produce are an error wrapping
// ErrMalformed: the empty string, a dangling backslash, an escape other
// than `\\`, `\/` and `\0`, a `\0` that is not a whole part, and an
// empty part (as in "a//b", "/a" or "a/").
func Deserialize(s string) ([]string, error) {
	switch s {
	case "":
		return nil, fmt.Errorf("%w: empty string (the empty key is %q)", ErrMalformed, emptyKey)
	case emptyKey:
		return []string{}, nil
	}
	parts := make([]string, 0, strings.Count(s, "/")+1)
	var cur []byte // the current part, unescaped; nil until it has a byte
	empty := false // the current part was written `\0`
	start := 0     // where the current part starts in s
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("%w %s: dangling backslash at the end", ErrMalformed, short(s))
			}
			i++
			switch e := s[i]; e {
			case '\\', '/':
				if cur == nil {
					cur = make([]byte, 0, len(s)-start)
				}
				cur = append(cur, s[start:i-1]...)
				cur = append(cur, e)
				start = i + 1
			case '0':
				if i-1 != start || cur != nil || (i+1 < len(s) && s[i+1] != '/') {
					return nil, fmt.Errorf(`%w %s: \0 at %d is not a whole part (an empty part is written \0 alone; the text \0 is written \\0)`, ErrMalformed, short(s), i-1)
				}
				empty = true
				start = i + 1
			default:
				return nil, fmt.Errorf(`%w %s: unknown escape %q at %d (only \\, \/ and \0 exist)`, ErrMalformed, short(s), []byte{'\\', e}, i-1)
			}
		case '/':
			p, err := endPart(s, i, start, cur, empty)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
			cur, empty, start = nil, false, i+1
		}
	}
	p, err := endPart(s, len(s), start, cur, empty)
	if err != nil {
		return nil, err
	}
	return append(parts, p), nil
}

// short quotes s for an error message, cut to its first 64 bytes.
func short(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:max]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// endPart finishes the part that ends at s[end]: cur holds its unescaped
// bytes up to s[start], and s[start:end] is unescaped text.
func endPart(s string, end, start int, cur []byte, empty bool) (string, error) {
	switch {
	case empty:
		return "", nil
	case cur != nil:
		return string(append(cur, s[start:end]...)), nil
	case start == end:
		return "", fmt.Errorf(`%w %s: empty part at %d (an empty part is written \0)`, ErrMalformed, short(s), end)
	}
	return s[start:end], nil
}

// FromQuery reads the query-gateway form (rvt-key): the raw parts joined
// by ',', with no escaping. The empty string is the empty key; "a,,b" is
// ["a", "", "b"].
func FromQuery(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// Validate reports an error when the key's serialized form is longer than
// MaxSerializedSize bytes, which the engine would reject.
func Validate(key []string) error {
	if n := serializedLen(key); n > MaxSerializedSize {
		return fmt.Errorf("actor key is %d bytes serialized, over the limit of %d", n, MaxSerializedSize)
	}
	return nil
}
