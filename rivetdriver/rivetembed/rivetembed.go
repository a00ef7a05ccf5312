// Package rivetembed is the embedded on-disk rivetdriver.Driver and the
// runtime's default store, built on Pebble (an LSM key/value store). See
// CHOICE.md for why Pebble and not bbolt.
//
// Every Commit batch is one Pebble batch written with fsync (pebble.Sync):
// atomic, and durable when Commit returns. The runtime calls Commit from one
// goroutine with all the turns that queued meanwhile, so many turns share
// one fsync; with CommitAsync the next batch is applied while the last one
// syncs, and one WAL fsync covers every batch applied meanwhile.
//
// CreateActor and Activate write without an fsync of their own: a new
// actor's create, its activation and its first commit cost one fsync, the
// commit's, which covers the earlier writes (the WAL is sequential). A
// record is never shown to anyone but its creator before it is durable:
// LookupActor, GetActor and ListActors force a sync first when needed.
// Generations need no durability of their own here, since only this
// process writes the directory and a crash leaves no incarnation to fence.
//
// # Layout
//
// One Pebble keyspace, each table under a one-byte prefix. Variable-length
// components that are followed by more key bytes are encoded with package
// keyenc, whose elements are self-delimiting (0x00 is escaped, each element
// ends with 0x00 0x01), so no id, namespace or name can be mistaken for a
// prefix of another; a component that ends the key is stored raw:
//
//	'v'                         format marker
//	'm' id                      actor record
//	'i' enc(ns, name, key...)   id of the live actor holding that key
//	's' id                      state
//	'k' enc(id) userkey         one key/value pair
//	'a' enc(id) alarmid         one alarm
//
// Alarms are keyed by id, not by time, so that an AlarmPut overwriting an
// alarm needs no read to find the old entry; Alarms sorts them by time.
//
// Records and alarms use a small binary encoding (codec.go). Every value is
// framed as [format version][CRC-32C of payload, big endian][payload]; a
// frame that fails the check is reported as an error wrapping
// rivetdriver.ErrCorrupt and is never returned.
//
// # Fencing
//
// The driver is the only writer of its directory (it holds an exclusive lock
// on it), so it keeps each actor's generation, initialized and destroyed
// flags in memory, loaded lazily from the record, and checks a commit's
// generation without reading the disk. The full record is read only when a
// commit initializes or destroys the actor. The cache is an exact copy of
// what the records say (every write to a record updates its entry under
// the same lock), so an entry can be dropped at any time it is not being
// changed: ReleaseActor drops it when the runtime's incarnation leaves, and the
// next Activate or commit reloads it from the record. The cache therefore
// holds about one entry per awake actor, not one per actor used since
// Open; a commit from an incarnation that lost its actor is refused
// whether or not the entry was dropped meanwhile, since the record holds
// the newer generation.
package rivetembed

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rivetgo/rivet/internal/keyenc"
	"github.com/rivetgo/rivet/rivetdriver"
)

// formatVersion is the version of the key layout and value framing this
// build reads and writes.
const formatVersion byte = 1

// Table prefixes.
const (
	tMarker = 'v'
	tRecord = 'm'
	tIndex  = 'i'
	tState  = 's'
	tKV     = 'k'
	tAlarm  = 'a'
)

// markerPayload is the payload of the format marker value.
const markerPayload = "rivetembed"

// lockName is the file in the store's directory that Open locks.
const lockName = "rivetembed.lock"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errClosed = fmt.Errorf("rivetembed: %w", rivetdriver.ErrClosed)

// Options tune the store. The zero value (or a nil *Options) selects the
// defaults.
type Options struct {
	// CacheSize is Pebble's block cache in bytes (default 16 MiB).
	CacheSize int64
	// MemTableSize is the size of one Pebble memtable in bytes (default
	// 4 MiB). Pebble keeps up to two in memory before stalling writes.
	MemTableSize uint64
	// FS is the file system the store lives on (default: the operating
	// system's). Tests pass Pebble's vfs.NewCrashableMem (to simulate a
	// machine crash that drops unsynced data, with MemFS.CrashClone) or
	// an errorfs.Wrap (to inject I/O and fsync errors).
	FS vfs.FS
}

const (
	defaultCacheSize    = 16 << 20
	defaultMemTableSize = 4 << 20
)

