// Package actorid makes and checks actor ids in the format of the Rivet
// engine.
//
// An id is 19 bytes:
//
//	byte 0       version, always 1
//	bytes 1-16   a random UUIDv4: 122 random bits, with the version nibble
//	             (high nibble of byte 7) set to 4 and the RFC 4122 variant
//	             (top two bits of byte 9) set to 10
//	bytes 17-18  the datacenter label, a big-endian uint16
//
// Those bytes are read as a little-endian unsigned integer (byte 0 least
// significant) and written as exactly 30 base-36 digits, 0-9 then a-z,
// least significant digit first, padded with '0'. The value is below
// 2^152 < 36^30, so the last digit is at most '4'. An id is URL-safe, has no '@' and no upper case; for example
// "dl0cdxyxq0wt6bjksjgjrn6zteal00" is version 1, UUID
// 3f2504e0-4f89-41d3-9a0c-0305e82c3301 and label 1. Ids are opaque to
// everything but this package; with 122 random bits they are never reused
// in practice.
package actorid

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/bits"
)

const (
	// Len is the length of an id in characters.
	Len = 30
	// Size is the length of an id in bytes, before base-36 encoding.
	Size = 19
	// Version is the version byte of the ids this package makes and
	// accepts.
	Version = 1
)

const digits = "0123456789abcdefghijklmnopqrstuvwxyz"

// pow12 is 36^12, the largest power of 36 below 2^64.
const pow12 = 36 * 36 * 36 * 36 * 36 * 36 * 36 * 36 * 36 * 36 * 36 * 36

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid actor id")

// New returns a fresh random id carrying a datacenter label. It is safe for
// concurrent use.
func New(label uint16) string {
	var b [Size]byte
	b[0] = Version
	_, _ = rand.Read(b[1:17]) // never fails (crypto/rand.Read aborts the program instead)
	b[7] = b[7]&0x0f | 0x40   // UUID version 4 (byte 6 of the UUID)
	b[9] = b[9]&0x3f | 0x80   // RFC 4122 variant (byte 8 of the UUID)
	b[17], b[18] = byte(label>>8), byte(label)
	return encode(b)
}

// encode writes b, a little-endian number, as Len base-36 digits, least
// significant first. Every 19-byte value fits: 36^30 > 2^152.
func encode(b [Size]byte) string {
	// Three little-endian limbs: bits 0-63, 64-127, 128-151.
	var limb [3]uint64
	for i := Size - 1; i >= 0; i-- {
		limb[i/8] = limb[i/8]<<8 | uint64(b[i])
	}
	// Peel off 12 digits at a time by dividing by 36^12 (< 2^64), most
	// significant limb first, each remainder being the high word of the
	// next division; 36^30 > 2^152, so after two rounds the rest (< 36^6)
	// is in limb[0].
	var out [Len]byte
	for i := 0; i < Len; i += 12 {
		var rem uint64
		if i+12 < Len {
			limb[2], rem = bits.Div64(0, limb[2], pow12)
			limb[1], rem = bits.Div64(rem, limb[1], pow12)
			limb[0], rem = bits.Div64(rem, limb[0], pow12)
		} else {
			rem = limb[0]
		}
		for j := i; j < min(i+12, Len); j++ {
			out[j] = digits[rem%36]
			rem /= 36
		}
	}
	return string(out[:])
}

// Parse decodes an id into its 19 bytes. It checks the length (Len), the
// alphabet (0-9, a-z; upper case is rejected, so that every id has one
// spelling), that the value is below 2^152, and that the version byte is
// Version. It does not check the UUID version and variant bits or the
// label. Errors wrap ErrInvalid and come with the zero array.
func Parse(s string) ([Size]byte, error) {
	var b [Size]byte
	if len(s) != Len {
		// s is not echoed: it may be long, and it is not an id.
		return b, fmt.Errorf("%w: %d bytes, want %d", ErrInvalid, len(s), Len)
	}
	// Read the digits most significant first, in chunks of up to 12 (6,
	// then 12, then 12): limb = limb*36^n + chunk.
	var limb [3]uint64
	for end := Len; end > 0; {
		n := end % 12
		if n == 0 {
			n = 12
		}
		start := end - n
		var chunk, mult uint64 = 0, 1
		for i := end - 1; i >= start; i-- {
			c := s[i]
			var d uint64
			switch {
			case '0' <= c && c <= '9':
				d = uint64(c - '0')
			case 'a' <= c && c <= 'z':
				d = uint64(c-'a') + 10
			default:
				return b, fmt.Errorf("%w %q: character %q at %d is not 0-9 or a-z", ErrInvalid, s, c, i)
			}
			chunk = chunk*36 + d
			mult *= 36
		}
		carry := chunk
		for j := range limb {
			hi, lo := bits.Mul64(limb[j], mult)
			var c uint64
			limb[j], c = bits.Add64(lo, carry, 0)
			carry = hi + c
		}
		// Before this chunk the value was below 2^152, so now it is below
		// 2^152 * 36^12 < 2^256 and carry holds its top limb exactly.
		if carry != 0 || limb[2]>>24 != 0 {
			return b, fmt.Errorf("%w %q: value exceeds 19 bytes", ErrInvalid, s)
		}
		end = start
	}
	for i := range b {
		b[i] = byte(limb[i/8] >> (8 * (i % 8)))
	}
	if b[0] != Version {
		return [Size]byte{}, fmt.Errorf("%w %q: version %d, want %d", ErrInvalid, s, b[0], Version)
	}
	return b, nil
}

// Valid reports whether Parse accepts s.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Label returns the datacenter label of a valid id.
func Label(s string) (uint16, error) {
	b, err := Parse(s)
	if err != nil {
		return 0, err
	}
	return uint16(b[17])<<8 | uint16(b[18]), nil
}
