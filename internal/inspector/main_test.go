package inspector_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test: every
// runtime, server, stream and browser a test starts must stop completely.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
