package rivetpg

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migration is one step of the schema. Steps are applied in order, each
// exactly once, and never edited after release: a change to the schema is
// a new step.
type migration struct {
	version int
	name    string
	// sql is run with {{schema}} replaced by the quoted schema name.
	sql string
}

// migrations is the schema this build expects, oldest first.
var migrations = []migration{
	{1, "0001_initial", `
CREATE TABLE {{schema}}.actors (
	id            bytea PRIMARY KEY,
	namespace     bytea NOT NULL,
	name          bytea NOT NULL,
	key           bytea[] NOT NULL,
	-- SHA-256 of namespace, name and key, length-prefixed: the live-key index.
	key_hash      bytea NOT NULL,
	input         bytea,
	created_at    timestamptz NOT NULL,
	-- Nanoseconds below the microsecond that timestamptz keeps.
	created_at_ns smallint NOT NULL,
	generation    bigint NOT NULL DEFAULT 0,
	initialized   boolean NOT NULL DEFAULT false,
	destroyed     boolean NOT NULL DEFAULT false,
	state         bytea
) WITH (fillfactor = 80); -- room for HOT updates of generation and state
CREATE UNIQUE INDEX actors_live_key ON {{schema}}.actors (key_hash) WHERE NOT destroyed;
CREATE INDEX actors_by_name ON {{schema}}.actors (namespace, name, id);

CREATE TABLE {{schema}}.kv (
	actor_id bytea NOT NULL,
	key      bytea NOT NULL,
	value    bytea NOT NULL,
	PRIMARY KEY (actor_id, key)
);

CREATE TABLE {{schema}}.alarms (
	actor_id      bytea NOT NULL,
	id            bytea NOT NULL,
	at            timestamptz NOT NULL,
	at_ns         smallint NOT NULL,
	action        bytea NOT NULL,
	args          bytea,
	created_at    timestamptz NOT NULL,
	created_at_ns smallint NOT NULL,
	PRIMARY KEY (actor_id, id)
);
CREATE INDEX alarms_by_time ON {{schema}}.alarms (at, at_ns, id);
`},
}

// SchemaVersion is the schema version this build reads and writes: the
// version of its last migration.
var SchemaVersion = migrations[len(migrations)-1].version

// Migrate brings the schema named by opts (default "rivet") in the database
// at url up to SchemaVersion and returns the names of the migrations it
// applied, oldest first; none when the schema was already current.
//
// All pending migrations run in one transaction that first takes a
// transaction-scoped advisory lock derived from the schema name, so
// several processes may call Migrate at once: one applies the migrations
// and the others then find nothing to do. Each applied migration is
// recorded in the schema's schema_migrations table. Migrate refuses a
// schema recorded at a version newer than this build knows.
func Migrate(ctx context.Context, url string, opts *Options) (applied []string, err error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	cfg, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.conn)
	if err != nil {
		return nil, fmt.Errorf("rivetpg: migrate: connect to %s: %w", cfg.where, err)
	}
	defer closeConn(conn)
	applied, err = migrate(ctx, conn, o.schema, migrations)
	if err != nil {
		return nil, fmt.Errorf("rivetpg: migrate schema %q in %s: %w", o.schema, cfg.where, err)
	}
	return applied, nil
}

// migrateLockKey is the advisory lock key that serializes migrations of
// one schema.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("rivetpg migrate\x00" + schema))
	return int64(h.Sum64())
}

func migrate(ctx context.Context, conn *pgx.Conn, schema string, steps []migration) ([]string, error) {
	q := quote(schema)
	latest := steps[len(steps)-1].version
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey(schema)); err != nil {
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	for _, stmt := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + q,
		"CREATE TABLE IF NOT EXISTS " + q + `.schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return nil, err
		}
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+q+".schema_migrations").Scan(&current); err != nil {
		return nil, err
	}
	if current > latest {
		return nil, errNewer(schema, current, latest)
	}
	var applied []string
	for _, m := range steps {
		if m.version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{{schema}}", q)); err != nil {
			return nil, fmt.Errorf("apply %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+q+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return nil, fmt.Errorf("record %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return applied, nil
}

func errNewer(schema string, version, latest int) error {
	return fmt.Errorf("schema %q is at version %d, newer than version %d that this build of rivet knows; upgrade rivet", schema, version, latest)
}

// ErrSchemaNotCurrent is wrapped by Open's error when the schema is
// missing or older than this build expects and Options.AutoMigrate is not
// set. Run "rivet migrate" (or Migrate) and open again.
var ErrSchemaNotCurrent = errors.New("rivetpg: database schema is not current")

// checkSchema verifies that the schema is at the version of the last of
// steps.
func checkSchema(ctx context.Context, conn *pgx.Conn, schema, where string, steps []migration) error {
	latest := steps[len(steps)-1].version
	var current int
	err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+quote(schema)+".schema_migrations").Scan(&current)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") { // undefined_table, invalid_schema_name
		current, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("rivetpg: open %s: read schema version: %w", where, err)
	}
	switch {
	case current > latest:
		return fmt.Errorf("rivetpg: open %s: %w", where, errNewer(schema, current, latest))
	case current == 0:
		return fmt.Errorf("%w: schema %q in %s is missing or was never migrated; run \"rivet migrate --postgres URL\" (or rivetpg.Migrate) to create it, or set rivetpg.Options.AutoMigrate",
			ErrSchemaNotCurrent, schema, where)
	case current < latest:
		return fmt.Errorf("%w: schema %q in %s is at version %d, this build needs version %d; run \"rivet migrate --postgres URL\" (or rivetpg.Migrate) to upgrade it, or set rivetpg.Options.AutoMigrate",
			ErrSchemaNotCurrent, schema, where, current, latest)
	}
	return nil
}

func quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }
