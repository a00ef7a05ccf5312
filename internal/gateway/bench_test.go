package gateway

import "testing"

// BenchmarkParseTarget is the routing of one gateway request: the direct
// form (/gateway/{id}/...) and the query form (?rvt-method=getOrCreate...)
// that the official client sends for handles addressed by key. Run:
//
//	go test -run '^$' -bench ParseTarget -benchmem ./internal/gateway
func BenchmarkParseTarget(b *testing.B) {
	for _, c := range []struct{ name, raw string }{
		{"direct", "/gateway/01jq2v3k4m5n6p7q8r9s0t1u2v/action/increment"},
		{"direct-token", "/gateway/01jq2v3k4m5n6p7q8r9s0t1u2v@tok/connect"},
		{"query-getOrCreate", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=user-42&rvt-crash-policy=sleep"},
		{"query-get-multikey", "/gateway/chatRoom/connect?rvt-namespace=default&rvt-method=get&rvt-key=org,team,room-7"},
		{"query-with-input", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=a&rvt-input=oWV2YWx1ZRgq"},
	} {
		if _, ok, err := parseTarget(c.raw); !ok || err != nil {
			b.Fatalf("%s: parseTarget = %v, %v", c.name, ok, err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := parseTarget(c.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