// Driver is the embedded store. It is safe for concurrent use; only one
// Driver may have a directory open at a time.
type Driver struct {
	db   *pebble.DB
	dir  string
	lock io.Closer

	// life is held for reading by every call and for writing by Close, so
	// that Close waits for calls under way and Pebble is never used after
	// it is closed.
	life   sync.RWMutex
	closed bool

	mu       sync.Mutex
	cond     *sync.Cond       // signalled when an actor's busy state or a reservation ends
	actors   map[string]*meta // fencing cache, loaded lazily
	reserved map[string]bool  // record and index keys of creates under way
	broken   error            // set when an fsync failed; every commit fails after it

	// seq numbers the writes applied under mu (creates and commit
	// batches), which is their order in the WAL. Every write up to
	// durable is known to be synced; lastCreate is the newest create. A
	// create is written without an fsync of its own (see CreateActor)
	// and is durable once a later sync covers it.
	seq        uint64
	durable    atomic.Uint64
	lastCreate atomic.Uint64
}

// meta is the cached part of an actor's record that a commit checks.
// Guarded by Driver.mu.
type meta struct {
	generation  uint64
	initialized bool
	destroyed   bool
	// activating is set while Activate writes the new generation; commits
	// of the actor wait for it, so a stale commit can never land after the
	// generation that fences it. Commits are applied in order under
	// Driver.mu, so Activate reads every commit applied before it.
	activating bool
	// createSeq is the seq of the actor's create while that create may
	// not be durable yet; 0 once it is known to be.
	createSeq uint64
}

var (
	_ rivetdriver.Driver    = (*Driver)(nil)
	_ rivetdriver.Pipeliner = (*Driver)(nil)
	_ rivetdriver.Releaser  = (*Driver)(nil)
)

// Open opens the store in dir, creating the directory and an empty store if
// needed. It takes an exclusive lock on dir: a second Open of the same
// directory, from this process or another, fails until Close. opts may be
// nil.
func Open(dir string, opts *Options) (*Driver, error) {
	fs := vfs.Default
	if opts != nil && opts.FS != nil {
		fs = opts.FS
	}
	return openFS(dir, opts, fs)
}

// openFS is Open on a file system; tests use Pebble's crash-simulating
// memory file system.
func openFS(dir string, opts *Options, fs vfs.FS) (*Driver, error) {
	if opts == nil {
		opts = &Options{}
	}
	cacheSize := opts.CacheSize
	if cacheSize <= 0 {
		cacheSize = defaultCacheSize
	}
	memTable := opts.MemTableSize
	if memTable == 0 {
		memTable = defaultMemTableSize
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rivetembed: open %s: %w", dir, err)
	}
	lock, err := fs.Lock(fs.PathJoin(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("rivetembed: open %s: the directory is locked by another open rivetembed Driver (in this or another process): %w", dir, err)
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		FS:           fs,
		Cache:        cache,
		MemTableSize: memTable,
		Logger:       quietLogger{},
	})
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("rivetembed: open %s: %w", dir, err)
	}
	d := &Driver{db: db, dir: dir, lock: lock, actors: map[string]*meta{}, reserved: map[string]bool{}}
	d.cond = sync.NewCond(&d.mu)
	if err := d.checkFormat(); err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, err
	}
	return d, nil
}

// checkFormat verifies the format marker, writing it into an empty store.
func (d *Driver) checkFormat() error {
	key := []byte{tMarker}
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		it, err := d.db.NewIter(nil)
		if err != nil {
			return fmt.Errorf("rivetembed: open %s: %w", d.dir, err)
		}
		nonEmpty := it.First()
		_ = it.Close()
		if nonEmpty {
			return fmt.Errorf("rivetembed: open %s: the directory holds a Pebble store without a rivetembed format marker; refusing to use it", d.dir)
		}
		if err := d.db.Set(key, frame([]byte(markerPayload)), pebble.Sync); err != nil {
			return fmt.Errorf("rivetembed: open %s: write format marker: %w", d.dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("rivetembed: open %s: read format marker: %w", d.dir, err)
	}
	defer closer.Close()
	if len(v) > 0 && v[0] > formatVersion {
		return fmt.Errorf("rivetembed: open %s: the store has data format %d, newer than format %d that this build reads; upgrade rivet", d.dir, v[0], formatVersion)
	}
	payload, err := unframe(key, v)
	if err != nil {
		return fmt.Errorf("rivetembed: open %s: format marker: %w", d.dir, err)
	}
	if string(payload) != markerPayload {
		return fmt.Errorf("rivetembed: open %s: format marker %q: %w", d.dir, payload, rivetdriver.ErrCorrupt)
	}
	return nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("rivetembed: pebble: "+format, args...))
}

