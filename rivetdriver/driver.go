// Package rivetdriver defines the storage seam of the rivet runtime: the one
// small interface through which everything an actor persists is read and
// written, and the record types that cross it.
//
// The interface is owned by the runtime and shaped by what it needs. It is not
// semver-stable; do not implement it outside this repository. Every driver in
// the repository runs the conformance suite in package rivetdrivertest.
//
// # Data model
//
// An actor is identified by an opaque id and, within a namespace, by its name
// and key. Its persisted data is: a record (name, key, generation, destroyed
// flag), the encoded state, an ordered per-actor key/value space, and its
// alarms. All writes after creation go through [Driver.Commit], one atomic
// [Commit] per actor turn; several commits are applied together so that they
// share one fsync (group commit).
//
// # Fencing
//
// [Driver.Activate] increments an actor's generation and returns it. Every
// commit carries the generation of the incarnation that produced it; a driver
// refuses a commit whose generation is not the current one with
// [ErrFenced]. This is what lets a store refuse writes from a stale owner.
package rivetdriver

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"time"
)

// Errors a driver returns. Drivers wrap them with context; callers test with
// errors.Is.
var (
	// ErrNotFound: no actor with that id, or no live actor with that key.
	ErrNotFound = errors.New("rivetdriver: actor not found")
	// ErrDuplicateKey: a live actor with that namespace, name and key exists.
	ErrDuplicateKey = errors.New("rivetdriver: actor key already in use")
	// ErrDuplicateID: an actor with that id exists or existed. Ids are never
	// reused, not even after destroy.
	ErrDuplicateID = errors.New("rivetdriver: actor id already in use")
	// ErrDestroyed: the actor was destroyed.
	ErrDestroyed = errors.New("rivetdriver: actor destroyed")
	// ErrFenced: a commit carried a generation that is no longer current.
	ErrFenced = errors.New("rivetdriver: stale actor generation")
	// ErrCorrupt: stored data failed its checksum or format check.
	ErrCorrupt = errors.New("rivetdriver: stored data is corrupt")
	// ErrClosed: the driver was closed.
	ErrClosed = errors.New("rivetdriver: driver closed")
)

// ActorRecord is an actor's identity and bookkeeping.
type ActorRecord struct {
	ID        string
	Namespace string
	Name      string
	Key       []string
	// Input is the create-time input, encoded by the runtime. It is kept so
	// that the first activation can pass it to the create hooks.
	Input      []byte
	CreatedAt  time.Time
	Generation uint64
	// Initialized is set by the first commit that carries Initialize: the
	// create hooks ran and their result is durable.
	Initialized bool
	Destroyed   bool
}

// KV is one key/value pair of an actor's key/value space. Keys are compared
// as byte strings.
type KV struct {
	Key   []byte
	Value []byte
}

// Alarm is a durable scheduled call of an action.
type Alarm struct {
	ID      string
	ActorID string
	At      time.Time
	Action  string
	// Args is the encoded argument list.
	Args      []byte
	CreatedAt time.Time
}

// Commit is the atomic result of one actor turn.
type Commit struct {
	ActorID    string
	Generation uint64

	// Initialize marks the actor initialized (see ActorRecord.Initialized).
	Initialize bool
	// State, when non-nil, replaces the stored state.
	State []byte

	// KVClear deletes the whole key/value space before KVPut is applied.
	KVClear  bool
	KVDelete [][]byte
	KVPut    []KV

	AlarmDelete []string
	AlarmPut    []Alarm

	// Destroy marks the actor destroyed and deletes its state, key/value
	// space and alarms. Its key becomes free; its id stays taken.
	Destroy bool

	// Err is set by Driver.Commit for a commit that was refused on its own
	// (ErrFenced, ErrNotFound, ErrDestroyed) while the rest of the batch was
	// applied.
	Err error
}

// ListOptions selects a range of an actor's key/value space. Start is
// inclusive, End exclusive; nil means unbounded. Prefix, when set, further
// restricts the range to keys that start with it. Limit 0 means no limit.
type ListOptions struct {
	Prefix  []byte
	Start   []byte
	End     []byte
	Reverse bool
	Limit   int
}

// ListActorsOptions filters Driver.ListActors. Empty fields match all.
// Destroyed actors are listed only with IncludeDestroyed.
type ListActorsOptions struct {
	Namespace        string
	Name             string
	IncludeDestroyed bool
	// After resumes a listing after this actor id (ids ascending).
	After string
	Limit int
}

