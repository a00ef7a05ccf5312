package protocol

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rivetgo/rivet/internal/codec"
)

// Every fuzz target checks that decoding does not panic, that errors wrap
// ErrInvalid, that decoded values are valid internal CBOR, and that a
// decoded message encodes and decodes to itself.

func FuzzToServerJSON(f *testing.F) { fuzzToServer(f, JSON) }
func FuzzToServerCBOR(f *testing.F) { fuzzToServer(f, CBOR) }
func FuzzToServerBARE(f *testing.F) { fuzzToServer(f, BARE) }

func FuzzHTTPActionRequestJSON(f *testing.F) { fuzzHTTPActionRequest(f, JSON) }
func FuzzHTTPActionRequestCBOR(f *testing.F) { fuzzHTTPActionRequest(f, CBOR) }
func FuzzHTTPActionRequestBARE(f *testing.F) { fuzzHTTPActionRequest(f, BARE) }

func FuzzToClientJSON(f *testing.F) { fuzzToClient(f, JSON) }
func FuzzToClientCBOR(f *testing.F) { fuzzToClient(f, CBOR) }
func FuzzToClientBARE(f *testing.F) { fuzzToClient(f, BARE) }

func FuzzJSONValue(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := DecodePlainJSONValue(data); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
		v, err := DecodeJSONValue(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		checkInternal(t, v)
		j, err := EncodeJSONValue(v)
		if err != nil {
			t.Fatalf("EncodeJSONValue(%x): %v", v, err)
		}
		back, err := DecodeJSONValue(j)
		if err != nil {
			t.Fatalf("DecodeJSONValue(%s): %v", j, err)
		}
		if !bytes.Equal(back, v) {
			t.Fatalf("round trip through %s: %x, want %x", j, back, v)
		}
	})
}

// FuzzHTTPQueueSendRequest takes the encoding as its first argument.
func FuzzHTTPQueueSendRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, enc uint8, data []byte) {
		e := Encoding(enc % 3)
		checkRoundTrip(t, e, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeHTTPQueueSendRequest(e, b)
		})
	})
}

// FuzzHTTPResponses runs the client's decoders of HTTP responses.
func FuzzHTTPResponses(f *testing.F) {
	f.Fuzz(func(t *testing.T, enc uint8, data []byte) {
		e := Encoding(enc % 3)
		checkRoundTrip(t, e, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeHTTPActionResponse(e, b)
		})
		checkRoundTrip(t, e, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeHTTPResponseError(e, b)
		})
		checkRoundTrip(t, e, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeHTTPQueueSendResponse(e, b)
		})
	})
}

func fuzzToServer(f *testing.F, enc Encoding) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, enc, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeToServer(e, b)
		})
	})
}

func fuzzHTTPActionRequest(f *testing.F, enc Encoding) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, enc, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeHTTPActionRequest(e, b)
		})
	})
}

func fuzzToClient(f *testing.F, enc Encoding) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, enc, data, func(e Encoding, b []byte) (Message, error) {
			return DecodeToClient(e, b)
		})
	})
}

// checkRoundTrip decodes data and, if that succeeds, re-encodes the message
// (in BARE, in the version it came in) and decodes it again.
func checkRoundTrip(t *testing.T, enc Encoding, data []byte, decode func(Encoding, []byte) (Message, error)) {
	m, err := decode(enc, data)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
		return
	}
	for _, v := range internalValues(m) {
		checkInternal(t, v)
	}
	var b []byte
	if enc == BARE {
		version, err := BAREVersion(data)
		if err != nil {
			t.Fatalf("BAREVersion of a decoded message: %v", err)
		}
		b, err = EncodeBARE(m, version)
	} else {
		b, err = Encode(enc, m)
	}
	if err != nil {
		t.Fatalf("encode %#v: %v", m, err)
	}
	back, err := decode(enc, b)
	if err != nil {
		t.Fatalf("decode re-encoded %s: %v", show(enc, b), err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip:\n got %#v\nwant %#v\nwire %s", back, m, show(enc, b))
	}
}

// checkInternal checks that v is a value codec reads, in deterministic form.
func checkInternal(t *testing.T, v []byte) {
	t.Helper()
	var x any
	if err := codec.Unmarshal(v, &x); err != nil {
		t.Fatalf("codec.Unmarshal(%x): %v", v, err)
	}
	again, err := codec.Marshal(x)
	if err != nil {
		t.Fatalf("codec.Marshal: %v", err)
	}
	if !bytes.Equal(again, v) {
		t.Fatalf("value %x is not in deterministic form (%x)", v, again)
	}
}

func internalValues(m Message) [][]byte {
	var vs [][]byte
	switch m := m.(type) {
	case ActionRequest:
		vs = append(vs, m.Args)
	case Error:
		vs = append(vs, m.Metadata)
	case ActionResponse:
		vs = append(vs, m.Output)
	case Event:
		vs = append(vs, m.Args)
	case HTTPActionRequest:
		vs = append(vs, m.Args)
	case HTTPActionResponse:
		vs = append(vs, m.Output)
	case HTTPResponseError:
		vs = append(vs, m.Metadata)
	case HTTPQueueSendRequest:
		vs = append(vs, m.Body)
	case HTTPQueueSendResponse:
		vs = append(vs, m.Response)
	}
	return slicesNonNil(vs)
}

