// Package examples is the catalog of example registries that
// `rivet serve --example NAME` runs: the default demo, RivetKit's
// driver-test fixtures, and one package per example under examples/.
//
//	x, err := examples.Lookup("chat")
//	reg, err := rivet.NewRegistry(x.Definitions()...)
//	rt, err := rivet.Start(ctx, reg, nil)
//	http.ListenAndServe(addr, x.Handler(rt.Handler()))
//
// An example with a web page (chat) carries it in Web; Handler serves
// those files at "/" next to the actor gateway, so a browser page and the
// RivetKit client it loads talk to the same origin.
package examples

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/aiagent"
	"github.com/rivetgo/rivet/examples/chat"
	"github.com/rivetgo/rivet/examples/counter"
	"github.com/rivetgo/rivet/examples/demo"
	"github.com/rivetgo/rivet/examples/fixtures"
	"github.com/rivetgo/rivet/examples/ratelimiter"
	"github.com/rivetgo/rivet/examples/workflow"
)

// Example is one servable example.
type Example struct {
	// Name is what `rivet serve --example` takes.
	Name string
	// Summary is one line for help text.
	Summary string
	// Definitions returns the example's actor definitions, freshly built.
	Definitions func() []rivet.Definition
	// Web is an optional static site served at "/" by Handler.
	Web fs.FS
}

// All returns every example, the default (demo) first.
func All() []Example {
	return []Example{
		{Name: "demo", Summary: "counter and chatRoom, the actors of RivetKit's quickstarts, with the chat page at / (the default)", Definitions: demo.Definitions, Web: chat.Web()},
		{Name: "fixtures", Summary: "Go port of RivetKit's driver-test fixture actors", Definitions: fixtures.Definitions},
		{Name: "chat", Summary: "a chat room web page (React + @rivetkit/react) with realtime messages", Definitions: chat.Definitions, Web: chat.Web()},
		{Name: "counter", Summary: "the quickstart counter, callable with curl", Definitions: counter.Definitions},
		{Name: "ratelimiter", Summary: "per-user rate limiting, one actor per user", Definitions: ratelimiter.Definitions},
		{Name: "workflow", Summary: "durable reminders and a multi-step workflow that survive restarts", Definitions: workflow.Definitions},
		{Name: "aiagent", Summary: "an AI agent's conversation memory with streamed tokens from a fake model", Definitions: aiagent.Definitions},
	}
}

// Names lists the examples' names in the order of All.
func Names() []string {
	var names []string
	for _, x := range All() {
		names = append(names, x.Name)
	}
	return names
}

// Lookup returns the example called name. An unknown name is an error
// that lists the valid ones.
func Lookup(name string) (Example, error) {
	all := All()
	for _, x := range all {
		if x.Name == name {
			return x, nil
		}
	}
	return Example{}, fmt.Errorf("examples: unknown example %q (valid: %s)", name, strings.Join(Names(), ", "))
}

// Handler serves the example's web site in front of gateway, the
// runtime's handler: a GET or HEAD of "/" or of a file that exists in Web
// is answered with that file ("/" and any directory with its index.html),
// everything else goes to gateway. Hashed build assets (Vite's
// assets/name-HASH.ext) are cached as immutable; other files must be
// revalidated (they carry an ETag). Text files of 1 KiB or more are sent
// gzip-compressed to clients that accept it. Without Web it is gateway
// itself.
func (x Example) Handler(gateway http.Handler) http.Handler {
	if x.Web == nil {
		return gateway
	}
	return &site{web: x.Web, next: gateway}
}

// site serves static files from web and passes other requests to next.
type site struct {
	web  fs.FS
	next http.Handler

	mu    sync.Mutex
	files map[string]*file // by name, computed on first use
}

// file is a file of the site, ready to serve.
type file struct {
	size    int64
	modTime time.Time
	data    []byte
	ctype   string
	etag    string // quoted
	gz      []byte // gzip-compressed data; nil when not worth it
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.next.ServeHTTP(w, r)
		return
	}
	name, st, ok := s.lookup(r.URL.Path)
	if !ok {
		s.next.ServeHTTP(w, r)
		return
	}
	f, err := s.load(name, st)
	if err != nil {
		s.next.ServeHTTP(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	data, etag := f.data, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			data, etag = f.gz, f.etag[:len(f.etag)-1]+`-gz"`
		}
	}
	if immutable(name) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
	}
	// ServeContent answers HEAD without a body, ranges, and
	// If-None-Match with 304.
	http.ServeContent(w, r, name, f.modTime, bytes.NewReader(data))
}

// load reads a file, or returns it from the cache if its size and
// modification time are unchanged (an embedded site never changes; one
// on disk may be rebuilt while served).
func (s *site) load(name string, st fs.FileInfo) (*file, error) {
	s.mu.Lock()
	f := s.files[name]
	s.mu.Unlock()
	if f != nil && f.size == st.Size() && f.modTime.Equal(st.ModTime()) {
		return f, nil
	}
	data, err := fs.ReadFile(s.web, name)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	f = &file{size: st.Size(), modTime: st.ModTime(), data: data, ctype: contentType(name, data),
		etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	if compressible(f.ctype) && len(data) >= 1024 {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if _, err := zw.Write(data); err == nil && zw.Close() == nil && b.Len() < len(data)*9/10 {
			f.gz = b.Bytes()
		}
	}
	s.mu.Lock()
	if s.files == nil {
		s.files = map[string]*file{}
	}
	s.files[name] = f
	s.mu.Unlock()
	return f, nil
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "application/json") ||
		strings.HasPrefix(ctype, "image/svg+xml") || strings.HasPrefix(ctype, "application/manifest+json") ||
		strings.HasPrefix(ctype, "application/wasm")
}

// lookup maps a URL path to a regular file of the site: "/" and
// directories map to their index.html.
func (s *site) lookup(urlPath string) (string, fs.FileInfo, bool) {
	if !strings.HasPrefix(urlPath, "/") {
		return "", nil, false
	}
	name := strings.TrimPrefix(path.Clean(urlPath), "/")
	if name == "" {
		name = "."
	}
	if !fs.ValidPath(name) {
		return "", nil, false
	}
	st, err := fs.Stat(s.web, name)
	if err != nil {
		return "", nil, false
	}
	if st.IsDir() {
		// Only "/" and directories named with a trailing slash.
		if name != "." && !strings.HasSuffix(urlPath, "/") {
			return "", nil, false
		}
		name = path.Join(name, "index.html")
		if st, err = fs.Stat(s.web, name); err != nil || st.IsDir() {
			return "", nil, false
		}
	}
	if !st.Mode().IsRegular() {
		return "", nil, false
	}
	return name, st, true
}

// hashedAsset matches Vite's output names: assets/name-HASH.ext, where
// HASH is 8 or more characters of [A-Za-z0-9_-] that include a digit or
// an upper-case letter (a plain word such as "component" is not a hash).
var hashedAsset = regexp.MustCompile(`^assets/(?:.+/)?[^/]+-([A-Za-z0-9_-]{8,})\.[A-Za-z0-9]+$`)

// immutable reports whether a file's content is fixed by its name.
func immutable(name string) bool {
	m := hashedAsset.FindStringSubmatch(name)
	return m != nil && strings.ContainsAny(m[1], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}

// webTypes fixes the content types of the files a web build produces,
// whatever the host's mime database says.
var webTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".wasm":        "application/wasm",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
}

func contentType(name string, data []byte) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := webTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return http.DetectContentType(data[:min(len(data), 512)])
}
