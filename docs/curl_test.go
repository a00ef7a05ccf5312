package docs

import (
	"path/filepath"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
	"github.com/rivetgo/rivet/internal/readmecurl"
	"github.com/rivetgo/rivet/rivettest"
)

// TestCurlSamples runs the curl commands of the README and the quickstart,
// each page in order against a fresh server of the demo registry (what
// go run ./cmd/rivet serves), and checks every answer they show.
func TestCurlSamples(t *testing.T) {
	root := repoRoot(t)
	for _, page := range []string{"README.md", "docs/quickstart.md"} {
		t.Run(page, func(t *testing.T) {
			k := rivettest.New(t, rivet.MustRegistry(demo.Definitions()...))
			if cmds := readmecurl.Run(t, filepath.Join(root, page), k.Runtime.Handler()); len(cmds) == 0 {
				t.Fatalf("%s has no curl command", page)
			}
		})
	}
}