func slicesNonNil(vs [][]byte) [][]byte {
	out := vs[:0]
	for _, v := range vs {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora in testdata/fuzz")

// TestFuzzCorpus checks that testdata/fuzz holds the seeds below (the
// captured traces and an encoding of every message); -update-corpus
// writes them.
func TestFuzzCorpus(t *testing.T) {
	for target, seeds := range fuzzSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, args := range seeds {
			var sb strings.Builder
			sb.WriteString("go test fuzz v1\n")
			for _, a := range args {
				switch a := a.(type) {
				case uint8:
					fmt.Fprintf(&sb, "uint8(%d)\n", a)
				case []byte:
					fmt.Fprintf(&sb, "[]byte(%q)\n", a)
				}
			}
			path := filepath.Join(dir, name)
			if *updateCorpus {
				if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != sb.String() {
				t.Errorf("%s is missing or stale (go test -run TestFuzzCorpus -update-corpus): %v", path, err)
			}
		}
	}
}

// fuzzSeeds returns the seed inputs of each fuzz target, by file name.
func fuzzSeeds(t *testing.T) map[string]map[string][]any {
	seeds := map[string]map[string][]any{}
	add := func(target, name string, args ...any) {
		if seeds[target] == nil {
			seeds[target] = map[string][]any{}
		}
		seeds[target][name] = args
	}
	targetOf := func(enc Encoding, m Message) (string, bool) {
		suffix := map[Encoding]string{JSON: "JSON", CBOR: "CBOR", BARE: "BARE"}[enc]
		switch m.(type) {
		case ToServer:
			return "FuzzToServer" + suffix, true
		case ToClient:
			return "FuzzToClient" + suffix, true
		case HTTPActionRequest:
			return "FuzzHTTPActionRequest" + suffix, true
		case HTTPQueueSendRequest:
			return "FuzzHTTPQueueSendRequest", false
		}
		return "FuzzHTTPResponses", false
	}
	for _, c := range traceCases(t) {
		target, single := targetOf(c.enc, c.msg)
		name := "trace-" + strings.ReplaceAll(c.name, "/", "-")
		if single {
			add(target, name, c.wire)
		} else {
			add(target, name, uint8(c.enc), c.wire)
		}
	}
	for i, m := range allMessages(t) {
		for _, enc := range []Encoding{JSON, CBOR, BARE} {
			b, err := Encode(enc, m)
			if err != nil {
				t.Fatal(err)
			}
			target, single := targetOf(enc, m)
			name := fmt.Sprintf("msg-%d-%v", i, enc)
			if single {
				add(target, name, b)
			} else {
				add(target, name, uint8(enc), b)
			}
		}
	}
	// Older BARE versions.
	for i, m := range []Message{Init{ActorID: "a", ConnectionID: "c", ConnectionToken: "t"},
		Error{Group: "g", Code: "c", Message: "m", Metadata: val(t, []any{"$x", 1}), ActionID: ptr[uint64](1)}} {
		for version := uint16(1); version < CurrentVersion; version++ {
			b, err := EncodeBARE(m, version)
			if err != nil {
				t.Fatal(err)
			}
			add("FuzzToClientBARE", fmt.Sprintf("v%d-%d", version, i), b)
		}
	}
	// Input only the TS client writes: cbor-x features, compat tags.
	cborArgs := "9f d8 40 43 010203 f7 c2 49 010000000000000000 f9 3e00 fb 4278bcfe56800000 bf 01 61 61 ff 7f 61 61 ff d9 0102 81 01 ff"
	add("FuzzToServerCBOR", "cbor-x", unhex(t, "b9 0001 64 <s:body> b9 0002 63 <s:tag> 6d <s:ActionRequest> 63 <s:val> b9 0003 62 <s:id> 1b 0000000000000007 64 <s:name> 61 <s:a> 64 <s:args> "+cborArgs))
	add("FuzzHTTPActionRequestCBOR", "cbor-x", unhex(t, "b9 0001 64 <s:args> "+cborArgs))
	compat := []byte(`["$BigInt","123456789012345678901234567890"]`)
	compatCBOR := unhex(t, "84 82 67 <s:$BigInt> 62 <s:12> 82 6b <s:$Uint8Array> 64 <s:AQID> 82 6a <s:$Undefined> 00 82 64 <s:$$$x> 82 64 <s:$Set> 80")
	add("FuzzToServerBARE", "compat", appendData(unhex(t, "0400 00 07 01 <s:a>"), compatCBOR))
	add("FuzzHTTPActionRequestBARE", "compat", appendData(unhex(t, "0400"), compatCBOR))
	add("FuzzToClientCBOR", "compat", append(unhex(t, "a1 64 <s:body> a2 63 <s:tag> 6e <s:ActionResponse> 63 <s:val> a2 62 <s:id> 1b 0000000000000001 66 <s:output>"), compatCBOR...))
	add("FuzzToServerJSON", "compat", []byte(`{"body":{"tag":"ActionRequest","val":{"id":3,"name":"a","args":[`+string(compat)+`,["$$x",1.5e300]]}}}`))
	for i, s := range []string{
		`null`, `[1,2.5,"s",true,{"a":null}]`, `["$BigInt","123456789012345678901234567890"]`,
		`["$Uint8Array","AQID"]`, `["$ArrayBuffer",""]`, `["$Undefined",0]`, `["$Set",[1,["$$x",2]]]`,
		`["$$$x",["$BigInt","-1"]]`, `{"k":["$Foo",1]}`, `1e400`, `-0.0`, `9007199254740993`,
	} {
		add("FuzzJSONValue", fmt.Sprintf("value-%d", i), []byte(s))
	}
	return seeds
}
