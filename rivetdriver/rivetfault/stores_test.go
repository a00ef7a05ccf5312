package rivetfault_test

import (
	"context"
	"testing"

	"github.com/rivetgo/rivet/internal/pgtest"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

func memStore(t *testing.T) store {
	d := rivetmem.New()
	t.Cleanup(func() { _ = d.Close() })
	return store{
		name:  "memory",
		open:  func(*testing.T) rivetdriver.Driver { return d },
		final: func(*testing.T) rivetdriver.Driver { return d },
	}
}

// embedStore is the embedded store in a temporary directory; the checks
// read it after a close and reopen.
func embedStore(t *testing.T) store {
	dir := t.TempDir()
	var cur *rivetembed.Driver
	open := func(t *testing.T) rivetdriver.Driver {
		d, err := rivetembed.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		cur = d
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	return store{
		name: "embedded",
		open: open,
		final: func(t *testing.T) rivetdriver.Driver {
			if err := cur.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t)
		},
	}
}

// pgStore is PostgreSQL in a schema of its own, dropped at the end; the
// checks read it through a second driver.
func pgStore(t *testing.T) store {
	url, schema := pgtest.Schema(t)
	open := func(t *testing.T) rivetdriver.Driver {
		d, err := rivetpg.Open(context.Background(), url, &rivetpg.Options{Schema: schema, AutoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	return store{name: "postgres", open: open, final: open}
}

func TestFaultsMemory(t *testing.T)   { runStore(t, memStore, 4) }
func TestFaultsEmbedded(t *testing.T) { runStore(t, embedStore, 2) }
func TestFaultsPostgres(t *testing.T) { runStore(t, pgStore, 2) }
