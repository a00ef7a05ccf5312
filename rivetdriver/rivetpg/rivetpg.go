package rivetpg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rivetgo/rivet/rivetdriver"
)

var errClosed = fmt.Errorf("rivetpg: %w", rivetdriver.ErrClosed)

// DefaultSchema is the PostgreSQL schema that holds the tables when
// Options.Schema is empty.
const DefaultSchema = "rivet"

// Options tune the driver. The zero value (or a nil *Options) selects the
// defaults.
type Options struct {
	// Schema is the PostgreSQL schema that holds the driver's tables
	// (default "rivet"). Several independent stores can share a database
	// under different schemas.
	Schema string
	// AutoMigrate makes Open apply pending migrations (as Migrate does)
	// instead of refusing a missing or outdated schema. The rivet CLI sets
	// it for "rivet serve" unless told otherwise; programs that run several
	// versions side by side should migrate explicitly.
	AutoMigrate bool
	// MaxConns bounds the driver's connections. Zero means the URL's
	// pool_max_conns parameter if it has one, else max(4, GOMAXPROCS).
	MaxConns int
	// Timeout bounds every call whose context has no deadline (the
	// runtime's commits and activations have none), so that a connection
	// hung by a network partition fails the call instead of blocking it
	// forever. Zero means 30 seconds; negative means no bound.
	Timeout time.Duration
}

const defaultTimeout = 30 * time.Second

type resolved struct {
	schema  string
	timeout time.Duration
}

func (o *Options) resolve() (resolved, error) {
	var r resolved
	r.timeout = defaultTimeout
	if o != nil {
		r.schema = o.Schema
		if o.Timeout != 0 {
			r.timeout = o.Timeout
		}
	}
	if r.schema == "" {
		r.schema = DefaultSchema
	}
	if len(r.schema) > 63 {
		return r, fmt.Errorf("rivetpg: schema name %q is longer than PostgreSQL's 63-byte limit", r.schema)
	}
	return r, nil
}

// config is a parsed connection string.
type config struct {
	pool     *pgxpool.Config // the pool_* parameters applied
	conn     *pgx.ConnConfig // pool.ConnConfig: without the pool_* parameters
	maxConns int             // from pool_max_conns, 0 if absent
	where    string          // database and host, for messages (never the password)
}

// parseURL parses a connection string as pgx does (a postgres:// URL or
// keyword=value pairs, with the PG* environment variables as defaults).
// The pool_* parameters configure the pool, as pgxpool.ParseConfig
// documents, and are not sent to the server.
func parseURL(url string) (config, error) {
	// pgx's parse errors redact the password. The first parse only tells
	// whether pool_max_conns is present: pgxpool.ParseConfig fills in its
	// own default, and ours differs.
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return config{}, fmt.Errorf("rivetpg: parse connection string: %w", err)
	}
	c := config{where: fmt.Sprintf("database %q on %s:%d", cc.Database, cc.Host, cc.Port)}
	if s, ok := cc.RuntimeParams["pool_max_conns"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return config{}, fmt.Errorf("rivetpg: connection string: pool_max_conns %q is not a positive 32-bit integer", s)
		}
		c.maxConns = n
	}
	if c.pool, err = pgxpool.ParseConfig(url); err != nil {
		return config{}, fmt.Errorf("rivetpg: parse connection string: %w", err)
	}
	c.conn = c.pool.ConnConfig
	return c, nil
}

// defaultPingAfter is how long a pooled connection may sit idle before it
// is pinged when it is next taken, so that a server restart costs one
// failed ping, not a failed call.
const defaultPingAfter = time.Second

// openPool sets d.pool to a pool of at most maxConns connections made
// from cfg. Unless pool_min_conns asks otherwise, the pool connects
// lazily, on the first acquire.
func (d *Driver) openPool(ctx context.Context, cfg config, maxConns int) error {
	pc := cfg.pool.Copy()
	pc.MaxConns = int32(min(maxConns, math.MaxInt32))
	d.pingAfter.Store(int64(defaultPingAfter))
	pc.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
		return p.IdleDuration >= time.Duration(d.pingAfter.Load())
	}
	p, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("rivetpg: open: connection pool for %s: %w", cfg.where, err)
	}
	d.pool = p
	return nil
}

