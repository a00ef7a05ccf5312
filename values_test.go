package rivet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivettype"
)

// A result that does not fit the caller's type is the caller's
// *ResultError, not an actor error; the action ran.
func TestCallResultError(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), counterDef)
	h := k.Client.GetOrCreate("counter", rivet.Key{"r"})
	_, err := rivet.Call[string](ctx, h, "increment", 1)
	var re *rivet.ResultError
	if !errors.As(err, &re) || re.Action != "increment" || re.Type != "string" {
		t.Fatalf("err = %v (%T), want a *rivet.ResultError", err, err)
	}
	if _, ok := rivettype.As(err); ok {
		t.Errorf("%v is also a rivet.Error", err)
	}
	if want := "expected a string (Go string), got the number 1"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	if n := must[int](t)(rivet.Call[int](ctx, h, "getCount")); n != 1 {
		t.Errorf("count = %d: the action should have run", n)
	}
}

// Args.Decode failures are plain errors that name the argument.
func TestArgsDecodeError(t *testing.T) {
	args, err := rivet.RawArgs([]byte{0x82, 0x01, 0x61, 0x78}) // [1, "x"]
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := args.Decode(0, &n); err != nil || n != 1 {
		t.Fatalf("Decode(0) = %d, %v", n, err)
	}
	err = args.Decode(1, &n)
	if _, ok := rivettype.As(err); ok || err == nil || err.Error() != `rivet: argument 2 does not decode into Go int: expected an integer (Go int), got the string "x"` {
		t.Errorf("Decode(1) = %v", err)
	}
	if err := args.Decode(2, &n); err == nil || !strings.Contains(err.Error(), "argument 3 of 2") {
		t.Errorf("Decode(2) = %v", err)
	}
}
