package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestRouteTableMatchesDocument: every route of the routing table is in
// /openapi.json and every path of the document is served by exactly one
// route. With the auth sweep (TestEveryRouteRunsOnAuth), which needs a
// case for every path of the document, a route added to the table is
// covered by the auth test or fails this one.
func TestRouteTableMatchesDocument(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	claimed := map[string]int{}
	for _, rt := range slices.Concat(early, routes) {
		if len(rt.paths) == 0 {
			t.Errorf("a route serves no documented path: document it in openapi.json")
		}
		for _, p := range rt.paths {
			if prefix, ok := strings.CutSuffix(p, "*"); ok {
				for dp := range doc.Paths {
					if strings.HasPrefix(dp, prefix) {
						claimed[dp]++
					}
				}
				continue
			}
			if _, ok := doc.Paths[p]; !ok {
				t.Errorf("route %s is not in openapi.json", p)
			}
			claimed[p]++
		}
	}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if claimed[p] != 1 {
			t.Errorf("openapi.json path %s is served by %d routes of the table, want 1", p, claimed[p])
		}
	}
}

// TestRouteTableDispatch: a request of each documented path shape is
// matched by the route that claims it, first.
func TestRouteTableDispatch(t *testing.T) {
	g := &Gateway{cfg: Config{Inspector: http.NotFoundHandler(), InspectorPath: func(p string) bool { return strings.HasPrefix(p, "/inspector/") }}}
	for _, c := range []struct {
		path, want string
		hdr        map[string]string
	}{
		{path: "/metadata", want: "/metadata"},
		{path: "/", want: "/metadata"},
		{path: "/actors/abc/sleep", want: "/actors/{actor_id}/sleep"},
		{path: "/gateway/abc/action/x", want: "/gateway/{actor}/action/{action}"},
		{path: "/request/x", want: "/request/{path}", hdr: map[string]string{"X-Rivet-Target": "actor", "X-Rivet-Actor": "abc"}},
		{path: "/websocket/x", want: "/websocket/{path}", hdr: map[string]string{"X-Rivet-Target": "actor", "X-Rivet-Actor": "abc"}},
		{path: "/metrics", want: "/metrics"},
		{path: "/inspector/actors", want: "/inspector/*"},
		{path: "/request/x", want: ""}, // without the headers: no route
	} {
		r, _ := http.NewRequest("GET", "http://h"+c.path, nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		all := slices.Concat(early, routes)
		i := slices.IndexFunc(all, func(rt route) bool { return rt.match(g, r) })
		switch {
		case c.want == "" && i >= 0:
			t.Errorf("%s is served by the route of %v, want no route", c.path, all[i].paths)
		case c.want != "" && (i < 0 || !slices.Contains(all[i].paths, c.want)):
			t.Errorf("%s is not served by the route of %s", c.path, c.want)
		}
	}
}