// Dir is the store's directory.
func (d *Driver) Dir() string { return d.dir }

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

// frame wraps a payload in the version byte and its CRC-32C.
func frame(payload []byte) []byte {
	out := make([]byte, 5+len(payload))
	out[0] = formatVersion
	binary.BigEndian.PutUint32(out[1:5], crc32.Checksum(payload, castagnoli))
	copy(out[5:], payload)
	return out
}

// unframe checks a stored value and returns a copy of its payload.
func unframe(key, v []byte) ([]byte, error) {
	if len(v) < 5 {
		return nil, fmt.Errorf("rivetembed: key %q: value of %d bytes is shorter than its frame: %w", key, len(v), rivetdriver.ErrCorrupt)
	}
	if v[0] != formatVersion {
		return nil, fmt.Errorf("rivetembed: key %q: value has format version %d, want %d: %w", key, v[0], formatVersion, rivetdriver.ErrCorrupt)
	}
	payload := v[5:]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(v[1:5]) {
		return nil, fmt.Errorf("rivetembed: key %q: checksum mismatch: %w", key, rivetdriver.ErrCorrupt)
	}
	return append([]byte{}, payload...), nil
}

// get reads and verifies one value; nil, nil when absent.
func (d *Driver) get(key []byte) ([]byte, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rivetembed: read key %q: %w", key, err)
	}
	defer closer.Close()
	return unframe(key, v)
}

func recordKey(id string) []byte { return append([]byte{tRecord}, id...) }
func stateKey(id string) []byte  { return append([]byte{tState}, id...) }

func indexKey(ns, name string, key []string) []byte {
	elems := make([]any, 0, 2+len(key))
	elems = append(elems, ns, name)
	for _, k := range key {
		elems = append(elems, k)
	}
	b, _ := keyenc.Append([]byte{tIndex}, elems...) // strings always encode
	return b
}

func kvPrefix(id string) []byte {
	b, _ := keyenc.Append([]byte{tKV}, id)
	return b
}

func alarmPrefix(id string) []byte {
	b, _ := keyenc.Append([]byte{tAlarm}, id)
	return b
}

// join returns a fresh slice holding p followed by k.
func join(p, k []byte) []byte {
	out := make([]byte, 0, len(p)+len(k))
	return append(append(out, p...), k...)
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

func cloneRecord(r rivetdriver.ActorRecord) rivetdriver.ActorRecord {
	if r.Key != nil {
		r.Key = append([]string{}, r.Key...)
	}
	r.Input = bytes.Clone(r.Input)
	return r
}

func encodeRecord(r *rivetdriver.ActorRecord) []byte { return frame(marshalRecord(r)) }

func decodeRecord(key, v []byte) (*rivetdriver.ActorRecord, error) {
	payload, err := unframe(key, v)
	if err != nil {
		return nil, err
	}
	r, err := unmarshalRecord(payload)
	if err != nil {
		return nil, fmt.Errorf("rivetembed: record %q: %v: %w", key, err, rivetdriver.ErrCorrupt)
	}
	if want := string(key[1:]); r.ID != want {
		return nil, fmt.Errorf("rivetembed: record %q holds actor id %q: %w", key, r.ID, rivetdriver.ErrCorrupt)
	}
	return &r, nil
}

// readRecord reads an actor's record from disk; nil, nil when absent.
func (d *Driver) readRecord(id string) (*rivetdriver.ActorRecord, error) {
	key := recordKey(id)
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rivetembed: read record of actor %q: %w", id, err)
	}
	defer closer.Close()
	return decodeRecord(key, v)
}

// metaLocked returns the cached fencing state of an actor, loading it from
// the record if needed; nil, nil when the actor does not exist. Absence is
// not cached. Callers hold d.mu.
func (d *Driver) metaLocked(id string) (*meta, error) {
	if m, ok := d.actors[id]; ok {
		return m, nil
	}
	r, err := d.readRecord(id)
	if err != nil || r == nil {
		return nil, err
	}
	m := &meta{generation: r.Generation, initialized: r.Initialized, destroyed: r.Destroyed}
	d.actors[id] = m
	return m, nil
}

