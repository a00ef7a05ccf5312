// Package rivetengine is the storage driver of runner mode: every actor's
// data lives in that actor's KV space in the Rivet Engine, reached through
// the runner's connection (internal/runner).
//
// The engine owns the actor index (ids, names, keys, generations), so this
// driver knows only the actors the engine placed on this runner (Place,
// Release): CreateActor and LookupActor are refused, GetActor and
// ListActors answer for placed actors, and Activate returns the
// generation the engine assigned instead of incrementing one.
//
// # Layout
//
// Within one actor's engine KV (the first byte is the space):
//
//	00 00 + u32    journal data records (see Commits)
//	00 01          journal commit record
//	01             the actor is initialized (its create hooks' commit landed)
//	02             the state
//	03 + key       the user's KV (and the runtime's own rows in it)
//	04 + id        an alarm (JSON)
//	05 + h + u32   chunk i ≥ 1 of a value too large for one engine value
//	06 + h         chunk index: u32 piece count + the value's key
//
// h is the SHA-256 of the key whose value is chunked. Every value of the
// spaces 01–04 starts with a tag byte: 00 the value follows whole; 01 a
// chunked value: u32 piece count n, u64 total length, then the first
// piece; pieces 1..n-1 are under 05. Values above the engine's 128 KiB
// limit are thus split and reassembled on read, and a list over 03 still
// returns one entry per user key. The chunk index lets a commit that
// overwrites or deletes a chunked value delete its old pieces; Activate
// loads it.
//
// # Commits
//
// A commit that only writes and fits one engine request (at most 128
// keys and 976 KiB of keys and values: the common turn) is one
// KvPutRequest, which the engine applies in one transaction. Any other
// commit (deletes, deleteAll, more or larger writes) goes through the
// journal: its operations (delete ranges, deletes, puts, in that order)
// are serialized, written as data records plus a commit record (SHA-256
// and length of the data) in one put when they fit, else in several puts
// followed by a put of the commit record alone, which is the atomic
// switch. Once the commit record is written the commit is durable and is
// acknowledged; the driver then applies the operations and deletes the
// journal in the background, before the actor's next read or commit and
// before Release returns. Activate first replays a committed journal (the
// operations are idempotent) and drops an uncommitted one, before reading
// anything. If applying fails (the connection dropped), the journal
// stays and is applied before the actor's next read or commit here, or
// replayed by whichever runner activates the actor next. A destroy is
// one KvDropRequest.
//
// Group commit: Commit writes the actors of a batch concurrently, and
// within one actor sends consecutive put-only commits that fit one
// request together as one KvPutRequest (the last value of a key wins);
// they are durable together, in order with the actor's other commits
// (commitMerged).
//
// A key longer than the engine allows (2048 bytes counted as length + 2,
// minus our one-byte space prefix: user keys up to MaxUserKeySize) fails
// the commit with kv.invalid_key before anything is sent; the runtime
// refuses such a key already at the KV call (rivetdriver.KVKeyLimiter).
//
// # Fencing
//
// The engine does not fence KV requests by generation. The driver refuses
// a commit whose generation is not the one the engine placed the actor
// with, and every commit of an actor that was released (stopped, lost);
// the runner refuses writes while it is not connected or the engine's
// last ping is too old (internal/runner Writable).
package rivetengine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// KV sends one KV request for an actor to the engine and returns its
// answer (internal/runner.Runner implements it).
type KV interface {
	KV(ctx context.Context, actorID string, req envoy.KVRequestData) (envoy.KVResponseData, error)
}

// The engine's limits (engine/packages/pegboard/src/actor_kv). The engine
// counts a key as its length + 2 against its 2048-byte limit, in the key
// limit and in the put payload.
const (
	MaxKeys       = 128
	MaxKeySize    = 2048 - 2
	MaxValueSize  = 128 * 1024
	MaxPutPayload = 976 * 1024
	// MaxUserKeySize is the longest user KV key: the engine key adds
	// one prefix byte.
	MaxUserKeySize = MaxKeySize - 1
)

// listPage bounds the entries of one list request: the engine answers at
// most 16384 without a limit, and values may be 128 KiB each.
const listPage = 256

// ErrNotPlaced: the engine did not place this actor on this runner (or
// took it away). It wraps rivetdriver.ErrNotFound.
var ErrNotPlaced = fmt.Errorf("%w: not placed on this runner", rivetdriver.ErrNotFound)

// ErrEngineIndex: the engine, not the runner, creates and looks up actors.
var ErrEngineIndex = errors.New("rivetengine: actors are created and looked up by the engine, not by a runner")

const (
	pfxJournal  = byte(0)
	pfxKV       = byte(3)
	pfxAlarm    = byte(4)
	pfxChunk    = byte(5)
	pfxChunkIdx = byte(6)

	tagWhole   = byte(0)
	tagChunked = byte(1)
	// chunkHeader is the tag, the piece count and the total length.
	chunkHeader = 1 + 4 + 8
)

