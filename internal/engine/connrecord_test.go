package engine

import (
	"bytes"
	"reflect"
	"testing"
)

func TestConnRecordRoundTrip(t *testing.T) {
	for _, r := range []ConnRecord{
		{ID: "a"},
		{ID: "b", Params: []byte(`{"name":"ada"}`), State: []byte{0xa1, 0x61, 0x6e, 0x01}, Subs: []string{"news", "x"}},
		{ID: "c", Tunnel: &TunnelMeta{Path: "/connect", Headers: map[string]string{"sec-websocket-protocol": "rivet"},
			GatewayID: []byte{1, 2, 3, 4}, RequestID: []byte{5, 6, 7, 8}, ClientIndex: 7, ServerIndex: 65535}},
	} {
		b, err := EncodeConnRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != connRecordVersion {
			t.Fatalf("version byte %x", b[0])
		}
		got, err := DecodeConnRecord(connRecordKey(r.ID), b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
	}
}

// The encoding is deterministic: a connection whose record did not change
// writes nothing (host.persistConns compares encodings).
func TestConnRecordDeterministic(t *testing.T) {
	r := ConnRecord{Params: []byte("p"), Tunnel: &TunnelMeta{Headers: map[string]string{"b": "2", "a": "1", "c": "3"}}}
	first, _ := EncodeConnRecord(r)
	for range 20 {
		if b, _ := EncodeConnRecord(r); !bytes.Equal(b, first) {
			t.Fatal("encoding varies")
		}
	}
}

// Records come from storage (in runner mode, the engine's KV): a malformed
// one is an error, never a panic.
func FuzzDecodeConnRecord(f *testing.F) {
	good, _ := EncodeConnRecord(ConnRecord{Params: []byte("x"), Subs: []string{"e"}, Tunnel: &TunnelMeta{Path: "/connect", ClientIndex: 3}})
	f.Add([]byte("id"), good)
	f.Add([]byte("id"), []byte{})
	f.Add([]byte("id"), []byte{2, 0xa0})
	f.Add([]byte{}, good)
	f.Fuzz(func(t *testing.T, id, val []byte) {
		r, err := DecodeConnRecord(append(bytes.Clone(connRecordPrefix), id...), val)
		if err != nil {
			return
		}
		if _, err := EncodeConnRecord(r); err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
	})
}
