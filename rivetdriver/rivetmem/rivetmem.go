// Package rivetmem is an in-memory rivetdriver.Driver: the same semantics as
// the durable drivers, no durability. It is meant for tests, examples and
// short-lived development servers.
package rivetmem

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/rivetgo/rivet/rivetdriver"
)

// Driver keeps everything in memory. It is safe for concurrent use.
type Driver struct {
	mu     sync.RWMutex
	closed bool
	actors map[string]*actor
	byKey  map[string]string // index key -> actor id (live actors only)
}

type actor struct {
	rec    rivetdriver.ActorRecord
	state  []byte
	kv     map[string][]byte
	alarms map[string]rivetdriver.Alarm
}

var _ rivetdriver.Driver = (*Driver)(nil)

// New returns an empty driver.
func New() *Driver {
	return &Driver{actors: map[string]*actor{}, byKey: map[string]string{}}
}

func indexKey(namespace, name string, key []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%s%d:%s", len(namespace), namespace, len(name), name)
	for _, k := range key {
		fmt.Fprintf(&b, "%d:%s", len(k), k)
	}
	return b.String()
}

func cloneRecord(r rivetdriver.ActorRecord) rivetdriver.ActorRecord {
	r.Key = slices.Clone(r.Key)
	r.Input = bytes.Clone(r.Input)
	return r
}

func cloneAlarm(a rivetdriver.Alarm) rivetdriver.Alarm {
	a.Args = bytes.Clone(a.Args)
	return a
}

// CreateActor implements rivetdriver.Driver.
func (d *Driver) CreateActor(_ context.Context, rec rivetdriver.ActorRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return rivetdriver.ErrClosed
	}
	if _, ok := d.actors[rec.ID]; ok {
		return fmt.Errorf("rivetmem: create actor %s: %w", rec.ID, rivetdriver.ErrDuplicateID)
	}
	ik := indexKey(rec.Namespace, rec.Name, rec.Key)
	if _, ok := d.byKey[ik]; ok {
		return fmt.Errorf("rivetmem: create actor %s: %w", rec.Name, rivetdriver.ErrDuplicateKey)
	}
	rec = cloneRecord(rec)
	rec.Destroyed = false
	d.actors[rec.ID] = &actor{rec: rec, kv: map[string][]byte{}, alarms: map[string]rivetdriver.Alarm{}}
	d.byKey[ik] = rec.ID
	return nil
}

// LookupActor implements rivetdriver.Driver.
func (d *Driver) LookupActor(_ context.Context, namespace, name string, key []string) (rivetdriver.ActorRecord, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return rivetdriver.ActorRecord{}, rivetdriver.ErrClosed
	}
	id, ok := d.byKey[indexKey(namespace, name, key)]
	if !ok {
		return rivetdriver.ActorRecord{}, rivetdriver.ErrNotFound
	}
	return cloneRecord(d.actors[id].rec), nil
}

// GetActor implements rivetdriver.Driver.
func (d *Driver) GetActor(_ context.Context, id string) (rivetdriver.ActorRecord, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return rivetdriver.ActorRecord{}, rivetdriver.ErrClosed
	}
	a, ok := d.actors[id]
	if !ok {
		return rivetdriver.ActorRecord{}, rivetdriver.ErrNotFound
	}
	return cloneRecord(a.rec), nil
}

