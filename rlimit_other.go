//go:build !unix

package rivet

// openFileLimit is unknown here: no default connection bound.
func openFileLimit() int { return 0 }
