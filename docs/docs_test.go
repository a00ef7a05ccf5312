// Package docs holds the documentation site and the tests that keep its
// code samples honest: every Go block of docs/**/*.md and README.md is
// compiled (go build and go vet), sample tests are run, JavaScript blocks
// are syntax-checked (node, esbuild), and relative links and anchors must
// resolve. The conventions for writers are in docs/README.md.
package docs

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// block is one fenced code block of a Markdown file.
type block struct {
	file  string // path relative to the repository root
	line  int    // line of the first content line (1-based)
	lang  string // the fence's info string, first word
	code  string // the content, fence indentation removed
	annot string // the doc-test annotation before the fence, if any
}

func (b block) pos() string { return fmt.Sprintf("%s:%d", b.file, b.line-1) }

var annotRE = regexp.MustCompile(`^<!--\s*doc-test:\s*(.*?)\s*-->$`)

// parseBlocks returns the fenced code blocks of a Markdown file.
func parseBlocks(rel, text string) ([]block, error) {
	var out []block
	lines := strings.Split(text, "\n")
	lastNonBlank := ""
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " \t")
		if !strings.HasPrefix(trimmed, "```") {
			if strings.TrimSpace(lines[i]) != "" {
				lastNonBlank = strings.TrimSpace(lines[i])
			}
			continue
		}
		indent := lines[i][:len(lines[i])-len(trimmed)]
		fence := trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))]
		info := strings.Fields(strings.TrimPrefix(trimmed, fence))
		b := block{file: rel, line: i + 2}
		if len(info) > 0 {
			b.lang = info[0]
		}
		if m := annotRE.FindStringSubmatch(lastNonBlank); m != nil {
			b.annot = m[1]
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if t := strings.TrimLeft(lines[i], " \t"); strings.HasPrefix(t, fence) && strings.TrimSpace(strings.TrimLeft(t, "`")) == "" {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: code block is never closed", rel, b.line-1)
		}
		b.code = strings.Join(body, "\n") + "\n"
		out = append(out, b)
		lastNonBlank = ""
	}
	return out, nil
}

// repoRoot is the repository root: the parent of this package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// markdownFiles lists README.md and docs/**/*.md, relative to root.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files[1:])
	return files
}

// allBlocks returns the code blocks of every Markdown file, or of those
// whose path starts with $RIVET_DOCS_ONLY (for writers checking one page).
func allBlocks(t *testing.T, root string) []block {
	t.Helper()
	var out []block
	for _, f := range markdownFiles(t, root) {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if only := os.Getenv("RIVET_DOCS_ONLY"); only != "" && !strings.HasPrefix(f, only) {
			continue
		}
		bs, err := parseBlocks(f, string(text))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bs...)
	}
	return out
}

// knownImports maps the package names a fragment may use without
// importing them to their import paths.
var knownImports = map[string]string{
	"rivet":       "github.com/rivetgo/rivet",
	"rivetclient": "github.com/rivetgo/rivet/rivetclient",
	"rivettest":   "github.com/rivetgo/rivet/rivettest",
	"rivetdriver": "github.com/rivetgo/rivet/rivetdriver",
	"rivetmem":    "github.com/rivetgo/rivet/rivetdriver/rivetmem",
	"rivetembed":  "github.com/rivetgo/rivet/rivetdriver/rivetembed",
	"rivetpg":     "github.com/rivetgo/rivet/rivetdriver/rivetpg",
	"rivettype":   "github.com/rivetgo/rivet/rivettype",
	"demo":        "github.com/rivetgo/rivet/examples/demo",
	"websocket":   "github.com/coder/websocket",
	"atomic":      "sync/atomic",
	"bytes":       "bytes",
	"cmp":         "cmp",
	"context":     "context",
	"errors":      "errors",
	"filepath":    "path/filepath",
	"fmt":         "fmt",
	"http":        "net/http",
	"httptest":    "net/http/httptest",
	"io":          "io",
	"json":        "encoding/json",
	"log":         "log",
	"net":         "net",
	"os":          "os",
	"signal":      "os/signal",
	"slices":      "slices",
	"slog":        "log/slog",
	"sort":        "sort",
	"strconv":     "strconv",
	"strings":     "strings",
	"sync":        "sync",
	"syscall":     "syscall",
	"testing":     "testing",
	"time":        "time",
	"url":         "net/url",
}

// annotation is a parsed `<!-- doc-test: ... -->` comment.
type annotation struct {
	kind   string // file, decls, body, skip, or "" (infer)
	own    bool   // a package of its own
	params string // body: extra parameters of the wrapper function
	name   string // file: the file name
}

func parseAnnotation(s string) (annotation, error) {
	var a annotation
	fields := strings.Fields(s)
	if len(fields) > 0 && fields[0] == "own" {
		a.own = true
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return a, nil
	}
	a.kind = fields[0]
	rest := strings.TrimSpace(strings.TrimPrefix(strings.Join(fields, " "), fields[0]))
	switch a.kind {
	case "skip":
		if rest == "" {
			return a, fmt.Errorf("doc-test: skip needs a reason")
		}
	case "decls":
		if rest != "" {
			return a, fmt.Errorf("doc-test: decls takes no arguments")
		}
	case "body":
		a.params = rest
	case "file":
		a.name = rest
		if a.name != "" && !strings.HasSuffix(a.name, ".go") {
			return a, fmt.Errorf("doc-test: file name %q must end in .go", a.name)
		}
	default:
		return a, fmt.Errorf("doc-test: unknown kind %q (file, decls, body or skip)", a.kind)
	}
	return a, nil
}

var packageRE = regexp.MustCompile(`(?m)^package\s+([A-Za-z_][A-Za-z0-9_]*)`)

// isFile reports whether a Go block is a whole file: its first line that
// is not a comment or blank is a package clause.
func isFile(code string) bool {
	for _, l := range strings.Split(code, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		return strings.HasPrefix(l, "package ")
	}
	return false
}

// isDecls reports whether a fragment parses as top-level declarations.
func isDecls(code string) bool {
	_, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+code, parser.SkipObjectResolution)
	return err == nil
}

// lineDirective makes the compiler report positions in the Markdown file.
func lineDirective(abs string, line int) string {
	return fmt.Sprintf("//line %s:%d\n", abs, line)
}

// withImports prepends the imports a fragment file uses to src, which
// starts with its package clause followed by a newline.
func withImports(src string) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "", src, 0)
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Obj == nil && knownImports[id.Name] != "" {
				used[id.Name] = true
			}
		}
		return true
	})
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	var imp strings.Builder
	for _, n := range names {
		fmt.Fprintf(&imp, "import %s %q\n", n, knownImports[n])
	}
	pkgLine, rest, _ := strings.Cut(src, "\n")
	return pkgLine + "\n" + imp.String() + rest, nil
}

