package rivetclient_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettype"
)

// Every kind of value a user stores or sends, for the round-trip tests.
type (
	vInner struct {
		A int    `json:"a"`
		B string `cbor:"bee"` // cbor tags win over json tags
		C []int  `json:"c,omitempty"`
	}
	vEmbedded struct {
		E string `json:"e"`
	}
	vAll struct {
		vEmbedded
		Time       time.Time         `json:"time"`
		Times      []time.Time       `json:"times"`
		ZeroTime   time.Time         `json:"zeroTime"`
		TimePtr    *time.Time        `json:"timePtr"`
		Duration   time.Duration     `json:"duration"`
		Big        *big.Int          `json:"big"`
		U64        uint64            `json:"u64"`
		I64        int64             `json:"i64"`
		Int        int               `json:"int"`
		F64        float64           `json:"f64"`
		F32        float32           `json:"f32"`
		Bool       bool              `json:"bool"`
		Str        string            `json:"str"`
		Bytes      []byte            `json:"bytes"`
		NilBytes   []byte            `json:"nilBytes"`
		EmptyBytes []byte            `json:"emptyBytes"`
		Array      [4]byte           `json:"array"`
		NilSlice   []string          `json:"nilSlice"`
		EmptySlice []string          `json:"emptySlice"`
		NilMap     map[string]int    `json:"nilMap"`
		EmptyMap   map[string]int    `json:"emptyMap"`
		Map        map[string]vInner `json:"map"`
		IntKeys    map[int]string    `json:"intKeys"` // text keys on the wire
		UintKeys   map[uint16][]int  `json:"uintKeys"`
		Ptr        *vInner           `json:"ptr"`
		NilPtr     *vInner           `json:"nilPtr"`
		Inner      vInner            `json:"inner"`
		Tagged     []any             `json:"tagged"` // looks like a compat tag
		Key        rivet.Key         `json:"key"`
	}
	vState struct {
		Starts int   `json:"starts"`
		Stored vAll  `json:"stored"`
		Fired  *vAll `json:"fired"`
		Err    *rivet.Error
	}
)

// sample builds a value; r varies it (nil: the fixed table value).
func sample(r *rand.Rand) vAll {
	at := time.Date(2026, 12, 3, 9, 33, 46, 123456789, time.UTC)
	n := func(max int64) int64 { return 0 }
	if r != nil {
		n = func(max int64) int64 { return r.Int64N(max) }
		at = time.Unix(n(1<<34)-1<<33, n(1e9)).UTC() // years 1698 to 2242
	}
	big1, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	big1.Add(big1, big.NewInt(n(1<<62)))
	t2 := at.Add(time.Duration(n(1e12)) + 1)
	return vAll{
		vEmbedded:  vEmbedded{E: "embedded"},
		Time:       at,
		Times:      []time.Time{at, t2, time.Unix(0, 1).UTC()},
		TimePtr:    &t2,
		Duration:   90*time.Minute + time.Duration(n(1e12)) + 1,
		Big:        big1,
		U64:        math.MaxUint64 - uint64(n(1<<40)),
		I64:        -(1 << 60) - n(1<<40),
		Int:        int(1<<53 + 1 + n(1<<20)),
		F64:        1.5 + float64(n(1e6))/7,
		F32:        float32(0.25 + float64(n(100))),
		Bool:       true,
		Str:        "ünïcode 🙂 \x00" + strings.Repeat("x", int(n(50))),
		Bytes:      []byte{0, 1, 2, 255, byte(n(256))},
		EmptyBytes: []byte{},
		Array:      [4]byte{1, 2, 3, byte(n(256))},
		EmptySlice: []string{},
		EmptyMap:   map[string]int{},
		Map:        map[string]vInner{"k": {A: 1, B: "b", C: []int{1, 2}}, "": {}},
		IntKeys:    map[int]string{-1: "a", 0: "b", int(n(1 << 40)): "c"},
		UintKeys:   map[uint16][]int{65535: {1}, uint16(n(1000)): nil},
		Ptr:        &vInner{A: -1},
		Inner:      vInner{A: 2, B: "bee"},
		Tagged:     []any{"$BigInt", "not a bigint"},
		Key:        rivet.Key{"a", "b"},
	}
}

