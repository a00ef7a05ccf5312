package rivetpg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetdrivertest"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	testURL(t)
	rivetdrivertest.Exercise(t, func(t *testing.T) rivetdriver.Driver { return openFresh(t) })
}

func TestDurable(t *testing.T) {
	t.Parallel()
	url, schema := testURL(t), freshSchema(t)
	if _, err := rivetpg.Migrate(context.Background(), url, &rivetpg.Options{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	// The suite's directory stands for the store; here the store is the
	// schema, reopened by a new Driver each time.
	rivetdrivertest.ExerciseDurable(t, func(t *testing.T, _ string) rivetdriver.Driver { return openSchema(t, schema) })
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testURL(t)

	t.Run("FreshThenCurrent", func(t *testing.T) {
		t.Parallel()
		o := &rivetpg.Options{Schema: freshSchema(t)}
		applied, err := rivetpg.Migrate(ctx, url, o)
		if err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		if len(applied) != rivetpg.SchemaVersion || applied[0] != "0001_initial" {
			t.Fatalf("first Migrate applied %q, want all %d migrations starting with 0001_initial", applied, rivetpg.SchemaVersion)
		}
		again, err := rivetpg.Migrate(ctx, url, o)
		if err != nil || len(again) != 0 {
			t.Fatalf("second Migrate = %q, %v; want nothing applied", again, err)
		}
		d, err := rivetpg.Open(ctx, url, o)
		if err != nil {
			t.Fatalf("Open after Migrate: %v", err)
		}
		_ = d.Close()
	})

	t.Run("OpenRefusesMissingSchema", func(t *testing.T) {
		t.Parallel()
		schema := freshSchema(t)
		_, err := rivetpg.Open(ctx, url, &rivetpg.Options{Schema: schema})
		if !errors.Is(err, rivetpg.ErrSchemaNotCurrent) {
			t.Fatalf("Open of an unmigrated schema: %v, want ErrSchemaNotCurrent", err)
		}
		for _, want := range []string{`rivet migrate`, schema, "AutoMigrate"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open error %q does not mention %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "password") {
			t.Errorf("Open error leaks connection details: %q", err)
		}
	})

	t.Run("NewerSchemaRefused", func(t *testing.T) {
		t.Parallel()
		o := &rivetpg.Options{Schema: freshSchema(t)}
		if _, err := rivetpg.Migrate(ctx, url, o); err != nil {
			t.Fatal(err)
		}
		exec(t, url, `INSERT INTO `+quote(o.Schema)+`.schema_migrations (version, name) VALUES (999, 'from the future')`)
		if _, err := rivetpg.Open(ctx, url, o); err == nil || !strings.Contains(err.Error(), "upgrade rivet") {
			t.Fatalf("Open of a newer schema: %v, want a refusal asking to upgrade", err)
		}
		if _, err := rivetpg.Migrate(ctx, url, o); err == nil || !strings.Contains(err.Error(), "upgrade rivet") {
			t.Fatalf("Migrate of a newer schema: %v, want a refusal asking to upgrade", err)
		}
	})

	t.Run("AutoMigrate", func(t *testing.T) {
		t.Parallel()
		o := &rivetpg.Options{Schema: freshSchema(t), AutoMigrate: true}
		d, err := rivetpg.Open(ctx, url, o)
		if err != nil {
			t.Fatalf("Open with AutoMigrate: %v", err)
		}
		defer d.Close()
		if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
			t.Fatal(err)
		}
		if applied, err := rivetpg.Migrate(ctx, url, o); err != nil || len(applied) != 0 {
			t.Fatalf("Migrate after AutoMigrate = %q, %v", applied, err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		o := &rivetpg.Options{Schema: freshSchema(t)}
		const n = 4
		results := make([][]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = rivetpg.Migrate(ctx, url, o) })
		}
		wg.Wait()
		total := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("concurrent Migrate %d: %v", i, errs[i])
			}
			total += len(results[i])
		}
		if total != rivetpg.SchemaVersion {
			t.Fatalf("concurrent Migrates applied %d migrations in all, want each of the %d once: %q", total, rivetpg.SchemaVersion, results)
		}
		var rows int
		queryRow(t, url, `SELECT count(*) FROM `+quote(o.Schema)+`.schema_migrations`, &rows)
		if rows != rivetpg.SchemaVersion {
			t.Fatalf("schema_migrations has %d rows, want %d", rows, rivetpg.SchemaVersion)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := rivetpg.Open(ctx, "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2", &rivetpg.Options{Schema: "s"}); err == nil ||
		!strings.HasPrefix(err.Error(), "rivetpg: ") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open of an unreachable server: %v, want a rivetpg error without the password", err)
	}
	if _, err := rivetpg.Open(ctx, "postgres://127.0.0.1/x?pool_max_conns=zero", nil); err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
		t.Fatalf("Open with a bad pool_max_conns: %v", err)
	}
	if _, err := rivetpg.Open(ctx, "postgres://u:secret@127.0.0.1/x?pool_max_conn_lifetime=soon", nil); err == nil ||
		!strings.Contains(err.Error(), "pool_max_conn_lifetime") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open with a bad pool_max_conn_lifetime: %v, want an error naming it, without the password", err)
	}
	if _, err := rivetpg.Open(ctx, "postgres://127.0.0.1/x", &rivetpg.Options{Schema: strings.Repeat("s", 64)}); err == nil {
		t.Fatal("Open with a 64-byte schema name succeeded")
	}
}

