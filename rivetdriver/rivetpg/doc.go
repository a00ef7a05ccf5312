// Package rivetpg is the PostgreSQL rivetdriver.Driver: the production
// store, and the one several rivet processes can share.
//
//	d, err := rivetpg.Open(ctx, "postgres://rivet@db.internal:5432/app?sslmode=verify-full", nil)
//	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: d})
//
// It needs PostgreSQL 13 or newer and uses github.com/jackc/pgx/v5.
//
// # Connection string
//
// Open and Migrate take a libpq connection string, as a URL
// (postgres://user:password@host:5432/dbname?sslmode=require) or as
// keyword=value pairs (host=db dbname=app user=rivet); the PG* environment
// variables (PGHOST, PGPASSWORD, ...) and ~/.pgpass fill in what it leaves
// out, and every libpq parameter pgx knows (sslmode, connect_timeout,
// application_name, target_session_attrs, ...) applies. The driver keeps
// its connections in a pgxpool.Pool, and the pool_* parameters of
// pgxpool.ParseConfig configure it: pool_max_conns=N bounds the
// connections (default max(4, GOMAXPROCS); Options.MaxConns overrides it),
// pool_max_conn_lifetime, pool_max_conn_idle_time and the others apply as
// pgxpool documents them. Errors name the database and host, never the
// password.
//
// # Schema
//
// Everything lives in one PostgreSQL schema, "rivet" unless
// Options.Schema says otherwise, so several stores can share a database.
// Strings of the driver contract (ids, namespaces, names, keys, alarm ids
// and actions) are stored as bytea, because the contract treats them as
// byte strings: they may hold NUL bytes and invalid UTF-8, and they sort
// as unsigned bytes, which is how bytea compares.
//
//	actors         one row per actor, destroyed ones included (their id stays taken):
//	               id (primary key), namespace, name, key bytea[], key_hash, input,
//	               created_at, generation, initialized, destroyed, state
//	kv             (actor_id, key) primary key, value: an actor's key/value space;
//	               KVList is a range scan of the primary key
//	alarms         (actor_id, id) primary key, at, action, args, created_at;
//	               indexed by (at, id) for Alarms
//	schema_migrations
//	               version, name, applied_at of each migration applied
//
// A live actor's namespace, name and key are unique through a partial
// unique index on key_hash (SHA-256 of the length-prefixed triple) WHERE
// NOT destroyed, so keys of any length are indexable and destroying an
// actor frees its key. Times are timestamptz, which keeps microseconds,
// plus a smallint column (created_at_ns, at_ns) with the nanoseconds below
// the microsecond, so that times round-trip exactly.
//
// # Migrations
//
// The schema is created and changed only by numbered migrations compiled
// into the binary. [Migrate] applies the pending ones in one transaction
// that first takes a transaction-scoped advisory lock derived from the
// schema name, so nodes starting together may all call it: one migrates,
// the others wait and find nothing to do. Each applied migration is a row
// of schema_migrations. [Open] checks the recorded version: a schema that
// is missing or older than the binary is refused with an error wrapping
// [ErrSchemaNotCurrent] that says to run "rivet migrate"; a schema newer
// than the binary is refused with a request to upgrade rivet. With
// Options.AutoMigrate, Open migrates instead of refusing; the rivet CLI
// sets it for "rivet serve" by default, so a single node just starts,
// while deployments that roll out several versions run "rivet migrate"
// as a separate step.
//
// # Commits and fencing
//
// [Driver.Activate] is one UPDATE that increments the actor's generation
// and returns the record and state. Every commit carries the generation of
// the incarnation that produced it, and [Driver.Commit] applies a whole
// batch in one transaction: it locks the batch's actor rows (SELECT ... FOR
// NO KEY UPDATE, in id order so that concurrent batches cannot deadlock),
// decides each commit in batch order (ErrNotFound, ErrDestroyed when the
// actor is destroyed or was destroyed earlier in the batch, ErrFenced when
// the generation is not the stored one), and writes the net effect of the
// accepted commits with a fixed number of multi-row statements whatever
// the batch size (unnest arrays: one DELETE or upsert per table and kind,
// one UPDATE of actors), then COMMIT: two round trips per batch. An
// Activate waits for the row lock, so a commit either lands before a new
// generation or is fenced by it, even when the commit and the activation
// come from different processes. This is what makes it safe for a node
// that lost an actor to keep writing: its commits are refused.
//
// # Durability and failures
//
// Commit returns after PostgreSQL acknowledged the COMMIT. With the
// server's default synchronous_commit=on that means the transaction is in
// the write-ahead log on disk (and on synchronous standbys if configured):
// an acknowledged commit survives a crash of the server or the machine.
// The driver does not change synchronous_commit; a server or role set to
// off acknowledges before the flush, and a crash may then lose the last
// acknowledged commits. Turns waiting for commits share one transaction
// per batch, and PostgreSQL's own group commit shares WAL flushes between
// concurrent batches.
//
// Every call honours its context. A lost connection is an error, never a
// silent success. If the connection is lost after COMMIT was sent, the
// outcome is unknown to the client; the driver then asks the server with
// pg_xact_status (on a new connection, for up to ten seconds, even if the
// context was canceled) and reports the real outcome, or an error wrapping
// [ErrCommitUnknown] if it cannot learn it. The runtime treats any Commit
// error as a failed commit and restarts the affected actors from what is
// stored, so an unknown outcome never leaves an actor's memory out of step
// with the database. A connection idle for more than a second is pinged
// before it is reused, so a restarted server costs a reconnect rather than
// a failed call.
package rivetpg