// unusedLocals returns the variables a body fragment declares at its top
// level and never mentions again, so the wrapper can mark them used: a
// sample may show `n, err := ...` without checking err.
func unusedLocals(body string) []string {
	src := "package p\nfunc _() {\n" + body + "\n}\n"
	f, err := parser.ParseFile(token.NewFileSet(), "", src, parser.SkipObjectResolution)
	if err != nil || len(f.Decls) == 0 {
		return nil
	}
	fn, ok := f.Decls[0].(*ast.FuncDecl)
	if !ok || fn.Body == nil {
		return nil
	}
	declaring := map[*ast.Ident]bool{}
	var declared []string
	for _, st := range fn.Body.List {
		switch s := st.(type) {
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				for _, e := range s.Lhs {
					if id, ok := e.(*ast.Ident); ok && id.Name != "_" {
						declaring[id] = true
						declared = append(declared, id.Name)
					}
				}
			}
		case *ast.DeclStmt:
			if gd, ok := s.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, sp := range gd.Specs {
					for _, id := range sp.(*ast.ValueSpec).Names {
						if id.Name != "_" {
							declaring[id] = true
							declared = append(declared, id.Name)
						}
					}
				}
			}
		}
	}
	mentioned := map[string]bool{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && !declaring[id] {
			mentioned[id.Name] = true
		}
		return true
	})
	seen := map[string]bool{}
	var out []string
	for _, n := range declared {
		if !mentioned[n] && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// gofmtChecked reports whether a block must be gofmt-formatted: the
// whole-file and declaration blocks of docs/ (README.md aligns comments
// by hand).
func gofmtChecked(b block) bool { return strings.HasPrefix(b.file, "docs/") }

// goSample is a Go block placed in the sample module.
type goSample struct {
	b    block
	dir  string // package directory inside the module
	name string // file name
	src  string
	test bool // a _test.go file: its tests are run
}

// buildGoSamples turns the Go blocks into files of the sample module.
func buildGoSamples(root string, blocks []block) ([]goSample, []error) {
	var out []goSample
	var errs []error
	pageDir := map[string]string{}
	dirFor := func(key string) string {
		if d, ok := pageDir[key]; ok {
			return d
		}
		d := fmt.Sprintf("s%03d", len(pageDir))
		pageDir[key] = d
		return d
	}
	for _, b := range blocks {
		if b.lang != "go" {
			continue
		}
		a, err := parseAnnotation(b.annot)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", b.pos(), err))
			continue
		}
		if a.kind == "skip" {
			continue
		}
		abs := filepath.Join(root, b.file)
		kind := a.kind
		if kind == "" {
			switch {
			case isFile(b.code):
				kind = "file"
			case isDecls(b.code):
				kind = "decls"
			default:
				kind = "body"
			}
		}
		s := goSample{b: b, name: fmt.Sprintf("line%05d.go", b.line)} // page order
		switch kind {
		case "file":
			m := packageRE.FindStringSubmatch(b.code)
			if m == nil {
				errs = append(errs, fmt.Errorf("%s: file block without a package clause", b.pos()))
				continue
			}
			if src, err := format.Source([]byte(b.code)); err == nil && gofmtChecked(b) && !bytes.Equal(src, []byte(b.code)) {
				errs = append(errs, fmt.Errorf("%s: Go file block is not gofmt-formatted", b.pos()))
			}
			key := b.file + "#" + m[1]
			if a.own {
				key = b.pos()
			}
			s.dir = dirFor(key)
			if a.name != "" {
				s.name = a.name
			}
			s.test = strings.HasSuffix(s.name, "_test.go") || strings.Contains(b.code, "*testing.T")
			if s.test && !strings.HasSuffix(s.name, "_test.go") {
				s.name = strings.TrimSuffix(s.name, ".go") + "_test.go"
			}
			code := b.code
			if m[1] == "main" {
				// go build links every main package, which takes seconds
				// each; as a library package it is only compiled. (The
				// one check lost is that func main exists.)
				loc := packageRE.FindStringSubmatchIndex(code)
				code = code[:loc[2]] + "mainsample" + code[loc[3]:]
			}
			s.src = lineDirective(abs, b.line) + code
		case "decls", "body":
			key := b.file
			if a.own {
				key = b.pos()
			}
			s.dir = dirFor(key)
			var src string
			if kind == "decls" {
				if formatted, err := format.Source([]byte("package p\n\n" + b.code)); err == nil && gofmtChecked(b) && !bytes.Equal(formatted, []byte("package p\n\n"+b.code)) {
					errs = append(errs, fmt.Errorf("%s: Go block is not gofmt-formatted", b.pos()))
				}
				src = "package sample\n" + lineDirective(abs, b.line) + b.code
			} else {
				params := "ctx context.Context"
				if a.params != "" {
					params += ", " + a.params
				}
				var uses strings.Builder
				for _, n := range unusedLocals(b.code) {
					fmt.Fprintf(&uses, "_ = %s\n", n)
				}
				src = "package sample\nfunc _(" + params + ") {\n{\n" + lineDirective(abs, b.line) + b.code + uses.String() + "}\n}\n"
			}
			src, err = withImports(src)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", b.pos(), err))
				continue
			}
			s.src = src
		}
		out = append(out, s)
	}
	return out, errs
}

