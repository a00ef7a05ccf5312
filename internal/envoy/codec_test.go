package envoy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestDecodeRejects: bytes that are not a valid encoding give a
// *DecodeError naming the message, the offset and the fault.
func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	huge := binary.AppendUvarint(nil, 1<<60)
	for _, tt := range []struct {
		name    string
		message string
		in      []byte
		offset  int
		reason  string
	}{
		{"empty", "ToRivet", nil, 0, "truncated"},
		{"unknown tag", "ToRivet", []byte{15}, 0, "unknown ToRivet tag 15"},
		{"unknown nested tag", "ToRivet", []byte{5, 0, 0, 0, 0, 0, 9}, 6, "unknown KvRequestData tag 9"},
		{"tag varint too long", "ToRivet", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, 0, "overflows 64 bits"},
		{"tag not shortest", "ToRivet", []byte{0x84, 0x00}, 0, "not in shortest form"},
		{"pong truncated", "ToRivet", []byte{4, 1, 2, 3}, 1, "truncated: 8 bytes needed, 3 left"},
		{"trailing bytes", "ToRivet", []byte{3, 0}, 1, "1 bytes after the end"},
		{"bad bool", "ToEnvoy", append(append([]byte{4}, make([]byte, 10)...), 1, 0, 2), 13, "invalid bool 0x2"},
		{"bad optional", "ToRivet", []byte{0, 2}, 1, "invalid optional tag 0x2"},
		{"bad enum", "ActorCommandKeyData", []byte{1, 5}, 1, "invalid StopActorReason value 5"},
		{"invalid UTF-8", "ToRivet", []byte{0, 0, 1, 2, 0xff, 0xfe}, 3, "not valid UTF-8"},
		{"length beyond input", "ToRivet", append([]byte{0, 0, 1}, huge...), 3, "does not fit in the 0 bytes left"},
		{"list beyond input", "ToRivet", append([]byte{1}, huge...), 1, "does not fit"},
		// Two elements of at least 15 bytes cannot fit in 20.
		{"list elements beyond input", "ToRivet", append([]byte{1, 2}, make([]byte, 20)...), 1, "length 2 does not fit in the 20 bytes left"},
		{"duplicate map key", "ToRivet", []byte{0, 1, 2, 1, 'a', 0, 1, 'a', 0, 0}, 6, `duplicate map key a`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := codecs[tt.message].decode(tt.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a *DecodeError", err)
			}
			if de.Message != tt.message || de.Offset != tt.offset || !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("got %q (message %s, offset %d), want message %s, offset %d, reason containing %q",
					err, de.Message, de.Offset, tt.message, tt.offset, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "envoy: decode "+tt.message+": ") {
				t.Errorf("error %q lacks the envoy: decode prefix", err)
			}
		})
	}
}

// TestDecodeLengthBomb: a length prefix of 2^60 allocates nothing for
// the length; the decoder fails at once.
func TestDecodeLengthBomb(t *testing.T) {
	huge := binary.AppendUvarint(nil, 1<<60)
	inputs := [][]byte{
		append([]byte{0, 1}, huge...),                                                 // ToRivetMetadata with a map of 2^60 names
		append([]byte{1}, huge...),                                                    // ToRivetEvents of 2^60 events
		append([]byte{5, 0, 0, 0, 0, 0, 0}, huge...),                                  // KvGetRequest of 2^60 keys
		append(append([]byte{6}, make([]byte, 10)...), append([]byte{6}, huge...)...), // WebSocket message of 2^60 bytes
	}
	for _, in := range inputs {
		if _, err := DecodeToRivet(in); err == nil {
			t.Fatalf("% x: decoded a length bomb", in)
		}
		if n := allocatedBytes(func() { DecodeToRivet(in) }); n > 2048 {
			t.Errorf("% x: allocated %d bytes", in, n)
		}
	}
}

