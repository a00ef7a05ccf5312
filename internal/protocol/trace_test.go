package protocol

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/rivetgo/rivet/internal/codec"
)

// Values used by the captured traces of protocol.md §9.
const (
	traceActorID = "0123456789abcdefghijklmnopqrst" // 30 characters, as in the trace
	traceConnID  = "bbed122f-e5b9-4ecc-af67-d64921d9e5ad"
)

// unhex decodes hex written with spaces and with <s:TEXT> standing for the
// bytes of TEXT.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for s != "" {
		if rest, ok := strings.CutPrefix(s, "<s:"); ok {
			text, after, _ := strings.Cut(rest, ">")
			out = append(out, text...)
			s = after
			continue
		}
		i := strings.Index(s, "<")
		if i < 0 {
			i = len(s)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(s[:i], " ", ""))
		if err != nil {
			t.Fatalf("bad hex %q: %v", s[:i], err)
		}
		out = append(out, b...)
		s = s[i:]
	}
	return out
}

// val returns the internal CBOR of v.
func val(t testing.TB, v any) []byte {
	t.Helper()
	b, err := codec.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

type traceCase struct {
	name string
	enc  Encoding
	msg  Message
	wire []byte
}

func traceCases(t testing.TB) []traceCase {
	args := func(vs ...any) []byte { return val(t, vs) }
	init := Init{ActorID: traceActorID, ConnectionID: traceConnID}
	sub := SubscriptionRequest{EventName: "newCount", Subscribe: true}
	action := ActionRequest{ID: 0, Name: "increment", Args: args(1)}
	event := Event{Name: "newCount", Args: args(6)}
	resp := ActionResponse{ID: 0, Output: val(t, 6)}
	userErr := Error{Group: "user", Code: "user_error", Message: "Simple error message", ActionID: ptr[uint64](1)}
	connErr := Error{Group: "connection", Code: "custom_error", Message: "Test error from createConnState"}
	js := func(s string) []byte { return []byte(s) }
	return []traceCase{
		// (a) stateless action.
		{"a/json/request", JSON, HTTPActionRequest{Args: args(5)}, js(`{"args":[5]}`)},
		{"a/json/response", JSON, HTTPActionResponse{Output: val(t, 5)}, js(`{"output":5}`)},
		{"a/cbor/request", CBOR, HTTPActionRequest{Args: args(5)}, unhex(t, "b9000164617267738105")},
		{"a/cbor/response", CBOR, HTTPActionResponse{Output: val(t, 5)}, unhex(t, "a1 66 6f7574707574 05")},
		{"a/bare/request", BARE, HTTPActionRequest{Args: args(5)}, unhex(t, "04 00 02 81 05")},
		{"a/bare/response", BARE, HTTPActionResponse{Output: val(t, 5)}, unhex(t, "04 00 01 05")},

		// (b) connection, JSON.
		{"b/json/init", JSON, init, js(`{"body":{"tag":"Init","val":{"actorId":"` + traceActorID + `","connectionId":"bbed122f-e5b9-4ecc-af67-d64921d9e5ad"}}}`)},
		{"b/json/sub", JSON, sub, js(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":"newCount","subscribe":true}}}`)},
		{"b/json/action", JSON, action, js(`{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[1]}}}`)},
		{"b/json/event", JSON, event, js(`{"body":{"tag":"Event","val":{"name":"newCount","args":[6]}}}`)},
		{"b/json/response", JSON, resp, js(`{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":6}}}`)},
		{"b/json/user-error", JSON, userErr, js(`{"body":{"tag":"Error","val":{"group":"user","code":"user_error","message":"Simple error message","actionId":["$BigInt","1"]}}}`)},
		{"b/json/conn-error", JSON, connErr, js(`{"body":{"tag":"Error","val":{"group":"connection","code":"custom_error","message":"Test error from createConnState","actionId":null}}}`)},

		// (b) connection, CBOR.
		{"b/cbor/sub", CBOR, sub, unhex(t, "b9000164626f6479b900026374616773537562736372697074696f6e526571756573746376616cb90002696576656e744e616d65686e6577436f756e7469737562736372696265f5")},
		{"b/cbor/action", CBOR, action, unhex(t, "b9000164626f6479b90002637461676d416374696f6e526571756573746376616cb9000362 6964 1b0000000000000000 646e616d6569696e6372656d656e74 6461726773 8101")},
		{"b/cbor/init", CBOR, init, unhex(t, "a1 64 626f6479 a2 63 746167 64 496e6974 63 76616c a2 67 6163746f724964 78 1e <s:"+traceActorID+"> 6c 636f6e6e656374696f6e4964 78 24 <s:"+traceConnID+">")},
		{"b/cbor/event", CBOR, event, unhex(t, "a164626f6479a263746167654576656e746376616ca2646e616d65686e6577436f756e7464617267738106")},
		{"b/cbor/response", CBOR, resp, unhex(t, "a164626f6479a2637461676e416374696f6e526573706f6e73656376616ca2626964 1b0000000000000000 666f7574707574 06")},

		// (b) connection, BARE.
		{"b/bare/init", BARE, init, unhex(t, "04 00 00 1e <s:"+traceActorID+"> 24 <s:"+traceConnID+">")},
		{"b/bare/sub", BARE, sub, unhex(t, "04 00 01 08 <s:newCount> 01")},
		{"b/bare/action", BARE, action, unhex(t, "04 00 00 00 09 <s:increment> 02 81 01")},
		{"b/bare/event", BARE, event, unhex(t, "04 00 03 08 <s:newCount> 02 81 06")},
		{"b/bare/response", BARE, resp, unhex(t, "04 00 02 00 01 06")},
		{"b/bare/user-error", BARE, userErr, unhex(t, "04 00 01 04 <s:user> 0a <s:user_error> 14 <s:Simple error message> 00 01 01 00")},
	}
}

// decodeAs decodes wire as the kind of message m is.
func decodeAs(enc Encoding, m Message, wire []byte) (Message, error) {
	switch m.(type) {
	case ActionRequest, SubscriptionRequest:
		return DecodeToServer(enc, wire)
	case Init, Error, ActionResponse, Event:
		return DecodeToClient(enc, wire)
	case HTTPActionRequest:
		return DecodeHTTPActionRequest(enc, wire)
	case HTTPActionResponse:
		return DecodeHTTPActionResponse(enc, wire)
	case HTTPResponseError:
		return DecodeHTTPResponseError(enc, wire)
	case HTTPQueueSendRequest:
		return DecodeHTTPQueueSendRequest(enc, wire)
	case HTTPQueueSendResponse:
		return DecodeHTTPQueueSendResponse(enc, wire)
	}
	panic("unknown message type")
}

func TestTraces(t *testing.T) {
	for _, c := range traceCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.enc, c.msg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, c.wire) {
				t.Errorf("Encode:\n got %s\nwant %s", show(c.enc, got), show(c.enc, c.wire))
			}
			back, err := decodeAs(c.enc, c.msg, c.wire)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(back, c.msg) {
				t.Errorf("Decode = %#v, want %#v", back, c.msg)
			}
		})
	}
}

func show(enc Encoding, b []byte) string {
	if enc == JSON {
		return string(b)
	}
	return hex.EncodeToString(b)
}
