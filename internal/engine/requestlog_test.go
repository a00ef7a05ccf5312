package engine

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// A stateless action served from a request the Rivet Engine may re-send
// (the runner marks it with the engine's request id) is applied once per
// id: a re-send is answered from the record written with the action's
// turn, in this incarnation or the next one (the runner that applied it
// died before answering), and only the last requestLogSize records are
// kept. Calls without an id (user code calling another actor) always run.
func TestRequestReplayedAnsweredFromRecord(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func() (*Engine, rivetdriver.Driver) {
		d, err := rivetembed.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Config{Driver: d, Behaviors: []Behavior{tally{}}})
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

	// Only the last requestLogSize records are kept.
	for i := range requestLogSize + 8 {
		id := RequestID{9, byte(i)}
		mustCall(&id, "inc", nil, uint64(7+i))
	}
	rows, err := d.KVList(ctx, rec.ID, rivetdriver.ListOptions{Prefix: requestLogPrefix})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != requestLogSize {
		t.Fatalf("%d request records stored, want %d", len(rows), requestLogSize)
	}
	last := RequestID{9, byte(requestLogSize + 7)}
	mustCall(&last, "inc", nil, uint64(7+requestLogSize+7))
}

// A record keeps an output up to requestLogMaxOutput; a larger one is not
// kept and its re-send fails with actor.request_replayed.
func TestRequestRecordEncoding(t *testing.T) {
	id := RequestID{1, 2, 3, 4, 5, 6, 7, 8}
	fp := callFingerprint("inc", []byte{1})
	r, err := decodeRequestRecord(requestLogKey(42), encodeRequestRecord(42, id, fp, []byte("output")))
	if err != nil || r.seq != 42 || r.id != id || r.fp != fp || r.dropped || string(r.out) != "output" {
		t.Fatalf("decode: %+v %v", r, err)
	}
	big := make([]byte, requestLogMaxOutput+1)
	v := encodeRequestRecord(1, id, fp, big)
	if len(v) != requestLogHeader {
		t.Fatalf("a record of a %d-byte output is %d bytes", len(big), len(v))
	}
	if r, err := decodeRequestRecord(requestLogKey(1), v); err != nil || !r.dropped {
		t.Fatalf("big: %+v, err %v", r, err)
	}
	flags2 := append([]byte{}, v...)
	flags2[25] = 2
	for _, bad := range [][]byte{nil, {1}, v[:requestLogHeader-1], append([]byte{2}, v[1:]...), flags2} {
		if _, err := decodeRequestRecord(requestLogKey(1), bad); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
	for _, key := range [][]byte{requestLogKey(2), {0xff, 'r'}, append(requestLogKey(1), 0)} {
		if _, err := decodeRequestRecord(key, v); err == nil {
			t.Fatalf("the record of sequence 1 decoded under key %x", key)
		}
	}
	if callFingerprint("inc", nil) == callFingerprint("in", []byte("c")) {
		t.Fatal("fingerprint ignores where the name ends")
	}
}