// sampleModule writes the sample module: a go.mod that requires this
// repository through a replace to its root, with the repository's own
// requirements and go.sum, so that no download is needed.
func sampleModule(t *testing.T, root string, samples []goSample) string {
	t.Helper()
	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(gomod)
	start := strings.Index(text, "\ngo ")
	if start < 0 {
		t.Fatal("go.mod has no go directive")
	}
	var mod strings.Builder
	mod.WriteString("module docsamples\n")
	mod.WriteString(text[start:])
	mod.WriteString("\nrequire github.com/rivetgo/rivet v0.0.0-00010101000000-000000000000\n")
	// RIVET_DOCS_MODULE_ROOT points the replace at another checkout of
	// the module (for example a clean export while the tree is mid-edit).
	target := root
	if d := os.Getenv("RIVET_DOCS_MODULE_ROOT"); d != "" {
		target = d
	}
	fmt.Fprintf(&mod, "\nreplace github.com/rivetgo/rivet => %s\n", target)
	write := func(name string, b []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", []byte(mod.String()))
	if sum, err := os.ReadFile(filepath.Join(root, "go.sum")); err == nil {
		write("go.sum", sum)
	}
	for _, s := range samples {
		write(filepath.Join(s.dir, s.name), []byte(s.src))
	}
	return dir
}

var errPosRE = regexp.MustCompile(`([^\s:]+\.md):(\d+)(?::\d+)?: (.*)`)

// goErrors turns the go command's output into one message per error,
// each naming the Markdown file and the line of its block's opening
// fence; with no such position in the output, the whole output is one
// message.
func goErrors(root string, out []byte, blocks []block) []string {
	text := strings.ReplaceAll(string(out), root+string(filepath.Separator), "")
	var msgs []string
	for _, l := range strings.Split(text, "\n") {
		m := errPosRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		line, _ := strconv.Atoi(m[2])
		start := 0
		for _, b := range blocks {
			if b.file == m[1] && b.line <= line && b.line > start {
				start = b.line
			}
		}
		msgs = append(msgs, fmt.Sprintf("%s:%d: go block (error at line %d): %s", m[1], start-1, line, m[3]))
	}
	if len(msgs) == 0 {
		msgs = append(msgs, text)
	}
	return msgs
}

// runGo runs the go command in the sample module.
func runGo(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	return cmd.CombinedOutput()
}

// TestGoSamples compiles every Go block with one `go build` and one
// `go vet` of a module that holds them all, and runs the tests of the
// test-file samples.
func TestGoSamples(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	root := repoRoot(t)
	blocks := allBlocks(t, root)
	samples, errs := buildGoSamples(root, blocks)
	for _, err := range errs {
		t.Error(err)
	}
	if len(samples) == 0 {
		t.Fatal("no Go samples found")
	}
	dir := sampleModule(t, root, samples)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// go build first: it reports up to ten errors per package where
	// go vet stops at the first; then go vet for its checks.
	for _, step := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		if out, err := runGo(ctx, dir, step...); err != nil {
			for _, msg := range goErrors(root, out, blocks) {
				t.Errorf("go %s: %s", step[0], msg)
			}
			return
		}
	}
	testDirs := map[string]bool{}
	for _, s := range samples {
		if s.test {
			testDirs["./"+s.dir] = true
		}
	}
	if len(testDirs) == 0 {
		return
	}
	if testing.Short() {
		t.Logf("%d Go samples compiled; -short: their %d test packages not run", len(samples), len(testDirs))
		return
	}
	args := []string{"test", "-count=1", "-timeout=2m"}
	for d := range testDirs {
		args = append(args, d)
	}
	if out, err := runGo(ctx, dir, args...); err != nil {
		for _, msg := range goErrors(root, out, blocks) {
			t.Errorf("go test of the sample tests: %s", msg)
		}
	}
	t.Logf("%d Go samples compiled, %d sample test packages run", len(samples), len(testDirs))
}