var (
	keyInit          = []byte{1}
	keyState         = []byte{2}
	keyJournalCommit = []byte{pfxJournal, 1}
)

// Driver is the engine KV driver.
type Driver struct {
	kv KV
	mu struct {
		sync.Mutex
		placed map[string]*placement
		// stopping: placed actors the engine is stopping; they commit
		// their last turns but are not activated again.
		stopping map[string]bool
		closed   bool
	}
	// failpoint, when set (tests; guarded by mu), is called at each
	// stage of a journaled commit; an error stops the commit there as a
	// crash would.
	failpoint func(stage string) error
}

// placement is an actor the engine placed here, with what the driver
// knows of its stored data.
type placement struct {
	rec rivetdriver.ActorRecord
	// work serializes Activate, commits and the application of a
	// pending journal.
	work sync.Mutex
	// bg counts background applications of journals.
	bg sync.WaitGroup
	mu struct {
		sync.Mutex
		// chunks maps the hash of each key whose value is chunked to
		// its index entry (loaded by Activate).
		chunks map[[32]byte]chunkInfo
		// pending is a committed journal not applied yet.
		pending *ops
		// destroyed: a destroy was committed; later commits are
		// refused.
		destroyed bool
	}
}

type chunkInfo struct {
	pieces uint32
	key    []byte
}

// New returns a driver that talks to the engine through kv.
func New(kv KV) *Driver {
	d := &Driver{kv: kv}
	d.mu.placed = map[string]*placement{}
	d.mu.stopping = map[string]bool{}
	return d
}

// Place records that the engine started the actor here with
// rec.Generation; its commits carry that generation from now on.
func (d *Driver) Place(rec rivetdriver.ActorRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.placed[rec.ID] = &placement{rec: rec}
	delete(d.mu.stopping, rec.ID)
}

// Stopping marks the actor, if still placed with generation gen, as
// being stopped: the commits of its running incarnation still land, but
// Activate refuses it (a job that arrives meanwhile must not bring it
// back on this runner after the engine moved it).
func (d *Driver) Stopping(id string, gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.mu.placed[id]; ok && p.rec.Generation == gen {
		d.mu.stopping[id] = true
	}
}

// Release forgets the actor if it is still placed with generation gen:
// later commits of it are refused. It returns once the journal of its
// last commit has been applied (or its application failed: then the
// next activation replays it), so that nothing of this incarnation
// reaches the engine after the actor was reported stopped.
func (d *Driver) Release(id string, gen uint64) {
	d.mu.Lock()
	p, ok := d.mu.placed[id]
	if ok && p.rec.Generation == gen {
		delete(d.mu.placed, id)
		delete(d.mu.stopping, id)
	}
	d.mu.Unlock()
	if ok {
		p.bg.Wait()
	}
}

func (d *Driver) placement(id string) (*placement, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.closed {
		return nil, rivetdriver.ErrClosed
	}
	p, ok := d.mu.placed[id]
	if !ok {
		return nil, fmt.Errorf("actor %s: %w", id, ErrNotPlaced)
	}
	return p, nil
}

// MaxKVKeySize is MaxUserKeySize (rivetdriver.KVKeyLimiter): the
// runtime refuses longer user keys at the KV call.
func (d *Driver) MaxKVKeySize() int { return MaxUserKeySize }

// CreateActor is refused: the engine creates actors.
func (d *Driver) CreateActor(context.Context, rivetdriver.ActorRecord) error {
	return ErrEngineIndex
}

// LookupActor is refused: the engine resolves keys.
func (d *Driver) LookupActor(context.Context, string, string, []string) (rivetdriver.ActorRecord, error) {
	return rivetdriver.ActorRecord{}, fmt.Errorf("%w: %w", rivetdriver.ErrNotFound, ErrEngineIndex)
}

// GetActor returns a placed actor.
func (d *Driver) GetActor(_ context.Context, id string) (rivetdriver.ActorRecord, error) {
	p, err := d.placement(id)
	if err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	return p.rec, nil
}