// discard takes c, acquired from d.pool, out of the pool and closes it:
// for a connection whose state is unknown after an error pgx did not close
// it for. (Release destroys a connection that is closed or inside a
// transaction instead of reusing it.)
func discard(c *pgxpool.Conn) { closeConn(c.Hijack()) }

// closeConn closes c, waiting at most a second for the server to hear it.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// Driver is the PostgreSQL store. It is safe for concurrent use, and
// several Drivers, in one process or many, may share one schema: every
// commit is checked against the generation stored in the database.
type Driver struct {
	pool    *pgxpool.Pool
	schema  string
	where   string
	timeout time.Duration // see Options.Timeout; <= 0: none
	q       queries
	// pingAfter is the idle time, in nanoseconds, after which a pooled
	// connection is pinged before reuse (defaultPingAfter; tests change it).
	pingAfter atomic.Int64

	// life is held for reading by every call and for writing by Close, so
	// that Close waits for calls under way.
	life   sync.RWMutex
	closed bool
}

var _ rivetdriver.Driver = (*Driver)(nil)

// Open connects to the database at url and checks that the schema is at
// the version this build expects. A missing or older schema is refused
// with an error wrapping ErrSchemaNotCurrent that says to run
// "rivet migrate", unless opts.AutoMigrate is set, in which case Open
// migrates it first. opts may be nil.
//
// url is a libpq connection string, either a URL
// (postgres://user:password@host:5432/dbname?sslmode=disable) or
// keyword=value pairs (host=... dbname=...); the PG* environment
// variables fill in what it leaves out. pool_max_conns=N bounds the
// driver's connections; the other pool_* parameters of pgxpool.ParseConfig
// (pool_max_conn_lifetime, pool_max_conn_idle_time, ...) apply too.
func Open(ctx context.Context, url string, opts *Options) (*Driver, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	cfg, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	maxConns := max(4, runtime.GOMAXPROCS(0))
	if cfg.maxConns > 0 {
		maxConns = cfg.maxConns
	}
	if opts != nil && opts.MaxConns > 0 {
		maxConns = opts.MaxConns
	}
	d := &Driver{schema: o.schema, where: cfg.where, timeout: o.timeout, q: newQueries(quote(o.schema))}
	if err := d.openPool(ctx, cfg, maxConns); err != nil {
		return nil, err
	}
	actx, cancel := d.bound(ctx)
	conn, err := d.pool.Acquire(actx)
	cancel()
	if err != nil {
		d.pool.Close()
		return nil, fmt.Errorf("rivetpg: open: connect to %s: %w", cfg.where, err)
	}
	if opts != nil && opts.AutoMigrate {
		if _, err := migrate(ctx, conn.Conn(), o.schema, migrations); err != nil {
			discard(conn)
			d.pool.Close()
			return nil, fmt.Errorf("rivetpg: open: migrate schema %q in %s: %w", o.schema, cfg.where, err)
		}
	}
	actx, cancel = d.bound(ctx)
	err = checkSchema(actx, conn.Conn(), o.schema, cfg.where, migrations)
	cancel()
	if err != nil {
		discard(conn)
		d.pool.Close()
		return nil, err
	}
	conn.Release()
	return d, nil
}

// Schema is the PostgreSQL schema the driver uses.
func (d *Driver) Schema() string { return d.schema }

// enter starts a call; it fails once the driver is closed. Every successful
// enter is paired with leave.
func (d *Driver) enter() error {
	d.life.RLock()
	if d.closed {
		d.life.RUnlock()
		return errClosed
	}
	return nil
}

func (d *Driver) leave() { d.life.RUnlock() }

// bound applies d.timeout to a context without a deadline.
func (d *Driver) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d.timeout)
}

// with runs f on a pooled connection inside enter/leave. A connection that
// broke (pgx closes it on network errors and canceled contexts) or was
// left inside a transaction is destroyed by Release, not reused.
func (d *Driver) with(ctx context.Context, f func(ctx context.Context, c *pgx.Conn) error) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	ctx, cancel := d.bound(ctx)
	defer cancel()
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rivetpg: connect to %s: %w", d.where, err)
	}
	c := pc.Conn()
	err = f(ctx, c)
	if err != nil && ctx.Err() != nil && c.IsClosed() {
		cancelBackend(c)
	}
	pc.Release()
	return err
}

