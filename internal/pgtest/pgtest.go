// Package pgtest gives tests the PostgreSQL server they run against and
// schemas of their own on it.
//
// The server is RIVET_TEST_POSTGRES_URL, by default
// postgres://postgres@127.0.0.1:5432/test. A test that needs it is
// skipped when it does not answer, or fails when the CI environment
// variable is set.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var reach struct {
	once sync.Once
	err  error
}

// URL returns the test server's URL after checking, once per process,
// that it answers.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("RIVET_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test"
	}
	reach.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			err = c.Ping(ctx)
			_ = c.Close(ctx)
		}
		reach.err = err
	})
	if reach.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at RIVET_TEST_POSTGRES_URL (%s) is unreachable and CI is set: %v", url, reach.err)
		}
		t.Skipf("PostgreSQL unreachable (set RIVET_TEST_POSTGRES_URL): %v", reach.err)
	}
	return url
}

// SchemaName returns the name of a schema that does not exist yet,
// starting with prefix.
func SchemaName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// DropSchema drops schema and everything in it.
func DropSchema(t testing.TB, url, schema string) {
	t.Helper()
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
}

// Schema returns the test server's URL and the name of a new schema on
// it, dropped with everything in it when the test ends.
func Schema(t testing.TB) (url, schema string) {
	t.Helper()
	url = URL(t)
	schema = SchemaName("rivet_test_")
	t.Cleanup(func() { DropSchema(t, url, schema) })
	return url, schema
}
