package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestGeneratedUpToDate fails while a generated file differs from what the
// generator makes of its schema: run go generate ./internal/envoy.
func TestGeneratedUpToDate(t *testing.T) {
	t.Parallel()
	for schema, out := range map[string]string{
		"schema/v8.bare":               "envoy_gen.go",
		"gen/testdata/primitives.bare": "primitives_gen_test.go",
	} {
		src, err := os.ReadFile("../" + schema)
		if err != nil {
			t.Fatal(err)
		}
		want, err := generate(string(src), "envoy", schema)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("../" + out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("internal/envoy/%s is stale: run go generate ./internal/envoy", out)
		}
	}
}

func TestGoName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"actorId":               "ActorID",
		"Id":                    "ID",
		"KvListAllQuery":        "KVListAllQuery",
		"lastInsertRowId":       "LastInsertRowID",
		"HttpStreamAbortReason": "HTTPStreamAbortReason",
		"SqliteGetPagesOk":      "SqliteGetPagesOK",
		"sql":                   "SQL",
		"updateTs":              "UpdateTs",
		"SLEEP_INTENT":          "SleepIntent",
		"OK":                    "OK",
		"HANDLER_ERROR":         "HandlerError",
		"data":                  "Data",
	} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSchemaErrors: the generator refuses what it cannot decode safely or
// does not support, with the reason.
func TestSchemaErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ src, want string }{
		{"type A struct { b: B }", "unknown type B"},
		{"type A struct { b: optional<A> }", "recursive type A"},
		{"type A struct { b: list<B> }\ntype B struct { c: optional<A> }", "recursive type"},
		{"type V void\ntype A struct { b: list<V> }", "list elements must take at least one byte"},
		{"type A str\ntype U union { A }", "variant A must be a struct, void, list or map type"},
		{"type A struct { m: map<data><str> }", "map keys must be"},
		{"type A struct { m: map<bool><str> }", "map keys must be"},
		{"type A struct { l: list<u8>[4] }", "fixed-length lists are not supported"},
		{"type A struct { s: struct { x: u8 } }", "anonymous struct"},
		{"type A void\ntype A void", "declared twice"},
		{"type U union { A | B = 0 }\ntype A void\ntype B void", "tag 0 used twice"},
		{"type A struct { x: u8 x: u8 }", "field x declared twice"},
		{"type A struct { x u8 }", `expected ":"`},
		{"type A struct { x: u8 } @", "unexpected"},
	} {
		_, err := generate(tt.src, "p", "s.bare")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.src, err, tt.want)
		}
	}
}

// TestExplicitTags: "= n" sets a union tag or enum value, and the next
// one counts on from it, as BARE says.
func TestExplicitTags(t *testing.T) {
	t.Parallel()
	code, err := generate("type E enum { A B = 5 C }\ntype X void\ntype Y void\ntype U union { X = 3 | Y }\ntype M struct { e: E u: U }", "p", "s.bare")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EA E = 0", "EB E = 5", "EC E = 6", "case 3:\n\t\treturn d.readX()", "case 4:\n\t\treturn d.readY()"} {
		if !bytes.Contains(code, []byte(want)) {
			t.Errorf("generated code lacks %q", want)
		}
	}
}
