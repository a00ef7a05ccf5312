package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rivetgo/rivet/internal/codec"
)

// BARE messages are a u16 little-endian version followed by the body
// (schemas/v1..v4.bare in rivetkit-rust/packages/client-protocol). A Cbor
// field holds cbor(encodeJsonCompatValue(v)): see bareBlob and readValue.

// bareReader reads BARE primitives. The first error sticks: later reads
// return zero values, and end reports it.
type bareReader struct {
	buf []byte
	err error
}

func (r *bareReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *bareReader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)) {
		r.fail(errTruncated)
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

// version reads the version prefix; it must be at least minVersion.
func (r *bareReader) version(minVersion uint16) uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	v := binary.LittleEndian.Uint16(b)
	switch {
	case v < 1 || v > CurrentVersion:
		r.fail(fmt.Errorf("unsupported version %d", v))
	case v < minVersion:
		r.fail(fmt.Errorf("message does not exist in version %d", v))
	}
	return v
}

// uint reads a LEB128 varint of at most 10 bytes, in its shortest form.
func (r *bareReader) uint() uint64 {
	var x uint64
	for i := 0; r.err == nil; i++ {
		b := r.take(1)
		if b == nil {
			return 0
		}
		c := b[0]
		if i == 9 && c > 1 {
			r.fail(errors.New("varint overflows 64 bits"))
			return 0
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				r.fail(errors.New("varint not in shortest form"))
			}
			return x
		}
	}
	return 0
}

func (r *bareReader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *bareReader) bool() bool {
	b := r.take(1)
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.fail(fmt.Errorf("invalid bool %#x", b[0]))
	}
	return b[0] == 1
}

// optional reads the presence byte of an optional<T>.
func (r *bareReader) optional() bool {
	b := r.take(1)
	if b == nil {
		return false
	}
	if b[0] > 1 {
		r.fail(fmt.Errorf("invalid optional tag %#x", b[0]))
	}
	return b[0] == 1
}

func (r *bareReader) data() []byte { return r.take(r.uint()) }

func (r *bareReader) str() string {
	b := r.data()
	if r.err == nil && !utf8.Valid(b) {
		r.fail(errors.New("invalid UTF-8 in string"))
	}
	return string(b)
}

func (r *bareReader) optStr() *string {
	if !r.optional() {
		return nil
	}
	s := r.str()
	return &s
}

func (r *bareReader) optUint() *uint64 {
	if !r.optional() {
		return nil
	}
	n := r.uint()
	return &n
}

// readValue reads a Cbor field holding a user value (args: an argument
// array) and converts it to internal CBOR.
func (r *bareReader) readValue(args bool) []byte {
	b := r.data()
	if r.err != nil {
		return nil
	}
	t, err := parseCBOR(b, false)
	if err != nil {
		r.fail(fmt.Errorf("cbor data: %w", err))
		return nil
	}
	var v []byte
	if args {
		v, err = wireArgs(t, true)
	} else {
		v, err = wireValue(t, true)
	}
	if err != nil {
		r.fail(err)
	}
	return v
}

func (r *bareReader) optValue() []byte {
	if !r.optional() {
		return nil
	}
	return r.readValue(false)
}

func (r *bareReader) actor() *ActorSpecifier {
	if !r.optional() {
		return nil
	}
	return &ActorSpecifier{ActorID: r.str(), Generation: r.uint(), Key: r.optStr()}
}

func (r *bareReader) end() error {
	if r.err == nil && len(r.buf) > 0 {
		r.fail(fmt.Errorf("%d trailing bytes", len(r.buf)))
	}
	return r.err
}

func appendUint(b []byte, n uint64) []byte { return binary.AppendUvarint(b, n) }

func appendStr(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return append(appendUint(b, uint64(len(s))), s...)
}

func appendData(b, d []byte) []byte { return append(appendUint(b, uint64(len(d))), d...) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendOptStr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, 0)
	}
	return appendStr(append(b, 1), *s)
}

// appendValue writes a user value as a Cbor field: cbor of the
// compat-tagged value, as encodeCborCompat in serde.ts.
func appendValue(b, internal []byte, args bool) ([]byte, error) {
	t, err := parseInternal(internal)
	if err != nil {
		return nil, err
	}
	if args {
		t = argsTree(t)
	}
	if t, err = toCompat(t, true, 0); err != nil {
		return nil, err
	}
	blob, err := codec.Marshal(t)
	if err != nil {
		return nil, err
	}
	return appendData(b, blob), nil
}

func appendOptValue(b, internal []byte) ([]byte, error) {
	if internal == nil {
		return append(b, 0), nil
	}
	return appendValue(append(b, 1), internal, false)
}

func appendActor(b []byte, a *ActorSpecifier) []byte {
	if a == nil {
		return append(b, 0)
	}
	b = appendStr(append(b, 1), a.ActorID)
	b = appendUint(b, a.Generation)
	return appendOptStr(b, a.Key)
}

func (m ActionRequest) appendBARE(b []byte, _ uint16) ([]byte, error) {
	b = appendUint(appendUint(b, 0), m.ID)
	return appendValue(appendStr(b, m.Name), m.Args, true)
}

func (m SubscriptionRequest) appendBARE(b []byte, _ uint16) ([]byte, error) {
	return appendBool(appendStr(appendUint(b, 1), m.EventName), m.Subscribe), nil
}

