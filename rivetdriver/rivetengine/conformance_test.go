package rivetengine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetdrivertest"
)

// TestConformanceStorage runs the storage part of the driver suite
// against the engine driver on a real engine. The suite's actors are
// created in the engine by an adapter that keeps their records (the
// index is the engine's, not the driver's) and maps the suite's ids to
// the engine's.
func TestConformanceStorage(t *testing.T) {
	f := newFixture(t)
	// Engine 2.3.19 on this machine stops placing new actors after about
	// ten creations in a row (docs/engine-runner.md §12), so the suite's
	// actors share a pool of engine actors whose KV is dropped between
	// subtests.
	pool := make(chan string, 6)
	for range cap(pool) {
		pool <- f.actor()
	}
	rivetdrivertest.ExerciseStorage(t, func(t *testing.T) rivetdriver.Driver {
		s := &suiteDriver{f: f, d: f.d, pool: pool, recs: map[string]*suiteActor{}}
		t.Cleanup(s.release)
		return s
	})
}

type suiteActor struct {
	rec rivetdriver.ActorRecord
	eid string // the engine's actor id
}

// suiteDriver is the index the suite expects, over the engine driver.
type suiteDriver struct {
	f      *fixture
	d      *Driver
	pool   chan string
	taken  []string
	mu     sync.Mutex
	recs   map[string]*suiteActor
	closed bool
}

func (s *suiteDriver) actor(id string) (*suiteActor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, rivetdriver.ErrClosed
	}
	a, ok := s.recs[id]
	if !ok {
		return nil, fmt.Errorf("actor %s: %w", id, rivetdriver.ErrNotFound)
	}
	return a, nil
}

func (s *suiteDriver) CreateActor(ctx context.Context, rec rivetdriver.ActorRecord) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return rivetdriver.ErrClosed
	}
	if _, dup := s.recs[rec.ID]; dup {
		s.mu.Unlock()
		return rivetdriver.ErrDuplicateID
	}
	s.mu.Unlock()
	var eid string
	select {
	case eid = <-s.pool:
	default:
		return fmt.Errorf("suite adapter: no engine actor left for %q", rec.ID)
	}
	s.mu.Lock()
	s.taken = append(s.taken, eid)
	s.mu.Unlock()
	// A fresh actor: nothing of the pool actor's last use is left.
	if _, err := s.d.kv.KV(ctx, eid, envoy.KVDropRequest{}); err != nil {
		return err
	}
	rec.Key = slices.Clone(rec.Key)
	rec.Input = slices.Clone(rec.Input)
	rec.Generation, rec.Initialized, rec.Destroyed = 0, false, false
	s.mu.Lock()
	s.recs[rec.ID] = &suiteActor{rec: rec, eid: eid}
	s.mu.Unlock()
	return nil
}

func (s *suiteDriver) LookupActor(_ context.Context, ns, name string, key []string) (rivetdriver.ActorRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return rivetdriver.ActorRecord{}, rivetdriver.ErrClosed
	}
	for _, a := range s.recs {
		if a.rec.Namespace == ns && a.rec.Name == name && slices.Equal(a.rec.Key, key) && !a.rec.Destroyed {
			return clone(a.rec), nil
		}
	}
	return rivetdriver.ActorRecord{}, rivetdriver.ErrNotFound
}

func (s *suiteDriver) GetActor(_ context.Context, id string) (rivetdriver.ActorRecord, error) {
	a, err := s.actor(id)
	if err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(a.rec), nil
}

func clone(r rivetdriver.ActorRecord) rivetdriver.ActorRecord {
	r.Key, r.Input = slices.Clone(r.Key), slices.Clone(r.Input)
	return r
}

