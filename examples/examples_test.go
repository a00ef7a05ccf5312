package examples_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
)

func TestCatalog(t *testing.T) {
	want := []string{"demo", "fixtures", "chat", "counter", "ratelimiter", "workflow", "aiagent"}
	if got := examples.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, x := range examples.All() {
		if x.Summary == "" || x.Definitions == nil {
			t.Errorf("%s: no summary or definitions", x.Name)
		}
		reg, err := rivet.NewRegistry(x.Definitions()...)
		if err != nil {
			t.Errorf("%s: %v", x.Name, err)
			continue
		}
		if len(reg.Names()) == 0 {
			t.Errorf("%s: no actors", x.Name)
		}
		got, err := examples.Lookup(x.Name)
		if err != nil || got.Name != x.Name {
			t.Errorf("Lookup(%q) = %q, %v", x.Name, got.Name, err)
		}
	}
	chat, _ := examples.Lookup("chat")
	if chat.Web == nil {
		t.Fatal("chat has no web page")
	}
	_, err := examples.Lookup("chta")
	if err == nil || !strings.Contains(err.Error(), `"chta"`) || !strings.Contains(err.Error(), strings.Join(want, ", ")) {
		t.Fatalf("Lookup of an unknown name: %v, want an error naming it and listing %v", err, want)
	}
}