// CreateActor implements rivetdriver.Driver.
func (d *Driver) CreateActor(_ context.Context, rec rivetdriver.ActorRecord) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	rk := recordKey(rec.ID)
	ik := indexKey(rec.Namespace, rec.Name, rec.Key)

	// Reserve the id and the key so that no concurrent create takes them
	// between the checks below and the write.
	d.mu.Lock()
	for d.reserved[string(rk)] || d.reserved[string(ik)] {
		d.cond.Wait()
	}
	// A record read without caching its entry: a refused create must not
	// leave one behind for an actor nobody woke.
	taken := d.actors[rec.ID] != nil
	if !taken {
		r, err := d.readRecord(rec.ID)
		if err != nil {
			d.mu.Unlock()
			return err
		}
		taken = r != nil
	}
	if taken {
		d.mu.Unlock()
		return fmt.Errorf("rivetembed: create actor %q: %w", rec.ID, rivetdriver.ErrDuplicateID)
	}
	d.reserved[string(rk)], d.reserved[string(ik)] = true, true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.reserved, string(rk))
		delete(d.reserved, string(ik))
		d.cond.Broadcast()
		d.mu.Unlock()
	}()

	// A destroy commit may be freeing the key concurrently; reading it
	// before or after that write are both correct outcomes.
	if holder, err := d.get(ik); err != nil {
		return err
	} else if holder != nil {
		return fmt.Errorf("rivetembed: create actor %q: namespace %q, name %q, key %q is held by actor %q: %w",
			rec.ID, rec.Namespace, rec.Name, rec.Key, holder, rivetdriver.ErrDuplicateKey)
	}
	rec = cloneRecord(rec)
	rec.Destroyed = false
	b := d.db.NewBatch()
	defer b.Close()
	_ = b.Set(rk, encodeRecord(&rec), nil)
	_ = b.Set(ik, frame([]byte(rec.ID)), nil)
	// No fsync of its own: the create is applied in WAL order under mu,
	// before anything the runtime writes for the actor, so the sync of
	// the actor's first commit (which its creator waits for) covers it.
	// Until some sync does, readers other than the creator force one (see
	// ensureDurable), so that no caller learns of an actor a crash could
	// still lose.
	d.mu.Lock()
	if d.broken != nil {
		d.mu.Unlock()
		return d.broken
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("rivetembed: create actor %q: %w", rec.ID, err)
	}
	d.seq++
	d.lastCreate.Store(d.seq)
	// No entry can exist yet (the record appears under mu, with this
	// entry), but an existing one would hold the newer generation.
	if m, ok := d.actors[rec.ID]; ok {
		m.createSeq = d.seq
	} else {
		d.actors[rec.ID] = &meta{generation: rec.Generation, initialized: rec.Initialized, createSeq: d.seq}
	}
	d.mu.Unlock()
	return nil
}

// ensureDurable returns once the create of actor id is durable, forcing a
// WAL sync if no sync has covered it yet. It is called before a record is
// shown to anyone but its creator (lookups, listings), so that a crash can
// never lose an actor that someone was told exists.
func (d *Driver) ensureDurable(ids ...string) error {
	if d.lastCreate.Load() <= d.durable.Load() {
		return nil // every create is durable: no need to look
	}
	d.mu.Lock()
	need := false
	for _, id := range ids {
		if m := d.actors[id]; m != nil && m.createSeq != 0 {
			if m.createSeq <= d.durable.Load() {
				m.createSeq = 0
			} else {
				need = true
			}
		}
	}
	s := d.seq
	broken := d.broken
	d.mu.Unlock()
	if !need {
		return nil
	}
	if broken != nil {
		return broken
	}
	// Every write numbered up to s was applied before this point, so a
	// synced record written now covers them.
	if err := d.db.LogData(nil, pebble.Sync); err != nil {
		err = fmt.Errorf("rivetembed: sync: %w", err)
		d.mu.Lock()
		if d.broken == nil {
			d.broken = fmt.Errorf("rivetembed: store failed and must be reopened: %w", err)
		}
		d.mu.Unlock()
		return err
	}
	d.markDurable(s)
	return nil
}

// markDurable records that every write numbered up to s is synced.
func (d *Driver) markDurable(s uint64) {
	for {
		cur := d.durable.Load()
		if s <= cur || d.durable.CompareAndSwap(cur, s) {
			return
		}
	}
}