// TestPoolBound: however many calls run at once, the driver opens at most
// pool_max_conns connections; the URL's other pool_* parameters configure
// the pool and are not sent to the server.
func TestPoolBound(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, schema := testURL(t), freshSchema(t)
	app := "rivetpg_bound_" + schema
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	d, err := rivetpg.Open(ctx, url+sep+"application_name="+app+"&pool_max_conns=2&pool_max_conn_lifetime=1h",
		&rivetpg.Options{Schema: schema, AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 10 {
				if _, err := d.GetActor(ctx, "a"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent GetActor: %v", err)
	}
	var n int
	queryRow(t, url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"+app+"'", &n)
	if n < 1 || n > 2 {
		t.Fatalf("the driver has %d connections open, want 1 or 2 (pool_max_conns=2)", n)
	}
}

// TestCommitHonoursContext: a canceled context fails the call, applies
// nothing, and leaves the driver usable.
func TestCommitHonoursContext(t *testing.T) {
	t.Parallel()
	d := openFresh(t)
	ctx := context.Background()
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	rec, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	c := &rivetdriver.Commit{ActorID: "a", Generation: rec.Generation, State: []byte("lost")}
	if err := d.Commit(canceled, []*rivetdriver.Commit{c}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := d.GetActor(canceled, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetActor with a canceled context: %v, want context.Canceled", err)
	}
	c = &rivetdriver.Commit{ActorID: "a", Generation: rec.Generation, State: []byte("kept")}
	if err := d.Commit(ctx, []*rivetdriver.Commit{c}); err != nil || c.Err != nil {
		t.Fatalf("Commit after a canceled one: %v / %v", err, c.Err)
	}
	if _, s, err := d.Activate(ctx, "a"); err != nil || string(s) != "kept" {
		t.Fatalf("state = %q, %v; want kept", s, err)
	}
}

// TestTwoDriversFence: two drivers on one schema (two nodes) fence each
// other through the stored generation.
func TestTwoDriversFence(t *testing.T) {
	t.Parallel()
	a := openFresh(t)
	b := openSchema(t, a.Schema())
	ctx := context.Background()
	if err := a.CreateActor(ctx, rivetdriver.ActorRecord{ID: "x", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	old, _, err := a.Activate(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	cur, _, err := b.Activate(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	stale := &rivetdriver.Commit{ActorID: "x", Generation: old.Generation, State: []byte("old owner")}
	if err := a.Commit(ctx, []*rivetdriver.Commit{stale}); err != nil || !errors.Is(stale.Err, rivetdriver.ErrFenced) {
		t.Fatalf("old owner's commit: %v / %v, want ErrFenced", err, stale.Err)
	}
	fresh := &rivetdriver.Commit{ActorID: "x", Generation: cur.Generation, State: []byte("new owner")}
	if err := b.Commit(ctx, []*rivetdriver.Commit{fresh}); err != nil || fresh.Err != nil {
		t.Fatalf("new owner's commit: %v / %v", err, fresh.Err)
	}
	if _, s, err := a.Activate(ctx, "x"); err != nil || string(s) != "new owner" {
		t.Fatalf("state = %q, %v", s, err)
	}
}

// TestConnectionLoss: when the server drops the driver's connection, the
// next call fails with an error (never a silent success), nothing of a
// failed commit is applied, and the driver reconnects for the call after.
func TestConnectionLoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := testURL(t), freshSchema(t)
	app := "rivetpg_loss_" + schema
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	d, err := rivetpg.Open(ctx, url+sep+"application_name="+app, &rivetpg.Options{Schema: schema, AutoMigrate: true, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rivetpg.SetPingAfter(d, time.Hour) // use the dead connection, do not ping it
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	rec, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	kill := func() {
		t.Helper()
		var n int
		queryRow(t, url, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE application_name = '"+app+"'", &n)
		if n != 1 {
			t.Fatalf("terminated %d backends, want the driver's 1", n)
		}
	}
	kill()
	c := &rivetdriver.Commit{ActorID: "a", Generation: rec.Generation, State: []byte("lost"),
		KVPut: []rivetdriver.KV{{Key: []byte("k"), Value: []byte("lost")}}}
	err = d.Commit(ctx, []*rivetdriver.Commit{c})
	if err == nil {
		t.Fatal("Commit on a terminated connection succeeded")
	}
	if !strings.HasPrefix(err.Error(), "rivetpg: ") || c.Err != nil {
		t.Fatalf("Commit on a terminated connection: %v (commit Err %v)", err, c.Err)
	}
	// Reconnected: the failed commit left nothing, the next one lands.
	if kvs, err := d.KVList(ctx, "a", rivetdriver.ListOptions{}); err != nil || len(kvs) != 0 {
		t.Fatalf("KV after the failed commit = %v, %v; want none", kvs, err)
	}
	c = &rivetdriver.Commit{ActorID: "a", Generation: rec.Generation, State: []byte("kept")}
	if err := d.Commit(ctx, []*rivetdriver.Commit{c}); err != nil || c.Err != nil {
		t.Fatalf("Commit after reconnecting: %v / %v", err, c.Err)
	}
	kill()
	if _, err := d.GetActor(ctx, "a"); err == nil {
		t.Fatal("GetActor on a terminated connection succeeded")
	}
	if _, s, err := d.Activate(ctx, "a"); err != nil || string(s) != "kept" {
		t.Fatalf("state = %q, %v; want kept", s, err)
	}
	// With the idle check on, a connection that died while idle is found
	// by its ping and replaced: the call succeeds.
	rivetpg.SetPingAfter(d, 0)
	kill()
	if rec, err := d.GetActor(ctx, "a"); err != nil || rec.Generation != 2 {
		t.Fatalf("GetActor after an idle connection died = %+v, %v", rec, err)
	}
}

// TestReadState: the inspector's read of a sleeping actor's state does not
// activate it.
func TestReadState(t *testing.T) {
	t.Parallel()
	d := openFresh(t)
	ctx := context.Background()
	for _, id := range []string{"a", "gone"} {
		if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: id, Name: "x", Key: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := d.ReadState(ctx, "a"); err != nil || s != nil {
		t.Fatalf("ReadState before any commit = %q, %v; want nil, nil", s, err)
	}
	a, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := d.Activate(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, []*rivetdriver.Commit{
		{ActorID: "a", Generation: a.Generation, State: []byte("s")},
		{ActorID: "gone", Generation: gone.Generation, Destroy: true},
	}); err != nil {
		t.Fatal(err)
	}
	if s, err := d.ReadState(ctx, "a"); err != nil || string(s) != "s" {
		t.Fatalf("ReadState = %q, %v; want s", s, err)
	}
	if rec, err := d.GetActor(ctx, "a"); err != nil || rec.Generation != a.Generation {
		t.Fatalf("ReadState changed the generation: %+v, %v", rec, err)
	}
	if _, err := d.ReadState(ctx, "gone"); !errors.Is(err, rivetdriver.ErrDestroyed) {
		t.Fatalf("ReadState of a destroyed actor: %v", err)
	}
	if _, err := d.ReadState(ctx, "nobody"); !errors.Is(err, rivetdriver.ErrNotFound) {
		t.Fatalf("ReadState of an unknown actor: %v", err)
	}
}

// TestTimeout: a commit stuck behind a lock held elsewhere fails after
// Options.Timeout when its context has no deadline, applies nothing, and
// the actor commits again once the lock is gone.
func TestTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := testURL(t), freshSchema(t)
	app := "rivetpg_timeout_" + schema
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	d, err := rivetpg.Open(ctx, url+sep+"application_name="+app, &rivetpg.Options{Schema: schema, AutoMigrate: true, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: "a", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	rec, _, err := d.Activate(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another session holds the actor's row.
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+quote(schema)+".actors WHERE id = 'a' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := &rivetdriver.Commit{ActorID: "a", Generation: rec.Generation, State: []byte("blocked")}
	err = d.Commit(ctx, []*rivetdriver.Commit{c})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Commit behind a held lock: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Commit took %v to time out", took)
	}
	if _, _, err := d.Activate(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Activate behind a held lock: %v, want context.DeadlineExceeded", err)
	}
	// The server canceled the abandoned statements: none of the driver's
	// sessions still waits for the lock, so releasing it applies nothing.
	for waiting := 1; waiting > 0; {
		queryRow(t, url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"+app+"' AND wait_event_type = 'Lock'", &waiting)
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d abandoned statements still wait for the lock", waiting)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := d.ReadState(ctx, "a"); err != nil || s != nil {
		t.Fatalf("state after the timed-out commit = %q, %v; want none", s, err)
	}
	if got, err := d.GetActor(ctx, "a"); err != nil || got.Generation != rec.Generation {
		t.Fatalf("generation after the timed-out Activate = %d, %v; want %d (its UPDATE canceled)", got.Generation, err, rec.Generation)
	}
	c = &rivetdriver.Commit{ActorID: "a", Generation: rec.Generation, State: []byte("free")}
	if err := d.Commit(ctx, []*rivetdriver.Commit{c}); err != nil || c.Err != nil {
		t.Fatalf("Commit after the lock was released: %v / %v", err, c.Err)
	}
}
