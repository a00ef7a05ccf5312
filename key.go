package rivet

// Key identifies an actor within its name: a tuple of strings. The empty
// key addresses the name's singleton. A Key is compared part by part; "a/b"
// and ("a", "b") are different keys.
type Key []string
