package rivet_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
)

func TestBadInputChangesNothing(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), counterDef)
	h := k.Client.GetOrCreate("counter", rivet.Key{"b"})
	must[int](t)(rivet.Call[int](ctx, h, "increment", 1))
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown actor name", func() error {
			_, err := k.Client.GetOrCreate("nope", rivet.Key{"x"}).Call(ctx, "increment", 1)
			return err
		}, rivet.ErrNotRegistered},
		{"unknown action", func() error { _, err := h.Call(ctx, "decrement", 1); return err }, rivet.ErrActionNotFound},
		{"too few arguments", func() error { _, err := h.Call(ctx, "increment"); return err }, rivet.ErrInvalidArguments},
		{"too many arguments", func() error { _, err := h.Call(ctx, "increment", 1, 2); return err }, rivet.ErrInvalidArguments},
		{"wrong argument type", func() error { _, err := h.Call(ctx, "increment", "one"); return err }, rivet.ErrInvalidArguments},
		{"unencodable argument", func() error { _, err := h.Call(ctx, "increment", func() {}); return err }, rivet.ErrInvalidArguments},
		{"oversized key", func() error {
			_, err := k.Client.GetOrCreate("counter", rivet.Key{strings.Repeat("k", 2000)}).Call(ctx, "getCount")
			return err
		}, rivet.ErrInvalidKey},
	}
	for _, c := range cases {
		err := c.call()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		var re *rivet.Error
		if !errors.As(err, &re) || re.Message == "" {
			t.Errorf("%s: not a structured error: %v", c.name, err)
		}
	}
	if got := must[int](t)(rivet.Call[int](ctx, h, "getCount")); got != 1 {
		t.Fatalf("count = %d after bad input, want 1", got)
	}
}

func TestRegistryRejectsUnservableActions(t *testing.T) {
	type S struct{}
	cases := map[string]any{
		"not a func":         42,
		"no context":         func(n int) int { return n },
		"wrong context":      func(c *rivet.Ctx[int]) {},
		"chan arg":           func(c *rivet.Ctx[S], ch chan int) {},
		"func result":        func(c *rivet.Ctx[S]) func() { return nil },
		"second not error":   func(c *rivet.Ctx[S]) (int, int) { return 0, 0 },
		"three results":      func(c *rivet.Ctx[S]) (int, int, error) { return 0, 0, nil },
		"variadic":           func(c *rivet.Ctx[S], xs ...int) {},
		"nested unencodable": func(c *rivet.Ctx[S], x struct{ F func() }) {},
	}
	for name, fn := range cases {
		def := rivet.NewActor("a", rivet.Opts[S]{}).Action("x", fn)
		if _, err := rivet.NewRegistry(def); err == nil {
			t.Errorf("%s: registry accepted it", name)
		}
	}
	if _, err := rivet.NewRegistry(rivet.NewActor("a", rivet.Opts[struct{ C chan int }]{})); err == nil {
		t.Error("unencodable state accepted")
	}
	if _, err := rivet.NewRegistry(counterDef, counterDef); err == nil {
		t.Error("duplicate name accepted")
	}
	ok := rivet.NewActor("ok", rivet.Opts[S]{}).
		Action("a", func(c *rivet.Ctx[S]) {}).
		Action("b", func(c *rivet.Ctx[S]) error { return nil }).
		Action("c", func(c *rivet.Ctx[S], x map[string][]int, y *S) (int, error) { return 0, nil }).
		Action("d", func(c *rivet.Ctx[S]) []byte { return nil })
	if _, err := rivet.NewRegistry(ok); err != nil {
		t.Fatalf("valid definition rejected: %v", err)
	}
}

var optionalDef = rivet.NewActor("optional", rivet.Opts[struct{}]{}).
	Action("greet", func(c *rivet.Ctx[struct{}], name string, title *string, tags []string) string {
		s := name
		if title != nil {
			s = *title + " " + s
		}
		return fmt.Sprint(s, len(tags))
	})

// Trailing pointer/slice/map/interface parameters may be left out, as a
// JavaScript caller leaves out optional arguments; required ones may not.
func TestOptionalTrailingArguments(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), optionalDef)
	h := k.Client.GetOrCreate("optional", nil)
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"ada"}, "ada0"},
		{[]any{"ada", "dr"}, "dr ada0"},
		{[]any{"ada", nil, []string{"x", "y"}}, "ada2"},
	} {
		if got := must[string](t)(rivet.Call[string](ctx, h, "greet", tc.args...)); got != tc.want {
			t.Fatalf("greet%v = %q, want %q", tc.args, got, tc.want)
		}
	}
	if _, err := h.Call(ctx, "greet"); !errors.Is(err, rivet.ErrInvalidArguments) {
		t.Fatalf("missing required argument: %v", err)
	}
	if _, err := h.Call(ctx, "greet", "a", nil, nil, 4); !errors.Is(err, rivet.ErrInvalidArguments) {
		t.Fatalf("extra argument: %v", err)
	}
}
