package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshDatabase creates an empty database on the test PostgreSQL server
// and returns its URL; it is dropped when the test ends. Unreachable
// PostgreSQL skips the test, or fails it when CI is set.
func freshDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("RIVET_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL (RIVET_TEST_POSTGRES_URL=%s) unreachable and CI is set: %v", base, err)
		}
		t.Skipf("PostgreSQL unreachable (set RIVET_TEST_POSTGRES_URL): %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "rivet_cli_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if admin, err := pgx.Connect(ctx, base); err == nil {
			_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			admin.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestMigrateAndServeOnPostgres(t *testing.T) {
	db := freshDatabase(t)
	out, err := cli(t, "migrate", "--postgres", db)
	if err != nil || !strings.Contains(out, "applied 0001_initial") {
		t.Fatalf("first migrate: %v\n%s", err, out)
	}
	out, err = cli(t, "migrate", "--postgres", db)
	if err != nil || !strings.Contains(out, "schema is up to date") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}

	// Two servers in turn on the same database: the second sees the
	// first one's writes.
	for i, want := range []string{"3", "6"} {
		ctx, cancel := context.WithCancel(context.Background())
		buf := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--postgres", db, "--log-level", "error"}, buf)
		}()
		base := buf.waitFor(t, regexp.MustCompile(`endpoint\s+(http://\S+)`), done)
		if !strings.Contains(buf.String(), "store      postgres, ") {
			t.Fatalf("startup output:\n%s", buf.String())
		}
		resp, err := http.Post(base+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=pg",
			"application/json", strings.NewReader(`{"args":[3]}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"output":`+want) {
			t.Fatalf("server %d: increment answered %s, want output %s", i, body, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
	}

	_, err = cli(t, "migrate", "--postgres", "postgres://postgres:secret@127.0.0.1:1/nowhere")
	if err == nil || strings.Contains(oneLine(err), "secret") || !strings.Contains(oneLine(err), `database "nowhere" on 127.0.0.1:1`) {
		t.Fatalf("unreachable database: %v", err)
	}
	t.Logf("unreachable database: %s", oneLine(err))
}
