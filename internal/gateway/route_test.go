package gateway

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rivetgo/rivet/rivettype"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		raw  string
		want target
		ok   bool
		err  string // group.code
	}{
		{raw: "/gateway/abc/action/x", ok: true, want: target{ActorID: "abc", Path: "/action/x"}},
		{raw: "/gateway/abc@tok/connect", ok: true, want: target{ActorID: "abc", Token: "tok", Path: "/connect"}},
		{raw: "/gateway/a%20b@t%2Fk/request/p?x=1&y", ok: true, want: target{ActorID: "a b", Token: "t/k", Path: "/request/p?x=1&y"}},
		{raw: "/gateway/abc", ok: true, want: target{ActorID: "abc", Path: "/"}},
		{raw: "/gateway/abc/", ok: true, want: target{ActorID: "abc", Path: "/"}},
		{raw: "/gateway/abc#frag", ok: true, want: target{ActorID: "abc", Path: "/"}},
		{raw: "/gateway/@tok/x"},
		{raw: "/gateway/abc@/x"},
		{raw: "/gateway"},
		{raw: "/other/abc"},
		{raw: "/gateway//abc/x"},
		{raw: "/gateway/%zz/x"},
		{
			raw: "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=a&rvt-crash-policy=sleep",
			ok:  true, want: target{Query: true, Namespace: "default", Name: "counter", Key: []string{"a"}, Create: true, Path: "/action/increment"},
		},
		{
			raw: "/gateway/counter/request/foo/bar?x=1&rvt-namespace=default&rvt-method=get&rvt-key=a,b&z=%20+",
			ok:  true, want: target{Query: true, Namespace: "default", Name: "counter", Key: []string{"a", "b"}, Path: "/request/foo/bar?x=1&z=%20+"},
		},
		{
			raw: "/gateway/my%20actor/connect?rvt-namespace=ns+1&rvt-method=get&rvt-key=",
			ok:  true, want: target{Query: true, Namespace: "ns 1", Name: "my actor", Key: []string{}, Path: "/connect"},
		},
		{
			raw: "/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-pool=p&rvt-input=oWF4AQ&rvt-region=eu&rvt-token=s",
			ok:  true, want: target{Query: true, Namespace: "d", Name: "c", Key: []string{}, Create: true, Input: []byte{0xa1, 0x61, 0x78, 0x01}, Region: "eu", Token: "s", Path: "/"},
		},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=get&rvt-namespace=e", err: "guard.query_duplicate_param"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=get&rvt-bogus=1", err: "guard.query_invalid_params"},
		{raw: "/gateway/c?rvt-method=get", err: "guard.query_invalid_params"},
		{raw: "/gateway/c?rvt-namespace=d", err: "guard.query_invalid_params"},
		{raw: "/gateway/c?rvt-namespace=&rvt-method=get", err: "guard.query_invalid_params"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=put", err: "guard.query_invalid_params"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=get&rvt-input=oWF4AQ", err: "guard.query_get_disallowed_params"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=get&rvt-runner=default", err: "guard.query_get_disallowed_params"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=getOrCreate", err: "guard.query_missing_pool"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r&rvt-input=!!", err: "guard.query_invalid_base64_input"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r&rvt-input=oQ", err: "guard.query_invalid_cbor_input"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r&rvt-crash-policy=explode", err: "guard.query_invalid_params"},
		{raw: "/gateway/c?rvt-namespace=d&rvt-method=get&rvt-skip-ready-wait=maybe", err: "guard.query_invalid_params"},
		{raw: "/gateway/c@t/x?rvt-namespace=d&rvt-method=get", err: "guard.query_path_token_syntax"},
		{raw: "/gateway?rvt-namespace=d&rvt-method=get", err: "guard.query_empty_actor_name"},
		{raw: "/gateway/c?rvt-namespace=%zz&rvt-method=get", err: "guard.query_invalid_percent_encoding"},
	}
	for _, tt := range tests {
		got, ok, err := parseTarget(tt.raw)
		if tt.err != "" {
			var e *rivettype.Error
			if !errors.As(err, &e) || e.Group+"."+e.Code != tt.err {
				t.Errorf("parseTarget(%q) error = %v, want %s", tt.raw, err, tt.err)
			}
			continue
		}
		if err != nil || ok != tt.ok {
			t.Errorf("parseTarget(%q) = ok %v, err %v; want ok %v", tt.raw, ok, err, tt.ok)
			continue
		}
		if ok && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseTarget(%q)\n got %+v\nwant %+v", tt.raw, got, tt.want)
		}
	}
}

// FuzzParseTarget: no panic; what parses is well-formed.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"/gateway/abc/action/x", "/gateway/abc@tok/connect?a=b",
		"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=a&rvt-crash-policy=sleep",
		"/gateway/c?rvt-namespace=d&rvt-method=getOrCreate&rvt-pool=p&rvt-input=oWF4AQ", "/gateway//x", "/gateway/%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok, err := parseTarget(raw)
		if err != nil {
			if ok {
				t.Fatal("ok with an error")
			}
			if _, isErr := rivettype.As(err); !isErr {
				t.Fatalf("unstructured error %v", err)
			}
			return
		}
		if !ok {
			return
		}
		if !strings.HasPrefix(got.Path, "/") {
			t.Fatalf("path %q", got.Path)
		}
		if got.Query {
			if got.Name == "" || got.Namespace == "" {
				t.Fatalf("query target %+v", got)
			}
			// No rvt-* pair reaches the actor (the path itself may hold
			// anything).
			if _, q, ok := strings.Cut(got.Path, "?"); ok {
				for _, kv := range strings.Split(q, "&") {
					if strings.HasPrefix(kv, "rvt-") {
						t.Fatalf("rvt-* parameter left for the actor: %+v", got)
					}
				}
			}
		} else if got.ActorID == "" {
			t.Fatalf("direct target without id: %+v", got)
		}
	})
}
