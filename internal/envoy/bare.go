package envoy

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// DecodeError reports bytes that are not a valid encoding of a message.
type DecodeError struct {
	Message string // the top-level message type, e.g. "ToRivet"
	Offset  int    // where in the input the fault starts
	Reason  string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("envoy: decode %s: byte %d: %s", e.Message, e.Offset, e.Reason)
}

// EncodeError reports a message that cannot be encoded: a nil or foreign
// union variant, an enum value outside the schema, a string that is not
// UTF-8.
type EncodeError struct {
	Message string // the top-level message type, e.g. "ToRivet"
	Reason  string
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("envoy: encode %s: %s", e.Message, e.Reason)
}

// decoder reads BARE values from buf. The first fault sticks: later reads
// return zero values without reading, and finish reports the fault.
// Every length is checked against the bytes left before anything is
// allocated for it, so a decode allocates in proportion to its input.
type decoder struct {
	buf    []byte
	off    int
	failed bool
	errOff int
	reason string
}

func (d *decoder) failAt(off int, format string, args ...any) {
	if !d.failed {
		d.failed, d.errOff, d.reason = true, off, fmt.Sprintf(format, args...)
	}
}

func (d *decoder) failf(format string, args ...any) { d.failAt(d.off, format, args...) }

// finish reports the first fault, or bytes left over after the message.
func (d *decoder) finish(message string) error {
	if !d.failed && d.off < len(d.buf) {
		d.failf("%d bytes after the end of the message", len(d.buf)-d.off)
	}
	if d.failed {
		return &DecodeError{Message: message, Offset: d.errOff, Reason: d.reason}
	}
	return nil
}

func (d *decoder) take(n int) []byte {
	if d.failed {
		return nil
	}
	if n > len(d.buf)-d.off {
		d.failf("truncated: %d bytes needed, %d left", n, len(d.buf)-d.off)
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

// uint reads a varint of at most 10 bytes in its shortest form (a value
// has exactly one encoding, so decoding and encoding again gives back the
// same bytes).
func (d *decoder) uint() uint64 {
	start := d.off
	var x uint64
	for i := 0; !d.failed; i++ {
		b := d.take(1)
		if b == nil {
			return 0
		}
		c := b[0]
		if i == 9 && c > 1 {
			d.failAt(start, "varint overflows 64 bits")
			return 0
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				d.failAt(start, "varint not in shortest form")
				return 0
			}
			return x
		}
	}
	return 0
}

// int reads a zigzag varint.
func (d *decoder) int() int64 {
	u := d.uint()
	return int64(u>>1) ^ -int64(u&1)
}

// length reads the length of a list, map, string or data whose items take
// at least minItem bytes each; it fails if the input left cannot hold
// that many.
func (d *decoder) length(minItem int) int {
	start := d.off
	n := d.uint()
	if d.failed {
		return 0
	}
	if left := uint64(len(d.buf) - d.off); n > left/uint64(minItem) {
		d.failAt(start, "length %d does not fit in the %d bytes left", n, left)
		return 0
	}
	return int(n)
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) bool() bool {
	start := d.off
	switch v := d.u8(); v {
	case 0, 1:
		return v == 1
	default:
		d.failAt(start, "invalid bool %#x", v)
		return false
	}
}

// present reads the presence byte of an optional value.
func (d *decoder) present() bool {
	start := d.off
	switch v := d.u8(); v {
	case 0, 1:
		return v == 1
	default:
		d.failAt(start, "invalid optional tag %#x", v)
		return false
	}
}

func (d *decoder) str() string {
	start := d.off
	b := d.take(d.length(1))
	if !utf8.Valid(b) {
		d.failAt(start, "string is not valid UTF-8")
		return ""
	}
	return string(b)
}

// data reads variable-length data into a new slice (nil when empty).
func (d *decoder) data() []byte {
	b := d.take(d.length(1))
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// fixed reads len(dst) bytes of fixed-length data into dst.
func (d *decoder) fixed(dst []byte) { copy(dst, d.take(len(dst))) }

// encoder appends BARE values to buf. The first fault sticks and finish
// reports it.
type encoder struct {
	buf    []byte
	failed bool
	reason string
}

func (e *encoder) failf(format string, args ...any) {
	if !e.failed {
		e.failed, e.reason = true, fmt.Sprintf(format, args...)
	}
}

func (e *encoder) finish(message string) error {
	if e.failed {
		return &EncodeError{Message: message, Reason: e.reason}
	}
	return nil
}

func (e *encoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) int(v int64)   { e.buf = binary.AppendVarint(e.buf, v) } // zigzag, as BARE
func (e *encoder) u8(v uint8)    { e.buf = append(e.buf, v) }
func (e *encoder) u16(v uint16)  { e.buf = binary.LittleEndian.AppendUint16(e.buf, v) }
func (e *encoder) u32(v uint32)  { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64)  { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) raw(b []byte)  { e.buf = append(e.buf, b...) }
func (e *encoder) data(b []byte) { e.uint(uint64(len(b))); e.raw(b) }

func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) str(s string) {
	if !utf8.ValidString(s) {
		e.failf("string %q is not valid UTF-8", s)
		return
	}
	e.uint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}
