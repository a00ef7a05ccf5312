package main

import (
	"context"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivettest"
)

func TestCounter(t *testing.T) {
	k := rivettest.New(t, registry) // stopped when the test ends
	ctx := context.Background()
	h := k.Client.GetOrCreate("counter", rivet.Key{"test"})

	for i := 1; i <= 3; i++ {
		n, err := rivet.Call[int](ctx, h, "increment", 2)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2*i {
			t.Fatalf("increment #%d = %d, want %d", i, n, 2*i)
		}
	}

	// Idle for a minute (fake time): the actor sleeps and leaves memory.
	id, err := h.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k.Advance(time.Minute)
	if k.Awake(id) {
		t.Fatal("actor still awake after its sleep timeout")
	}
	// The next call wakes it with its state intact.
	if n, err := rivet.Call[int](ctx, h, "getCount"); err != nil || n != 6 {
		t.Fatalf("getCount after sleep = %d, %v; want 6", n, err)
	}
}
