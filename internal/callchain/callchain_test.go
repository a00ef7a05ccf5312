package callchain

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rivetgo/rivet/rivettype"
)

func TestCycle(t *testing.T) {
	ctx := With(With(context.Background(), "a", "A[x]"), "b", "B[y]")
	if err := Cycle(ctx, "c"); err != nil {
		t.Fatalf("no cycle: %v", err)
	}
	err := Cycle(ctx, "a")
	if !errors.Is(err, rivettype.ErrCallCycle) || !strings.Contains(err.Error(), "A[x] -> B[y] -> A[x]") {
		t.Fatalf("a: %v", err)
	}
	if err := Cycle(ctx, "b"); err == nil || !strings.Contains(err.Error(), "B[y] -> B[y]") {
		t.Fatalf("b: %v", err)
	}
	if got := Encode(ctx); got != "a,b" {
		t.Fatalf("Encode = %q", got)
	}
	back := Decode(context.Background(), "a, b,,"+strings.Repeat("x", maxIDLen+1))
	if got := strings.Join(IDs(back), ","); got != "a,b" {
		t.Fatalf("Decode: %q", got)
	}
	long := Decode(context.Background(), strings.Repeat("i,", 3*MaxLen)+"last")
	if ids := IDs(long); len(ids) != MaxLen || ids[len(ids)-1] != "last" {
		t.Fatalf("long chain: %d ids", len(ids))
	}
}

// FuzzDecode: a header from the network never panics, and what it
// decodes to is bounded and encodes back to ids from it.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "a", "a,b", ",,,", " a , b ", strings.Repeat("x,", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ctx := Decode(context.Background(), v)
		ids := IDs(ctx)
		if len(ids) > MaxLen {
			t.Fatalf("%d ids", len(ids))
		}
		for _, id := range ids {
			if id == "" || len(id) > maxIDLen || strings.Contains(id, ",") {
				t.Fatalf("bad id %q", id)
			}
		}
		_ = Cycle(ctx, "a")
	})
}
