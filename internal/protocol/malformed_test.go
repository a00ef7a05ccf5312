package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMalformed(t *testing.T) {
	type decoder func(Encoding, []byte) (any, error)
	toServer := func(e Encoding, b []byte) (any, error) { return DecodeToServer(e, b) }
	toClient := func(e Encoding, b []byte) (any, error) { return DecodeToClient(e, b) }
	httpAction := func(e Encoding, b []byte) (any, error) { return DecodeHTTPActionRequest(e, b) }
	httpQueue := func(e Encoding, b []byte) (any, error) { return DecodeHTTPQueueSendRequest(e, b) }
	httpQueueResp := func(e Encoding, b []byte) (any, error) { return DecodeHTTPQueueSendResponse(e, b) }
	httpErr := func(e Encoding, b []byte) (any, error) { return DecodeHTTPResponseError(e, b) }
	httpResp := func(e Encoding, b []byte) (any, error) { return DecodeHTTPActionResponse(e, b) }

	hugeLen := "ffffffffffffffffff01" // 2^64-1 as a varint
	cases := []struct {
		name   string
		decode decoder
		enc    Encoding
		in     []byte
	}{
		// Arguments that are not an array (RivetKit would wrap them).
		{"json/args object", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a","args":{"k":1}}}}`)},
		{"json/args bigint", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a","args":["$BigInt","5"]}}}`)},
		{"cbor/args number", toServer, CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6d <s:ActionRequest> 63 <s:val> a3 62 <s:id> 05 64 <s:name> 61 <s:a> 64 <s:args> 07")},
		{"json/http args number", httpAction, JSON, []byte(`{"args":1}`)},
		{"json/http args string", httpAction, JSON, []byte(`{"args":"s"}`)},
		{"cbor/http args bytes", httpAction, CBOR, unhex(t, "b9 0001 64 <s:args> d8 40 42 0102")},
		{"bare/http args number", httpAction, BARE, unhex(t, "0400 01 05")},
		// BARE framing.
		{"bare/empty", toServer, BARE, nil},
		{"bare/half version", toServer, BARE, unhex(t, "04")},
		{"bare/no body", toServer, BARE, unhex(t, "0400")},
		{"bare/version 0", toServer, BARE, unhex(t, "0000 01 00 01")},
		{"bare/version 5", toServer, BARE, unhex(t, "0500 01 00 01")},
		{"bare/version 256", toServer, BARE, unhex(t, "0001 01 00 01")},
		{"bare/unknown tag", toServer, BARE, unhex(t, "0400 02 00 01")},
		{"bare/unknown client tag", toClient, BARE, unhex(t, "0400 04")},
		{"bare/huge tag", toServer, BARE, unhex(t, "0400 "+hugeLen)},
		{"bare/truncated str", toServer, BARE, unhex(t, "0400 01 08 <s:new>")},
		{"bare/huge str length", toServer, BARE, unhex(t, "0400 01 "+hugeLen+" 00")},
		{"bare/huge data length", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> "+hugeLen+" 81 01")},
		{"bare/trailing", toServer, BARE, unhex(t, "0400 01 00 01 00")},
		{"bare/trailing action", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> 02 81 01 ff")},
		{"bare/bad bool", toServer, BARE, unhex(t, "0400 01 00 02")},
		{"bare/missing bool", toServer, BARE, unhex(t, "0400 01 00")},
		{"bare/bad utf-8", toServer, BARE, unhex(t, "0400 01 02 fffe 01")},
		{"bare/varint 11 bytes", toServer, BARE, unhex(t, "0400 00 8080808080808080808001 01 <s:a> 02 81 01")},
		{"bare/varint overflow", toServer, BARE, unhex(t, "0400 00 ffffffffffffffffff02 01 <s:a> 02 81 01")},
		{"bare/varint not shortest", toServer, BARE, unhex(t, "0400 00 8000 01 <s:a> 02 81 01")},
		{"bare/varint truncated", toServer, BARE, unhex(t, "0400 00 80")},
		{"bare/empty args", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> 00")},
		{"bare/args trailing cbor", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> 02 01 01")},
		{"bare/args truncated cbor", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> 02 82 01")},
		{"bare/args unknown compat tag", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> 05 82 62 <s:$x> 01")},
		{"bare/args bad utf-8", toServer, BARE, unhex(t, "0400 00 00 01 <s:a> 03 81 61 ff")},
		{"bare/http empty", httpAction, BARE, unhex(t, "0400 00")},
		{"bare/http trailing", httpAction, BARE, unhex(t, "0400 01 80 00")},
		{"bare/http version 9", httpAction, BARE, unhex(t, "0900 01 80")},
		{"bare/queue v2", httpQueue, BARE, unhex(t, "0200 01 f6 00 00 00")},
		{"bare/queue bad optional", httpQueue, BARE, unhex(t, "0400 01 f6 02 00 00")},
		{"bare/queue truncated timeout", httpQueue, BARE, unhex(t, "0400 01 f6 00 00 01 0000")},
		{"bare/queue response v1", httpQueueResp, BARE, unhex(t, "0100 00 00")},
		{"bare/init truncated", toClient, BARE, unhex(t, "0400 00 01 <s:a>")},
		{"bare/v1 init without token", toClient, BARE, unhex(t, "0100 00 01 <s:a> 01 <s:c>")},
		{"bare/v4 error without actor", toClient, BARE, unhex(t, "0400 01 00 00 00 00 00")},
		{"bare/v3 error with actor", toClient, BARE, unhex(t, "0300 01 00 00 00 00 00 00")},
		{"bare/error bad metadata", toClient, BARE, unhex(t, "0400 01 00 00 00 01 01 1c 00 00")},
		{"bare/http error actor key", httpErr, BARE, unhex(t, "0400 00 00 00 00 01 01 <s:a> 01 02")},

		// JSON.
		{"json/empty", toServer, JSON, nil},
		{"json/not object", toServer, JSON, []byte(`[1]`)},
		{"json/null", toServer, JSON, []byte(`null`)},
		{"json/no body", toServer, JSON, []byte(`{}`)},
		{"json/body not object", toServer, JSON, []byte(`{"body":1}`)},
		{"json/no tag", toServer, JSON, []byte(`{"body":{"val":{}}}`)},
		{"json/no val", toServer, JSON, []byte(`{"body":{"tag":"SubscriptionRequest"}}`)},
		{"json/unknown tag", toServer, JSON, []byte(`{"body":{"tag":"Init","val":{}}}`)},
		{"json/trailing", toServer, JSON, []byte(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":"a","subscribe":true}}}}`)},
		{"json/trailing value", toServer, JSON, []byte(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":"a","subscribe":true}}} 1`)},
		{"json/bad utf-8", toServer, JSON, []byte("{\"body\":{\"tag\":\"SubscriptionRequest\",\"val\":{\"eventName\":\"\xff\",\"subscribe\":true}}}")},
		{"json/subscribe string", toServer, JSON, []byte(`{"body":{"tag":"SubscriptionRequest","val":{"eventName":"a","subscribe":"true"}}}`)},
		{"json/no event name", toServer, JSON, []byte(`{"body":{"tag":"SubscriptionRequest","val":{"subscribe":true}}}`)},
		{"json/no args", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a"}}}`)},
		{"json/no id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"name":"a","args":[]}}}`)},
		{"json/name number", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":1,"args":[]}}}`)},
		{"json/negative id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":-1,"name":"a","args":[]}}}`)},
		{"json/float id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1.5,"name":"a","args":[]}}}`)},
		{"json/exponent id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":1e3,"name":"a","args":[]}}}`)},
		{"json/huge id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":18446744073709551616,"name":"a","args":[]}}}`)},
		{"json/huge bigint id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","18446744073709551616"],"name":"a","args":[]}}}`)},
		{"json/negative bigint id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","-1"],"name":"a","args":[]}}}`)},
		{"json/other tag id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":["$Foo","1"],"name":"a","args":[]}}}`)},
		{"json/string id", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":"1","name":"a","args":[]}}}`)},
		{"json/unknown compat tag", toServer, JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a","args":[["$Map",[]]]}}}`)},
		{"json/http not object", httpAction, JSON, []byte(`[1]`)},
		{"json/http bad args", httpAction, JSON, []byte(`{"args":[["$BigInt",1]]}`)},
		{"json/queue wait string", httpQueue, JSON, []byte(`{"body":1,"wait":"yes"}`)},
		{"json/queue negative timeout", httpQueue, JSON, []byte(`{"body":1,"timeout":-5}`)},
		{"json/queue float timeout", httpQueue, JSON, []byte(`{"body":1,"timeout":1.5}`)},
		{"json/queue name number", httpQueue, JSON, []byte(`{"body":1,"name":5}`)},
		{"json/error no message", httpErr, JSON, []byte(`{"group":"a","code":"b"}`)},
		{"json/error actor without id", httpErr, JSON, []byte(`{"group":"a","code":"b","message":"c","actor":{"generation":1}}`)},
		{"json/error actor key number", httpErr, JSON, []byte(`{"group":"a","code":"b","message":"c","actor":{"actorId":"x","generation":1,"key":1}}`)},
		{"json/error actor not object", toClient, JSON, []byte(`{"body":{"tag":"Error","val":{"group":"a","code":"b","message":"c","actionId":null,"actor":1}}}`)},
		{"json/response no id", toClient, JSON, []byte(`{"body":{"tag":"ActionResponse","val":{"output":1}}}`)},
		{"json/response bad output", httpResp, JSON, []byte(`{"output":{"a":["$Nope",1]}}`)},

		// CBOR.
		{"cbor/empty", toServer, CBOR, nil},
		{"cbor/truncated", toServer, CBOR, unhex(t, "b9000164626f6479b9")},
		{"cbor/trailing", toServer, CBOR, append(traceWire(t, "b/cbor/sub"), 0)},
		{"cbor/huge map", toServer, CBOR, unhex(t, "bb ffffffffffffffff 64 <s:body>")},
		{"cbor/huge array", httpAction, CBOR, unhex(t, "a1 64 <s:args> 9b ffffffffffffffff 01")},
		{"cbor/huge string", httpAction, CBOR, unhex(t, "a1 64 <s:args> 7b ffffffffffffffff 61")},
		{"cbor/reserved", toServer, CBOR, unhex(t, "1c")},
		{"cbor/break", toServer, CBOR, unhex(t, "ff")},
		{"cbor/unknown tag", toServer, CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 64 <s:Init> 63 <s:val> a0")},
		{"cbor/tag not string", toServer, CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 01 63 <s:val> a0")},
		{"cbor/negative id", toServer, CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6d <s:ActionRequest> 63 <s:val> a3 62 <s:id> 20 64 <s:name> 61 <s:a> 64 <s:args> 80")},
		{"cbor/float id", toServer, CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6d <s:ActionRequest> 63 <s:val> a3 62 <s:id> f9 3e00 64 <s:name> 61 <s:a> 64 <s:args> 80")},
		{"cbor/bad utf-8 key", toServer, CBOR, unhex(t, "a1 62 ff fe 01")},
		{"cbor/bytes key", toServer, CBOR, unhex(t, "a1 41 00 01")},
		{"cbor/simple value", httpAction, CBOR, unhex(t, "a1 64 <s:args> e0")},
		{"cbor/deep", httpAction, CBOR, unhex(t, "a1 64 <s:args> "+strings.Repeat("81", maxDepth+1)+"01")},
		{"cbor/deep map arg", httpAction, CBOR, unhex(t, "a1 64 <s:args> "+strings.Repeat("a1 60", maxDepth)+"01")},
		{"cbor/client unknown compat tag", toClient, CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6e <s:ActionResponse> 63 <s:val> a2 62 <s:id> 00 66 <s:output> 82 62 <s:$x> 01")},
	}
	for _, c := range cases {
		got, err := c.decode(c.enc, c.in)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %#v, %v; want ErrInvalid", c.name, got, err)
		}
	}
}

func traceWire(t *testing.T, name string) []byte {
	for _, c := range traceCases(t) {
		if c.name == name {
			return c.wire
		}
	}
	t.Fatalf("no trace %q", name)
	return nil
}

// TestLenient checks input the decoders accept although the TS client
// does not write it.
func TestLenient(t *testing.T) {
	args := func(vs ...any) []byte { return val(t, append([]any{}, vs...)) }
	for _, c := range []struct {
		enc  Encoding
		in   []byte
		want any
	}{
		// A plain-number id, and unknown fields.
		{JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":5,"name":"a","args":[],"extra":1}},"x":2}`), ActionRequest{ID: 5, Name: "a", Args: args()}},
		{JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":18446744073709551615,"name":"a","args":null}}}`), ActionRequest{ID: 1<<64 - 1, Name: "a", Args: args()}},
		{JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a","args":["$Set",[1,2]]}}}`), ActionRequest{Name: "a", Args: args(1, 2)}},
		{JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a","args":["$Undefined",0]}}}`), ActionRequest{Name: "a", Args: args()}},
		{JSON, []byte(`{"body":{"tag":"ActionRequest","val":{"id":0,"name":"a","args":["$$x",1]}}}`), ActionRequest{Name: "a", Args: args("$x", 1)}},
		// CBOR: any integer form for the id, undefined, and cbor-x's maps.
		{CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6d <s:ActionRequest> 63 <s:val> a3 62 <s:id> 05 64 <s:name> 61 <s:a> 64 <s:args> 81 f7"), ActionRequest{ID: 5, Name: "a", Args: args(nil)}},
		{CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6d <s:ActionRequest> 63 <s:val> a3 62 <s:id> 05 64 <s:name> 61 <s:a> 64 <s:args> f6"), ActionRequest{ID: 5, Name: "a", Args: args()}},
		// HTTP: missing and null args.
		{JSON, []byte(`{}`), HTTPActionRequest{Args: args()}},
		{JSON, []byte(`{"args":null}`), HTTPActionRequest{Args: args()}},
		{CBOR, unhex(t, "a0"), HTTPActionRequest{Args: args()}},
		{CBOR, unhex(t, "b9 0001 64 <s:args> f7"), HTTPActionRequest{Args: args()}},
		{BARE, unhex(t, "0400 01 f6"), HTTPActionRequest{Args: args()}},
		{BARE, unhex(t, "0100 04 81 f9 3e00"), HTTPActionRequest{Args: args(1.5)}},
		// Queue: cbor-x writes an unset timeout as undefined.
		{CBOR, unhex(t, "b9 0004 64 <s:body> 01 64 <s:name> 61 <s:q> 64 <s:wait> f4 67 <s:timeout> f7"), HTTPQueueSendRequest{Body: val(t, 1), Name: ptr("q"), Wait: ptr(false)}},
		{JSON, []byte(`{"wait":true}`), HTTPQueueSendRequest{Body: val(t, nil), Wait: ptr(true)}},
		// Client side: a number id, a missing actionId, a missing output.
		{JSON, []byte(`{"body":{"tag":"ActionResponse","val":{"id":3}}}`), ActionResponse{ID: 3, Output: val(t, nil)}},
		{JSON, []byte(`{"body":{"tag":"Error","val":{"group":"g","code":"c","message":"m"}}}`), Error{Group: "g", Code: "c", Message: "m"}},
		{JSON, []byte(`{"body":{"tag":"Init","val":{"actorId":"a","connectionId":"c","connectionToken":"t"}}}`), Init{ActorID: "a", ConnectionID: "c"}},
		{CBOR, unhex(t, "a1 64 <s:body> a2 63 <s:tag> 65 <s:Event> 63 <s:val> a2 64 <s:name> 61 <s:e> 64 <s:args> 82 62 <s:$$> 01"), Event{Name: "e", Args: args("$", 1)}},
		{JSON, []byte(`{"group":"g","code":"c","message":"m","metadata":null,"actor":{"actorId":"a","generation":["$BigInt","2"],"key":null}}`),
			HTTPResponseError{Group: "g", Code: "c", Message: "m", Metadata: val(t, nil), Actor: &ActorSpecifier{ActorID: "a", Generation: 2}}},
		{JSON, []byte(`{"status":"completed","response":null}`), HTTPQueueSendResponse{Status: "completed", Response: val(t, nil)}},
	} {
		got, err := decodeAs(c.enc, c.want.(Message), c.in)
		if err != nil {
			t.Errorf("%v %s: %v", c.enc, show(c.enc, c.in), err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v %s:\n got %#v\nwant %#v", c.enc, show(c.enc, c.in), got, c.want)
		}
	}
}