// cancelBackend asks the server to cancel what the backend of c is still
// running after a done context made pgx close c: without it a statement
// waiting for a lock would run on, and could commit, after its caller gave
// up. The connection is never reused, so the cancel cannot hit a later
// statement.
func cancelBackend(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.PgConn().CancelRequest(ctx)
}

// Close closes the driver's connections once the calls under way return.
// Later calls fail with rivetdriver.ErrClosed; closing twice is a no-op.
func (d *Driver) Close() error {
	d.life.Lock()
	defer d.life.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.pool.Close()
	return nil
}

// keyHash identifies a namespace, name and key in the live-key index:
// SHA-256 of the length-prefixed components, so that no two distinct
// triples share an encoding.
func keyHash(ns, name string, key []string) []byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	put(ns)
	put(name)
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(key)))])
	for _, k := range key {
		put(k)
	}
	return h.Sum(nil)
}

// splitTime splits t into the microsecond instant timestamptz stores and
// the nanoseconds below it.
func splitTime(t time.Time) (time.Time, int16) {
	us := t.Truncate(time.Microsecond)
	return us, int16(t.Sub(us))
}

func joinTime(us time.Time, ns int16) time.Time {
	return us.Add(time.Duration(ns)).UTC()
}

func byteSlices(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func strs(bs [][]byte) []string {
	if len(bs) == 0 {
		return nil
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// recordColumns are the columns scanRecord reads, in order.
const recordColumns = "id, namespace, name, key, input, created_at, created_at_ns, generation, initialized, destroyed"

func scanRecord(row pgx.Row) (rivetdriver.ActorRecord, error) {
	var (
		r            rivetdriver.ActorRecord
		id, ns, name []byte
		key          [][]byte
		created      time.Time
		createdNs    int16
		generation   int64
		input        []byte
	)
	if err := row.Scan(&id, &ns, &name, &key, &input, &created, &createdNs, &generation, &r.Initialized, &r.Destroyed); err != nil {
		return r, err
	}
	r.ID, r.Namespace, r.Name, r.Key = string(id), string(ns), string(name), strs(key)
	r.Input = input
	r.CreatedAt = joinTime(created, createdNs)
	r.Generation = uint64(generation)
	return r, nil
}

// CreateActor implements rivetdriver.Driver.
func (d *Driver) CreateActor(ctx context.Context, rec rivetdriver.ActorRecord) error {
	return d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		created, createdNs := splitTime(rec.CreatedAt)
		key := byteSlices(rec.Key)
		tag, err := c.Exec(ctx, d.q.createActor, []byte(rec.ID), []byte(rec.Namespace), []byte(rec.Name), key,
			keyHash(rec.Namespace, rec.Name, rec.Key), rec.Input, created, createdNs, int64(rec.Generation), rec.Initialized)
		if err != nil {
			return fmt.Errorf("rivetpg: create actor %q: %w", rec.ID, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		// A unique index refused the row: the id was used, or a live actor
		// holds the key.
		var holder []byte
		err = c.QueryRow(ctx, d.q.idTaken, []byte(rec.ID)).Scan(&holder)
		switch {
		case err == nil:
			return fmt.Errorf("rivetpg: create actor %q: %w", rec.ID, rivetdriver.ErrDuplicateID)
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("rivetpg: create actor %q: %w", rec.ID, err)
		}
		return fmt.Errorf("rivetpg: create actor %q: namespace %q, name %q, key %q is held by a live actor: %w",
			rec.ID, rec.Namespace, rec.Name, rec.Key, rivetdriver.ErrDuplicateKey)
	})
}

// LookupActor implements rivetdriver.Driver.
func (d *Driver) LookupActor(ctx context.Context, ns, name string, key []string) (rivetdriver.ActorRecord, error) {
	var rec rivetdriver.ActorRecord
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var err error
		rec, err = scanRecord(c.QueryRow(ctx, d.q.lookupActor, keyHash(ns, name, key), []byte(ns), []byte(name), byteSlices(key)))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("rivetpg: lookup namespace %q, name %q, key %q: %w", ns, name, key, rivetdriver.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("rivetpg: lookup namespace %q, name %q, key %q: %w", ns, name, key, err)
		}
		return nil
	})
	return rec, err
}

// GetActor implements rivetdriver.Driver.
func (d *Driver) GetActor(ctx context.Context, id string) (rivetdriver.ActorRecord, error) {
	var rec rivetdriver.ActorRecord
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var err error
		rec, err = scanRecord(c.QueryRow(ctx, d.q.getActor, []byte(id)))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("rivetpg: actor %q: %w", id, rivetdriver.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("rivetpg: get actor %q: %w", id, err)
		}
		return nil
	})
	return rec, err
}

