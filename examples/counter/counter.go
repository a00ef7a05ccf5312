// Package counter is the quickstart: one durable counter per key, called
// over plain HTTP in JSON (curl works), from the official RivetKit
// clients, or from Go.
//
//	increment(n) → the new count, and the event newCount to connections
//	getCount()   → the count
//
// The actor is the demo registry's counter (examples/demo), the one
// RivetKit's quickstart defines; README.md shows its code and the curl
// commands to call it.
package counter

import (
	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
)

// Definitions returns the counter actor.
func Definitions() []rivet.Definition {
	for _, d := range demo.Definitions() {
		if d.Name() == "counter" {
			return []rivet.Definition{d}
		}
	}
	panic("counter: the demo registry has no counter actor")
}