// ListActors lists the placed actors.
func (d *Driver) ListActors(_ context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	d.mu.Lock()
	var out []rivetdriver.ActorRecord
	for _, p := range d.mu.placed {
		rec := p.rec
		if (opts.Namespace == "" || rec.Namespace == opts.Namespace) && (opts.Name == "" || rec.Name == opts.Name) && rec.ID > opts.After {
			out = append(out, rec)
		}
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// Activate recovers the placed actor's journal, then reads its chunk
// index, record and state from the engine. The generation is the
// engine's.
func (d *Driver) Activate(ctx context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	p, err := d.placement(id)
	if err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	d.mu.Lock()
	stopping := d.mu.stopping[id]
	d.mu.Unlock()
	if stopping {
		return p.rec, nil, fmt.Errorf("actor %s is stopping: %w", id, ErrNotPlaced)
	}
	p.work.Lock()
	defer p.work.Unlock()
	rec := p.rec
	p.mu.Lock()
	p.mu.pending = nil
	p.mu.Unlock()
	if err := d.recover(ctx, id); err != nil {
		return rec, nil, err
	}
	chunks, err := d.loadChunkIndex(ctx, id)
	if err != nil {
		return rec, nil, err
	}
	vals, err := d.get(ctx, id, [][]byte{keyInit, keyState})
	if err != nil {
		return rec, nil, err
	}
	state, err := d.decode(ctx, id, keyState, vals[1])
	if err != nil {
		return rec, nil, err
	}
	p.mu.Lock()
	p.mu.chunks = chunks
	p.mu.Unlock()
	rec.Initialized = vals[0] != nil
	return rec, state, nil
}

// recover replays a committed journal and deletes any journal.
func (d *Driver) recover(ctx context.Context, id string) error {
	found, err := d.list(ctx, id, []byte{pfxJournal}, []byte{pfxJournal + 1}, false, 1)
	if err != nil || len(found) == 0 {
		return err // no journal: the common case
	}
	vals, err := d.get(ctx, id, [][]byte{keyJournalCommit})
	if err != nil {
		return err
	}
	if vals[0] != nil {
		o, err := d.readJournal(ctx, id, vals[0])
		if err != nil {
			return err
		}
		if err := d.apply(ctx, id, o); err != nil {
			return fmt.Errorf("rivetengine: replay the journal of actor %s: %w", id, err)
		}
	}
	return d.dropJournal(ctx, id)
}

func (d *Driver) loadChunkIndex(ctx context.Context, id string) (map[[32]byte]chunkInfo, error) {
	pairs, err := d.list(ctx, id, []byte{pfxChunkIdx}, []byte{pfxChunkIdx + 1}, false, 0)
	if err != nil {
		return nil, err
	}
	m := make(map[[32]byte]chunkInfo, len(pairs))
	for _, kv := range pairs {
		if len(kv.Key) != 33 || len(kv.Value) < 4 {
			return nil, fmt.Errorf("chunk index %x of actor %s: %w", kv.Key, id, rivetdriver.ErrCorrupt)
		}
		m[[32]byte(kv.Key[1:])] = chunkInfo{pieces: binary.BigEndian.Uint32(kv.Value), key: kv.Value[4:]}
	}
	return m, nil
}

// settle applies a journal whose application failed earlier. The caller
// holds p.work.
func (d *Driver) settle(ctx context.Context, id string, p *placement) error {
	p.mu.Lock()
	o := p.mu.pending
	p.mu.Unlock()
	if o == nil {
		return nil
	}
	if err := d.apply(ctx, id, o); err != nil {
		return fmt.Errorf("rivetengine: apply the journal of actor %s: %w", id, err)
	}
	if err := d.dropJournal(ctx, id); err != nil {
		return err
	}
	p.mu.Lock()
	p.mu.pending = nil
	p.mu.Unlock()
	return nil
}

// settleBeforeRead makes a pending journal visible before a read.
func (d *Driver) settleBeforeRead(ctx context.Context, id string) error {
	p, err := d.placement(id)
	if err != nil {
		return err
	}
	p.mu.Lock()
	pending := p.mu.pending != nil
	p.mu.Unlock()
	if !pending {
		return nil
	}
	p.work.Lock()
	defer p.work.Unlock()
	return d.settle(ctx, id, p)
}

func (d *Driver) get(ctx context.Context, id string, keys [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for lo := 0; lo < len(keys); lo += MaxKeys {
		chunk := keys[lo:min(lo+MaxKeys, len(keys))]
		res, err := d.kv.KV(ctx, id, envoy.KVGetRequest{Keys: chunk})
		if err != nil {
			return nil, err
		}
		g, ok := res.(envoy.KVGetResponse)
		if !ok {
			return nil, fmt.Errorf("rivetengine: engine answered a get with %T", res)
		}
		for i, k := range g.Keys {
			for j, want := range chunk {
				if bytes.Equal(k, want) {
					out[lo+j] = g.Values[i]
				}
			}
		}
	}
	return out, nil
}

func kvKey(k []byte) []byte     { return append([]byte{pfxKV}, k...) }
func alarmKey(id string) []byte { return append([]byte{pfxAlarm}, id...) }

func chunkKey(h [32]byte, i uint32) []byte {
	k := append([]byte{pfxChunk}, h[:]...)
	return binary.BigEndian.AppendUint32(k, i)
}

func chunkIdxKey(h [32]byte) []byte { return append([]byte{pfxChunkIdx}, h[:]...) }

func journalKey(i uint32) []byte { return binary.BigEndian.AppendUint32([]byte{pfxJournal, 0}, i) }

// decode returns the value stored under key k, reading its further
// pieces when it is chunked. nil stays nil.
func (d *Driver) decode(ctx context.Context, id string, k, v []byte) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("value of %x (actor %s) has no tag: %w", k, id, rivetdriver.ErrCorrupt)
	}
	switch v[0] {
	case tagWhole:
		return v[1:], nil
	case tagChunked:
	default:
		return nil, fmt.Errorf("value of %x (actor %s) has tag %d: %w", k, id, v[0], rivetdriver.ErrCorrupt)
	}
	if len(v) < chunkHeader {
		return nil, fmt.Errorf("chunked value of %x (actor %s): short header: %w", k, id, rivetdriver.ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(v[1:])
	total := binary.BigEndian.Uint64(v[5:])
	h := sha256.Sum256(k)
	keys := make([][]byte, 0, n)
	for i := uint32(1); i < n; i++ {
		keys = append(keys, chunkKey(h, i))
	}
	out := make([]byte, 0, total)
	out = append(out, v[chunkHeader:]...)
	// A few pieces per request keeps each answer near 1 MiB.
	for lo := 0; lo < len(keys); lo += 7 {
		vals, err := d.get(ctx, id, keys[lo:min(lo+7, len(keys))])
		if err != nil {
			return nil, err
		}
		for j, piece := range vals {
			if piece == nil {
				return nil, fmt.Errorf("chunk %d of %x (actor %s) is missing: %w", lo+j+1, k, id, rivetdriver.ErrCorrupt)
			}
			out = append(out, piece...)
		}
	}
	if uint64(len(out)) != total {
		return nil, fmt.Errorf("chunked value of %x (actor %s) is %d bytes, header says %d: %w", k, id, len(out), total, rivetdriver.ErrCorrupt)
	}
	return out, nil
}

// ops are a commit's engine operations, applied in this order.
type ops struct {
	ranges [][2][]byte
	dels   [][]byte
	puts   []rivetdriver.KV
}

func (o *ops) empty() bool { return len(o.ranges) == 0 && len(o.dels) == 0 && len(o.puts) == 0 }

// fitsOnePut reports whether puts can be one KvPutRequest.
func fitsOnePut(puts []rivetdriver.KV) bool {
	return len(puts) <= MaxKeys && payload(puts) <= MaxPutPayload
}

func payload(puts []rivetdriver.KV) int {
	n := 0
	for _, kv := range puts {
		n += len(kv.Key) + 2 + len(kv.Value)
	}
	return n
}

// plan turns a commit into engine operations and the chunk index after
// it. It fails, before anything is sent, when a key is too long.
func plan(c *rivetdriver.Commit, chunks map[[32]byte]chunkInfo) (*ops, map[[32]byte]chunkInfo, error) {
	o := &ops{}
	chunks = maps.Clone(chunks)
	if chunks == nil {
		chunks = map[[32]byte]chunkInfo{}
	}
	// dropPieces deletes the chunks of k's old value from piece from on.
	dropPieces := func(k []byte, h [32]byte, from uint32) {
		old, ok := chunks[h]
		if !ok {
			return
		}
		for i := max(from, 1); i < old.pieces; i++ {
			o.dels = append(o.dels, chunkKey(h, i))
		}
		if from <= 1 {
			o.dels = append(o.dels, chunkIdxKey(h))
			delete(chunks, h)
		}
	}
	write := func(k, v []byte) error {
		if len(k) > MaxKeySize {
			return keyTooLong(k)
		}
		h := sha256.Sum256(k)
		if 1+len(v) <= MaxValueSize {
			dropPieces(k, h, 1)
			o.puts = append(o.puts, rivetdriver.KV{Key: k, Value: append([]byte{tagWhole}, v...)})
			return nil
		}
		first := MaxValueSize - chunkHeader
		n := uint32(1 + (len(v)-first+MaxValueSize-1)/MaxValueSize)
		dropPieces(k, h, n)
		head := make([]byte, chunkHeader, MaxValueSize)
		head[0] = tagChunked
		binary.BigEndian.PutUint32(head[1:], n)
		binary.BigEndian.PutUint64(head[5:], uint64(len(v)))
		o.puts = append(o.puts, rivetdriver.KV{Key: k, Value: append(head, v[:first]...)})
		rest := v[first:]
		for i := uint32(1); i < n; i++ {
			piece := rest[:min(MaxValueSize, len(rest))]
			rest = rest[len(piece):]
			o.puts = append(o.puts, rivetdriver.KV{Key: chunkKey(h, i), Value: piece})
		}
		idx := binary.BigEndian.AppendUint32(nil, n)
		o.puts = append(o.puts, rivetdriver.KV{Key: chunkIdxKey(h), Value: append(idx, k...)})
		chunks[h] = chunkInfo{pieces: n, key: k}
		return nil
	}
	del := func(k []byte) error {
		if len(k) > MaxKeySize {
			return keyTooLong(k)
		}
		o.dels = append(o.dels, k)
		dropPieces(k, sha256.Sum256(k), 1)
		return nil
	}
	if c.KVClear {
		o.ranges = append(o.ranges, [2][]byte{{pfxKV}, {pfxKV + 1}})
		for h, ci := range chunks {
			if len(ci.key) > 0 && ci.key[0] == pfxKV {
				dropPieces(ci.key, h, 1)
			}
		}
	}
	for _, k := range c.KVDelete {
		if err := del(kvKey(k)); err != nil {
			return nil, nil, err
		}
	}
	for _, id := range c.AlarmDelete {
		if err := del(alarmKey(id)); err != nil {
			return nil, nil, err
		}
	}
	if c.Initialize {
		if err := write(keyInit, []byte{1}); err != nil {
			return nil, nil, err
		}
	}
	if c.State != nil {
		if err := write(keyState, c.State); err != nil {
			return nil, nil, err
		}
	}
	for _, kv := range c.KVPut {
		if err := write(kvKey(kv.Key), kv.Value); err != nil {
			return nil, nil, err
		}
	}
	for _, a := range c.AlarmPut {
		a.ActorID = c.ActorID
		b, err := json.Marshal(a)
		if err != nil {
			return nil, nil, err
		}
		if err := write(alarmKey(a.ID), b); err != nil {
			return nil, nil, err
		}
	}
	// One put per key, the last one (the engine writes the keys of a
	// request concurrently). A key deleted and written again in one
	// commit: the put wins (deletes run first), so the delete is only
	// wasted work; keep it out of the request.
	if len(o.puts) > 1 {
		last := make(map[string]int, len(o.puts))
		for i, kv := range o.puts {
			last[string(kv.Key)] = i
		}
		if len(last) < len(o.puts) {
			puts := o.puts[:0]
			for i, kv := range o.puts {
				if last[string(kv.Key)] == i {
					puts = append(puts, kv)
				}
			}
			o.puts = puts
		}
	}
	if len(o.dels) > 0 && len(o.puts) > 0 {
		put := make(map[string]bool, len(o.puts))
		for _, kv := range o.puts {
			put[string(kv.Key)] = true
		}
		dels := o.dels[:0]
		for _, k := range o.dels {
			if !put[string(k)] {
				dels = append(dels, k)
			}
		}
		o.dels = dels
	}
	return o, chunks, nil
}

func keyTooLong(k []byte) error {
	what, n, limit := "key", len(k), MaxKeySize
	if len(k) > 0 && k[0] == pfxKV {
		what, n, limit = "KV key", len(k)-1, MaxUserKeySize
	}
	return rivettype.ErrKVKeyInvalid.With("%s is %d bytes; the Rivet Engine stores keys of at most %d bytes", what, n, limit)
}

// Commit applies each commit of the batch; commits of one actor in order,
// different actors concurrently.
func (d *Driver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	byActor := map[string][]*rivetdriver.Commit{}
	var order []string
	for _, c := range batch {
		if _, ok := byActor[c.ActorID]; !ok {
			order = append(order, c.ActorID)
		}
		byActor[c.ActorID] = append(byActor[c.ActorID], c)
	}
	var wg sync.WaitGroup
	for _, id := range order {
		wg.Go(func() {
			cs := byActor[id]
			for len(cs) > 0 {
				if n := d.commitMerged(ctx, cs); n > 0 {
					cs = cs[n:]
					continue
				}
				cs[0].Err = d.commit(ctx, cs[0])
				cs = cs[1:]
			}
		})
	}
	wg.Wait()
	return nil
}

// commitMerged is group commit within one actor: the actor's commits
// queued together (its turns ran while an earlier write was in flight)
// that only write, and whose writes fit one engine request together,
// are sent as one KvPutRequest, which the engine applies atomically;
// a key written by several gets the value of the last. They land
// together or not at all, in order with the actor's other commits. It
// returns how many of the leading commits of cs it wrote (their Err
// set), 0 when fewer than two qualify (the caller commits the first
// alone).
func (d *Driver) commitMerged(ctx context.Context, cs []*rivetdriver.Commit) int {
	if len(cs) < 2 {
		return 0
	}
	p, err := d.placement(cs[0].ActorID)
	if err != nil {
		return 0
	}
	p.work.Lock()
	defer p.work.Unlock()
	p.mu.Lock()
	destroyed, pending, chunks := p.mu.destroyed, p.mu.pending != nil, p.mu.chunks
	p.mu.Unlock()
	if destroyed || pending {
		return 0
	}
	var puts []rivetdriver.KV
	at := map[string]int{}
	n := 0
	for _, c := range cs {
		if c.Generation != p.rec.Generation || c.Destroy {
			break
		}
		o, next, err := plan(c, chunks)
		if err != nil || len(o.ranges) > 0 || len(o.dels) > 0 {
			break
		}
		merged := slices.Clone(puts)
		idx := maps.Clone(at)
		for _, kv := range o.puts {
			if i, ok := idx[string(kv.Key)]; ok {
				merged[i] = kv
				continue
			}
			idx[string(kv.Key)] = len(merged)
			merged = append(merged, kv)
		}
		if !fitsOnePut(merged) {
			break
		}
		puts, at, chunks = merged, idx, next
		n++
	}
	if n < 2 {
		return 0
	}
	err = nil
	if len(puts) > 0 {
		err = d.put(ctx, cs[0].ActorID, puts)
	}
	if err == nil {
		p.mu.Lock()
		p.mu.chunks = chunks
		p.mu.Unlock()
	}
	for _, c := range cs[:n] {
		c.Err = err
	}
	return n
}

func (d *Driver) commit(ctx context.Context, c *rivetdriver.Commit) error {
	p, err := d.placement(c.ActorID)
	if err != nil {
		return err
	}
	if p.rec.Generation != c.Generation {
		return fmt.Errorf("actor %s generation %d, placed with %d: %w", c.ActorID, c.Generation, p.rec.Generation, rivetdriver.ErrFenced)
	}
	p.work.Lock()
	defer p.work.Unlock()
	p.mu.Lock()
	destroyed := p.mu.destroyed
	p.mu.Unlock()
	if destroyed {
		return fmt.Errorf("actor %s: %w", c.ActorID, rivetdriver.ErrDestroyed)
	}
	if err := d.settle(ctx, c.ActorID, p); err != nil {
		return err
	}
	if c.Destroy {
		if _, err := d.kv.KV(ctx, c.ActorID, envoy.KVDropRequest{}); err != nil {
			return err
		}
		p.mu.Lock()
		p.mu.chunks, p.mu.pending, p.mu.destroyed = nil, nil, true
		p.mu.Unlock()
		return nil
	}
	p.mu.Lock()
	chunks := p.mu.chunks
	p.mu.Unlock()
	o, chunks, err := plan(c, chunks)
	if err != nil {
		return err
	}
	if o.empty() {
		return nil
	}
	if len(o.ranges) == 0 && len(o.dels) == 0 && fitsOnePut(o.puts) {
		if err := d.put(ctx, c.ActorID, o.puts); err != nil {
			return err
		}
	} else {
		if err := d.writeJournal(ctx, c.ActorID, o); err != nil {
			return err
		}
		if err := d.fail("journal-committed"); err != nil {
			return err
		}
		// Durable from here on: the commit is acknowledged now, and the
		// journal is applied in the background before the actor's next
		// read or commit here (settle), before Release returns, or, if
		// this runner fails first, replayed at the next activation.
		p.mu.Lock()
		p.mu.pending = o
		p.mu.chunks = chunks
		p.mu.Unlock()
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			p.work.Lock()
			defer p.work.Unlock()
			_ = d.settle(context.WithoutCancel(ctx), c.ActorID, p) // on failure, the next call retries
		}()
		return nil
	}
	p.mu.Lock()
	p.mu.chunks = chunks
	p.mu.Unlock()
	return nil
}

func (d *Driver) fail(stage string) error {
	d.mu.Lock()
	fp := d.failpoint
	d.mu.Unlock()
	if fp == nil {
		return nil
	}
	return fp(stage)
}

func (d *Driver) put(ctx context.Context, id string, kvs []rivetdriver.KV) error {
	keys := make([][]byte, len(kvs))
	values := make([][]byte, len(kvs))
	for i, kv := range kvs {
		keys[i], values[i] = kv.Key, kv.Value
	}
	_, err := d.kv.KV(ctx, id, envoy.KVPutRequest{Keys: keys, Values: values})
	return err
}

// putAll writes kvs in as few requests as the limits allow; each request
// is atomic, the whole is not.
func (d *Driver) putAll(ctx context.Context, id string, kvs []rivetdriver.KV, stage string) error {
	for lo := 0; lo < len(kvs); {
		hi, n := lo, 0
		for hi < len(kvs) && hi-lo < MaxKeys {
			s := len(kvs[hi].Key) + 2 + len(kvs[hi].Value)
			if hi > lo && n+s > MaxPutPayload {
				break
			}
			n += s
			hi++
		}
		if err := d.put(ctx, id, kvs[lo:hi]); err != nil {
			return err
		}
		if err := d.fail(stage); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// apply runs a commit's operations: delete ranges, deletes, puts.
func (d *Driver) apply(ctx context.Context, id string, o *ops) error {
	for _, r := range o.ranges {
		if _, err := d.kv.KV(ctx, id, envoy.KVDeleteRangeRequest{Start: r[0], End: r[1]}); err != nil {
			return err
		}
		if err := d.fail("applying"); err != nil {
			return err
		}
	}
	for lo := 0; lo < len(o.dels); lo += MaxKeys {
		if _, err := d.kv.KV(ctx, id, envoy.KVDeleteRequest{Keys: o.dels[lo:min(lo+MaxKeys, len(o.dels))]}); err != nil {
			return err
		}
		if err := d.fail("applying"); err != nil {
			return err
		}
	}
	return d.putAll(ctx, id, o.puts, "applying")
}

func (d *Driver) dropJournal(ctx context.Context, id string) error {
	_, err := d.kv.KV(ctx, id, envoy.KVDeleteRangeRequest{Start: []byte{pfxJournal}, End: []byte{pfxJournal + 1}})
	return err
}

// Journal encoding: a stream of operations, each a kind byte and
// uvarint-length-prefixed fields: 'R' start end, 'D' key, 'P' key value.
// The commit record is version 1, u32 record count, u64 stream length and
// the stream's SHA-256.
const journalVersion = 1

func encodeOps(o *ops) []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	for _, r := range o.ranges {
		b = append(b, 'R')
		field(r[0])
		field(r[1])
	}
	for _, k := range o.dels {
		b = append(b, 'D')
		field(k)
	}
	for _, kv := range o.puts {
		b = append(b, 'P')
		field(kv.Key)
		field(kv.Value)
	}
	return b
}

var errJournal = fmt.Errorf("journal: %w", rivetdriver.ErrCorrupt)

func decodeOps(b []byte) (*ops, error) {
	o := &ops{}
	field := func() ([]byte, error) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, errJournal
		}
		p := b[w : w+int(n)]
		b = b[w+int(n):]
		return p, nil
	}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		switch kind {
		case 'R':
			s, err := field()
			if err != nil {
				return nil, err
			}
			e, err := field()
			if err != nil {
				return nil, err
			}
			o.ranges = append(o.ranges, [2][]byte{s, e})
		case 'D':
			k, err := field()
			if err != nil {
				return nil, err
			}
			o.dels = append(o.dels, k)
		case 'P':
			k, err := field()
			if err != nil {
				return nil, err
			}
			v, err := field()
			if err != nil {
				return nil, err
			}
			o.puts = append(o.puts, rivetdriver.KV{Key: k, Value: v})
		default:
			return nil, errJournal
		}
	}
	return o, nil
}

