package runner

import (
	"slices"
	"testing"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/envoy"
)

func testSocket(r *Runner) *tunnelSocket {
	return r.newSocket(envoy.MessageID{GatewayID: [4]byte{1}, RequestID: [4]byte{2}}, "actor", "/connect", nil)
}

// The client messages of a hibernatable socket: duplicates are dropped,
// a gap is reported, the gateway reads the indexes in order, and a message
// is acknowledged only once it and every earlier one are finished; a turn
// persists the finished prefix plus what it handled out of order.
func TestSocketIndexes(t *testing.T) {
	r := New(Config{})
	s := testSocket(r)
	if !s.hibernatable {
		t.Fatal("an actor connection is hibernatable")
	}
	for _, n := range []uint16{1, 2, 3} {
		if v := s.admit(n); v != accept {
			t.Fatalf("admit %d = %v, want accept", n, v)
		}
	}
	if v := s.admit(2); v != duplicate {
		t.Fatalf("admit 2 again = %v, want duplicate", v)
	}
	if v := s.admit(5); v != skipped {
		t.Fatalf("admit 5 after 3 = %v, want skipped", v)
	}
	for _, want := range []uint16{1, 2, 3} {
		if got := s.Received(); got != want {
			t.Fatalf("Received = %d, want %d", got, want)
		}
	}
	// 3 finishes first: nothing is acknowledged, the record keeps it.
	if last, handled := s.Turn(3); last != 0 || !slices.Equal(handled, []uint16{3}) {
		t.Fatalf("Turn(3) = %d %v, want 0 [3]", last, handled)
	}
	s.Done(3)
	if s.acked != 0 {
		t.Fatalf("acked %d with 1 and 2 unfinished", s.acked)
	}
	s.Done(1)
	if s.acked != 1 {
		t.Fatalf("acked %d, want 1", s.acked)
	}
	if last, handled := s.Turn(2); last != 1 || !slices.Equal(handled, []uint16{2, 3}) {
		t.Fatalf("Turn(2) = %d %v, want 1 [2 3]", last, handled)
	}
	s.Done(2)
	if s.acked != 3 || s.w != 3 {
		t.Fatalf("acked %d, finished up to %d; want 3, 3", s.acked, s.w)
	}
	if last, handled := s.Turn(4); last != 3 || len(handled) != 0 {
		t.Fatalf("Turn(4) of an unknown message = %d %v", last, handled)
	}
	if n := r.mu.actorRequests["actor"]; n != 0 {
		t.Fatalf("%d messages still counted in flight", n)
	}
}

// After a restore from a record (finished up to 3, and 5), the engine
// replays what it did not see acknowledged: what the record covers is
// dropped, the rest is handled, and the first replayed index is not a gap.
func TestSocketRestoredIndexes(t *testing.T) {
	r := New(Config{})
	s := testSocket(r)
	rec := engine.ConnRecord{ID: "c", Tunnel: &engine.TunnelMeta{ClientIndex: 3, Handled: []uint16{5}}}
	s.w, s.acked = rec.Tunnel.ClientIndex, rec.Tunnel.ClientIndex
	for _, i := range rec.Tunnel.Handled {
		s.finished[i], s.turned[i] = true, true
	}
	s.advanceLocked()
	for _, c := range []struct {
		n    uint16
		want verdict
	}{{2, duplicate}, {3, duplicate}, {4, accept}, {5, duplicate}, {6, accept}, {8, skipped}} {
		if v := s.admit(c.n); v != c.want {
			t.Fatalf("admit %d = %v, want %v", c.n, v, c.want)
		}
	}
	s.Received()
	s.Done(4)
	if s.acked != 5 {
		t.Fatalf("acked %d after 4 finished, want 5 (5 was finished before the restore)", s.acked)
	}
}

// A socket kept on this runner while its actor slept, when the actor
// then ran on another runner that finished messages 3 and 4: the record
// brings the socket up to date, so message 5 is not a gap and 4 is a
// duplicate. A record behind the socket changes nothing.
func TestSocketKeptCatchesUp(t *testing.T) {
	r := New(Config{})
	s := testSocket(r)
	for _, n := range []uint16{1, 2} {
		s.admit(n)
		s.Received()
		s.Turn(n)
		s.Done(n)
	}
	s.catchUp(&engine.TunnelMeta{ClientIndex: 1})
	if s.w != 2 || s.acked != 2 {
		t.Fatalf("a record behind the socket moved it to %d (acked %d), want 2", s.w, s.acked)
	}
	s.catchUp(&engine.TunnelMeta{ClientIndex: 4})
	if v := s.admit(4); v != duplicate {
		t.Fatalf("admit 4 (finished on the other runner) = %v, want duplicate", v)
	}
	if v := s.admit(5); v != accept {
		t.Fatalf("admit 5 after the other runner finished 4 = %v, want accept", v)
	}
	s.Received()
	s.Done(5)
	if s.acked != 5 {
		t.Fatalf("acked %d, want 5", s.acked)
	}
}

// Indexes wrap at 2^16.
func TestSocketIndexWrap(t *testing.T) {
	r := New(Config{})
	s := testSocket(r)
	s.w, s.acked, s.seen, s.last = 65534, 65534, true, 65534
	for _, n := range []uint16{65535, 0, 1} {
		if v := s.admit(n); v != accept {
			t.Fatalf("admit %d = %v, want accept", n, v)
		}
		s.Received()
	}
	for _, n := range []uint16{1, 65535, 0} {
		s.Done(n)
	}
	if s.acked != 1 {
		t.Fatalf("acked %d, want 1", s.acked)
	}
	if v := s.admit(65535); v != duplicate {
		t.Fatalf("admit 65535 after the wrap = %v, want duplicate", v)
	}
}

// A raw WebSocket is not hibernatable through the engine.
func TestRawSocketNotHibernatable(t *testing.T) {
	r := New(Config{})
	s := r.newSocket(envoy.MessageID{}, "actor", "/websocket/chat", nil)
	if s.hibernatable {
		t.Fatal("a raw WebSocket reported hibernatable")
	}
}
