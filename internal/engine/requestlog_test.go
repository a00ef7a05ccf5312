package engine

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/clock"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// A stateless action served from a request the Rivet Engine may re-send
// (the runner marks it with the engine's request id) is applied once per
// id: a re-send is answered from the record written with the action's
// turn, in this incarnation or the next one (the runner that applied it
// died before answering), and records are kept for requestLogRetention
// however many calls come meanwhile (the engine re-sends a request up to
// minutes later, while other requests keep coming: with 32 records
// reused in turn, a re-send after 32 later calls ran again). Calls
// without an id (user code calling another actor) always run.
func TestRequestReplayedAnsweredFromRecord(t *testing.T) {
	dir := t.TempDir()
	clk := &offsetClock{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func() (*Engine, rivetdriver.Driver) {
		d, err := rivetembed.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Driver: d, Behaviors: []Behavior{tally{}}, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return e, d
	}
	e, d := start()
	rec, _, err := e.Create(ctx, "default", "tally", []string{"x"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	call := func(id *RequestID, action string, args []byte) (uint64, error) {
		t.Helper()
		conn := NewStatelessConn(nil, nil)
		req := httptest.NewRequest("POST", "/action/"+action, nil)
		if id != nil {
			req = req.WithContext(WithRequestID(req.Context(), *id))
		}
		conn.Request = req
		out, err := e.Call(ctx, rec.ID, conn, nil, action, args, codec.Marshal, 0)
		if err != nil {
			return 0, err
		}
		var n uint64
		if out != nil {
			if err := codec.Unmarshal(out, &n); err != nil {
				t.Fatal(err)
			}
		}
		return n, nil
	}
	mustCall := func(id *RequestID, action string, args []byte, want uint64) {
		t.Helper()
		n, err := call(id, action, args)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("%s: got %d, want %d", action, n, want)
		}
	}
	a, b := RequestID{1, 2, 3, 4, 5, 6, 7, 8}, RequestID{1, 2, 3, 4, 9, 9, 9, 9}
	mustCall(&a, "inc", nil, 1)
	mustCall(&a, "inc", nil, 1) // re-sent: answered from the record
	mustCall(&b, "inc", nil, 2)
	mustCall(nil, "inc", nil, 3) // no id: runs every time
	mustCall(nil, "inc", nil, 4)

	// A failed action commits nothing and leaves no record: a re-send
	// runs it again.
	c := RequestID{7, 7, 7, 7, 7, 7, 7, 7}
	for range 2 {
		if _, err := call(&c, "fail", nil); !errors.Is(err, errNope) {
			t.Fatalf("fail: %v", err)
		}
	}

	// The runner dies (the engine stops, its store stays); the request
	// re-sent to the next incarnation is answered from the record.
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	e, d = start()
	defer func() { _ = e.Stop(ctx); _ = d.Close() }()
	mustCall(&b, "inc", nil, 2)
	mustCall(&a, "inc", nil, 1)
	mustCall(nil, "inc", nil, 5)
	// The same id with other arguments is another call (ids are random
	// and may repeat): it runs.
	mustCall(&a, "inc", []byte{0x80}, 6)
	mustCall(&a, "inc", []byte{0x80}, 6)

	// A re-send after many later calls, within the retention, is still
	// answered from its record: the actor takes more slots.
	first := RequestID{8, 8}
	mustCall(&first, "inc", nil, 7)
	for i := range 3 * requestLogSize {
		id := RequestID{9, byte(i)}
		mustCall(&id, "inc", nil, uint64(8+i))
	}
	n := uint64(8 + 3*requestLogSize)
	mustCall(&first, "inc", nil, 7)
	records := func() int {
		t.Helper()
		rows, err := d.KVList(ctx, rec.ID, rivetdriver.ListOptions{Prefix: requestLogPrefix})
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	if got := records(); got != 3*requestLogSize+4 {
		t.Fatalf("%d request records stored, want %d", got, 3*requestLogSize+4)
	}
	// Past the retention the oldest records' slots are reused (the
	// engine no longer re-sends their requests): the actor stores no
	// more records.
	clk.add(requestLogRetention + time.Second)
	for i := range 10 {
		id := RequestID{10, byte(i)}
		mustCall(&id, "inc", nil, n+uint64(i))
	}
	if got := records(); got != 3*requestLogSize+4 {
		t.Fatalf("%d request records stored after the retention, want %d", got, 3*requestLogSize+4)
	}
	last := RequestID{10, 9}
	mustCall(&last, "inc", nil, n+9)
	// And the next incarnation reads the grown log.
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	e, d = start()
	mustCall(&last, "inc", nil, n+9)
	mid := RequestID{9, 50}
	mustCall(&mid, "inc", nil, 8+50)
	mustCall(nil, "inc", nil, n+10)
}

// offsetClock is the real clock moved forward by add.
type offsetClock struct {
	clock.Real
	d atomic.Int64
}

func (c *offsetClock) Now() time.Time      { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *offsetClock) add(d time.Duration) { c.d.Add(int64(d)) }

// An actor with requestLogMaxSlots records all younger than the
// retention reuses its oldest one (and no more slots); slots freed at
// load (a hole) are taken first.
func TestRequestLogSlots(t *testing.T) {
	l := &requestLog{byID: map[RequestID]requestLogEntry{}}
	now := time.Unix(1000, 0)
	for i := range requestLogMaxSlots {
		slot, early := l.take(now)
		if int(slot) != i || early {
			t.Fatalf("record %d: slot %d early %v", i, slot, early)
		}
		l.commit(slot, uint64(i), now.UnixMilli(), RequestID{byte(i >> 8), byte(i)}, [8]byte{})
	}
	if slot, early := l.take(now); slot != 0 || !early {
		t.Fatalf("full: slot %d early %v", slot, early)
	}
	l.commit(0, requestLogMaxSlots, now.UnixMilli(), RequestID{0xee}, [8]byte{})
	if _, ok := l.byID[RequestID{0, 0}]; ok || len(l.byID) != requestLogMaxSlots {
		t.Fatalf("the reused record is still indexed (%d ids)", len(l.byID))
	}
	if slot, early := l.take(now.Add(requestLogRetention)); slot != 1 || early {
		t.Fatalf("after the retention: slot %d early %v", slot, early)
	}
	l = &requestLog{byID: map[RequestID]requestLogEntry{}, slots: make([]requestLogSlot, 3), free: []uint16{1}, fifo: []uint16{0, 2}}
	if slot, _ := l.take(now); slot != 1 {
		t.Fatalf("hole: slot %d, want 1", slot)
	}
}

// A record keeps an output up to requestLogMaxOutput; a larger one is not
// kept and its re-send fails with actor.request_replayed.
func TestRequestRecordEncoding(t *testing.T) {
	id := RequestID{1, 2, 3, 4, 5, 6, 7, 8}
	fp := callFingerprint("inc", []byte{1})
	r, err := decodeRequestRecord(requestLogKey(300), encodeRequestRecord(42, 77, id, fp, []byte("output"), requestLogMaxOutput))
	if err != nil || r.slot != 300 || r.seq != 42 || r.at != 77 || r.id != id || r.fp != fp || r.dropped || string(r.out) != "output" {
		t.Fatalf("decode: %+v %v", r, err)
	}
	big := make([]byte, requestLogMaxOutput+1)
	if v := encodeRequestRecord(1, 2, id, fp, big[:requestLogMaxGrownOutput+1], requestLogMaxGrownOutput); len(v) != requestLogHeader {
		t.Fatalf("a grown slot kept a %d-byte output", requestLogMaxGrownOutput+1)
	}
	v := encodeRequestRecord(1, 2, id, fp, big, requestLogMaxOutput)
	if len(v) != requestLogHeader {
		t.Fatalf("a record of a %d-byte output is %d bytes", len(big), len(v))
	}
	if r, err := decodeRequestRecord(requestLogKey(1), v); err != nil || !r.dropped {
		t.Fatalf("big: %+v, err %v", r, err)
	}
	flags2 := append([]byte{}, v...)
	flags2[33] = 2
	for _, bad := range [][]byte{nil, {1}, v[:requestLogHeader-1], append([]byte{1}, v[1:]...), flags2} {
		if _, err := decodeRequestRecord(requestLogKey(1), bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
	for _, key := range [][]byte{requestLogKey(requestLogMaxSlots), {0xff, 'r'}, {0xff, 'r', 1}, append(requestLogKey(1), 0)} {
		if _, err := decodeRequestRecord(key, v); err == nil {
			t.Fatalf("a record decoded under key %x", key)
		}
	}
	if callFingerprint("inc", nil) == callFingerprint("in", []byte("c")) {
		t.Fatal("fingerprint ignores where the name ends")
	}
}

// ackLost applies commits, then reports the next ones failed as if the
// store's answer was lost (the runner's engine connection dropped after
// the engine applied the commit: "not connected").
type ackLost struct {
	rivetdriver.Driver
	lose atomic.Bool
}

var errAckLost = errors.New("runner: not connected to the engine")

func (d *ackLost) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	if err := d.Driver.Commit(ctx, batch); err != nil {
		return err
	}
	if d.lose.Swap(false) {
		return errAckLost
	}
	return nil
}

// A commit applied by the store whose acknowledgement was lost fails the
// call (its outcome unknown to the client) and restarts the actor from
// durable state, which has the increment and its record: the engine's
// re-send of that request is answered from the record, not applied a
// second time.
func TestRequestRecordAckLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inner, err := rivetembed.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &ackLost{Driver: inner}
	e, err := New(Config{Driver: d, Behaviors: []Behavior{tally{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(ctx); _ = inner.Close() }()
	rec, _, err := e.Create(ctx, "default", "tally", []string{"x"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	call := func(id *RequestID) (uint64, error) {
		conn := NewStatelessConn(nil, nil)
		req := httptest.NewRequest("POST", "/action/inc", nil)
		if id != nil {
			req = req.WithContext(WithRequestID(req.Context(), *id))
		}
		conn.Request = req
		out, err := e.Call(ctx, rec.ID, conn, nil, "inc", nil, codec.Marshal, 0)
		if err != nil {
			return 0, err
		}
		var n uint64
		err = codec.Unmarshal(out, &n)
		return n, err
	}
	a, b := RequestID{1}, RequestID{2}
	if n, err := call(&a); n != 1 || err != nil {
		t.Fatalf("first call: %d %v", n, err)
	}
	d.lose.Store(true)
	if _, err := call(&b); !errors.Is(err, errAckLost) {
		t.Fatalf("call whose acknowledgement was lost: %v", err)
	}
	for range 2 {
		if n, err := call(&b); n != 2 || err != nil {
			t.Fatalf("re-send: %d %v, want 2 from the record", n, err)
		}
	}
	if n, err := call(nil); n != 3 || err != nil {
		t.Fatalf("next call: %d %v, want 3", n, err)
	}
}
