package rivet_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
)

func TestCounterSurvivesRestart(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		d := open(t)
		k := kit(t, d, counterDef)
		h := k.Client.GetOrCreate("counter", rivet.Key{"a"})
		for i := 1; i <= 3; i++ {
			got := must[int](t)(rivet.Call[int](ctx, h, "increment", 2))
			if got != 2*i {
				t.Fatalf("increment #%d = %d, want %d", i, got, 2*i)
			}
		}
		if err := k.Runtime.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		d = open(t)
		k2 := kit(t, d, counterDef)
		got := must[int](t)(rivet.Call[int](ctx, k2.Client.GetOrCreate("counter", rivet.Key{"a"}), "getCount"))
		if got != 6 {
			t.Fatalf("after restart getCount = %d, want 6", got)
		}
		// A different key is a different actor.
		got = must[int](t)(rivet.Call[int](ctx, k2.Client.GetOrCreate("counter", rivet.Key{"b"}), "getCount"))
		if got != 0 {
			t.Fatalf("other key getCount = %d, want 0", got)
		}
	})
}

func TestFailedTurnRollsBack(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		k := kit(t, open(t), counterDef)
		h := k.Client.GetOrCreate("counter", rivet.Key{"rb"})
		must[int](t)(rivet.Call[int](ctx, h, "increment", 5))

		_, err := h.Call(ctx, "fail", 7)
		var re *rivet.Error
		if !errors.As(err, &re) || re.Group != "user" || re.Code != "custom" || re.Message != "nope" {
			t.Fatalf("fail: err = %#v, want user.custom nope", err)
		}
		if md, ok := re.Metadata.(map[string]any); !ok || md["n"] != 7 {
			t.Fatalf("metadata = %#v", re.Metadata)
		}
		_, err = h.Call(ctx, "panic")
		if !errors.As(err, &re) || re.Code != "internal_error" || re.Message != "An internal error occurred" {
			t.Fatalf("panic: err = %v, want masked internal_error", err)
		}
		_, err = h.Call(ctx, "secret")
		if err == nil || re == nil || errors.As(err, &re) && re.Message != "An internal error occurred" {
			t.Fatalf("secret: err = %v, want masked", err)
		}
		if got := must[int](t)(rivet.Call[int](ctx, h, "getCount")); got != 5 {
			t.Fatalf("count after failed turns = %d, want 5", got)
		}
		if has := must[bool](t)(rivet.Call[bool](ctx, h, "kvHas")); has {
			t.Fatal("KV write of a failed turn is visible")
		}
		if n := must[int](t)(rivet.Call[int](ctx, h, "schedules")); n != 0 {
			t.Fatalf("failed turn left %d schedules", n)
		}
	})
}

func TestConcurrentCallersAreSerialized(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		k := kit(t, open(t), counterDef)
		h := k.Client.GetOrCreate("counter", rivet.Key{"hot"})
		const callers, each = 16, 50
		var mu sync.Mutex
		seen := map[int]bool{}
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for range each {
					v, err := rivet.Call[int](ctx, h, "increment", 1)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[v] {
						t.Errorf("result %d returned twice: lost update", v)
					}
					seen[v] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if got := must[int](t)(rivet.Call[int](ctx, h, "getCount")); got != callers*each {
			t.Fatalf("count = %d, want %d", got, callers*each)
		}
	})
}