// LookupActor implements rivetdriver.Driver.
func (d *Driver) LookupActor(_ context.Context, ns, name string, key []string) (rivetdriver.ActorRecord, error) {
	if err := d.enter(); err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	defer d.leave()
	id, err := d.get(indexKey(ns, name, key))
	if err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	if id != nil {
		r, err := d.readRecord(string(id))
		if err != nil {
			return rivetdriver.ActorRecord{}, err
		}
		if r != nil && !r.Destroyed {
			if err := d.ensureDurable(r.ID); err != nil {
				return rivetdriver.ActorRecord{}, err
			}
			return *r, nil
		}
	}
	return rivetdriver.ActorRecord{}, fmt.Errorf("rivetembed: lookup namespace %q, name %q, key %q: %w", ns, name, key, rivetdriver.ErrNotFound)
}

// GetActor implements rivetdriver.Driver.
func (d *Driver) GetActor(_ context.Context, id string) (rivetdriver.ActorRecord, error) {
	if err := d.enter(); err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	defer d.leave()
	r, err := d.readRecord(id)
	if err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	if r == nil {
		return rivetdriver.ActorRecord{}, fmt.Errorf("rivetembed: actor %q: %w", id, rivetdriver.ErrNotFound)
	}
	if err := d.ensureDurable(id); err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	return *r, nil
}

// ListActors implements rivetdriver.Driver.
func (d *Driver) ListActors(_ context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	lower := []byte{tRecord}
	if opts.After != "" {
		lower = append(recordKey(opts.After), 0) // the first id above After
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{tRecord + 1}})
	if err != nil {
		return nil, fmt.Errorf("rivetembed: list actors: %w", err)
	}
	defer it.Close()
	var out []rivetdriver.ActorRecord
	for ok := it.First(); ok; ok = it.Next() {
		r, err := decodeRecord(it.Key(), it.Value())
		if err != nil {
			return nil, err
		}
		if (opts.Namespace != "" && r.Namespace != opts.Namespace) || (opts.Name != "" && r.Name != opts.Name) ||
			(r.Destroyed && !opts.IncludeDestroyed) {
			continue
		}
		out = append(out, *r)
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("rivetembed: list actors: %w", err)
	}
	ids := make([]string, len(out))
	for i := range out {
		ids[i] = out[i].ID
	}
	if err := d.ensureDurable(ids...); err != nil {
		return nil, err
	}
	return out, nil
}

// CountLiveActors calls fn once per actor name with the number of live
// (not destroyed) actors of that name, summed over namespaces. It walks
// the key index without reading records, so it is cheap enough to run at
// every start over millions of actors; the runtime uses it for its
// actors-sleeping gauge.
func (d *Driver) CountLiveActors(ctx context.Context, fn func(name string, n int64)) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tIndex}, UpperBound: []byte{tIndex + 1}})
	if err != nil {
		return fmt.Errorf("rivetembed: count actors: %w", err)
	}
	defer it.Close()
	counts := map[string]int64{}
	var group []byte // index prefix of the current (namespace, name)
	var name string
	var n int64
	seen := 0
	for ok := it.First(); ok; ok = it.Next() {
		if seen++; seen%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		k := it.Key()
		if group != nil && bytes.HasPrefix(k, group) {
			n++
			continue
		}
		if group != nil {
			counts[name] += n
		}
		elems, err := keyenc.Decode(k[1:])
		if err != nil || len(elems) < 2 {
			return fmt.Errorf("rivetembed: index key %q: %w", k, rivetdriver.ErrCorrupt)
		}
		ns, ok1 := elems[0].(string)
		nm, ok2 := elems[1].(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("rivetembed: index key %q: %w", k, rivetdriver.ErrCorrupt)
		}
		group, _ = keyenc.Append([]byte{tIndex}, ns, nm)
		name, n = nm, 1
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("rivetembed: count actors: %w", err)
	}
	if group != nil {
		counts[name] += n
	}
	for name, n := range counts {
		fn(name, n)
	}
	return nil
}