// sameAll compares two values: times by instant, big integers by value.
func sameAll(t *testing.T, what string, got, want vAll) {
	t.Helper()
	if got.Big == nil || want.Big == nil || got.Big.Cmp(want.Big) != 0 {
		t.Errorf("%s: Big = %v, want %v", what, got.Big, want.Big)
	}
	got.Big, want.Big = nil, nil
	// Tagged decodes into []any: its string elements come back as they are.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func valuesActor() *rivet.Actor[vState, rivet.None, rivet.None] {
	type ctx = rivet.Ctx[vState]
	return rivet.NewActor("values", rivet.Opts[vState]{
		OnStart: func(c *ctx) error { c.State.Starts++; return nil },
	}).
		Action("echo", func(_ *ctx, v vAll) vAll { return v }).
		Action("store", func(c *ctx, v vAll) error { c.State.Stored = v; return nil }).
		Action("stored", func(c *ctx) vState { return *c.State }).
		Action("sleep", func(c *ctx) { c.Sleep() }).
		Action("kv", func(c *ctx, v vAll) (vAll, error) {
			// Read back in the same turn (the turn's own write), then in a
			// later turn (kvGet: the store).
			if err := c.KV().Put(rivet.K("v"), v); err != nil {
				return vAll{}, err
			}
			var back vAll
			_, err := c.KV().Get(rivet.K("v"), &back)
			return back, err
		}).
		Action("kvGet", func(c *ctx) (vAll, error) {
			var back vAll
			_, err := c.KV().Get(rivet.K("v"), &back)
			return back, err
		}).
		Action("kvList", func(c *ctx) ([]rivet.KVEntry, error) { return c.KV().List(rivet.KVListOptions{}) }).
		Action("schedule", func(c *ctx, at time.Time, v vAll) (string, error) {
			return c.Schedule().At(at, "fire", v)
		}).
		Action("scheduled", func(c *ctx) []rivet.ScheduledEvent { return c.Schedule().List() }).
		Action("fire", func(c *ctx, v vAll) { c.State.Fired = &v }).
		Action("increment", func(_ *ctx, n int) int { return n + 1 }).
		Action("named", func(_ *ctx, n int, s vInner) int { return n + s.A }).
		Action("optional", func(_ *ctx, n int, p *int) int {
			if p == nil {
				return n
			}
			return n + *p
		}).
		Action("anything", func(_ *ctx, v any) any { return v }).
		Action("float", func(_ *ctx, f float64) float64 { return f }).
		Action("nan", func(*ctx) []float64 { return []float64{math.NaN(), math.Inf(1), math.Inf(-1)} }).
		Action("error", func(*ctx) *rivet.Error {
			return &rivet.Error{Group: "g", Code: "c", Message: "m", Metadata: map[string]any{"n": 1}, Public: true}
		})
}