// writeJournal makes o durable as a journal: data records and the commit
// record in one put when they fit, else the data records first and the
// commit record last, alone.
func (d *Driver) writeJournal(ctx context.Context, id string, o *ops) error {
	full := encodeOps(o)
	var recs []rivetdriver.KV
	for i, rest := uint32(0), full; len(rest) > 0; i++ {
		n := min(MaxValueSize, len(rest))
		recs = append(recs, rivetdriver.KV{Key: journalKey(i), Value: rest[:n]})
		rest = rest[n:]
	}
	sum := sha256.Sum256(full)
	rec := []byte{journalVersion}
	rec = binary.BigEndian.AppendUint32(rec, uint32(len(recs)))
	rec = binary.BigEndian.AppendUint64(rec, uint64(len(full)))
	rec = append(rec, sum[:]...)
	commit := rivetdriver.KV{Key: keyJournalCommit, Value: rec}
	if all := append(recs, commit); fitsOnePut(all) {
		return d.put(ctx, id, all)
	}
	if err := d.putAll(ctx, id, recs, "journal-records"); err != nil {
		return err
	}
	return d.put(ctx, id, []rivetdriver.KV{commit})
}

// readJournal reads and checks the journal a commit record describes.
func (d *Driver) readJournal(ctx context.Context, id string, rec []byte) (*ops, error) {
	if len(rec) != 1+4+8+32 || rec[0] != journalVersion {
		return nil, fmt.Errorf("actor %s: commit record: %w", id, errJournal)
	}
	n := binary.BigEndian.Uint32(rec[1:])
	size := binary.BigEndian.Uint64(rec[5:])
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = journalKey(uint32(i))
	}
	stream := make([]byte, 0, size)
	for lo := 0; lo < len(keys); lo += 7 {
		vals, err := d.get(ctx, id, keys[lo:min(lo+7, len(keys))])
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if v == nil {
				return nil, fmt.Errorf("actor %s: journal record missing: %w", id, errJournal)
			}
			stream = append(stream, v...)
		}
	}
	if uint64(len(stream)) != size || sha256.Sum256(stream) != [32]byte(rec[13:]) {
		return nil, fmt.Errorf("actor %s: journal does not match its commit record: %w", id, errJournal)
	}
	return decodeOps(stream)
}

