package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/internal/envoy"
)

// The timing proxy pairs a tunnelled request with its response by gateway
// and request id, and counts the runner's storage round trips made while
// the request was open, whatever else crosses the socket meanwhile.
func TestTimingProxyPairsFrames(t *testing.T) {
	p := &timingProxy{open: map[[8]byte]*pending{}, storage: map[string]time.Time{}}
	id := envoy.MessageID{GatewayID: [4]byte{1}, RequestID: [4]byte{2}}
	other := envoy.MessageID{GatewayID: [4]byte{1}, RequestID: [4]byte{3}}
	enc := func(toRunner bool, m any) []byte {
		var b []byte
		var err error
		if toRunner {
			b, err = envoy.EncodeToEnvoy(m.(envoy.ToEnvoy))
		} else {
			b, err = envoy.EncodeToRivet(m.(envoy.ToRivet))
		}
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p.observe(enc(true, envoy.ToEnvoyTunnelMessage{MessageID: id, MessageKind: envoy.ToEnvoyRequestStart{ActorID: "a", Method: "POST", Path: "/action/increment"}}), true, at(0))
	p.observe(enc(false, envoy.ToRivetKVRequest{ActorID: "a", RequestID: 7, Data: envoy.KVGetRequest{}}), false, at(1))
	p.observe(enc(true, envoy.ToEnvoyPing{Ts: 1}), true, at(2))
	p.observe(enc(true, envoy.ToEnvoyKVResponse{RequestID: 7, Data: envoy.KVGetResponse{}}), true, at(4))
	// A response to a request the proxy never saw start is ignored.
	p.observe(enc(false, envoy.ToRivetTunnelMessage{MessageID: other, MessageKind: envoy.ToRivetResponseStart{Status: 200}}), false, at(5))
	p.observe(enc(false, envoy.ToRivetTunnelMessage{MessageID: id, MessageKind: envoy.ToRivetResponseStart{Status: 200}}), false, at(6))
	p.observe([]byte{0xff, 0xff}, false, at(7)) // undecodable: ignored
	spans := p.take()
	if len(spans) != 1 {
		t.Fatalf("spans %+v, want 1", spans)
	}
	if s := spans[0]; s.runner != 6*time.Millisecond || s.storage != 3*time.Millisecond || s.requests != 1 {
		t.Fatalf("span %+v, want runner 6ms, storage 3ms in 1 round trip", s)
	}
	if len(p.take()) != 0 {
		t.Fatal("take did not forget the spans")
	}
}

// rivet serve as a runner behind a real engine: the split scenarios time
// both shares of every call, and failover answers from the second runner
// with the actor's state after kill -9 of the first.
func TestEngineTarget(t *testing.T) {
	if _, err := enginetest.Binary(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logOut = io.Discard
	o := &options{noDelay: true, withProxy: true, engineLost: 4 * time.Second}
	s, err := startServer(ctx, "serve-engine", o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if s.engine == nil || s.proxy == nil || s.rssMiB() <= s.proc.rssMiB() {
		t.Fatalf("engine target without its engine, proxy or the engine's RSS: %+v", s)
	}
	for _, ws := range []bool{false, true} {
		var r result
		if err := split(ctx, s, newClient(s.endpoint, "json", true), ws, !ws, 5, &r); err != nil || r.OK != 5 || r.Runner == nil || r.Engine == nil || r.StoragePerCall < 1 {
			t.Fatalf("split ws=%v: %+v %v", ws, r, err)
		}
		if r.Runner.P50us <= 0 || r.Runner.P50us > r.P50us+1 {
			t.Fatalf("split ws=%v: runner share %v of a %v µs round trip", ws, r.Runner.P50us, r.P50us)
		}
	}
	var r result
	if err := failover(ctx, s, o, "json", 1, &r); err != nil || r.OK != 1 || r.Lost != 0 {
		t.Fatalf("failover: %+v %v", r, err)
	}
}
