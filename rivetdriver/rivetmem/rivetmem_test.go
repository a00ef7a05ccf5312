package rivetmem_test

import (
	"testing"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetdrivertest"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

func TestConformance(t *testing.T) {
	rivetdrivertest.Exercise(t, func(t *testing.T) rivetdriver.Driver { return rivetmem.New() })
}
