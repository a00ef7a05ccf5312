// Package rivetfault wraps any rivetdriver.Driver (memory, embedded,
// PostgreSQL) and injects storage faults by a seeded, programmable
// schedule: I/O errors on reads and commits, detected corruption, slow and
// hung calls, commits that are applied but reported as failed (a lost
// acknowledgement), torn batches, and undetected bit flips in what reads
// return.
//
// It is public so that you can test your own actors against a failing
// store: run a runtime on rivetfault.New(rivetmem.New(), seed), add rules,
// call your actors, and check what they promise. The same seed and the
// same sequence of calls give the same faults.
//
//	fd := rivetfault.New(rivetmem.New(), 1)
//	fd.Add(rivetfault.Rule{Ops: rivetfault.OpCommit, Kind: rivetfault.KindError, Prob: 0.1})
//	rt, err := rivet.Start(ctx, reg, &rivet.Config{Driver: fd})
//
// The wrapper hides the optional capabilities of the driver it wraps
// (pipelined commits, a KV key limit) except where noted, so the runtime
// takes its plain commit path. In runner mode the runner drives the Rivet
// Engine's driver directly; faults go one level down instead, into the
// engine KV requests that driver sends (Driver.WrapEngineKV, set as
// set the Driver as rivet.EngineConfig.WrapKV).
package rivetfault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
)

// ErrInjected is the error an injected I/O fault returns (wrapped with the
// operation's name).
var ErrInjected = errors.New("rivetfault: injected I/O error")

// Op is a set of driver operations, as a bit mask.
type Op uint16

// Driver operations a rule can match.
const (
	OpCreate Op = 1 << iota
	OpLookup
	OpGet
	OpList
	OpActivate
	OpCommit
	OpKVGet
	OpKVList
	OpAlarms

	// OpReads is every operation that only reads.
	OpReads = OpLookup | OpGet | OpList | OpActivate | OpKVGet | OpKVList | OpAlarms
	// OpAll is every operation.
	OpAll = OpReads | OpCreate | OpCommit
)

var opNames = []string{"CreateActor", "LookupActor", "GetActor", "ListActors", "Activate", "Commit", "KVGet", "KVList", "Alarms"}

func (o Op) String() string {
	for i, n := range opNames {
		if o == 1<<i {
			return n
		}
	}
	return fmt.Sprintf("Op(%#x)", uint16(o))
}

// Kind is what a fault does.
type Kind int

// Fault kinds.
const (
	// KindError fails the call with ErrInjected without reaching the
	// driver: nothing is read or written.
	KindError Kind = iota
	// KindCorrupt fails the call with an error wrapping
	// rivetdriver.ErrCorrupt without reaching the driver: what a driver
	// returns when stored data fails its checksum.
	KindCorrupt
	// KindSlow delays the call by the rule's Delay (or until the
	// context is done, which fails it with the context's error before it
	// reaches the driver).
	KindSlow
	// KindHang blocks the call until its context is done and then fails
	// it with the context's error; nothing reaches the driver.
	KindHang
	// KindLostAck (commits only) applies the whole batch and then reports
	// ErrInjected: the write is durable but the caller was told it
	// failed, as when a connection drops after a database committed.
	KindLostAck
	// KindTorn (commits only) applies a seeded prefix of the batch (each
	// commit in it whole) and reports ErrInjected, as a store that
	// crashed part way through a batch would.
	KindTorn
	// KindBitFlip (reads only) flips one bit in a value the read returns
	// (state, KV value, alarm arguments) and reports success: corruption
	// that no checksum caught. Use it to test how your code handles
	// garbage; the runtime cannot tell such data from valid data.
	KindBitFlip
)