// KVGet reads user KV entries.
func (d *Driver) KVGet(ctx context.Context, actorID string, keys [][]byte) ([][]byte, error) {
	if err := d.settleBeforeRead(ctx, actorID); err != nil {
		return nil, err
	}
	ks := make([][]byte, len(keys))
	for i, k := range keys {
		ks[i] = kvKey(k)
	}
	vals, err := d.get(ctx, actorID, ks)
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		if vals[i], err = d.decode(ctx, actorID, ks[i], v); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// KVList lists user KV entries.
func (d *Driver) KVList(ctx context.Context, actorID string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	if err := d.settleBeforeRead(ctx, actorID); err != nil {
		return nil, err
	}
	start, end := []byte{pfxKV}, []byte{pfxKV + 1}
	if opts.Start != nil {
		start = kvKey(opts.Start)
	}
	if opts.Prefix != nil && bytes.Compare(kvKey(opts.Prefix), start) > 0 {
		start = kvKey(opts.Prefix)
	}
	if opts.End != nil {
		end = kvKey(opts.End)
	}
	if opts.Prefix != nil {
		if pe := prefixEnd(kvKey(opts.Prefix)); pe != nil && bytes.Compare(pe, end) < 0 {
			end = pe
		}
	}
	if bytes.Compare(start, end) >= 0 {
		return nil, nil
	}
	pairs, err := d.list(ctx, actorID, start, end, opts.Reverse, opts.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]rivetdriver.KV, 0, len(pairs))
	for _, p := range pairs {
		v, err := d.decode(ctx, actorID, p.Key, p.Value)
		if err != nil {
			return nil, err
		}
		p.Key, p.Value = p.Key[1:], v
		if opts.Contains(p.Key) {
			out = append(out, p)
		}
	}
	return out, nil
}