func (m Init) appendBARE(b []byte, version uint16) ([]byte, error) {
	b = appendStr(appendStr(appendUint(b, 0), m.ActorID), m.ConnectionID)
	if version == 1 {
		b = appendStr(b, m.ConnectionToken)
	}
	return b, nil
}

func (m Error) appendBARE(b []byte, version uint16) ([]byte, error) {
	b = appendStr(appendStr(appendStr(appendUint(b, 1), m.Group), m.Code), m.Message)
	b, err := appendOptValue(b, m.Metadata)
	if err != nil {
		return nil, err
	}
	if m.ActionID == nil {
		b = append(b, 0)
	} else {
		b = appendUint(append(b, 1), *m.ActionID)
	}
	if version >= 4 {
		b = appendActor(b, m.Actor)
	}
	return b, nil
}

func (m ActionResponse) appendBARE(b []byte, _ uint16) ([]byte, error) {
	return appendValue(appendUint(appendUint(b, 2), m.ID), m.Output, false)
}

func (m Event) appendBARE(b []byte, _ uint16) ([]byte, error) {
	return appendValue(appendStr(appendUint(b, 3), m.Name), m.Args, true)
}

func (m HTTPActionRequest) appendBARE(b []byte, _ uint16) ([]byte, error) {
	return appendValue(b, m.Args, true)
}

func (m HTTPActionResponse) appendBARE(b []byte, _ uint16) ([]byte, error) {
	return appendValue(b, m.Output, false)
}

func (m HTTPResponseError) appendBARE(b []byte, version uint16) ([]byte, error) {
	b = appendStr(appendStr(appendStr(b, m.Group), m.Code), m.Message)
	b, err := appendOptValue(b, m.Metadata)
	if err != nil {
		return nil, err
	}
	if version >= 4 {
		b = appendActor(b, m.Actor)
	}
	return b, nil
}

func (m HTTPQueueSendRequest) appendBARE(b []byte, version uint16) ([]byte, error) {
	if version < 3 {
		return nil, fmt.Errorf("queue messages need BARE version 3, not %d", version)
	}
	b, err := appendValue(b, m.Body, false)
	if err != nil {
		return nil, err
	}
	b = appendOptStr(b, m.Name)
	if m.Wait == nil {
		b = append(b, 0)
	} else {
		b = appendBool(append(b, 1), *m.Wait)
	}
	if m.Timeout == nil {
		return append(b, 0), nil
	}
	return binary.LittleEndian.AppendUint64(append(b, 1), *m.Timeout), nil
}

func (m HTTPQueueSendResponse) appendBARE(b []byte, version uint16) ([]byte, error) {
	if version < 3 {
		return nil, fmt.Errorf("queue messages need BARE version 3, not %d", version)
	}
	return appendOptValue(appendStr(b, m.Status), m.Response)
}

func decodeBAREToServer(r *bareReader) ToServer {
	r.version(1)
	switch tag := r.uint(); {
	case r.err != nil:
		return nil
	case tag == 0:
		return ActionRequest{ID: r.uint(), Name: r.str(), Args: r.readValue(true)}
	case tag == 1:
		return SubscriptionRequest{EventName: r.str(), Subscribe: r.bool()}
	default:
		r.fail(fmt.Errorf("unknown ToServer tag %d", tag))
		return nil
	}
}

func decodeBAREToClient(r *bareReader) ToClient {
	version := r.version(1)
	switch tag := r.uint(); {
	case r.err != nil:
		return nil
	case tag == 0:
		m := Init{ActorID: r.str(), ConnectionID: r.str()}
		if version == 1 {
			m.ConnectionToken = r.str()
		}
		return m
	case tag == 1:
		m := Error{Group: r.str(), Code: r.str(), Message: r.str(), Metadata: r.optValue(), ActionID: r.optUint()}
		if version >= 4 {
			m.Actor = r.actor()
		}
		return m
	case tag == 2:
		return ActionResponse{ID: r.uint(), Output: r.readValue(false)}
	case tag == 3:
		return Event{Name: r.str(), Args: r.readValue(true)}
	default:
		r.fail(fmt.Errorf("unknown ToClient tag %d", tag))
		return nil
	}
}

func decodeBAREHTTPActionRequest(r *bareReader) HTTPActionRequest {
	r.version(1)
	return HTTPActionRequest{Args: r.readValue(true)}
}

func decodeBAREHTTPActionResponse(r *bareReader) HTTPActionResponse {
	r.version(1)
	return HTTPActionResponse{Output: r.readValue(false)}
}

func decodeBAREHTTPResponseError(r *bareReader) HTTPResponseError {
	version := r.version(1)
	m := HTTPResponseError{Group: r.str(), Code: r.str(), Message: r.str(), Metadata: r.optValue()}
	if version >= 4 {
		m.Actor = r.actor()
	}
	return m
}

func decodeBAREHTTPQueueSendRequest(r *bareReader) HTTPQueueSendRequest {
	r.version(3)
	m := HTTPQueueSendRequest{Body: r.readValue(false), Name: r.optStr()}
	if r.optional() {
		w := r.bool()
		m.Wait = &w
	}
	if r.optional() {
		t := r.u64()
		m.Timeout = &t
	}
	return m
}

func decodeBAREHTTPQueueSendResponse(r *bareReader) HTTPQueueSendResponse {
	r.version(3)
	return HTTPQueueSendResponse{Status: r.str(), Response: r.optValue()}
}
