package rivetpg_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rivetgo/rivet/internal/pgtest"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

// testURL returns the test database's URL (see internal/pgtest).
func testURL(t testing.TB) string { return pgtest.URL(t) }

// freshSchema returns the name of a schema that does not exist yet and is
// dropped, with everything in it, when the test ends.
func freshSchema(t testing.TB) string {
	_, schema := pgtest.Schema(t)
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
