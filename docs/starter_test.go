package docs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStarterModule checks the quickstart's project: the files the page
// shows are those of examples/starter, a module of its own (go test ./...
// at the repository root does not descend into it), and that module builds
// and passes its test as the page says, from a copy whose replace
// directive points at this repository. It needs only the module cache:
// examples/starter/go.sum holds every checksum.
func TestStarterModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	root := repoRoot(t)
	starter := filepath.Join(root, "examples", "starter")
	text, err := os.ReadFile(filepath.Join(root, "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks("docs/quickstart.md", string(text))
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{}
	for _, b := range blocks {
		if a, err := parseAnnotation(b.annot); err == nil && a.kind == "file" && a.name != "" {
			shown[a.name] = b.code
		}
	}
	for _, name := range []string{"main.go", "main_test.go"} {
		want, err := os.ReadFile(filepath.Join(starter, name))
		if err != nil {
			t.Fatal(err)
		}
		if shown[name] != string(want) {
			t.Errorf("docs/quickstart.md's %s differs from examples/starter/%s: keep them the same", name, name)
		}
	}

	// Build and test a copy, as a user's project next to a clone.
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "main.go", "main_test.go"} {
		b, err := os.ReadFile(filepath.Join(starter, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	steps := [][]string{
		{"mod", "edit", "-replace", "github.com/rivetgo/rivet=" + root},
		{"build", "-o", os.DevNull, "."},
	}
	if !testing.Short() {
		steps = append(steps, []string{"test", "-count=1", "./..."})
	}
	for _, step := range steps {
		if out, err := runGo(ctx, dir, step...); err != nil {
			t.Fatalf("go %s in a copy of examples/starter: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
}
