package rivet_test

import (
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
)

type regState struct{ N int }

// TestRegistryRefusesClashes: a definition that could not be served as
// written is refused with an error naming the clash, instead of letting
// the last definition win.
func TestRegistryRefusesClashes(t *testing.T) {
	noop := func(c *rivet.Ctx[regState]) {}
	cases := map[string]struct {
		defs []rivet.Definition
		want string
	}{
		"action twice": {
			[]rivet.Definition{rivet.NewActor("a", rivet.Opts[regState]{}).Action("x", noop).Action("y", noop).Action("x", func(c *rivet.Ctx[regState]) int { return 1 })},
			`actor "a": action "x" is defined twice`,
		},
		"actor name twice": {
			[]rivet.Definition{rivet.NewActor("a", rivet.Opts[regState]{}), rivet.NewActor("a", rivet.Opts[struct{}]{})},
			`actor name "a" registered twice`,
		},
		"empty action name": {
			[]rivet.Definition{rivet.NewActor("a", rivet.Opts[regState]{}).Action("", noop)},
			"empty name",
		},
		"unroutable action name": {
			[]rivet.Definition{rivet.NewActor("a", rivet.Opts[regState]{}).Action("a/b", noop)},
			`action "a/b": a name may not contain '/'`,
		},
		"invalid UTF-8": {
			[]rivet.Definition{rivet.NewActor("a", rivet.Opts[regState]{}).Action("a\xff", noop)},
			"valid UTF-8",
		},
		"empty actor name": {
			[]rivet.Definition{rivet.NewActor("", rivet.Opts[regState]{})},
			"empty name",
		},
	}
	for name, tc := range cases {
		_, err := rivet.NewRegistry(tc.defs...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
	}
}

// TestSignatureErrorNamesTheTypeToWrite: a wrong first parameter is
// reported with the context type as the docs spell it (rivet.Ctx for an
// actor with state only, rivet.None for unused parameters).
func TestSignatureErrorNamesTheTypeToWrite(t *testing.T) {
	type other struct{}
	type conn struct{ U string }
	cases := []struct {
		def  rivet.Definition
		want string
	}{
		{
			rivet.NewActor("a", rivet.Opts[regState]{}).Action("x", func(c *rivet.Ctx[other]) {}),
			"first parameter must be *rivet.Ctx[rivet_test.regState], not *rivet.Ctx[rivet_test.other]",
		},
		{
			rivet.NewActor("a", rivet.Opts[regState]{}).Action("x", func(n int) {}),
			"first parameter must be *rivet.Ctx[rivet_test.regState], not int",
		},
		{
			rivet.NewActor("a", rivet.Opts[regState]{}).Action("x", func() {}),
			"first parameter must be *rivet.Ctx[rivet_test.regState], not none",
		},
		{
			rivet.NewActor("a", rivet.Options[regState, conn, rivet.None]{}).Action("x", func(c *rivet.Ctx[regState]) {}),
			"first parameter must be *rivet.Context[rivet_test.regState, rivet_test.conn, rivet.None], not *rivet.Ctx[rivet_test.regState]",
		},
	}
	for _, tc := range cases {
		_, err := rivet.NewRegistry(tc.def)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v\nwant it to contain %q", err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "struct {}") {
			t.Errorf("err = %v: spells rivet.None as struct {}", err)
		}
	}
}