// Activate implements rivetdriver.Driver.
func (d *Driver) Activate(_ context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	if err := d.enter(); err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	defer d.leave()
	d.mu.Lock()
	var m *meta
	for {
		var err error
		if m, err = d.metaLocked(id); err != nil {
			d.mu.Unlock()
			return rivetdriver.ActorRecord{}, nil, err
		}
		if m == nil {
			d.mu.Unlock()
			return rivetdriver.ActorRecord{}, nil, fmt.Errorf("rivetembed: activate actor %q: %w", id, rivetdriver.ErrNotFound)
		}
		if !m.activating {
			break
		}
		// The entry may be released while we wait: look it up again.
		d.cond.Wait()
	}
	if m.destroyed {
		d.dropLocked(id, m) // no incarnation will ever use it
		d.mu.Unlock()
		return rivetdriver.ActorRecord{}, nil, fmt.Errorf("rivetembed: activate actor %q: %w", id, rivetdriver.ErrDestroyed)
	}
	m.activating = true
	d.mu.Unlock()

	rec, state, err := d.activate(id)
	d.mu.Lock()
	m.activating = false
	if rec.Generation > m.generation {
		m.generation = rec.Generation // written, even if the state read then failed
	}
	d.cond.Broadcast()
	d.mu.Unlock()
	if err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	return rec, state, nil
}

// ReleaseActor implements rivetdriver.Releaser: it drops the actor's fencing
// entry unless a newer incarnation holds it or an Activate is writing it.
func (d *Driver) ReleaseActor(id string, generation uint64) {
	d.mu.Lock()
	if m := d.actors[id]; m != nil && m.generation == generation {
		d.dropLocked(id, m)
	}
	d.mu.Unlock()
}

// dropLocked removes m, the entry of actor id, from the cache unless an
// Activate is writing it or it still marks a create that no sync has
// covered (ensureDurable looks for that mark). Callers hold d.mu.
func (d *Driver) dropLocked(id string, m *meta) {
	if m.activating || (m.createSeq != 0 && m.createSeq > d.durable.Load()) {
		return
	}
	delete(d.actors, id)
}

// CachedActors returns the number of entries in the fencing cache (for
// tests and the memory bound's check).
func (d *Driver) CachedActors() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.actors)
}

// activate writes the next generation and reads the state. The caller has
// set meta.activating, so no commit of the actor is under way.
func (d *Driver) activate(id string) (rivetdriver.ActorRecord, []byte, error) {
	r, err := d.readRecord(id)
	if err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	if r == nil {
		return rivetdriver.ActorRecord{}, nil, fmt.Errorf("rivetembed: activate actor %q: record vanished: %w", id, rivetdriver.ErrCorrupt)
	}
	r.Generation++
	// No fsync: only this process writes the directory, so a generation
	// fences only incarnations of this process, and after a crash none is
	// left to fence. The commits of the new incarnation come after this
	// write in the WAL, so their syncs make it durable.
	if err := d.db.Set(recordKey(id), encodeRecord(r), pebble.NoSync); err != nil {
		return rivetdriver.ActorRecord{}, nil, fmt.Errorf("rivetembed: activate actor %q: %w", id, err)
	}
	state, err := d.get(stateKey(id))
	if err != nil {
		// The new generation is written: the caller's entry must hold it.
		return *r, nil, err
	}
	return *r, state, nil
}

func encodeAlarm(a *rivetdriver.Alarm) []byte { return frame(marshalAlarm(a)) }

// pending is an actor's record as the batch being built leaves it.
type pending struct {
	m           *meta
	initialized bool
	destroyed   bool
	rec         *rivetdriver.ActorRecord // full record, read when needed
}

// Commit implements rivetdriver.Driver.
func (d *Driver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	wait, err := d.CommitAsync(ctx, batch)
	if err != nil {
		return err
	}
	return wait()
}

func noWait() error { return nil }