// esbuildBinary returns an esbuild found in the repository's npm
// installs (the conformance suite's or the chat example's), or "".
func esbuildBinary(root string) string {
	for _, p := range []string{"conformance/node_modules/.bin/esbuild", "examples/chat/web/node_modules/.bin/esbuild"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return filepath.Join(root, p)
		}
	}
	return ""
}

// TestJSSamples checks the syntax of every JavaScript block (js, mjs, and
// ts blocks, which must also be valid JavaScript) with `node --check`, and
// of jsx and tsx blocks with esbuild when an npm install in the
// repository provides it.
func TestJSSamples(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node not found (required when CI is set)")
		}
		t.Skip("node not found")
	}
	root := repoRoot(t)
	esbuild := esbuildBinary(root)
	dir := t.TempDir()
	checked, unchecked := 0, 0
	for i, b := range allBlocks(t, root) {
		var args []string
		p := filepath.Join(dir, fmt.Sprintf("block%d", i))
		switch b.lang {
		case "js", "javascript", "mjs", "ts", "typescript":
			p += ".mjs"
			args = []string{node, "--check", p}
		case "jsx", "tsx":
			if esbuild == "" {
				unchecked++
				continue
			}
			p += "." + b.lang
			args = []string{esbuild, "--log-level=error", "--outfile=" + p + ".out.js", p}
		default:
			continue
		}
		if a, err := parseAnnotation(b.annot); err != nil {
			t.Errorf("%s: %v", b.pos(), err)
			continue
		} else if a.kind == "skip" {
			continue
		}
		if err := os.WriteFile(p, []byte(b.code), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			msg := strings.ReplaceAll(string(out), p, b.file)
			t.Errorf("%s: %s block does not parse:\n%s", b.pos(), b.lang, msg)
		}
		checked++
	}
	t.Logf("%d JavaScript blocks checked; %d jsx/tsx blocks not checked (no esbuild: npm install in conformance/)", checked, unchecked)
}

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpanRE = regexp.MustCompile("`[^`]*`")
)

// pendingPages are pages other changes are adding; links to them are
// allowed until they exist. Remove an entry when its page lands.
var pendingPages = map[string]bool{}

// anchors returns the heading anchors of a Markdown file, as GitHub
// makes them: lower case, punctuation dropped, spaces as hyphens.
func anchors(t *testing.T, root, rel string) map[string]bool {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	inCode := false
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " \t"), "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// TestLinks checks that every relative link of the docs points to a file
// that exists (and to a heading of it, for an #anchor), and that every
// page of docs/ is linked from another.
func TestLinks(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	linked := map[string]bool{}
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		inCode := false
		for i, l := range strings.Split(string(text), "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, " \t"), "```") {
				inCode = !inCode
				continue
			}
			if inCode {
				continue
			}
			for _, m := range linkRE.FindAllStringSubmatch(codeSpanRE.ReplaceAllString(l, "``"), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, anchor, _ := strings.Cut(target, "#")
				p := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), target)))
				if f == "docs/README.md" || strings.HasPrefix(f, "docs/") {
					linked[p] = true
				}
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					if !pendingPages[p] {
						t.Errorf("%s:%d: broken link %q (%s does not exist)", f, i+1, m[1], p)
					}
					continue
				}
				if anchor != "" && strings.HasSuffix(p, ".md") && !anchors(t, root, p)[anchor] {
					t.Errorf("%s:%d: broken link %q (%s has no heading #%s)", f, i+1, m[1], p, anchor)
				}
			}
		}
	}
	for _, f := range files {
		if strings.HasPrefix(f, "docs/") && f != "docs/README.md" && !linked[f] {
			t.Errorf("%s is not linked from any docs page", f)
		}
	}
}