// list returns the raw pairs of [start, end), page by page, up to limit
// (0: all).
func (d *Driver) list(ctx context.Context, actorID string, start, end []byte, reverse bool, limit int) ([]rivetdriver.KV, error) {
	var out []rivetdriver.KV
	for {
		page := listPage
		if limit > 0 {
			page = min(page, limit-len(out))
		}
		req := envoy.KVListRequest{Query: envoy.KVListRangeQuery{Start: start, End: end, Exclusive: true}}
		if reverse {
			req.Reverse = &reverse
		}
		l := uint64(page)
		req.Limit = &l
		res, err := d.kv.KV(ctx, actorID, req)
		if err != nil {
			return nil, err
		}
		lr, ok := res.(envoy.KVListResponse)
		if !ok {
			return nil, fmt.Errorf("rivetengine: engine answered a list with %T", res)
		}
		vals := lr.Values
		if reverse {
			// Engine 2.3.19 assembles a value from its 10 KB pieces in
			// scan order and drops pieces that come out of order, so a
			// reverse list returns only the last piece of a value above
			// 10,000 bytes. Read the values again, forward.
			if vals, err = d.get(ctx, actorID, lr.Keys); err != nil {
				return nil, err
			}
		}
		for i := range lr.Keys {
			if vals[i] != nil { // deleted between the list and the get: skip
				out = append(out, rivetdriver.KV{Key: lr.Keys[i], Value: vals[i]})
			}
		}
		if len(lr.Keys) < page || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		last := lr.Keys[len(lr.Keys)-1]
		if reverse {
			end = last
		} else {
			start = append(bytes.Clone(last), 0)
		}
	}
}

