package rivet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettest"
)

type counterState struct {
	Count int `json:"count"`
}

type hookLog struct {
	Events []string `json:"events"`
}

var counterDef = rivet.NewActor("counter", rivet.Opts[counterState]{}).
	Action("increment", func(c *rivet.Ctx[counterState], n int) (int, error) {
		c.State.Count += n
		c.Broadcast("newCount", c.State.Count)
		return c.State.Count, nil
	}).
	Action("getCount", func(c *rivet.Ctx[counterState]) int { return c.State.Count }).
	Action("fail", func(c *rivet.Ctx[counterState], n int) error {
		c.State.Count += n
		if err := c.KV().Put(rivet.K("failed"), true); err != nil {
			return err
		}
		if _, err := c.Schedule().After(time.Hour, "increment", 1); err != nil {
			return err
		}
		return rivet.UserError("nope", rivet.WithCode("custom"), rivet.WithMetadata(map[string]any{"n": n}))
	}).
	Action("panic", func(c *rivet.Ctx[counterState]) error {
		c.State.Count += 1000
		panic("boom")
	}).
	Action("secret", func(c *rivet.Ctx[counterState]) error {
		return errors.New("database password is hunter2")
	}).
	Action("kvHas", func(c *rivet.Ctx[counterState]) (bool, error) {
		var v bool
		return c.KV().Get(rivet.K("failed"), &v)
	}).
	Action("schedules", func(c *rivet.Ctx[counterState]) int { return len(c.Schedule().List()) })

// drivers runs f against each driver: memory and embedded.
func drivers(t *testing.T, f func(t *testing.T, open func(t *testing.T) rivetdriver.Driver)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		d := rivetmem.New()
		f(t, func(t *testing.T) rivetdriver.Driver { return d })
	})
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		var cur rivetdriver.Driver
		f(t, func(t *testing.T) rivetdriver.Driver {
			if cur != nil {
				_ = cur.Close()
			}
			d, err := rivetembed.Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			cur = d
			t.Cleanup(func() { _ = d.Close() })
			return d
		})
	})
}

func mustRegistry(t testing.TB, defs ...rivet.Definition) *rivet.Registry {
	t.Helper()
	reg, err := rivet.NewRegistry(defs...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kit starts a test runtime on driver d (not closed by the kit).
func kit(t *testing.T, d rivetdriver.Driver, defs ...rivet.Definition) *rivettest.Kit {
	t.Helper()
	return rivettest.New(t, mustRegistry(t, defs...), rivettest.WithDriver(d))
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func newMem() *rivetmem.Driver { return rivetmem.New() }
