package rivetpg_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test: every
// driver closes its connections, every runtime stops completely.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