// prefixEnd is the first key after every key starting with p, nil if none.
func prefixEnd(p []byte) []byte {
	e := bytes.Clone(p)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] != 0xff {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

// Alarms returns a placed actor's alarms. With an empty id it returns
// none: at start no actor is placed yet, and each actor's alarms are read
// when it is activated.
func (d *Driver) Alarms(ctx context.Context, actorID string) ([]rivetdriver.Alarm, error) {
	if actorID == "" {
		return nil, nil
	}
	if err := d.settleBeforeRead(ctx, actorID); err != nil {
		return nil, err
	}
	pairs, err := d.list(ctx, actorID, []byte{pfxAlarm}, []byte{pfxAlarm + 1}, false, 0)
	if err != nil {
		return nil, err
	}
	out := make([]rivetdriver.Alarm, 0, len(pairs))
	for _, p := range pairs {
		v, err := d.decode(ctx, actorID, p.Key, p.Value)
		if err != nil {
			return nil, err
		}
		var a rivetdriver.Alarm
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("alarm %q of actor %s: %w", p.Key[1:], actorID, rivetdriver.ErrCorrupt)
		}
		out = append(out, a)
	}
	rivetdriver.SortAlarms(out)
	return out, nil
}

// Close makes later calls fail with ErrClosed, and waits for the journals
// being applied in the background.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.mu.closed = true
	placed := make([]*placement, 0, len(d.mu.placed))
	for _, p := range d.mu.placed {
		placed = append(placed, p)
	}
	d.mu.Unlock()
	for _, p := range placed {
		p.bg.Wait()
	}
	return nil
}