// ListActors implements rivetdriver.Driver.
func (d *Driver) ListActors(_ context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, rivetdriver.ErrClosed
	}
	var out []rivetdriver.ActorRecord
	for _, a := range d.actors {
		r := a.rec
		if (opts.Namespace != "" && r.Namespace != opts.Namespace) ||
			(opts.Name != "" && r.Name != opts.Name) ||
			(r.Destroyed && !opts.IncludeDestroyed) ||
			(opts.After != "" && r.ID <= opts.After) {
			continue
		}
		out = append(out, cloneRecord(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// Activate implements rivetdriver.Driver.
func (d *Driver) Activate(_ context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return rivetdriver.ActorRecord{}, nil, rivetdriver.ErrClosed
	}
	a, ok := d.actors[id]
	if !ok {
		return rivetdriver.ActorRecord{}, nil, rivetdriver.ErrNotFound
	}
	if a.rec.Destroyed {
		return rivetdriver.ActorRecord{}, nil, rivetdriver.ErrDestroyed
	}
	a.rec.Generation++
	return cloneRecord(a.rec), bytes.Clone(a.state), nil
}

// Commit implements rivetdriver.Driver.
func (d *Driver) Commit(_ context.Context, batch []*rivetdriver.Commit) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return rivetdriver.ErrClosed
	}
	for _, c := range batch {
		c.Err = nil
		a, ok := d.actors[c.ActorID]
		switch {
		case !ok:
			c.Err = rivetdriver.ErrNotFound
			continue
		case a.rec.Destroyed:
			c.Err = rivetdriver.ErrDestroyed
			continue
		case a.rec.Generation != c.Generation:
			c.Err = rivetdriver.ErrFenced
			continue
		}
		if c.Destroy {
			a.rec.Destroyed = true
			a.state = nil
			a.kv = map[string][]byte{}
			a.alarms = map[string]rivetdriver.Alarm{}
			delete(d.byKey, indexKey(a.rec.Namespace, a.rec.Name, a.rec.Key))
			continue
		}
		if c.Initialize {
			a.rec.Initialized = true
		}
		if c.State != nil {
			a.state = bytes.Clone(c.State)
		}
		if c.KVClear {
			a.kv = map[string][]byte{}
		}
		for _, k := range c.KVDelete {
			delete(a.kv, string(k))
		}
		for _, kv := range c.KVPut {
			a.kv[string(kv.Key)] = bytes.Clone(kv.Value)
		}
		for _, id := range c.AlarmDelete {
			delete(a.alarms, id)
		}
		for _, al := range c.AlarmPut {
			al = cloneAlarm(al)
			al.ActorID = c.ActorID
			a.alarms[al.ID] = al
		}
	}
	return nil
}

// KVGet implements rivetdriver.Driver.
func (d *Driver) KVGet(_ context.Context, actorID string, keys [][]byte) ([][]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, rivetdriver.ErrClosed
	}
	out := make([][]byte, len(keys))
	a, ok := d.actors[actorID]
	if !ok {
		return out, nil
	}
	for i, k := range keys {
		if v, ok := a.kv[string(k)]; ok {
			out[i] = bytes.Clone(v)
		}
	}
	return out, nil
}

// KVList implements rivetdriver.Driver.
func (d *Driver) KVList(_ context.Context, actorID string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, rivetdriver.ErrClosed
	}
	a, ok := d.actors[actorID]
	if !ok {
		return nil, nil
	}
	var out []rivetdriver.KV
	for k, v := range a.kv {
		kb := []byte(k)
		if !opts.Contains(kb) {
			continue
		}
		out = append(out, rivetdriver.KV{Key: kb, Value: bytes.Clone(v)})
	}
	sort.Slice(out, func(i, j int) bool {
		c := bytes.Compare(out[i].Key, out[j].Key)
		if opts.Reverse {
			return c > 0
		}
		return c < 0
	})
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// Alarms implements rivetdriver.Driver.
func (d *Driver) Alarms(_ context.Context, actorID string) ([]rivetdriver.Alarm, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, rivetdriver.ErrClosed
	}
	var out []rivetdriver.Alarm
	for id, a := range d.actors {
		if actorID != "" && id != actorID {
			continue
		}
		for _, al := range a.alarms {
			out = append(out, cloneAlarm(al))
		}
	}
	rivetdriver.SortAlarms(out)
	return out, nil
}

// Close implements rivetdriver.Driver.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// ReadState returns an actor's committed state without activating it (nil
// if none was committed); the inspector reads sleeping actors with it.
func (d *Driver) ReadState(_ context.Context, id string) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, rivetdriver.ErrClosed
	}
	a, ok := d.actors[id]
	if !ok {
		return nil, rivetdriver.ErrNotFound
	}
	if a.rec.Destroyed {
		return nil, rivetdriver.ErrDestroyed
	}
	return bytes.Clone(a.state), nil
}
