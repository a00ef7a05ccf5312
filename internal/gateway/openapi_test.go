package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/rivetgo/rivet"
)

// loadSpec fetches /openapi.json from a running server and validates it
// as an OpenAPI document.
func loadSpec(t *testing.T, base string) (*openapi3.T, routers.Router) {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// conformance validates a real request and its real response against the
// document. It returns the decoded JSON response (nil if not JSON).
type conformance struct {
	t      *testing.T
	base   string
	router routers.Router
}

func (c conformance) check(method, path, body string, hdr map[string]string, wantStatus int) map[string]any {
	c.t.Helper()
	return c.run(method, path, body, hdr, wantStatus, true)
}

// invalid sends a request the document says is invalid (so it is not
// validated) and validates the error response.
func (c conformance) invalid(method, path, body string, wantStatus int) map[string]any {
	c.t.Helper()
	return c.run(method, path, body, nil, wantStatus, false)
}

func (c conformance) run(method, path, body string, hdr map[string]string, wantStatus int, validRequest bool) map[string]any {
	c.t.Helper()
	ctx := context.Background()
	newReq := func() *http.Request {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, c.base+path, rd)
		if err != nil {
			c.t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return req
	}
	// Routed by path only: the document's server is "/".
	vreq := newReq()
	vreq.URL.Scheme, vreq.URL.Host, vreq.Host = "", "", ""
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s %s is not in the document: %v", method, path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	err = openapi3filter.ValidateRequest(ctx, in)
	switch {
	case validRequest && err != nil:
		c.t.Fatalf("%s %s: the request does not match the document: %v", method, path, err)
	case !validRequest && err == nil:
		c.t.Fatalf("%s %s %s: the document accepts this invalid request", method, path, body)
	}
	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, rb)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(rb)), Options: opts}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		c.t.Fatalf("%s %s: the response (%d %s) does not match the document: %v", method, path, resp.StatusCode, rb, err)
	}
	var m map[string]any
	_ = json.Unmarshal(rb, &m)
	return m
}

