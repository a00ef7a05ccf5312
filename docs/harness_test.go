package docs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests below check the sample harness itself, so that a broken
// sample cannot pass unnoticed.

func TestParseBlocks(t *testing.T) {
	md := strings.Join([]string{
		"# Title", // 1
		"",        // 2
		"<!-- doc-test: body h *rivet.Handle -->", // 3
		"",                  // 4
		"```go",             // 5
		"x := 1",            // 6
		"```",               // 7
		"- a list item:",    // 8
		"",                  // 9
		"  ```js",           // 10
		"  console.log(1);", // 11
		"  ```",             // 12
		"````md",            // 13
		"```go",             // 14: inside a longer fence, not a block
		"````",              // 15
	}, "\n")
	bs, err := parseBlocks("docs/x.md", md)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 {
		t.Fatalf("got %d blocks, want 3: %+v", len(bs), bs)
	}
	if b := bs[0]; b.lang != "go" || b.line != 6 || b.code != "x := 1\n" || b.annot != "body h *rivet.Handle" || b.pos() != "docs/x.md:5" {
		t.Errorf("block 0 = %+v", b)
	}
	if b := bs[1]; b.lang != "js" || b.code != "console.log(1);\n" || b.annot != "" {
		t.Errorf("block 1 (indented) = %+v", b)
	}
	if b := bs[2]; b.lang != "md" || b.code != "```go\n" {
		t.Errorf("block 2 (four backticks) = %+v", b)
	}
	if _, err := parseBlocks("docs/y.md", "```go\nx := 1\n"); err == nil || !strings.Contains(err.Error(), "docs/y.md:1") {
		t.Errorf("unclosed fence: err = %v, want one naming docs/y.md:1", err)
	}
}

func TestParseAnnotation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want annotation
	}{
		{"", annotation{}},
		{"decls", annotation{kind: "decls"}},
		{"own body rt *rivet.Runtime, n int", annotation{kind: "body", own: true, params: "rt *rivet.Runtime, n int"}},
		{"file counter_test.go", annotation{kind: "file", name: "counter_test.go"}},
		{"skip shows a signature", annotation{kind: "skip"}},
	} {
		got, err := parseAnnotation(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseAnnotation(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"skip", "decls x", "file counter", "bdy"} {
		if _, err := parseAnnotation(bad); err == nil {
			t.Errorf("parseAnnotation(%q) accepted", bad)
		}
	}
}

func TestUnusedLocals(t *testing.T) {
	body := "n, err := f()\nm, err := g(n)\nvar s string\nfor i := 0; i < 3; i++ {}\nh := 1\n_ = h\n"
	if got, want := unusedLocals(body), []string{"err", "m", "s"}; !slices.Equal(got, want) {
		t.Errorf("unusedLocals = %v, want %v", got, want)
	}
}

func TestKindInference(t *testing.T) {
	if !isFile("// Package x.\npackage x\n") || isFile("x := 1\n") {
		t.Error("isFile")
	}
	if !isDecls("type T int\nfunc f() {}\n") || isDecls("x := 1\n") {
		t.Error("isDecls")
	}
}

// TestBrokenSampleIsReported builds a page with a broken block and checks
// that the failure names the page and the block's fence line.
func TestBrokenSampleIsReported(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	md := strings.Join([]string{
		"```go",                  // 1
		"type T struct{ N int }", // 2
		"```",                    // 3
		"",                       // 4
		"```go",                  // 5
		"var t T",                // 6
		"t.N = \"one\"",          // 7: a type error
		"```",                    // 8
		"",                       // 9
		"```go",                  // 10
		"type T int",             // 11: T is declared twice on the page
		"```",                    // 12
	}, "\n")
	root := repoRoot(t)
	blocks, err := parseBlocks("docs/broken.md", md)
	if err != nil {
		t.Fatal(err)
	}
	samples, errs := buildGoSamples(root, blocks)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	dir := sampleModule(t, root, samples)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := runGo(ctx, dir, "build", "./...")
	if err == nil {
		t.Fatal("go build accepted a broken sample")
	}
	msgs := strings.Join(goErrors(root, out, blocks), "\n")
	for _, want := range []string{"docs/broken.md:5: go block (error at line 7)", "docs/broken.md:10: go block (error at line 11)"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("errors do not contain %q:\n%s", want, msgs)
		}
	}
}

func TestAnchors(t *testing.T) {
	root := t.TempDir()
	md := "# Deploy\n## Cluster mode: not built yet\n```sh\n# not a heading\n```\n### 4. Your `first` actor\n"
	if err := os.WriteFile(filepath.Join(root, "p.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got := anchors(t, root, "p.md")
	for _, want := range []string{"deploy", "cluster-mode-not-built-yet", "4-your-first-actor"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block became an anchor")
	}
}