// Driver is a storage backend. All methods are safe for concurrent use.
// Commits for one actor are issued by the runtime in order, never
// concurrently with each other.
type Driver interface {
	// CreateActor stores a new actor record. It fails with ErrDuplicateKey
	// when a live actor holds the namespace, name and key, and with
	// ErrDuplicateID when the id was ever used.
	CreateActor(ctx context.Context, rec ActorRecord) error
	// LookupActor returns the live actor holding namespace, name and key.
	LookupActor(ctx context.Context, namespace, name string, key []string) (ActorRecord, error)
	// GetActor returns an actor by id, destroyed ones included.
	GetActor(ctx context.Context, id string) (ActorRecord, error)
	// ListActors lists actors in id order.
	ListActors(ctx context.Context, opts ListActorsOptions) ([]ActorRecord, error)

	// Activate makes the caller the actor's current incarnation: it
	// increments the generation durably and returns the updated record with
	// the stored state (nil if none was ever committed).
	Activate(ctx context.Context, id string) (ActorRecord, []byte, error)

	// Commit applies a batch of commits and makes them durable before it
	// returns. Each commit is atomic. A commit refused on its own has Err
	// set; the others are applied. A returned error means nothing in the
	// batch was applied.
	Commit(ctx context.Context, batch []*Commit) error

	// KVGet returns the values of keys, nil for a missing key.
	KVGet(ctx context.Context, actorID string, keys [][]byte) ([][]byte, error)
	// KVList returns pairs in key order (descending with Reverse).
	KVList(ctx context.Context, actorID string, opts ListOptions) ([]KV, error)

	// Alarms returns an actor's alarms ordered by time, then id. An empty
	// actorID returns every actor's alarms.
	Alarms(ctx context.Context, actorID string) ([]Alarm, error)

	// Close releases the driver. Pending calls may fail with ErrClosed.
	Close() error
}

// Pipeliner is implemented by drivers that can separate ordering a batch
// from making it durable, so that the runtime can hand over the next
// batch while the last one is still being synced (the embedded driver
// does; it lets one fsync cover several batches).
type Pipeliner interface {
	// CommitAsync applies batch as Commit does and returns once the
	// batch's order relative to every earlier call is fixed: later calls
	// are applied after it, and reads may see it. wait blocks until the
	// batch is durable and must be called exactly once. If wait fails,
	// the store must be assumed to have lost the batch and everything
	// applied after it; the driver then refuses further work, since what
	// it holds in memory may no longer match the disk.
	CommitAsync(ctx context.Context, batch []*Commit) (wait func() error, err error)
}

// Releaser is implemented by drivers that keep per-actor state in memory
// while an actor is in use (the embedded driver's fencing cache). The
// runtime calls ReleaseActor when an incarnation has left (slept,
// stopped, was destroyed or failed to start), so that the driver's
// memory grows with the awake actors, not with every actor ever used.
// It is a hint: it changes no later call's result, and a commit with a
// stale generation is still refused with ErrFenced. A driver ignores a
// call whose generation is not the actor's current one (a newer
// incarnation is using the actor). (rivetengine.Driver.Release is not
// this: the runner calls it when the Rivet Engine stops the actor, and
// it refuses the incarnation's later commits.)
type Releaser interface {
	ReleaseActor(id string, generation uint64)
}

// KVKeyLimiter is implemented by drivers that store shorter KV keys than
// the runtime allows (the engine driver: the Rivet Engine's key limit
// less the driver's prefix). The runtime then refuses a longer key at
// the KV call, with kv.invalid_key, instead of failing the turn's commit.
type KVKeyLimiter interface {
	MaxKVKeySize() int
}

// Contains reports whether key falls in the range o selects (Reverse and
// Limit aside).
func (o ListOptions) Contains(key []byte) bool {
	if o.Prefix != nil && !bytes.HasPrefix(key, o.Prefix) {
		return false
	}
	if o.Start != nil && bytes.Compare(key, o.Start) < 0 {
		return false
	}
	return o.End == nil || bytes.Compare(key, o.End) < 0
}

// SortAlarms orders alarms by time, then id: the order Driver.Alarms
// returns.
func SortAlarms(as []Alarm) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].At.Equal(as[j].At) {
			return as[i].At.Before(as[j].At)
		}
		return as[i].ID < as[j].ID
	})
}