// ListActors implements rivetdriver.Driver. It is one index range scan in
// id order.
func (d *Driver) ListActors(ctx context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	var out []rivetdriver.ActorRecord
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		// Only the filters in use appear in the query, so that a name
		// filter is a range of the (namespace, name, id) index.
		sql := d.q.listActors
		var args []any
		cond := func(c string, v any) {
			args = append(args, v)
			sql += fmt.Sprintf(" AND %s $%d", c, len(args))
		}
		if opts.Namespace != "" {
			cond("namespace =", []byte(opts.Namespace))
		}
		if opts.Name != "" {
			cond("name =", []byte(opts.Name))
		}
		if opts.After != "" {
			cond("id >", []byte(opts.After))
		}
		if !opts.IncludeDestroyed {
			sql += " AND NOT destroyed"
		}
		sql += " ORDER BY id"
		if opts.Limit > 0 {
			args = append(args, int64(opts.Limit))
			sql += fmt.Sprintf(" LIMIT $%d", len(args))
		}
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("rivetpg: list actors: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (rivetdriver.ActorRecord, error) { return scanRecord(r) })
		if err != nil {
			return fmt.Errorf("rivetpg: list actors: %w", err)
		}
		return nil
	})
	return out, err
}

// Activate implements rivetdriver.Driver. It is one UPDATE, committed
// before it returns; it waits for a commit batch of the actor that is
// under way, so a commit is either applied before the new generation or
// fenced by it.
func (d *Driver) Activate(ctx context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	var (
		rec   rivetdriver.ActorRecord
		state []byte
	)
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var (
			rid, ns, name []byte
			key           [][]byte
			created       time.Time
			createdNs     int16
			generation    int64
		)
		err := c.QueryRow(ctx, d.q.activate, []byte(id)).Scan(&rid, &ns, &name, &key, &rec.Input, &created, &createdNs,
			&generation, &rec.Initialized, &rec.Destroyed, &state)
		if err == nil {
			rec.ID, rec.Namespace, rec.Name, rec.Key = string(rid), string(ns), string(name), strs(key)
			rec.CreatedAt = joinTime(created, createdNs)
			rec.Generation = uint64(generation)
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("rivetpg: activate actor %q: %w", id, err)
		}
		var destroyed bool
		err = c.QueryRow(ctx, d.q.isDestroyed, []byte(id)).Scan(&destroyed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("rivetpg: activate actor %q: %w", id, rivetdriver.ErrNotFound)
		case err != nil:
			return fmt.Errorf("rivetpg: activate actor %q: %w", id, err)
		case destroyed:
			return fmt.Errorf("rivetpg: activate actor %q: %w", id, rivetdriver.ErrDestroyed)
		}
		return fmt.Errorf("rivetpg: activate actor %q: the actor is live but was not updated", id)
	})
	if err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	return rec, state, nil
}