var kindNames = []string{"error", "corrupt", "slow", "hang", "lost-ack", "torn", "bit-flip"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Rule injects one kind of fault into calls that match it.
type Rule struct {
	// Ops are the operations the rule applies to (zero: all).
	Ops Op
	// Actor restricts the rule to calls about one actor id (a commit
	// batch matches when any of its commits is for the actor). Empty
	// matches every call.
	Actor string
	Kind  Kind
	// Prob is the chance that a matching call gets the fault, drawn from
	// the driver's seeded generator; 0 means always.
	Prob float64
	// Delay is how long KindSlow delays a call.
	Delay time.Duration
	// Limit stops the rule after that many faults (0: no limit).
	Limit int

	fired int
}

// Fault is one injected fault, as reported to Options.OnFault.
type Fault struct {
	Op   Op
	Kind Kind
	// Actors are the actor ids the call concerned (every commit's actor
	// for a batch).
	Actors []string
	// Applied, for a commit fault, lists the commits of the batch that
	// reached the store although the call failed (KindLostAck: all;
	// KindTorn: a prefix).
	Applied []*rivetdriver.Commit
}

// Stats counts injected faults by kind.
type Stats struct {
	Calls  int
	Faults map[Kind]int
}

// Total is the number of injected faults.
func (s Stats) Total() int {
	n := 0
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// Driver is a rivetdriver.Driver that injects faults into calls to the
// driver it wraps. Its rules can change at any time; it is safe for
// concurrent use.
type Driver struct {
	inner rivetdriver.Driver
	mu    struct {
		sync.Mutex
		rng     *rand.Rand
		rules   []*Rule
		stats   Stats
		onFault func(Fault)
	}
}

var _ rivetdriver.Driver = (*Driver)(nil)

// New wraps inner. seed fixes the sequence of random choices (which calls
// a probabilistic rule hits, where a torn batch is cut, which bit flips).
func New(inner rivetdriver.Driver, seed uint64) *Driver {
	d := &Driver{inner: inner}
	d.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d.mu.stats.Faults = map[Kind]int{}
	return d
}

// Inner is the wrapped driver.
func (d *Driver) Inner() rivetdriver.Driver { return d.inner }

// Add adds rules. The first matching rule that fires decides a call's
// fault.
func (d *Driver) Add(rules ...Rule) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range rules {
		if r.Ops == 0 {
			r.Ops = OpAll
		}
		d.mu.rules = append(d.mu.rules, &r)
	}
}

// Clear removes every rule: later calls reach the driver unharmed. Calls
// already blocked by a fault stay blocked until their context ends.
func (d *Driver) Clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.rules = nil
}

// OnFault sets a function called (without locks held) for every injected
// fault, before the call returns.
func (d *Driver) OnFault(fn func(Fault)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.onFault = fn
}

// Stats returns the counts so far.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Stats{Calls: d.mu.stats.Calls, Faults: make(map[Kind]int, len(d.mu.stats.Faults))}
	for k, v := range d.mu.stats.Faults {
		s.Faults[k] = v
	}
	return s
}

// decision is a drawn fault.
type decision struct {
	rule *Rule
	kind Kind
	cut  int    // KindTorn: commits applied
	bit  uint64 // KindBitFlip: which bit (modulo the value's size)
}

// draw picks the fault, if any, for a call of op about actors.
func (d *Driver) draw(op Op, actors []string, batch int) *decision {
	return d.pick(op, actors, batch, false)
}

// drawEngine picks the fault, if any, for an engine KV request
// (WrapEngineKV).
func (d *Driver) drawEngine(op Op, actors []string) *decision {
	return d.pick(op, actors, 0, true)
}

func (d *Driver) pick(op Op, actors []string, batch int, engine bool) *decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.stats.Calls++
	for _, r := range d.mu.rules {
		if r.Ops&op == 0 || (r.Limit > 0 && r.fired >= r.Limit) {
			continue
		}
		if !applies(r.Kind, op) || (engine && (r.Kind == KindTorn || r.Kind == KindBitFlip)) {
			continue
		}
		if r.Actor != "" && !contains(actors, r.Actor) {
			continue
		}
		if r.Prob > 0 && d.mu.rng.Float64() >= r.Prob {
			continue
		}
		r.fired++
		dc := &decision{rule: r, kind: r.Kind, bit: d.mu.rng.Uint64()}
		if r.Kind == KindTorn {
			dc.cut = d.mu.rng.IntN(batch + 1)
		}
		return dc
	}
	return nil
}

