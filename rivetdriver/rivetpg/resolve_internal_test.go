package rivetpg

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestResolve checks how a commit whose connection was lost after COMMIT
// learns its outcome: committed, aborted, or still running and then
// committed.
func TestResolve(t *testing.T) {
	t.Parallel()
	url := os.Getenv("RIVET_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := parseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.conn)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable and CI is set: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	d := &Driver{q: newQueries(quote("unused")), where: cfg.where}
	if err := d.openPool(ctx, cfg, 2); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cause := errors.New("connection lost")

	// xact runs a transaction that takes an xid and ends with end.
	xact := func(end string) string {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var xid string
		if err := tx.QueryRow(ctx, d.q.xactID).Scan(&xid); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, end); err != nil {
			t.Fatal(err)
		}
		return xid
	}
	if err := d.resolve(ctx, xact("COMMIT"), cause); err != nil {
		t.Fatalf("resolve of a committed transaction: %v, want nil", err)
	}
	if err := d.resolve(ctx, xact("ROLLBACK"), cause); err != cause {
		t.Fatalf("resolve of an aborted transaction: %v, want the cause", err)
	}
	if err := d.resolve(ctx, "", cause); !errors.Is(err, ErrCommitUnknown) || !errors.Is(err, cause) {
		t.Fatalf("resolve without a transaction id: %v, want ErrCommitUnknown wrapping the cause", err)
	}

	// Still in progress: resolve waits until it ends.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var xid string
	if err := tx.QueryRow(ctx, d.q.xactID).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.resolve(ctx, xid, cause) }()
	select {
	case err := <-done:
		t.Fatalf("resolve returned %v while the transaction was in progress", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("resolve of a transaction that committed while it waited: %v", err)
	}
}