func (s *suiteDriver) ListActors(context.Context, rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rivetdriver.ActorRecord
	for _, a := range s.recs {
		if !a.rec.Destroyed {
			out = append(out, clone(a.rec))
		}
	}
	slices.SortFunc(out, func(a, b rivetdriver.ActorRecord) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Activate starts the next generation, as the engine would: the old
// placement is released and the new one placed.
func (s *suiteDriver) Activate(ctx context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	a, err := s.actor(id)
	if err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	s.mu.Lock()
	if a.rec.Destroyed {
		s.mu.Unlock()
		return rivetdriver.ActorRecord{}, nil, rivetdriver.ErrDestroyed
	}
	a.rec.Generation++
	gen := a.rec.Generation
	s.mu.Unlock()
	s.d.Release(a.eid, gen-1)
	s.d.Place(rivetdriver.ActorRecord{ID: a.eid, Namespace: "default", Name: "t", Generation: gen})
	rec, state, err := s.d.Activate(ctx, a.eid)
	if err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	s.mu.Lock()
	a.rec.Initialized = rec.Initialized
	out := clone(a.rec)
	s.mu.Unlock()
	return out, state, nil
}

func (s *suiteDriver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return rivetdriver.ErrClosed
	}
	var sent []*rivetdriver.Commit
	var who []*suiteActor
	for _, c := range batch {
		c.Err = nil
		a, err := s.actor(c.ActorID)
		if err != nil {
			c.Err = err
			continue
		}
		s.mu.Lock()
		destroyed := a.rec.Destroyed
		s.mu.Unlock()
		if destroyed {
			c.Err = rivetdriver.ErrDestroyed
			continue
		}
		e := *c
		e.ActorID = a.eid
		sent = append(sent, &e)
		who = append(who, a)
	}
	if err := s.d.Commit(ctx, sent); err != nil {
		return err
	}
	j := 0
	for _, c := range batch {
		if c.Err != nil {
			continue
		}
		e, a := sent[j], who[j]
		j++
		c.Err = e.Err
		if e.Err == nil {
			s.mu.Lock()
			a.rec.Initialized = a.rec.Initialized || c.Initialize
			a.rec.Destroyed = a.rec.Destroyed || c.Destroy
			s.mu.Unlock()
		}
	}
	return nil
}

// KVGet and KVList of an unknown actor find nothing, as the contract
// says.
func (s *suiteDriver) KVGet(ctx context.Context, id string, keys [][]byte) ([][]byte, error) {
	a, err := s.actor(id)
	if errors.Is(err, rivetdriver.ErrNotFound) {
		return make([][]byte, len(keys)), nil
	}
	if err != nil {
		return nil, err
	}
	return s.d.KVGet(ctx, a.eid, keys)
}

func (s *suiteDriver) KVList(ctx context.Context, id string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	a, err := s.actor(id)
	if errors.Is(err, rivetdriver.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.d.KVList(ctx, a.eid, opts)
}

// Alarms maps the engine's ids back; "" gathers every live actor's.
func (s *suiteDriver) Alarms(ctx context.Context, id string) ([]rivetdriver.Alarm, error) {
	var actors []*suiteActor
	if id == "" {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, rivetdriver.ErrClosed
		}
		for _, a := range s.recs {
			if !a.rec.Destroyed && a.rec.Generation > 0 {
				actors = append(actors, a)
			}
		}
		s.mu.Unlock()
	} else {
		a, err := s.actor(id)
		if errors.Is(err, rivetdriver.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		actors = append(actors, a)
	}
	var out []rivetdriver.Alarm
	for _, a := range actors {
		as, err := s.d.Alarms(ctx, a.eid)
		if err != nil {
			return nil, err
		}
		for _, al := range as {
			al.ActorID = a.rec.ID
			out = append(out, al)
		}
	}
	rivetdriver.SortAlarms(out)
	return out, nil
}

// release returns the engine actors to the pool.
func (s *suiteDriver) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, eid := range s.taken {
		s.pool <- eid
	}
	s.taken = nil
}

func (s *suiteDriver) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