// allocatedBytes is how many bytes f allocates, averaged over a few runs.
func allocatedBytes(f func()) uint64 {
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestDecodeCopies: decoded values do not alias the input, so a caller
// may reuse its read buffer.
func TestDecodeCopies(t *testing.T) {
	t.Parallel()
	in, err := EncodeToEnvoy(ToEnvoyTunnelMessage{MessageKind: ToEnvoyWebSocketMessage{Data: []byte("hello"), Binary: true}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeToEnvoy(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0xee
	}
	if got := m.(ToEnvoyTunnelMessage).MessageKind.(ToEnvoyWebSocketMessage).Data; string(got) != "hello" {
		t.Errorf("data changed with the input: %q", got)
	}
}

// TestEncodeRejects: what has no encoding gives an *EncodeError, and
// Append leaves dst as it was.
func TestEncodeRejects(t *testing.T) {
	t.Parallel()
	bad := string([]byte{0xff})
	for _, tt := range []struct {
		name   string
		m      ToRivet
		reason string
	}{
		{"nil message", nil, "<nil> is not a ToRivet variant"},
		{"pointer variant", &ToRivetPong{}, "*envoy.ToRivetPong is not a ToRivet variant"},
		{"nil nested union", ToRivetKVRequest{}, "<nil> is not a KVRequestData variant"},
		{"pointer nested variant", ToRivetKVRequest{Data: &KVDropRequest{}}, "*envoy.KVDropRequest is not a KVRequestData variant"},
		{"bad enum", ToRivetEvents{{Inner: EventActorStateUpdate{State: ActorStateStopped{Code: 7}}}}, "invalid StopCode value 7"},
		{"invalid UTF-8", ToRivetKVRequest{ActorID: bad, Data: KVDropRequest{}}, "not valid UTF-8"},
		{"invalid UTF-8 map key", ToRivetTunnelMessage{MessageKind: ToRivetResponseStart{Headers: map[string]string{bad: "x"}}}, "not valid UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := AppendToRivet(dst, tt.m)
			var ee *EncodeError
			if !errors.As(err, &ee) || ee.Message != "ToRivet" || !strings.Contains(ee.Reason, tt.reason) {
				t.Fatalf("error %v, want an *EncodeError for ToRivet containing %q", err, tt.reason)
			}
			if string(out) != "prefix" {
				t.Errorf("Append returned %q, want dst unchanged", out)
			}
		})
	}
}

// TestEncodeMapsSorted: a map encodes with its keys in ascending byte
// order whatever Go's iteration order, so equal messages encode equally.
func TestEncodeMapsSorted(t *testing.T) {
	t.Parallel()
	headers := map[string]string{}
	for _, k := range []string{"b", "a", "c", "B", "é", "aa"} {
		headers[k] = k
	}
	m := ToRivetTunnelMessage{MessageKind: ToRivetResponseStart{Status: 200, Headers: headers}}
	first, err := EncodeToRivet(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := EncodeToRivet(m)
		if err != nil || !bytes.Equal(again, first) {
			t.Fatalf("encodings differ: %x vs %x (%v)", again, first, err)
		}
	}
	// tag, message id (4+4+2), kind tag, status, then the map.
	want := []byte{6, 1, 'B', 1, 'B', 1, 'a', 1, 'a', 2, 'a', 'a', 2, 'a', 'a', 1, 'b', 1, 'b', 1, 'c', 1, 'c', 2, 0xc3, 0xa9, 2, 0xc3, 0xa9}
	if got := first[1+10+1+2:]; !bytes.HasPrefix(got, want) {
		t.Errorf("map encoded as % x, want prefix % x", got, want)
	}
}

func TestVersionFraming(t *testing.T) {
	t.Parallel()
	payload, err := AppendToEnvoy(AppendVersion(nil), ToEnvoyPing{Ts: 5})
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != 8 || payload[1] != 0 {
		t.Fatalf("prefix % x, want 08 00", payload[:2])
	}
	body, err := CutVersion(payload)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := DecodeToEnvoy(body); err != nil || m != (ToEnvoyPing{Ts: 5}) {
		t.Fatalf("decoded %#v, %v", m, err)
	}

	var ve *VersionError
	if _, err := CutVersion([]byte{7, 0, 5}); !errors.As(err, &ve) || ve.Version != 7 {
		t.Errorf("version 7: error %v, want a *VersionError for 7", err)
	}
	if _, err := CutVersion([]byte{8}); err == nil || !strings.Contains(err.Error(), "shorter than its 2-byte version") {
		t.Errorf("1-byte payload: error %v", err)
	}
}

// TestEnumString: enums print their schema names.
func TestEnumString(t *testing.T) {
	t.Parallel()
	for v, want := range map[interface{ String() string }]string{
		StopCodeOK:                            "OK",
		StopActorReasonGoingAway:              "GOING_AWAY",
		HTTPStreamAbortReasonKindHandlerError: "HANDLER_ERROR",
		StopCode(9):                           "StopCode(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}
