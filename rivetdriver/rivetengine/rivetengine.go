// Package rivetengine is the storage driver of runner mode: every actor's
// data lives in that actor's KV space in the Rivet Engine, reached through
// the runner's connection (internal/runner), one KV request at a time.
//
// The engine owns the actor index (ids, names, keys, generations), so this
// driver knows only the actors the engine placed on this runner (Place,
// Release): CreateActor and LookupActor are refused, GetActor and
// ListActors answer for placed actors, and Activate returns the
// generation the engine assigned instead of incrementing one.
//
// # Layout
//
// Within one actor's engine KV:
//
//	01          the actor is initialized (its create hooks' commit landed)
//	02          the encoded state
//	03 + key    the user's KV
//	04 + id     an alarm (JSON)
//
// # Commits
//
// A commit that only writes (the common turn: a state change, KV puts,
// new alarms) and fits the engine's limits of one request — at most 128
// keys, 976 KiB of keys and values — is one KvPutRequest, which the engine
// applies in one transaction: it is atomic, and the commit returns only
// after the engine's answer. A commit with deletes (KV deletes, deleteAll,
// alarm deletes) or above those limits is sent as several requests in
// order (delete-range, deletes, puts): each is atomic, the sequence is
// not. A crash between them leaves a partial commit; the journal that
// closes this gap is not built yet (docs/engine-runner.md). A destroy is
// one KvDropRequest. A value above 128 KiB or a key above 2 KiB (the
// engine's limits) fails the commit before anything is sent.
//
// # Fencing
//
// The engine does not fence KV requests by generation. The driver refuses
// a commit whose generation is not the one the engine placed the actor
// with, and every commit of an actor that was released (stopped, lost);
// the runner refuses every request while it is not connected.
package rivetengine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/rivetdriver"
)

// KV sends one KV request for an actor to the engine and returns its
// answer (internal/runner.Runner implements it).
type KV interface {
	KV(ctx context.Context, actorID string, req envoy.KVRequestData) (envoy.KVResponseData, error)
}

// The engine's limits (engine/packages/pegboard/src/actor_kv).
const (
	MaxKeys       = 128
	MaxKeySize    = 2048
	MaxValueSize  = 128 * 1024
	MaxPutPayload = 976 * 1024
)

// ErrNotPlaced: the engine did not place this actor on this runner (or
// took it away). It wraps rivetdriver.ErrNotFound.
var ErrNotPlaced = fmt.Errorf("%w: not placed on this runner", rivetdriver.ErrNotFound)

// ErrEngineIndex: the engine, not the runner, creates and looks up actors.
var ErrEngineIndex = errors.New("rivetengine: actors are created and looked up by the engine, not by a runner")

var (
	keyInit  = []byte{1}
	keyState = []byte{2}
	pfxKV    = byte(3)
	pfxAlarm = byte(4)
)

// Driver is the engine KV driver.
type Driver struct {
	kv KV
	mu struct {
		sync.Mutex
		placed map[string]rivetdriver.ActorRecord
		// stopping: placed actors the engine is stopping; they commit
		// their last turns but are not activated again.
		stopping map[string]bool
		closed   bool
	}
}

// New returns a driver that talks to the engine through kv.
func New(kv KV) *Driver {
	d := &Driver{kv: kv}
	d.mu.placed = map[string]rivetdriver.ActorRecord{}
	d.mu.stopping = map[string]bool{}
	return d
}

// Place records that the engine started the actor here with
// rec.Generation; its commits carry that generation from now on.
func (d *Driver) Place(rec rivetdriver.ActorRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.placed[rec.ID] = rec
	delete(d.mu.stopping, rec.ID)
}

// Stopping marks the actor, if still placed with generation gen, as
// being stopped: the commits of its running incarnation still land, but
// Activate refuses it (a job that arrives meanwhile must not bring it
// back on this runner after the engine moved it).
func (d *Driver) Stopping(id string, gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rec, ok := d.mu.placed[id]; ok && rec.Generation == gen {
		d.mu.stopping[id] = true
	}
}

// Release forgets the actor if it is still placed with generation gen:
// later commits of it are refused.
func (d *Driver) Release(id string, gen uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rec, ok := d.mu.placed[id]; ok && rec.Generation == gen {
		delete(d.mu.placed, id)
		delete(d.mu.stopping, id)
	}
}

func (d *Driver) record(id string) (rivetdriver.ActorRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.closed {
		return rivetdriver.ActorRecord{}, rivetdriver.ErrClosed
	}
	rec, ok := d.mu.placed[id]
	if !ok {
		return rivetdriver.ActorRecord{}, fmt.Errorf("actor %s: %w", id, ErrNotPlaced)
	}
	return rec, nil
}

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
	return d.record(id)
}

// ListActors lists the placed actors.
func (d *Driver) ListActors(_ context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	d.mu.Lock()
	var out []rivetdriver.ActorRecord
	for _, rec := range d.mu.placed {
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

// Activate reads the placed actor's record and state from the engine. The
// generation is the engine's.
func (d *Driver) Activate(ctx context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	rec, err := d.record(id)
	if err != nil {
		return rec, nil, err
	}
	d.mu.Lock()
	stopping := d.mu.stopping[id]
	d.mu.Unlock()
	if stopping {
		return rec, nil, fmt.Errorf("actor %s is stopping: %w", id, ErrNotPlaced)
	}
	vals, err := d.get(ctx, id, [][]byte{keyInit, keyState})
	if err != nil {
		return rec, nil, err
	}
	rec.Initialized = vals[0] != nil
	return rec, vals[1], nil
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
			for _, c := range byActor[id] {
				c.Err = d.commit(ctx, c)
			}
		})
	}
	wg.Wait()
	return nil
}