// CommitAsync implements rivetdriver.Pipeliner. The batch is applied to
// Pebble under d.mu, so batches land in call order and every check below
// sees the batches before it; the fsync is awaited by wait, outside the
// lock, where Pebble lets one fsync cover every batch applied meanwhile.
func (d *Driver) CommitAsync(_ context.Context, batch []*rivetdriver.Commit) (func() error, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	for _, c := range batch {
		c.Err = nil
	}
	if len(batch) == 0 {
		d.leave()
		return noWait, nil
	}

	d.mu.Lock()
	if d.broken != nil {
		d.mu.Unlock()
		d.leave()
		return nil, d.broken
	}
	// Wait out activations of these actors: a commit either lands before
	// the new generation is written or is fenced by it. The entries are
	// looked up again after each wait, since one may be released and
	// reloaded meanwhile; from here to the apply mu is held, so none is.
	metas := make(map[string]*meta, len(batch))
	for {
		clear(metas)
		busy := false
		for _, c := range batch {
			if _, ok := metas[c.ActorID]; ok {
				continue
			}
			m, err := d.metaLocked(c.ActorID)
			if err != nil {
				d.mu.Unlock()
				d.leave()
				return nil, err
			}
			metas[c.ActorID] = m
			busy = busy || (m != nil && m.activating)
		}
		if !busy {
			break
		}
		d.cond.Wait()
	}

	b := d.db.NewBatch()
	touched := make(map[string]*pending, len(batch))
	fail := func(err error) (func() error, error) {
		d.mu.Unlock()
		b.Close()
		d.leave()
		for _, c := range batch {
			c.Err = nil
		}
		return nil, err
	}
	for _, c := range batch {
		m := metas[c.ActorID]
		if m == nil {
			c.Err = fmt.Errorf("rivetembed: commit to actor %q: %w", c.ActorID, rivetdriver.ErrNotFound)
			continue
		}
		p := touched[c.ActorID]
		if p == nil {
			p = &pending{m: m, initialized: m.initialized, destroyed: m.destroyed}
		}
		if p.destroyed {
			c.Err = fmt.Errorf("rivetembed: commit to actor %q: %w", c.ActorID, rivetdriver.ErrDestroyed)
			continue
		}
		if c.Generation != m.generation {
			c.Err = fmt.Errorf("rivetembed: commit to actor %q at generation %d, current generation is %d: %w",
				c.ActorID, c.Generation, m.generation, rivetdriver.ErrFenced)
			continue
		}
		if err := d.applyLocked(b, c, p); err != nil {
			return fail(err)
		}
		touched[c.ActorID] = p
	}
	if b.Empty() {
		d.mu.Unlock()
		b.Close()
		d.leave()
		return noWait, nil
	}
	if err := d.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return fail(fmt.Errorf("rivetembed: commit batch of %d: %w", len(batch), err))
	}
	d.seq++
	seq := d.seq
	// Applied: later batches must see it. If its fsync fails, wait marks
	// the driver broken, so nothing decided on this view ever lands.
	for _, p := range touched {
		p.m.initialized, p.m.destroyed = p.initialized, p.destroyed
	}
	d.mu.Unlock()
	return func() error {
		defer d.leave()
		defer b.Close()
		if err := b.SyncWait(); err != nil {
			err = fmt.Errorf("rivetembed: commit batch of %d: %w", len(batch), err)
			d.mu.Lock()
			if d.broken == nil {
				d.broken = fmt.Errorf("rivetembed: store failed and must be reopened: %w", err)
			}
			d.mu.Unlock()
			for _, c := range batch {
				c.Err = nil
			}
			return err
		}
		d.markDurable(seq)
		return nil
	}, nil
}

// applyLocked adds one accepted commit to the batch and to p.
func (d *Driver) applyLocked(b *pebble.Batch, c *rivetdriver.Commit, p *pending) error {
	id := c.ActorID
	loadRecord := func() error {
		if p.rec != nil {
			return nil
		}
		r, err := d.readRecord(id)
		if err == nil && r == nil {
			err = fmt.Errorf("rivetembed: commit to actor %q: record vanished: %w", id, rivetdriver.ErrCorrupt)
		}
		p.rec = r
		return err
	}
	kp, ap := kvPrefix(id), alarmPrefix(id)
	if c.Destroy {
		if err := loadRecord(); err != nil {
			return err
		}
		p.destroyed, p.rec.Destroyed = true, true
		if c.Initialize {
			p.initialized, p.rec.Initialized = true, true
		}
		_ = b.Set(recordKey(id), encodeRecord(p.rec), nil)
		_ = b.Delete(indexKey(p.rec.Namespace, p.rec.Name, p.rec.Key), nil)
		_ = b.Delete(stateKey(id), nil)
		_ = b.DeleteRange(kp, prefixEnd(kp), nil)
		_ = b.DeleteRange(ap, prefixEnd(ap), nil)
		return nil
	}
	if c.Initialize && !p.initialized {
		if err := loadRecord(); err != nil {
			return err
		}
		p.initialized, p.rec.Initialized = true, true
		_ = b.Set(recordKey(id), encodeRecord(p.rec), nil)
	}
	if c.State != nil {
		_ = b.Set(stateKey(id), frame(c.State), nil)
	}
	if c.KVClear {
		_ = b.DeleteRange(kp, prefixEnd(kp), nil)
	}
	for _, k := range c.KVDelete {
		_ = b.Delete(join(kp, k), nil)
	}
	for _, kv := range c.KVPut {
		_ = b.Set(join(kp, kv.Key), frame(kv.Value), nil)
	}
	for _, aid := range c.AlarmDelete {
		_ = b.Delete(join(ap, []byte(aid)), nil)
	}
	for _, a := range c.AlarmPut {
		a.ActorID = id
		_ = b.Set(join(ap, []byte(a.ID)), encodeAlarm(&a), nil)
	}
	return nil
}