func valuesServer(t *testing.T) (*rivet.Runtime, *httptest.Server) {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(valuesActor()),
		// The tests use a namespace per encoding.
		&rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: rivet.GatewayConfig{Namespaces: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	return rt, srv
}

// TestValuesRoundTrip: every value comes back equal from action arguments
// and results (HTTP and WebSocket), from state across sleep and wake, from
// KV (same turn and later), and from alarms, in all three encodings.
func TestValuesRoundTrip(t *testing.T) {
	_, srv := valuesServer(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, enc := range encodings {
		t.Run(enc, func(t *testing.T) {
			ctx := ctxT(t)
			c := rivetclient.New(srv.URL, rivetclient.WithEncoding(enc), rivetclient.WithNamespace("values-"+enc))
			h := c.GetOrCreate("values", rivet.Key{"a"})
			conn := h.Connect()
			defer conn.Close()
			r := rand.New(rand.NewPCG(seed, 1))
			var last vAll
			for i := range 20 {
				want := sample(r)
				if i == 0 {
					want = sample(nil)
				}
				last = want
				sameAll(t, "echo over HTTP", must[vAll](t)(rivetclient.Call[vAll](ctx, h, "echo", want)), want)
				sameAll(t, "echo over WebSocket", must[vAll](t)(rivetclient.Call[vAll](ctx, conn, "echo", want)), want)
				sameAll(t, "kv, same turn", must[vAll](t)(rivetclient.Call[vAll](ctx, h, "kv", want)), want)
				sameAll(t, "kv, later turn", must[vAll](t)(rivetclient.Call[vAll](ctx, h, "kvGet")), want)
			}

			// State across sleep and wake: the state is decoded from the store.
			want := sample(nil)
			must[rivet.Value](t)(h.Call(ctx, "store", want))
			before := must[vState](t)(rivetclient.Call[vState](ctx, h, "stored")).Starts
			must[rivet.Value](t)(h.Call(ctx, "sleep"))
			var st vState
			eventually(t, "sleep and wake", func() bool {
				var err error
				st, err = rivetclient.Call[vState](ctx, h, "stored")
				return err == nil && st.Starts > before
			})
			sameAll(t, "state after wake", st.Stored, want)

			// KV entries keep their value.
			es := must[[]rivet.KVEntry](t)(rivetclient.Call[[]rivet.KVEntry](ctx, h, "kvList"))
			if len(es) != 1 || !reflect.DeepEqual(es[0].Key, rivet.KVKey{"v"}) {
				t.Fatalf("kvList = %+v", es)
			}
			var kvv vAll
			if err := es[0].Value.Decode(&kvv); err != nil {
				t.Fatal(err)
			}
			sameAll(t, "kv entry", kvv, last)

			// Alarms: the pending list keeps the time and the arguments, and
			// the action gets its arguments intact.
			at := time.Now().Add(time.Hour).Truncate(time.Second).Add(123456789)
			id := must[string](t)(rivetclient.Call[string](ctx, h, "schedule", at, want))
			evs := must[[]rivet.ScheduledEvent](t)(rivetclient.Call[[]rivet.ScheduledEvent](ctx, h, "scheduled"))
			if len(evs) != 1 || evs[0].ID != id || !evs[0].At.Equal(at) || evs[0].Action != "fire" || evs[0].Args.Len() != 1 {
				t.Fatalf("scheduled = %+v, want %s at %v", evs, id, at)
			}
			var arg vAll
			if err := evs[0].Args.Decode(0, &arg); err != nil {
				t.Fatal(err)
			}
			sameAll(t, "alarm argument in the list", arg, want)
			must[string](t)(rivetclient.Call[string](ctx, h, "schedule", time.Now().Add(20*time.Millisecond), want))
			eventually(t, "alarm fired", func() bool {
				var err error
				st, err = rivetclient.Call[vState](ctx, h, "stored")
				return err == nil && st.Fired != nil
			})
			sameAll(t, "alarm argument when fired", *st.Fired, want)
		})
	}
}

// post sends a raw JSON action request and returns the status and body.
func post(t *testing.T, srv *httptest.Server, action, body string) (int, string) {
	t.Helper()
	u := srv.URL + "/gateway/values/action/" + action + "?rvt-namespace=raw&rvt-method=getOrCreate&rvt-runner=default&rvt-key=raw&rvt-crash-policy=sleep"
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestValuesWireForm: public types reach a JSON client with lower-camel
// keys, arguments intact and exact times.
func TestValuesWireForm(t *testing.T) {
	_, srv := valuesServer(t)
	if code, body := post(t, srv, "schedule", `{"args":["2030-01-02T03:04:05.123456789Z",{"int":7}]}`); code != 200 {
		t.Fatalf("schedule: %d %s", code, body)
	}
	_, body := post(t, srv, "scheduled", `{"args":[]}`)
	for _, want := range []string{`"action":"fire"`, `"at":"2030-01-02T03:04:05.123456789Z"`, `"id":"`, `"args":[{`, `"int":7`} {
		if !strings.Contains(body, want) {
			t.Errorf("scheduled = %s, want it to contain %s", body, want)
		}
	}
	_, body = post(t, srv, "error", `{}`)
	if want := `{"output":{"code":"c","group":"g","message":"m","metadata":{"n":1},"public":true}}`; body != want {
		t.Errorf("error value = %s, want %s", body, want)
	}
	// A JS Date sent as JSON is its ISO text; it decodes into time.Time.
	if code, body := post(t, srv, "echo", `{"args":[{"time":"2026-12-03T09:33:46.123Z","key":["x"]}]}`); code != 200 || !strings.Contains(body, `"time":"2026-12-03T09:33:46.123Z"`) {
		t.Errorf("echo of a JS date: %d %s", code, body)
	}
}

// TestArgumentErrors: a request whose arguments do not fit is refused
// with 400 and a message that names the action, the argument, the Go type
// and what arrived, in the request's encoding; nothing runs.
func TestArgumentErrors(t *testing.T) {
	_, srv := valuesServer(t)
	for _, c := range []struct{ action, body, want string }{
		{"increment", `{"args":[1.5]}`, "action increment: argument 1: expected an integer (Go int), got the JSON number 1.5"},
		{"increment", `{"args":["one"]}`, `action increment: argument 1: expected an integer (Go int), got the JSON string \"one\"`},
		{"increment", `{"args":[null]}`, "action increment: argument 1: expected an integer (Go int), got JSON null"},
		{"increment", `{"args":[["$BigInt","18446744073709551616"]]}`, "argument 1: expected an integer (Go int), got the JSON bigint 18446744073709551616 (out of range)"},
		{"increment", `{"args":[]}`, "action increment: expected 1 argument(s), got 0"},
		{"increment", `{"args":[1,2]}`, "action increment: expected 1 argument(s), got 2"},
		{"increment", `{"args":1}`, "expected an array of arguments, got a number"},
		{"increment", `{"args":{"n":1}}`, "expected an array of arguments, got an object"},
		{"named", `{"args":[1,{"a":"x"}]}`, `action named: argument 2: at .a: expected an integer (Go int), got the JSON string \"x\"`},
		{"named", `{"args":[1,[1]]}`, "action named: argument 2: expected an object (Go rivetclient_test.vInner), got a JSON array of 1 elements"},
		{"echo", `{"args":[{"time":"yesterday"}]}`, `argument 1: at .time: expected a time (RFC 3339 text or Unix seconds) (Go time.Time), got the JSON string \"yesterday\" (not RFC 3339)`},
		{"echo", `{"args":[{"map":{"k":{"c":[1,-2,"x"]}}}]}`, `at .map.k.c[2]: expected an integer (Go int), got the JSON string \"x\"`},
	} {
		code, body := post(t, srv, c.action, c.body)
		if code != 400 || !strings.Contains(body, c.want) || strings.Contains(body, "cbor:") {
			t.Errorf("%s %s: %d %s\nwant 400 with %s", c.action, c.body, code, body, c.want)
		}
	}
	// A refused call changes nothing.
	if code, body := post(t, srv, "store", `{"args":[{"int":7}]}`); code != 200 {
		t.Fatalf("store: %d %s", code, body)
	}
	for _, body := range []string{`{"args":[{"int":1.5}]}`, `{"args":[null]}`, `{"args":{"int":8}}`, `{"args":[{"int":8},1]}`} {
		if code, _ := post(t, srv, "store", body); code != 400 {
			t.Errorf("store %s: %d, want 400", body, code)
		}
	}
	if _, body := post(t, srv, "stored", `{}`); !strings.Contains(body, `"int":7`) {
		t.Errorf("state after refused calls: %s", body)
	}
	// Null is fine for a pointer or any, and left-out trailing pointers.
	for _, c := range []struct{ action, body, want string }{
		{"optional", `{"args":[1,null]}`, `{"output":1}`},
		{"optional", `{"args":[1]}`, `{"output":1}`},
		{"optional", `{"args":[1,2]}`, `{"output":3}`},
		{"anything", `{"args":[null]}`, `{"output":null}`},
	} {
		if code, body := post(t, srv, c.action, c.body); code != 200 || body != c.want {
			t.Errorf("%s %s: %d %s, want %s", c.action, c.body, code, body, c.want)
		}
	}

	// The other encodings speak their own terms.
	for _, enc := range []string{"cbor", "bare"} {
		c := rivetclient.New(srv.URL, rivetclient.WithEncoding(enc))
		_, err := c.GetOrCreate("values", rivet.Key{enc}).Call(ctxT(t), "increment", 1.5)
		if err == nil || !strings.Contains(err.Error(), "action increment: argument 1: expected an integer (Go int), got the CBOR float 1.5") {
			t.Errorf("%s: %v", enc, err)
		}
		conn := c.GetOrCreate("values", rivet.Key{enc}).Connect()
		_, err = conn.Call(ctxT(t), "increment", "x")
		if err == nil || !strings.Contains(err.Error(), `got the CBOR text string "x"`) {
			t.Errorf("%s over WebSocket: %v", enc, err)
		}
		conn.Close()
	}
}

// TestResultDecodeError: a result that does not fit the caller's type is
// reported as the client's own failure, not as a server rejection.
func TestResultDecodeError(t *testing.T) {
	_, srv := valuesServer(t)
	for _, enc := range encodings {
		c := rivetclient.New(srv.URL, rivetclient.WithEncoding(enc))
		_, err := rivetclient.Call[string](ctxT(t), c.GetOrCreate("values", nil), "increment", 1)
		var re *rivet.ResultError
		if !errors.As(err, &re) || re.Action != "increment" || re.Type != "string" {
			t.Fatalf("%s: %v (%T), want a *rivet.ResultError", enc, err, err)
		}
		if _, ok := rivettype.As(err); ok {
			t.Errorf("%s: %v is also a rivet.Error", enc, err)
		}
		if want := "the result of action increment does not decode into Go string: expected a string (Go string), got the number 2"; err.Error() != want {
			t.Errorf("%s: %q, want %q", enc, err, want)
		}
	}
}

// NaN and infinities travel in cbor and bare; JSON has no form for them:
// they are written as null, as JSON.stringify does, so a NaN argument is
// refused (null for a float64) and a NaN result reads as null.
func TestValuesNaN(t *testing.T) {
	_, srv := valuesServer(t)
	for _, enc := range encodings {
		ctx := ctxT(t)
		h := rivetclient.New(srv.URL, rivetclient.WithEncoding(enc)).GetOrCreate("values", nil)
		if enc == "json" {
			_, err := h.Call(ctx, "float", math.NaN())
			if err == nil || !strings.Contains(err.Error(), "expected a number (Go float64), got JSON null") {
				t.Errorf("json NaN argument: %v", err)
			}
			got := must[[]*float64](t)(rivetclient.Call[[]*float64](ctx, h, "nan"))
			if len(got) != 3 || got[0] != nil || got[1] != nil || got[2] != nil {
				t.Errorf("json NaN results = %v, want nulls", got)
			}
			continue
		}
		if f := must[float64](t)(rivetclient.Call[float64](ctx, h, "float", math.Inf(-1))); !math.IsInf(f, -1) {
			t.Errorf("%s: -Inf came back as %v", enc, f)
		}
		got := must[[]float64](t)(rivetclient.Call[[]float64](ctx, h, "nan"))
		if len(got) != 3 || !math.IsNaN(got[0]) || !math.IsInf(got[1], 1) || !math.IsInf(got[2], -1) {
			t.Errorf("%s: results = %v", enc, got)
		}
	}
}