func (d *Driver) commit(ctx context.Context, c *rivetdriver.Commit) error {
	rec, err := d.record(c.ActorID)
	if err != nil {
		return err
	}
	if rec.Generation != c.Generation {
		return fmt.Errorf("actor %s generation %d, placed with %d: %w", c.ActorID, c.Generation, rec.Generation, rivetdriver.ErrFenced)
	}
	if c.Destroy {
		_, err := d.kv.KV(ctx, c.ActorID, envoy.KVDropRequest{})
		return err
	}
	var keys, values [][]byte
	put := func(k, v []byte) { keys, values = append(keys, k), append(values, v) }
	if c.Initialize {
		put(keyInit, []byte{1})
	}
	if c.State != nil {
		put(keyState, c.State)
	}
	for _, kv := range c.KVPut {
		put(kvKey(kv.Key), kv.Value)
	}
	for _, a := range c.AlarmPut {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		put(alarmKey(a.ID), b)
	}
	size := 0
	for i, k := range keys {
		if len(k) > MaxKeySize {
			return fmt.Errorf("rivetengine: key of %d bytes exceeds the engine's limit of %d", len(k), MaxKeySize)
		}
		if len(values[i]) > MaxValueSize {
			return fmt.Errorf("rivetengine: value of %d bytes (key %x) exceeds the engine's limit of %d", len(values[i]), k, MaxValueSize)
		}
		size += len(k) + len(values[i])
	}
	var dels [][]byte
	for _, k := range c.KVDelete {
		dels = append(dels, kvKey(k))
	}
	for _, id := range c.AlarmDelete {
		dels = append(dels, alarmKey(id))
	}
	if c.KVClear {
		if _, err := d.kv.KV(ctx, c.ActorID, envoy.KVDeleteRangeRequest{Start: []byte{pfxKV}, End: []byte{pfxKV + 1}}); err != nil {
			return err
		}
	}
	for lo := 0; lo < len(dels); lo += MaxKeys {
		if _, err := d.kv.KV(ctx, c.ActorID, envoy.KVDeleteRequest{Keys: dels[lo:min(lo+MaxKeys, len(dels))]}); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if len(keys) <= MaxKeys && size <= MaxPutPayload {
		_, err := d.kv.KV(ctx, c.ActorID, envoy.KVPutRequest{Keys: keys, Values: values})
		return err
	}
	// Above one request's limits: several puts, each atomic.
	for lo := 0; lo < len(keys); {
		hi, n := lo, 0
		for hi < len(keys) && hi-lo < MaxKeys && (hi == lo || n+len(keys[hi])+len(values[hi]) <= MaxPutPayload) {
			n += len(keys[hi]) + len(values[hi])
			hi++
		}
		if _, err := d.kv.KV(ctx, c.ActorID, envoy.KVPutRequest{Keys: keys[lo:hi], Values: values[lo:hi]}); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// KVGet reads user KV entries.
func (d *Driver) KVGet(ctx context.Context, actorID string, keys [][]byte) ([][]byte, error) {
	if _, err := d.record(actorID); err != nil {
		return nil, err
	}
	ks := make([][]byte, len(keys))
	for i, k := range keys {
		ks[i] = kvKey(k)
	}
	return d.get(ctx, actorID, ks)
}

// KVList lists user KV entries.
func (d *Driver) KVList(ctx context.Context, actorID string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	if _, err := d.record(actorID); err != nil {
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
		p.Key = p.Key[1:]
		if opts.Contains(p.Key) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (d *Driver) list(ctx context.Context, actorID string, start, end []byte, reverse bool, limit int) ([]rivetdriver.KV, error) {
	req := envoy.KVListRequest{Query: envoy.KVListRangeQuery{Start: start, End: end, Exclusive: true}}
	if reverse {
		req.Reverse = &reverse
	}
	if limit > 0 {
		l := uint64(limit)
		req.Limit = &l
	}
	res, err := d.kv.KV(ctx, actorID, req)
	if err != nil {
		return nil, err
	}
	l, ok := res.(envoy.KVListResponse)
	if !ok {
		return nil, fmt.Errorf("rivetengine: engine answered a list with %T", res)
	}
	out := make([]rivetdriver.KV, len(l.Keys))
	for i := range l.Keys {
		out[i] = rivetdriver.KV{Key: l.Keys[i], Value: l.Values[i]}
	}
	return out, nil
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
	if _, err := d.record(actorID); err != nil {
		return nil, err
	}
	pairs, err := d.list(ctx, actorID, []byte{pfxAlarm}, []byte{pfxAlarm + 1}, false, 0)
	if err != nil {
		return nil, err
	}
	out := make([]rivetdriver.Alarm, 0, len(pairs))
	for _, p := range pairs {
		var a rivetdriver.Alarm
		if err := json.Unmarshal(p.Value, &a); err != nil {
			return nil, fmt.Errorf("alarm %q of actor %s: %w", p.Key[1:], actorID, rivetdriver.ErrCorrupt)
		}
		out = append(out, a)
	}
	rivetdriver.SortAlarms(out)
	return out, nil
}

// Close makes later calls fail with ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.closed = true
	return nil
}