// KVGet implements rivetdriver.Driver.
func (d *Driver) KVGet(_ context.Context, actorID string, keys [][]byte) ([][]byte, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	kp := kvPrefix(actorID)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := d.get(join(kp, k))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// KVList implements rivetdriver.Driver. It is one bounded range scan.
func (d *Driver) KVList(_ context.Context, actorID string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	kp := kvPrefix(actorID)
	lower, upper := kp, prefixEnd(kp)
	if opts.Prefix != nil {
		lower = join(kp, opts.Prefix)
		if e := prefixEnd(opts.Prefix); e != nil {
			upper = join(kp, e)
		} // an all-0xff prefix runs to the end of the actor's space
	}
	if opts.Start != nil {
		if s := join(kp, opts.Start); bytes.Compare(s, lower) > 0 {
			lower = s
		}
	}
	if opts.End != nil {
		if e := join(kp, opts.End); bytes.Compare(e, upper) < 0 {
			upper = e
		}
	}
	if bytes.Compare(lower, upper) >= 0 {
		return nil, nil
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("rivetembed: list kv of actor %q: %w", actorID, err)
	}
	defer it.Close()
	var out []rivetdriver.KV
	first, next := it.First, it.Next
	if opts.Reverse {
		first, next = it.Last, it.Prev
	}
	for ok := first(); ok; ok = next() {
		v, err := unframe(it.Key(), it.Value())
		if err != nil {
			return nil, fmt.Errorf("rivetembed: actor %q: %w", actorID, err)
		}
		out = append(out, rivetdriver.KV{Key: bytes.Clone(it.Key()[len(kp):]), Value: v})
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("rivetembed: list kv of actor %q: %w", actorID, err)
	}
	return out, nil
}

// Alarms implements rivetdriver.Driver.
func (d *Driver) Alarms(_ context.Context, actorID string) ([]rivetdriver.Alarm, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	lower, upper := []byte{tAlarm}, []byte{tAlarm + 1}
	if actorID != "" {
		lower = alarmPrefix(actorID)
		upper = prefixEnd(lower)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("rivetembed: list alarms: %w", err)
	}
	defer it.Close()
	var out []rivetdriver.Alarm
	for ok := it.First(); ok; ok = it.Next() {
		v, err := unframe(it.Key(), it.Value())
		if err != nil {
			return nil, err
		}
		a, err := unmarshalAlarm(v)
		if err != nil {
			return nil, fmt.Errorf("rivetembed: alarm %q: %v: %w", it.Key(), err, rivetdriver.ErrCorrupt)
		}
		out = append(out, a)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("rivetembed: list alarms: %w", err)
	}
	rivetdriver.SortAlarms(out)
	return out, nil
}

// Close waits for calls under way, then closes the store and releases the
// directory lock. Later calls fail with rivetdriver.ErrClosed; closing twice
// is a no-op.
func (d *Driver) Close() error {
	d.life.Lock()
	defer d.life.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.db.Close()
	if lerr := d.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("rivetembed: close %s: %w", d.dir, err)
	}
	return nil
}

// ReadState returns an actor's committed state without activating it (nil
// if none was committed); the inspector reads sleeping actors with it.
func (d *Driver) ReadState(_ context.Context, id string) ([]byte, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	r, err := d.readRecord(id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("rivetembed: read state of actor %q: %w", id, rivetdriver.ErrNotFound)
	}
	if r.Destroyed {
		return nil, fmt.Errorf("rivetembed: read state of actor %q: %w", id, rivetdriver.ErrDestroyed)
	}
	return d.get(stateKey(id))
}
