package protocol

import (
	"math"
	"math/big"
	"reflect"
	"testing"
)

// richValue exercises every kind of value: what each encoding has to tag,
// escape or convert.
func richValue(t testing.TB) []byte { return val(t, richTree()) }

func richTree() map[string]any {
	big2_64, _ := new(big.Int).SetString("18446744073709551616", 10)
	return map[string]any{
		"null":    nil,
		"bool":    true,
		"small":   int64(-5),
		"uint32":  uint64(math.MaxUint32),
		"neg32":   int64(-1 << 32),
		"ms":      int64(1_700_000_000_000), // beyond 32 bits: a float in CBOR
		"safe":    int64(maxSafeInt),
		"unsafe":  int64(maxSafeInt + 1), // ["$BigInt"] everywhere
		"minI64":  int64(math.MinInt64),
		"maxU64":  uint64(math.MaxUint64),
		"big":     big2_64,
		"float":   1.5,
		"intf":    6.0,
		"negzero": math.Copysign(0, -1),
		"tiny":    5e-324,
		"huge":    1e300,
		"str":     "héllo \"quoted\" \\ \n\t\x01 <&>",
		"bytes":   []byte{0, 1, 2, 0xff},
		"empty":   []byte{},
		"dollar":  []any{"$x", 1},
		"dollar2": []any{"$$x", []any{"$BigInt", "1"}},
		"single":  []any{"$x"},
		"triple":  []any{"$x", 1, 2},
		"nested":  []any{map[string]any{"a": []any{[]any{}, map[string]any{}}}, "$"},
		"set":     []any{"$Set", []any{1, 2}},
	}
}

