package rivetpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestUpgrade plays a release that adds a migration: a schema migrated by
// the old build is refused by the new one until migrated, and migrating
// applies only the new step.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	url := os.Getenv("RIVET_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable and CI is set: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "rivet_test_" + hex.EncodeToString(b[:])
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+quote(schema)+" CASCADE")
	}()

	old := migrations
	next := append(old[:len(old):len(old)], migration{old[len(old)-1].version + 1, "9999_test_column",
		"ALTER TABLE {{schema}}.actors ADD COLUMN test_note text"})
	if applied, err := migrate(ctx, conn, schema, old); err != nil || len(applied) != len(old) {
		t.Fatalf("migrate with the old build = %q, %v", applied, err)
	}
	err = checkSchema(ctx, conn, schema, "the test database", next)
	if !errors.Is(err, ErrSchemaNotCurrent) || !strings.Contains(err.Error(), "rivet migrate") ||
		!strings.Contains(err.Error(), "is at version 1, this build needs version 2") {
		t.Fatalf("checkSchema of an older schema: %v", err)
	}
	applied, err := migrate(ctx, conn, schema, next)
	if err != nil || len(applied) != 1 || applied[0] != "9999_test_column" {
		t.Fatalf("migrate with the new build = %q, %v; want only the new step", applied, err)
	}
	if err := checkSchema(ctx, conn, schema, "the test database", next); err != nil {
		t.Fatalf("checkSchema after upgrade: %v", err)
	}
	// The old build now refuses the newer schema.
	if err := checkSchema(ctx, conn, schema, "the test database", old); err == nil || !strings.Contains(err.Error(), "upgrade rivet") {
		t.Fatalf("old build's checkSchema of a newer schema: %v", err)
	}
}