// TestHandler: the site's files are served with their content types and
// caching; every other request reaches the gateway unchanged.
func TestHandler(t *testing.T) {
	web := fstest.MapFS{
		"index.html":                 {Data: []byte("<!doctype html><title>x</title>")},
		"assets/index-BRKg7Y2u.js":   {Data: []byte("console.log(1)")},
		"assets/index-D8RauWWK.css":  {Data: []byte("body{}")},
		"assets/browser-3s-pgXeL.js": {Data: []byte("export {}")},
		"assets/logo-component.svg":  {Data: []byte("<svg/>")},
		"docs/index.html":            {Data: []byte("docs")},
		"robots.txt":                 {Data: []byte("User-agent: *")},
	}
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Gateway", "1")
		io.WriteString(w, "gateway "+r.Method+" "+r.URL.RequestURI())
	})
	srv := httptest.NewServer(examples.Example{Name: "t", Web: web}.Handler(gateway))
	t.Cleanup(srv.Close)

	type want struct {
		status      int
		body        string // empty: not checked
		contentType string
		cache       string
		gateway     bool
	}
	cases := []struct {
		method, path string
		header       map[string]string
		want         want
	}{
		{"GET", "/", nil, want{200, "<!doctype html><title>x</title>", "text/html; charset=utf-8", "no-cache", false}},
		{"HEAD", "/", nil, want{200, "", "text/html; charset=utf-8", "no-cache", false}},
		{"GET", "/index.html", nil, want{200, "<!doctype html><title>x</title>", "text/html; charset=utf-8", "no-cache", false}},
		{"GET", "/assets/index-BRKg7Y2u.js", nil, want{200, "console.log(1)", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", false}},
		{"GET", "/assets/index-D8RauWWK.css", nil, want{200, "body{}", "text/css; charset=utf-8", "public, max-age=31536000, immutable", false}},
		{"GET", "/assets/browser-3s-pgXeL.js", nil, want{200, "export {}", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", false}},
		{"GET", "/assets/logo-component.svg", nil, want{200, "<svg/>", "image/svg+xml", "no-cache", false}},
		{"GET", "/robots.txt", nil, want{200, "User-agent: *", "text/plain; charset=utf-8", "no-cache", false}},
		{"GET", "/docs/", nil, want{200, "docs", "text/html; charset=utf-8", "no-cache", false}},
		// Everything that is not a file of the site: the gateway.
		{"GET", "/docs", nil, want{200, "gateway GET /docs", "", "", true}},
		{"GET", "/assets/", nil, want{200, "gateway GET /assets/", "", "", true}},
		{"GET", "/metadata", nil, want{200, "gateway GET /metadata", "", "", true}},
		{"GET", "/gateway/chatRoom/connect?rvt-namespace=default", nil, want{200, "gateway GET /gateway/chatRoom/connect?rvt-namespace=default", "", "", true}},
		{"POST", "/", nil, want{200, "gateway POST /", "", "", true}},
		{"PUT", "/index.html", nil, want{200, "gateway PUT /index.html", "", "", true}},
		{"OPTIONS", "/assets/index-BRKg7Y2u.js", nil, want{200, "gateway OPTIONS /assets/index-BRKg7Y2u.js", "", "", true}},
		{"GET", "/nope.js", nil, want{200, "gateway GET /nope.js", "", "", true}},
		{"GET", "/../index.html", nil, want{200, "<!doctype html><title>x</title>", "text/html; charset=utf-8", "no-cache", false}},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := tc.method + " " + tc.path
		if resp.StatusCode != tc.want.status {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.want.status)
		}
		if tc.want.body != "" && string(b) != tc.want.body {
			t.Errorf("%s: body %q, want %q", name, b, tc.want.body)
		}
		if tc.method == "HEAD" && len(b) != 0 {
			t.Errorf("%s: HEAD has a body", name)
		}
		if got := resp.Header.Get("X-Gateway") == "1"; got != tc.want.gateway {
			t.Errorf("%s: served by the gateway = %v, want %v", name, got, tc.want.gateway)
		}
		if tc.want.gateway {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.want.contentType {
			t.Errorf("%s: content-type %q, want %q", name, got, tc.want.contentType)
		}
		if got := resp.Header.Get("Cache-Control"); got != tc.want.cache {
			t.Errorf("%s: cache-control %q, want %q", name, got, tc.want.cache)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", name, got)
		}
	}

	// Revalidation: index.html has an ETag and answers 304 to it.
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("index.html has no ETag")
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %s, want 304", resp.Status)
	}
}

// TestHandlerWithoutWeb: an example without a page is its gateway.
func TestHandlerWithoutWeb(t *testing.T) {
	gw := http.NotFoundHandler()
	x, err := examples.Lookup("counter")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	x.Handler(gw).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 404 {
		t.Fatalf("GET / without a page: %d, want the gateway's 404", rec.Code)
	}
}

// TestChatPageEmbedded: the chat example's built page is in the binary:
// index.html loads a hashed script that is served as immutable.
func TestChatPageEmbedded(t *testing.T) {
	x, _ := examples.Lookup("chat")
	srv := httptest.NewServer(x.Handler(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(b)
	i := strings.Index(html, `src="/assets/`)
	if resp.StatusCode != 200 || i < 0 {
		t.Fatalf("GET /: %s\n%s", resp.Status, html)
	}
	script := html[i+len(`src="`):]
	script = script[:strings.IndexByte(script, '"')]
	resp, err = srv.Client().Get(srv.URL + script)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("GET %s: %s %v", script, resp.Status, resp.Header)
	}
}

// TestHandlerGzip: text files of 1 KiB or more go gzip-compressed to
// clients that accept it, and as they are to others.
func TestHandlerGzip(t *testing.T) {
	js := strings.Repeat("console.log('rivet');\n", 200)
	web := fstest.MapFS{
		"index.html":               {Data: []byte("<!doctype html>" + strings.Repeat("<p>hi</p>", 200))},
		"assets/index-BRKg7Y2u.js": {Data: []byte(js)},
		"assets/logo-X1y2Z3w4.png": {Data: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)},
	}
	srv := httptest.NewServer(examples.Example{Web: web}.Handler(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	// DisableCompression: see the encoded body, as a browser's network
	// layer does.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path, acceptEncoding string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	resp, b := get("/assets/index-BRKg7Y2u.js", "gzip, deflate, br")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip accepted: headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != js || len(b) >= len(js) {
		t.Fatalf("gzip body: %d bytes → %d bytes, equal %v, %v", len(b), len(plain), string(plain) == js, err)
	}
	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		resp, b = get("/assets/index-BRKg7Y2u.js", ae)
		if resp.Header.Get("Content-Encoding") != "" || string(b) != js {
			t.Fatalf("Accept-Encoding %q: encoding %q, %d bytes", ae, resp.Header.Get("Content-Encoding"), len(b))
		}
	}
	// The compressed and the plain index.html have different ETags.
	r1, _ := get("/", "gzip")
	r2, _ := get("/", "")
	if e1, e2 := r1.Header.Get("ETag"), r2.Header.Get("ETag"); e1 == "" || e2 == "" || e1 == e2 {
		t.Fatalf("ETags gzip %q, plain %q", e1, e2)
	}
	// Images are not compressed again.
	if resp, _ := get("/assets/logo-X1y2Z3w4.png", "gzip"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("png sent with Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}