func allMessages(t testing.TB) []Message {
	rich := richValue(t)
	richArgs := val(t, []any{1, "two", richTree(), []any{"$BigInt", richTree()}})
	return []Message{
		ActionRequest{ID: 0, Name: "increment", Args: val(t, []any{})},
		ActionRequest{ID: math.MaxUint64, Name: "math.add", Args: richArgs},
		SubscriptionRequest{EventName: "newCount", Subscribe: true},
		SubscriptionRequest{EventName: "", Subscribe: false},
		Init{ActorID: traceActorID, ConnectionID: traceConnID},
		Error{Group: "user", Code: "detailed_error", Message: "Detailed", Metadata: val(t, map[string]any{"reason": "test"}), ActionID: ptr[uint64](7)},
		Error{Group: "connection", Code: "custom_error", Message: "no action"},
		Error{Group: "actor", Code: "x", Message: "m", Metadata: val(t, nil), ActionID: ptr[uint64](0),
			Actor: &ActorSpecifier{ActorID: "a", Generation: 3, Key: ptr("k")}},
		Error{Group: "actor", Code: "x", Message: "m", Actor: &ActorSpecifier{ActorID: "a", Generation: math.MaxUint64}},
		ActionResponse{ID: 1 << 40, Output: rich},
		ActionResponse{ID: 2, Output: val(t, nil)},
		Event{Name: "e", Args: richArgs},
		Event{Name: "e", Args: val(t, []any{})},
		HTTPActionRequest{Args: richArgs},
		HTTPActionResponse{Output: rich},
		HTTPResponseError{Group: "user", Code: "user_error", Message: "m"},
		HTTPResponseError{Group: "user", Code: "c", Message: "m", Metadata: rich, Actor: &ActorSpecifier{ActorID: "a", Generation: 1}},
		HTTPQueueSendRequest{Body: rich, Name: ptr("jobs"), Wait: ptr(true), Timeout: ptr[uint64](1500)},
		HTTPQueueSendRequest{Body: val(t, nil)},
		HTTPQueueSendResponse{Status: "completed", Response: rich},
		HTTPQueueSendResponse{Status: "timedOut"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, enc := range []Encoding{JSON, CBOR, BARE} {
		for _, m := range allMessages(t) {
			b, err := Encode(enc, m)
			if err != nil {
				t.Errorf("%v: Encode(%#v): %v", enc, m, err)
				continue
			}
			back, err := decodeAs(enc, m, b)
			if err != nil {
				t.Errorf("%v: decode %T %s: %v", enc, m, show(enc, b), err)
				continue
			}
			if !reflect.DeepEqual(back, m) {
				t.Errorf("%v: round trip of %T\n got %#v\nwant %#v\nwire %s", enc, m, back, m, show(enc, b))
			}
		}
	}
}

// TestBAREVersions writes and reads every message in every BARE version
// that has it, and checks what older versions drop.
func TestBAREVersions(t *testing.T) {
	for version := uint16(1); version <= CurrentVersion; version++ {
		for _, m := range allMessages(t) {
			b, err := EncodeBARE(m, version)
			_, queue := m.(HTTPQueueSendRequest)
			if _, ok := m.(HTTPQueueSendResponse); ok {
				queue = true
			}
			if queue && version < 3 {
				if err == nil {
					t.Errorf("v%d: EncodeBARE(%T) succeeded", version, m)
				}
				continue
			}
			if err != nil {
				t.Errorf("v%d: EncodeBARE(%T): %v", version, m, err)
				continue
			}
			if v, err := BAREVersion(b); err != nil || v != version {
				t.Errorf("v%d: BAREVersion = %d, %v", version, v, err)
			}
			back, err := decodeAs(BARE, m, b)
			if err != nil {
				t.Errorf("v%d: decode %T %x: %v", version, m, b, err)
				continue
			}
			want := m
			if version < 4 {
				switch x := m.(type) {
				case Error:
					x.Actor = nil
					want = x
				case HTTPResponseError:
					x.Actor = nil
					want = x
				}
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("v%d: round trip of %T\n got %#v\nwant %#v", version, m, back, want)
			}
		}
	}

	// Version 1 Init carries a connection token.
	init := Init{ActorID: "a", ConnectionID: "c", ConnectionToken: "tok"}
	b, err := EncodeBARE(init, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "01 00 00 01 <s:a> 01 <s:c> 03 <s:tok>"); string(b) != string(want) {
		t.Errorf("v1 Init = %x, want %x", b, want)
	}
	back, err := DecodeToClient(BARE, b)
	if err != nil || !reflect.DeepEqual(back, init) {
		t.Errorf("v1 Init decoded to %#v, %v", back, err)
	}
	if b, _ := Encode(BARE, init); string(b) != string(unhex(t, "04 00 00 01 <s:a> 01 <s:c>")) {
		t.Errorf("v4 Init = %x", b)
	}

	// ToServer and HTTPActionRequest are the same in every version.
	for version := byte(1); version <= 4; version++ {
		if _, err := DecodeToServer(BARE, []byte{version, 0, 1, 0, 1}); err != nil {
			t.Errorf("v%d ToServer: %v", version, err)
		}
		if _, err := DecodeHTTPActionRequest(BARE, []byte{version, 0, 1, 0x80}); err != nil {
			t.Errorf("v%d HttpActionRequest: %v", version, err)
		}
	}
	if _, err := EncodeBARE(init, 5); err == nil {
		t.Error("EncodeBARE version 5 succeeded")
	}
}

func TestEncoding(t *testing.T) {
	for _, c := range []struct {
		name   string
		enc    Encoding
		strict bool
	}{
		{"json", JSON, true}, {"cbor", CBOR, true}, {"bare", BARE, true},
		{"", JSON, false}, {"JSON", JSON, false}, {"msgpack", JSON, false},
	} {
		e, err := ParseEncoding(c.name)
		if c.strict != (err == nil) || (c.strict && e != c.enc) {
			t.Errorf("ParseEncoding(%q) = %v, %v", c.name, e, err)
		}
		if got := HTTPEncoding(c.name); got != c.enc {
			t.Errorf("HTTPEncoding(%q) = %v, want %v", c.name, got, c.enc)
		}
		if c.strict && e.String() != c.name {
			t.Errorf("%v.String() = %q", e, e.String())
		}
	}
	if JSON.ContentType() != "application/json" || CBOR.ContentType() != "application/octet-stream" || BARE.ContentType() != "application/octet-stream" {
		t.Error("wrong content types")
	}
	if JSON.Binary() || !CBOR.Binary() || !BARE.Binary() {
		t.Error("wrong frame types")
	}
	if _, err := Encode(Encoding(9), Init{}); err == nil {
		t.Error("Encode with an unknown encoding succeeded")
	}
	if _, err := DecodeToServer(Encoding(9), nil); err == nil {
		t.Error("Decode with an unknown encoding succeeded")
	}
}
