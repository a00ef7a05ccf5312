package rivetpg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

// testURL returns the test database's URL. When the database cannot be
// reached the test is skipped, or fails if the CI environment variable is
// set.
func testURL(t testing.TB) string {
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

var reach struct {
	once sync.Once
	err  error
}

// freshSchema returns the name of a schema that does not exist yet and is
// dropped, with everything in it, when the test ends.
func freshSchema(t testing.TB) string {
	t.Helper()
	url := testURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rivet_test_" + hex.EncodeToString(b[:])
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

// openFresh opens a driver on a new, migrated schema and closes it when
// the test ends.
func openFresh(t testing.TB) *rivetpg.Driver {
	t.Helper()
	url, schema := testURL(t), freshSchema(t)
	ctx := context.Background()
	if _, err := rivetpg.Migrate(ctx, url, &rivetpg.Options{Schema: schema}); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return openSchema(t, schema)
}

func openSchema(t testing.TB, schema string) *rivetpg.Driver {
	t.Helper()
	d, err := rivetpg.Open(context.Background(), testURL(t), &rivetpg.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }

// exec runs one statement on its own connection.
func exec(t testing.TB, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// queryRow runs one query on its own connection and scans its row.
func queryRow(t testing.TB, url, sql string, dst ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, sql).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