// count records a fault that took effect and reports it.
func (d *Driver) count(f Fault) {
	d.mu.Lock()
	d.mu.stats.Faults[f.Kind]++
	fn := d.mu.onFault
	d.mu.Unlock()
	if fn != nil {
		fn(f)
	}
}

func applies(k Kind, op Op) bool {
	switch k {
	case KindLostAck, KindTorn:
		return op == OpCommit
	case KindBitFlip:
		return op&(OpActivate|OpKVGet|OpKVList|OpAlarms) != 0
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// before runs the part of a fault that happens before the driver is
// called. It returns a non-nil error when the call must fail without
// reaching the driver.
func (d *Driver) before(ctx context.Context, dc *decision, op Op, actors []string) error {
	if dc == nil {
		return nil
	}
	f := Fault{Op: op, Kind: dc.kind, Actors: actors}
	switch dc.kind {
	case KindError:
		d.count(f)
		return fmt.Errorf("%s: %w", op, ErrInjected)
	case KindCorrupt:
		d.count(f)
		return fmt.Errorf("rivetfault: %s: injected checksum mismatch: %w", op, rivetdriver.ErrCorrupt)
	case KindSlow:
		d.count(f)
		t := time.NewTimer(dc.rule.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("rivetfault: %s: slowed call: %w", op, ctx.Err())
		}
	case KindHang:
		d.count(f)
		<-ctx.Done()
		return fmt.Errorf("rivetfault: %s: hung call: %w", op, ctx.Err())
	}
	return nil
}

// flip flips one bit of b, chosen by dc; it reports whether b was
// non-empty.
func flip(dc *decision, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	i := dc.bit % uint64(len(b)*8)
	b[i/8] ^= 1 << (i % 8)
	return true
}

func (d *Driver) CreateActor(ctx context.Context, rec rivetdriver.ActorRecord) error {
	if err := d.before(ctx, d.draw(OpCreate, []string{rec.ID}, 0), OpCreate, []string{rec.ID}); err != nil {
		return err
	}
	return d.inner.CreateActor(ctx, rec)
}

func (d *Driver) LookupActor(ctx context.Context, ns, name string, key []string) (rivetdriver.ActorRecord, error) {
	if err := d.before(ctx, d.draw(OpLookup, nil, 0), OpLookup, nil); err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	return d.inner.LookupActor(ctx, ns, name, key)
}

func (d *Driver) GetActor(ctx context.Context, id string) (rivetdriver.ActorRecord, error) {
	if err := d.before(ctx, d.draw(OpGet, []string{id}, 0), OpGet, []string{id}); err != nil {
		return rivetdriver.ActorRecord{}, err
	}
	return d.inner.GetActor(ctx, id)
}

func (d *Driver) ListActors(ctx context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	if err := d.before(ctx, d.draw(OpList, nil, 0), OpList, nil); err != nil {
		return nil, err
	}
	return d.inner.ListActors(ctx, opts)
}

func (d *Driver) Activate(ctx context.Context, id string) (rivetdriver.ActorRecord, []byte, error) {
	actors := []string{id}
	dc := d.draw(OpActivate, actors, 0)
	if err := d.before(ctx, dc, OpActivate, actors); err != nil {
		return rivetdriver.ActorRecord{}, nil, err
	}
	rec, state, err := d.inner.Activate(ctx, id)
	if err == nil && dc != nil && dc.kind == KindBitFlip {
		state = append([]byte(nil), state...)
		if flip(dc, state) {
			d.count(Fault{Op: OpActivate, Kind: KindBitFlip, Actors: actors})
		}
	}
	return rec, state, err
}

func (d *Driver) KVGet(ctx context.Context, actorID string, keys [][]byte) ([][]byte, error) {
	actors := []string{actorID}
	dc := d.draw(OpKVGet, actors, 0)
	if err := d.before(ctx, dc, OpKVGet, actors); err != nil {
		return nil, err
	}
	vs, err := d.inner.KVGet(ctx, actorID, keys)
	if err == nil && dc != nil && dc.kind == KindBitFlip {
		for i, v := range vs {
			if len(v) > 0 {
				vs[i] = append([]byte(nil), v...)
				flip(dc, vs[i])
				d.count(Fault{Op: OpKVGet, Kind: KindBitFlip, Actors: actors})
				break
			}
		}
	}
	return vs, err
}

func (d *Driver) KVList(ctx context.Context, actorID string, opts rivetdriver.ListOptions) ([]rivetdriver.KV, error) {
	actors := []string{actorID}
	dc := d.draw(OpKVList, actors, 0)
	if err := d.before(ctx, dc, OpKVList, actors); err != nil {
		return nil, err
	}
	kvs, err := d.inner.KVList(ctx, actorID, opts)
	if err == nil && dc != nil && dc.kind == KindBitFlip {
		for i := range kvs {
			if len(kvs[i].Value) > 0 {
				kvs[i].Value = append([]byte(nil), kvs[i].Value...)
				flip(dc, kvs[i].Value)
				d.count(Fault{Op: OpKVList, Kind: KindBitFlip, Actors: actors})
				break
			}
		}
	}
	return kvs, err
}

func (d *Driver) Alarms(ctx context.Context, actorID string) ([]rivetdriver.Alarm, error) {
	var actors []string
	if actorID != "" {
		actors = []string{actorID}
	}
	dc := d.draw(OpAlarms, actors, 0)
	if err := d.before(ctx, dc, OpAlarms, actors); err != nil {
		return nil, err
	}
	as, err := d.inner.Alarms(ctx, actorID)
	if err == nil && dc != nil && dc.kind == KindBitFlip {
		for i := range as {
			if len(as[i].Args) > 0 {
				as[i].Args = append([]byte(nil), as[i].Args...)
				flip(dc, as[i].Args)
				d.count(Fault{Op: OpAlarms, Kind: KindBitFlip, Actors: actors})
				break
			}
		}
	}
	return as, err
}

// Commit applies batch, or fails it as a rule says. With KindLostAck and
// KindTorn part or all of the batch reaches the store although Commit
// reports an error; Fault.Applied tells which commits did.
func (d *Driver) Commit(ctx context.Context, batch []*rivetdriver.Commit) error {
	actors := make([]string, 0, len(batch))
	for _, c := range batch {
		if !contains(actors, c.ActorID) {
			actors = append(actors, c.ActorID)
		}
	}
	dc := d.draw(OpCommit, actors, len(batch))
	if err := d.before(ctx, dc, OpCommit, actors); err != nil {
		return err
	}
	if dc == nil || (dc.kind != KindLostAck && dc.kind != KindTorn) {
		return d.inner.Commit(ctx, batch)
	}
	applied := batch
	if dc.kind == KindTorn {
		applied = batch[:dc.cut]
	}
	if len(applied) > 0 {
		if err := d.inner.Commit(ctx, applied); err != nil {
			return err
		}
		// A commit the store refused on its own (Err set) did not
		// reach it.
		kept := make([]*rivetdriver.Commit, 0, len(applied))
		for _, c := range applied {
			if c.Err == nil {
				kept = append(kept, c)
			}
		}
		applied = kept
	}
	d.count(Fault{Op: OpCommit, Kind: dc.kind, Actors: actors, Applied: applied})
	return fmt.Errorf("%s: %d of %d commits applied, then: %w", OpCommit, len(applied), len(batch), ErrInjected)
}

// Close closes the wrapped driver.
func (d *Driver) Close() error { return d.inner.Close() }
