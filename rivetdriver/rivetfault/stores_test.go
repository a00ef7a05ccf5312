package rivetfault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	url := pgURL(t)
	schema := pgSchema(t, url)
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

var pgReach struct {
	once sync.Once
	err  error
}

// pgURL returns the test database's URL; without a reachable database the
// test is skipped, or fails when CI is set.
func pgURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("RIVET_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test"
	}
	pgReach.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			err = c.Ping(ctx)
			_ = c.Close(ctx)
		}
		pgReach.err = err
	})
	if pgReach.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at RIVET_TEST_POSTGRES_URL (%s) is unreachable and CI is set: %v", url, pgReach.err)
		}
		t.Skipf("PostgreSQL unreachable (set RIVET_TEST_POSTGRES_URL): %v", pgReach.err)
	}
	return url
}

// pgSchema names a new schema that is dropped when the test ends.
func pgSchema(t *testing.T, url string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rivet_fault_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func TestFaultsMemory(t *testing.T)   { runStore(t, memStore, 4) }
func TestFaultsEmbedded(t *testing.T) { runStore(t, embedStore, 2) }
func TestFaultsPostgres(t *testing.T) { runStore(t, pgStore, 2) }
