package rivet_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test: every
// runtime a test starts must stop completely.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
