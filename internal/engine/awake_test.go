package engine

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// With MaxAwake set, creating more actors than the bound puts the ones
// idle the longest to sleep long before their sleep timeout (an hour
// here), and none of them loses what it committed.
func TestMaxAwake(t *testing.T) {
	const max, n = 10, 100
	e := startWith(t, Config{Behaviors: []Behavior{blocker(nil, nil)}, MaxAwake: max})
	e.awake.minIdle = 0
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		rec, _, err := e.Create(ctx, "default", "hooked", []string{fmt.Sprint(i)}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = rec.ID
		if _, err := callCtx(ctx, e, rec.ID, "inc"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.AwakeCount() > max {
		if time.Now().After(deadline) {
			t.Fatalf("%d actors awake, want ≤ %d (max_awake_actors)", e.AwakeCount(), max)
		}
		time.Sleep(time.Millisecond)
	}
	if got := e.Evicted(); got < n-max {
		t.Fatalf("Evicted() = %d, want ≥ %d", got, n-max)
	}
	for i, id := range ids {
		if v, err := callCtx(ctx, e, id, "read"); err != nil || v != 1 {
			t.Fatalf("actor %d after an early sleep: count %d, %v; want 1", i, v, err)
		}
	}
}