// TestOpenAPIDocument: /openapi.json is valid OpenAPI, and real requests
// and responses of the engine API, the gateway, the operations routes and
// the inspector conform to it.
func TestOpenAPIDocument(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	_, router := loadSpec(t, base)
	c := conformance{t: t, base: base, router: router}

	c.check("GET", "/metadata?namespace=default", "", nil, 200)
	c.check("GET", "/health", "", nil, 200)
	c.check("GET", "/metrics", "", nil, 200)
	c.check("GET", "/openapi.json", "", nil, 200)

	m := c.check("PUT", "/actors?namespace=default", `{"name":"counter","key":"oa","runner_name_selector":"default","crash_policy":"sleep"}`, nil, 200)
	id, _ := m["actor"].(map[string]any)["actor_id"].(string)
	if id == "" || m["created"] != true {
		t.Fatalf("getOrCreate: %v", m)
	}
	c.check("POST", "/actors?namespace=default", `{"name":"counter","key":"other"}`, nil, 200)
	c.check("POST", "/actors?namespace=default", `{"name":"counter","key":"oa"}`, nil, 400) // duplicate_key
	c.invalid("POST", "/actors", `{"key":"x"}`, 400)                                        // no name
	c.check("GET", "/actors?namespace=default&name=counter&key=oa", "", nil, 200)
	c.check("GET", "/actors?namespace=default&name=counter", "", nil, 200)
	c.check("GET", "/actors?namespace=default&actor_ids="+id+",unknown", "", nil, 200)

	m = c.check("POST", "/gateway/"+id+"/action/increment", `{"args":[2]}`, nil, 200)
	if m["output"] != 2.0 {
		t.Fatalf("action: %v", m)
	}
	c.check("POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=oa", `{"args":[1]}`, map[string]string{"X-Rivet-Encoding": "json"}, 200)
	c.check("POST", "/gateway/"+id+"/action/nope", `{"args":[]}`, nil, 404)                                                        // action_not_found
	c.check("POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=zz", `{"args":[1]}`, nil, 404) // not_found
	c.invalid("POST", "/gateway/counter/action/increment?rvt-namespace=default&rvt-method=bad", `{"args":[1]}`, 400)               // guard.query_invalid_params
	c.invalid("POST", "/gateway/"+id+"/action/increment", `{"args":"nope"}`, 400)

	// Queues.
	c.check("POST", "/gateway/"+id+"/queue/jobs", `{"body":{"n":1},"wait":false,"name":"jobs"}`, nil, 200)
	m = c.check("POST", "/gateway/counter/queue/jobs?rvt-namespace=default&rvt-method=get&rvt-key=oa", `{"body":null,"wait":true,"timeout":10}`, nil, 200)
	if m["status"] != "timedOut" {
		t.Fatalf("queue send with wait: %v", m)
	}
	c.check("POST", "/gateway/"+id+"/queue/nope", `{"body":1}`, nil, 400) // queue.not_declared
	c.check("GET", "/inspector/actors/"+id+"/queue?limit=5", "", nil, 200)

	// The inspector (open to loopback clients without a token).
	c.check("GET", "/inspector/actors?name=counter&limit=10", "", nil, 200)
	c.check("GET", "/inspector/actors/"+id, "", nil, 200)
	c.check("GET", "/inspector/actors/"+id+"/state", "", nil, 200)
	c.check("PUT", "/inspector/actors/"+id+"/state", `{"state":{"count":7}}`, nil, 200)
	c.check("PUT", "/inspector/actors/"+id+"/state", `{"state":{"count":"seven"}}`, nil, 422)
	c.check("GET", "/inspector/actors/"+id+"/connections", "", nil, 200)
	c.check("GET", "/inspector/actors/"+id+"/alarms", "", nil, 200)
	c.check("GET", "/inspector/actors/"+id+"/events", "", nil, 200)
	c.check("GET", "/inspector/actors/"+id+"/logs", "", nil, 200)
	c.check("GET", "/inspector/actors/"+id+"/kv?limit=5", "", nil, 200)
	m = c.check("POST", "/inspector/actors/"+id+"/actions/getCount", `{"args":[]}`, nil, 200)
	if m["output"] != 7.0 {
		t.Fatalf("inspector action after the state edit: %v", m)
	}

	c.check("POST", "/actors/"+id+"/sleep", "", nil, 200)
	c.check("DELETE", "/actors/"+id+"?namespace=default", "", nil, 200)
	c.check("DELETE", "/actors/"+id+"?namespace=default", "", nil, 404)
	c.check("GET", "/inspector/actors/"+id, "", nil, 404)
	c.check("POST", "/gateway/"+id+"/action/getCount", `{"args":[]}`, nil, 404)
}

// TestOpenAPIValidatorBites: the checks above would catch drift — an
// undocumented route is not found and a response of the wrong shape is
// refused.
func TestOpenAPIValidatorBites(t *testing.T) {
	base := serve(t, rivet.GatewayConfig{})
	_, router := loadSpec(t, base)
	req, _ := http.NewRequest("GET", "/undocumented", nil)
	if _, _, err := router.FindRoute(req); err == nil {
		t.Fatal("an undocumented route was found")
	}
	req, _ = http.NewRequest("GET", "/metadata", nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	hdr := http.Header{"Content-Type": []string{"application/json"}}
	for _, bad := range []struct {
		status int
		body   string
	}{
		{200, `{"version":"1"}`},                     // runtime missing
		{200, `{"runtime":"other","version":"1"}`},   // not rivetgo
		{418, `{"runtime":"rivetgo","version":"1"}`}, // undocumented status
	} {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: bad.status, Header: hdr, Body: io.NopCloser(strings.NewReader(bad.body)), Options: opts}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err == nil {
			t.Errorf("%d %s passed validation", bad.status, bad.body)
		}
	}
}
