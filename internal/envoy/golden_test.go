package envoy

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// codec is one top-level message type, type-erased for table tests.
type codec struct {
	decode func([]byte) (any, error)
	encode func(any) ([]byte, error)
}

func codecOf[T any](dec func([]byte) (T, error), enc func(T) ([]byte, error)) codec {
	return codec{
		decode: func(b []byte) (any, error) { return dec(b) },
		encode: func(v any) ([]byte, error) { return enc(v.(T)) },
	}
}

var codecs = map[string]codec{
	"ToRivet":             codecOf(DecodeToRivet, EncodeToRivet),
	"ToEnvoy":             codecOf(DecodeToEnvoy, EncodeToEnvoy),
	"ToEnvoyConn":         codecOf(DecodeToEnvoyConn, EncodeToEnvoyConn),
	"ToGateway":           codecOf(DecodeToGateway, EncodeToGateway),
	"ToOutbound":          codecOf(DecodeToOutbound, EncodeToOutbound),
	"ActorCommandKeyData": codecOf(DecodeActorCommandKeyData, EncodeActorCommandKeyData),
}

type goldenCase struct {
	message, name string
	bytes         []byte
}

// goldens reads testdata/<message>.golden, written by testdata/npm/golden.mjs
// with the npm package's own encoders.
func goldens(tb testing.TB) []goldenCase {
	tb.Helper()
	var cases []goldenCase
	for _, message := range slices.Sorted(maps.Keys(codecs)) {
		f, err := os.Open(filepath.Join("testdata", message+".golden"))
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, hexBytes, ok := strings.Cut(line, " ")
			b, err := hex.DecodeString(hexBytes)
			if !ok || err != nil {
				tb.Fatalf("%s.golden: bad line %q", message, line)
			}
			cases = append(cases, goldenCase{message, name, b})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	if len(cases) < 100 {
		tb.Fatalf("only %d golden cases", len(cases))
	}
	return cases
}

// TestGolden decodes every message the npm package encoded and encodes it
// again to the same bytes; together the cases must reach every type, enum
// value, optional (absent and present) and list or map (empty and not) of
// the schema.
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := goldens(t)
	byName := map[string][]byte{}
	for _, c := range cases {
		byName[c.message+"/"+c.name] = c.bytes
	}
	cov := coverage{}
	for _, c := range cases {
		codec := codecs[c.message]
		v, err := codec.decode(c.bytes)
		if err != nil {
			t.Errorf("%s %s: %v", c.message, c.name, err)
			continue
		}
		again, err := codec.encode(v)
		if err != nil {
			t.Errorf("%s %s: encode: %v", c.message, c.name, err)
			continue
		}
		want := c.bytes
		if sorted, ok := strings.CutPrefix(c.name, "unsorted-"); ok {
			// Map keys out of order decode fine; we write them sorted.
			want = byName[c.message+"/"+sorted]
			if want == nil || bytes.Equal(want, c.bytes) {
				t.Fatalf("%s %s: no sorted twin that differs from it", c.message, c.name)
			}
		}
		if !bytes.Equal(again, want) {
			t.Errorf("%s %s: re-encoded\n%x\nwant\n%x", c.message, c.name, again, want)
		}
		cov.walk(reflect.ValueOf(v))
	}
	for _, need := range schemaCoverage(t) {
		if !cov[need] {
			t.Errorf("no golden case has %s", need)
		}
	}
}

// coverage records what the decoded goldens contain: type names, enum
// values ("StopCode=1") and, for each struct field that is optional or a
// list or map, "Type.Field=nil|set" or "Type.Field=empty|nonempty".
type coverage map[string]bool

func (c coverage) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			c.walk(v.Elem())
		}
	case reflect.Struct:
		c[v.Type().Name()] = true
		for i := range v.NumField() {
			f, ft := v.Field(i), v.Type().Field(i)
			key := v.Type().Name() + "." + ft.Name
			switch f.Kind() {
			case reflect.Pointer:
				c[key+map[bool]string{true: "=nil", false: "=set"}[f.IsNil()]] = true
			case reflect.Slice, reflect.Map:
				c[key+map[bool]string{true: "=empty", false: "=nonempty"}[f.Len() == 0]] = true
			}
			c.walk(f)
		}
	case reflect.Slice:
		if v.Type().Name() != "" {
			c[v.Type().Name()] = true
		}
		for i := range v.Len() {
			c.walk(v.Index(i))
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			c.walk(it.Value())
		}
	case reflect.Uint8, reflect.Uint64:
		if t := v.Type(); t.PkgPath() != "" {
			c[t.Name()+"="+strconv.FormatUint(v.Uint(), 10)] = true
		}
	}
}