// KVGet implements rivetdriver.Driver: one query for all keys.
func (d *Driver) KVGet(ctx context.Context, actorID string, keys [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		if err := d.enter(); err != nil {
			return nil, err
		}
		d.leave()
		return out, nil
	}
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, d.q.kvGet, []byte(actorID), nonNil(keys))
		if err != nil {
			return fmt.Errorf("rivetpg: get kv of actor %q: %w", actorID, err)
		}
		found := map[string][]byte{}
		var k, v []byte
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
			found[string(k)] = bytes.Clone(v)
			return nil
		})
		if err != nil {
			return fmt.Errorf("rivetpg: get kv of actor %q: %w", actorID, err)
		}
		for i, k := range keys {
			if v, ok := found[string(k)]; ok {
				out[i] = bytes.Clone(v) // each result its own copy
				if out[i] == nil {
					out[i] = []byte{}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// nonNil replaces nil elements (which would encode as SQL NULL) with empty
// byte slices.
func nonNil(bs [][]byte) [][]byte {
	for i, b := range bs {
		if b == nil {
			out := make([][]byte, len(bs))
			copy(out, bs)
			for j := i; j < len(out); j++ {
				if out[j] == nil {
					out[j] = []byte{}
				}
			}
			return out
		}
	}
	return bs
}

// prefixEnd is the smallest key above every key starting with p, or nil if
// there is none (p is empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// KVList implements rivetdriver.Driver. It is one range scan of the
// primary key; bytea compares as unsigned bytes, the order of the contract.
func (d *Driver) KVList(ctx context.Context, actorID string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	lower, upper := []byte{}, []byte(nil) // nil upper: unbounded
	if opts.Prefix != nil {
		lower, upper = opts.Prefix, prefixEnd(opts.Prefix)
	}
	if opts.Start != nil && bytes.Compare(opts.Start, lower) > 0 {
		lower = opts.Start
	}
	if opts.End != nil && (upper == nil || bytes.Compare(opts.End, upper) < 0) {
		upper = opts.End
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.leave()
	if upper != nil && bytes.Compare(lower, upper) >= 0 {
		return nil, nil
	}
	var out []rivetdriver.KV
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var limit *int64
		if opts.Limit > 0 {
			l := int64(opts.Limit)
			limit = &l
		}
		var rows pgx.Rows
		var err error
		switch {
		case upper != nil && opts.Reverse:
			rows, err = c.Query(ctx, d.q.kvListReverse, []byte(actorID), lower, upper, limit)
		case upper != nil:
			rows, err = c.Query(ctx, d.q.kvList, []byte(actorID), lower, upper, limit)
		case opts.Reverse:
			rows, err = c.Query(ctx, d.q.kvListOpenReverse, []byte(actorID), lower, limit)
		default:
			rows, err = c.Query(ctx, d.q.kvListOpen, []byte(actorID), lower, limit)
		}
		if err != nil {
			return fmt.Errorf("rivetpg: list kv of actor %q: %w", actorID, err)
		}
		var k, v []byte
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
			kv := rivetdriver.KV{Key: bytes.Clone(k), Value: bytes.Clone(v)}
			if kv.Value == nil {
				kv.Value = []byte{}
			}
			out = append(out, kv)
			return nil
		})
		if err != nil {
			return fmt.Errorf("rivetpg: list kv of actor %q: %w", actorID, err)
		}
		return nil
	})
	return out, err
}

// Alarms implements rivetdriver.Driver.
func (d *Driver) Alarms(ctx context.Context, actorID string) ([]rivetdriver.Alarm, error) {
	var out []rivetdriver.Alarm
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var rows pgx.Rows
		var err error
		if actorID == "" {
			rows, err = c.Query(ctx, d.q.allAlarms)
		} else {
			rows, err = c.Query(ctx, d.q.actorAlarms, []byte(actorID))
		}
		if err != nil {
			return fmt.Errorf("rivetpg: list alarms: %w", err)
		}
		var (
			aid, id, action, args []byte
			at, created           time.Time
			atNs, createdNs       int16
		)
		_, err = pgx.ForEachRow(rows, []any{&aid, &id, &at, &atNs, &action, &args, &created, &createdNs}, func() error {
			out = append(out, rivetdriver.Alarm{ID: string(id), ActorID: string(aid), At: joinTime(at, atNs),
				Action: string(action), Args: bytes.Clone(args), CreatedAt: joinTime(created, createdNs)})
			return nil
		})
		if err != nil {
			return fmt.Errorf("rivetpg: list alarms: %w", err)
		}
		return nil
	})
	return out, err
}

// ReadState returns an actor's committed state without activating it (nil
// if none was committed): rivetdriver.ErrNotFound for an unknown actor,
// rivetdriver.ErrDestroyed for a destroyed one. The inspector reads
// sleeping actors with it.
func (d *Driver) ReadState(ctx context.Context, id string) ([]byte, error) {
	var state []byte
	err := d.with(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var destroyed bool
		err := c.QueryRow(ctx, d.q.readState, []byte(id)).Scan(&destroyed, &state)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("rivetpg: read state of actor %q: %w", id, rivetdriver.ErrNotFound)
		case err != nil:
			return fmt.Errorf("rivetpg: read state of actor %q: %w", id, err)
		case destroyed:
			return fmt.Errorf("rivetpg: read state of actor %q: %w", id, rivetdriver.ErrDestroyed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return state, nil
}