// schemaCoverage lists what the goldens must reach, read from the
// declarations in envoy_gen.go.
func schemaCoverage(tb testing.TB) []string {
	tb.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "envoy_gen.go", nil, 0)
	if err != nil {
		tb.Fatal(err)
	}
	aliasOfSlice := map[string]bool{}
	var need []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range gd.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				if s.Assign.IsValid() {
					if a, ok := s.Type.(*ast.ArrayType); ok && a.Len == nil {
						aliasOfSlice[s.Name.Name] = true
					}
					continue
				}
				switch s.Type.(type) {
				case *ast.StructType:
					need = append(need, s.Name.Name)
				case *ast.ArrayType, *ast.MapType:
					need = append(need, s.Name.Name)
				}
			case *ast.ValueSpec:
				if gd.Tok == token.CONST && s.Type != nil {
					need = append(need, s.Type.(*ast.Ident).Name+"="+s.Values[0].(*ast.BasicLit).Value)
				}
			}
		}
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range gd.Specs {
			ts, ok := s.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, fl := range st.Fields.List {
				key := ts.Name.Name + "." + fl.Names[0].Name
				switch ft := fl.Type.(type) {
				case *ast.StarExpr:
					need = append(need, key+"=nil", key+"=set")
				case *ast.ArrayType:
					if ft.Len == nil {
						need = append(need, key+"=empty", key+"=nonempty")
					}
				case *ast.MapType:
					need = append(need, key+"=empty", key+"=nonempty")
				case *ast.Ident:
					if aliasOfSlice[ft.Name] {
						need = append(need, key+"=empty", key+"=nonempty")
					}
				}
			}
		}
	}
	if len(need) < 200 {
		tb.Fatalf("only %d coverage requirements read from envoy_gen.go", len(need))
	}
	return need
}

// TestGoldenValues checks decoded field values of a few goldens, so that a
// wrong field order or type cannot hide behind a symmetric bug in both
// directions.
func TestGoldenValues(t *testing.T) {
	t.Parallel()
	byName := map[string][]byte{}
	for _, c := range goldens(t) {
		byName[c.message+"/"+c.name] = c.bytes
	}
	body := make([]byte, 300)
	for i := range body {
		body[i] = byte(i*31 + 8)
	}
	gen := uint32(math.MaxUint32)
	reqBody := body
	tests := []struct {
		name string
		want any
	}{
		{"ToEnvoy/tunnel-request-start-full", ToEnvoyTunnelMessage{
			MessageID: MessageID{GatewayID: [4]byte{0xde, 0xad, 0xbe, 0xef}, RequestID: [4]byte{1, 2, 3, 4}, MessageIndex: 0xffff},
			MessageKind: ToEnvoyRequestStart{
				ActorID:         "actor-1f3c",
				ActorGeneration: &gen,
				Method:          "POST",
				Path:            "/action/increment?x=ü",
				Headers:         map[string]string{"Accept": "*/*", "content-type": "application/json", "x-rivet-actor": "1f3c"},
				Body:            &reqBody,
				Stream:          true,
				ResponseStream:  false,
			},
		}},
		{"ToEnvoy/tunnel-request-start-min", ToEnvoyTunnelMessage{MessageKind: ToEnvoyRequestStart{ResponseStream: true}}},
		{"ToRivet/kv-list-all-full", ToRivetKVRequest{
			ActorID:   "actor-1f3c",
			RequestID: math.MaxUint32,
			Data:      KVListRequest{Query: KVListAllQuery{}, Reverse: ptr(true), Limit: ptr(uint64(math.MaxUint64))},
		}},
		{"ToRivet/pong-full", ToRivetPong{Ts: math.MinInt64}},
		{"ToEnvoy/commands-min", ToEnvoyCommands(nil)},
		{"ActorCommandKeyData/stop-actor-going-away", CommandStopActor{Reason: StopActorReasonGoingAway}},
		{"ToEnvoy/sqlite-execute-ok-min", ToEnvoySqliteExecuteResponse{Data: SqliteExecuteOK{}}},
		{"ToRivet/events-full", nil}, // checked below
	}
	for _, tt := range tests {
		message, _, _ := strings.Cut(tt.name, "/")
		b := byName[tt.name]
		if b == nil {
			t.Fatalf("no golden %s", tt.name)
		}
		got, err := codecs[message].decode(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.want == nil {
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\ngot  %#v\nwant %#v", tt.name, got, tt.want)
		}
	}

	got, err := DecodeToRivet(byName["ToRivet/events-full"])
	if err != nil {
		t.Fatal(err)
	}
	events := got.(ToRivetEvents)
	if len(events) != 7 {
		t.Fatalf("%d events, want 7", len(events))
	}
	stopped := events[4].Inner.(EventActorStateUpdate).State.(ActorStateStopped)
	if stopped.Code != StopCodeError || stopped.Message == nil || *stopped.Message != "boom" {
		t.Errorf("events[4] = %#v, want stopped with ERROR \"boom\"", stopped)
	}
	if alarm := events[5].Inner.(EventActorSetAlarm); alarm.AlarmTs == nil || *alarm.AlarmTs != 1733212345678 {
		t.Errorf("events[5] = %#v, want alarm at 1733212345678", alarm)
	}
	if cp := events[0].Checkpoint; cp != (ActorCheckpoint{ActorID: "actor-1f3c", Generation: math.MaxUint32, Index: math.MaxInt64}) {
		t.Errorf("events[0].Checkpoint = %#v", cp)
	}
}

func ptr[T any](v T) *T { return &v }
