package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet/internal/actorid"
	"github.com/rivetgo/rivet/internal/callchain"
	"github.com/rivetgo/rivet/internal/clock"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// Config configures an Engine.
type Config struct {
	Driver    rivetdriver.Driver
	Behaviors []Behavior
	Clock     clock.Clock
	Log       *slog.Logger
	Region    string
	// MailboxSize bounds each actor's queue of pending work (default
	// 10,000); past it calls fail with actor.overloaded.
	MailboxSize int
	// MaxQueueTime bounds the time a call (an action, a queue send) may
	// wait in an actor's mailbox (0: no bound). A call that would wait
	// longer, by the estimate of the calls ahead times the actor's recent
	// time per call, is refused at once with actor.overloaded; one that
	// waited longer anyway fails the same way when its turn comes,
	// without running.
	MaxQueueTime time.Duration
	// MaxConnectionsPerActor bounds the connections (Connect) one actor
	// holds (0: no bound); past it Connect fails with
	// actor.too_many_connections.
	MaxConnectionsPerActor int
	// MaxAwake bounds the actors awake at once (0: DefaultMaxAwake;
	// negative: no bound). Past it the actors idle the longest go to
	// sleep before their sleep timeout; busy actors and actors that may
	// not sleep stay awake, so the bound is soft.
	MaxAwake int
	// SyncTimers makes timer callbacks (alarms, sleep) wait for the work
	// they trigger. The test kit sets it with its fake clock so that
	// advancing time is deterministic.
	SyncTimers bool
	// StoreTimeout bounds the driver calls the engine makes on its own
	// (default 30 s): one batch of commits, and the reads that load a
	// waking actor. Past it a batch fails (its callers get
	// actor.commit_failed and their actors restart from durable state)
	// and a wake fails with actor.storage_error, so that a store that
	// hangs for one actor holds neither every other actor's commits nor
	// that actor forever.
	StoreTimeout time.Duration
	// Inspect keeps what the inspector shows: recent broadcasts of awake
	// actors, recent log lines of every actor, and change notices for
	// watchers (see inspect.go).
	Inspect bool
}

// Metrics are the engine's counters.
type Metrics struct {
	Turns atomic.Uint64
	// Submitted counts commits handed to the committer; Commits those
	// it wrote.
	Submitted   atomic.Uint64
	Commits     atomic.Uint64
	Batches     atomic.Uint64
	Events      atomic.Uint64
	Activations atomic.Uint64
	Sleeps      atomic.Uint64
	Alarms      atomic.Uint64
	// Connections counts open connections (raw WebSockets included,
	// stateless calls' temporary ones not).
	Connections atomic.Int64
	// Refused counts calls refused with actor.overloaded as they
	// arrived (mailbox full, or estimated wait past MaxQueueTime); Shed
	// those failed because they waited past MaxQueueTime.
	Refused atomic.Uint64
	Shed    atomic.Uint64
	// Waiting counts the jobs waiting in actors' mailboxes.
	Waiting atomic.Int64
}

// Engine runs actors: it activates them on demand, feeds them work one
// turn at a time, commits their turns through the group committer, fires
// their alarms and puts idle ones to sleep. Its methods are safe for
// concurrent use.
type Engine struct {
	driver     rivetdriver.Driver
	behaviors  map[string]Behavior
	clock      clock.Clock
	log        *slog.Logger
	region     string
	mailboxMax int
	maxWait    time.Duration
	maxConns   int
	syncTimers bool
	awake      awakeSet
	metrics    *Metrics
	prom       *promMetrics
	insp       *inspectState // nil unless Config.Inspect
	onSleep    func(id string)
	// sleepThrough, when set, is asked to stop an actor that would
	// sleep on its own (see SleepThrough).
	sleepThrough func(id string)
	onAlarm      func(id string, generation uint64, at time.Time)
	onDestroy    func(id string)
	maxKey       int // longest KV key: MaxKVKeySize or the driver's limit
	// hibernate: an actor may sleep with connections open, the gateway
	// keeping their sockets (see SetHibernation).
	hibernate atomic.Bool
	// parkedStay: a parked connection whose client leaves does not wake
	// its actor (see SetParkedCloseWakes).
	parkedStay atomic.Bool

	ctx       context.Context
	cancel    context.CancelCauseFunc
	committer *committer
	sched     *scheduler
	wg        sync.WaitGroup
	idle      chan *host // idle workers receive runnable hosts here
	queues    queueWaiters

	mu struct {
		sync.Mutex
		hosts   map[string]*host
		closing bool
		// parked are the connections of sleeping actors whose sockets
		// stay open, by actor id.
		parked map[string][]*Conn
	}
}

// New returns an engine; Start starts it.
func New(cfg Config) (*Engine, error) {
	if cfg.Driver == nil {
		return nil, errors.New("rivet: engine needs a driver")
	}
	e := &Engine{
		driver:     cfg.Driver,
		behaviors:  map[string]Behavior{},
		clock:      cfg.Clock,
		log:        cfg.Log,
		region:     cfg.Region,
		mailboxMax: cfg.MailboxSize,
		maxWait:    max(0, cfg.MaxQueueTime),
		maxConns:   cfg.MaxConnectionsPerActor,
		syncTimers: cfg.SyncTimers,
		metrics:    &Metrics{},
		idle:       make(chan *host),
	}
	if e.clock == nil {
		e.clock = clock.Real{}
	}
	e.maxKey = MaxKVKeySize
	if l, ok := cfg.Driver.(rivetdriver.KVKeyLimiter); ok {
		e.maxKey = min(e.maxKey, l.MaxKVKeySize())
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Inspect {
		e.insp = newInspectState()
		e.log = slog.New(newTeeHandler(e.log.Handler(), e.insp))
	}
	if e.mailboxMax == 0 {
		e.mailboxMax = 10_000
	}
	e.awake.max, e.awake.minIdle = cfg.MaxAwake, evictMinIdle
	if e.awake.max == 0 {
		e.awake.max = DefaultMaxAwake
	}
	for _, b := range cfg.Behaviors {
		if _, dup := e.behaviors[b.Name()]; dup {
			return nil, fmt.Errorf("rivet: actor name %q defined twice", b.Name())
		}
		e.behaviors[b.Name()] = b
	}
	e.mu.hosts = map[string]*host{}
	e.mu.parked = map[string][]*Conn{}
	e.hibernate.Store(true)
	e.ctx, e.cancel = context.WithCancelCause(context.Background())
	e.prom = newPromMetrics(e.behaviors)
	e.prom.engine = e.metrics
	e.committer = newCommitter(e.driver, e.metrics)
	e.committer.timeout = cmp.Or(cfg.StoreTimeout, DefaultStoreTimeout)
	e.committer.prom = e.prom
	e.sched = newScheduler(e)
	return e, nil
}

// Metrics returns the engine's live counters.
func (e *Engine) Metrics() *Metrics { return e.metrics }

// Clock returns the engine's clock.
func (e *Engine) Clock() clock.Clock { return e.clock }

// Driver returns the engine's storage driver.
func (e *Engine) Driver() rivetdriver.Driver { return e.driver }

// Start starts the committer and loads every stored alarm into the
// scheduler; overdue alarms fire at once.
func (e *Engine) Start(ctx context.Context) error {
	e.goTracked(e.committer.run)
	alarms, err := e.driver.Alarms(ctx, "")
	if err != nil {
		return fmt.Errorf("load alarms: %w", err)
	}
	for _, a := range alarms {
		e.sched.add(a.At, a.ActorID, a.ID)
	}
	if err := e.countStoredActors(ctx); err != nil {
		return fmt.Errorf("count actors: %w", err)
	}
	return nil
}

// Stop shuts down: no new work is accepted, every awake actor runs its
// sleep hooks and commits, background tasks are canceled and awaited, and
// the committer drains. The driver is left open.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	e.mu.closing = true
	hosts := make([]*host, 0, len(e.mu.hosts))
	for _, h := range e.mu.hosts {
		hosts = append(hosts, h)
	}
	e.mu.Unlock()
	e.sched.stop()
	for _, h := range hosts {
		h := h
		e.pushTo(h, job{run: func(h *host) {
			h.mb.seal()
			if h.active {
				h.stop(stopShutdown)
			} else if !h.exited {
				h.exit(rivettype.ErrStopping)
			}
		}, fail: func(error) {}})
	}
	var err error
	for _, h := range hosts {
		select {
		case <-h.stopped:
		case <-ctx.Done():
			err = fmt.Errorf("rivet: stop: actors still running: %w", ctx.Err())
		}
		if err != nil {
			break
		}
	}
	e.mu.Lock()
	parked := e.mu.parked
	e.mu.parked = map[string][]*Conn{}
	e.mu.Unlock()
	for _, cs := range parked {
		for _, c := range cs {
			c.closed = true
			c.transport.Close("server stopping")
		}
	}
	e.cancel(rivettype.ErrStopping)
	done := make(chan struct{})
	go func() {
		e.committer.close()
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("rivet: stop: background work still running: %w", ctx.Err())
		}
	}
	return err
}

// goTracked runs fn in a goroutine that Stop waits for.
func (e *Engine) goTracked(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

func (e *Engine) removeHost(h *host) {
	e.mu.Lock()
	if e.mu.hosts[h.id] == h {
		delete(e.mu.hosts, h.id)
	}
	e.mu.Unlock()
}

// hostFor returns the actor's host, creating it (not yet activated) if
// the actor is asleep.
func (e *Engine) hostFor(id string) (*host, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h, ok := e.mu.hosts[id]; ok {
		return h, nil
	}
	if e.mu.closing {
		return nil, rivettype.ErrStopping
	}
	h := &host{e: e, id: id, mb: newMailbox(e.mailboxMax, e.maxWait, &e.metrics.Waiting), stopped: make(chan struct{})}
	e.mu.hosts[id] = h
	return h, nil
}

func (e *Engine) pushTo(h *host, j job) pushResult {
	res, start := h.mb.push(j)
	if start {
		e.runHost(h)
	}
	return res
}

// push queues a job on an actor, waking it if needed, without waiting
// for it to run. A job refused by an actor that is stopping goes to its
// next incarnation, unless ctx ends first.
func (e *Engine) push(ctx context.Context, id string, j job) error {
	for {
		h, err := e.hostFor(id)
		if err != nil {
			return err
		}
		switch e.pushTo(h, j) {
		case pushed:
			return nil
		case pushFull:
			e.metrics.Refused.Add(1)
			return rivettype.ErrMailboxFull.With("The actor is overloaded: %d calls are already waiting (mailbox_size). The call did not run; retry later.", e.mailboxMax)
		case pushBusy:
			e.metrics.Refused.Add(1)
			return rivettype.ErrMailboxFull.With("The actor is overloaded: the calls already waiting would keep this one waiting longer than max_queue_time (%s). The call did not run; retry later.", e.maxWait)
		}
		select {
		case <-h.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pushSync queues a timer-triggered job on a specific host, and with
// SyncTimers waits until it ran.
func (e *Engine) pushSync(_ string, h *host, j job) {
	if !e.syncTimers {
		e.pushTo(h, j)
		return
	}
	done := make(chan struct{})
	run, fail := j.run, j.fail
	j.run = func(h *host) { defer close(done); run(h) }
	j.fail = func(err error) { defer close(done); fail(err) }
	if e.pushTo(h, j) != pushed {
		return
	}
	<-done
}

// do runs fn on the actor's loop and waits for it. A job refused because
// the actor went to sleep is resubmitted to its next incarnation.
func (e *Engine) do(ctx context.Context, id string, fn func(h *host)) error {
	return e.runOn(ctx, time.Time{}, id, false, fn)
}

// errAsleep: an idle job found its actor asleep.
var errAsleep = errors.New("rivet: actor is asleep")

// doIdle runs fn on the actor's loop only if the actor is awake (see
// job.idle).
func (e *Engine) doIdle(id string, fn func(h *host)) {
	e.mu.Lock()
	h, ok := e.mu.hosts[id]
	e.mu.Unlock()
	if !ok {
		return
	}
	done := make(chan struct{})
	if e.pushTo(h, job{run: func(h *host) { fn(h); close(done) }, fail: func(error) { close(done) }, idle: true}) == pushed {
		<-done
	}
}

// errDeadline: a doUntil job missed its deadline.
var errDeadline = errors.New("rivet: deadline exceeded")

var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// doUntil is do with a deadline (zero for none) on the real clock: a job
// that has not finished by then fails with errDeadline, and one that has
// not started by then never runs.
//
// A ctx from a turn of the actor itself, or of a turn waiting on the
// actor through other calls, fails at once with actor.call_cycle: the
// job could only run after that turn, which waits for it.
//
// doUntil is for calls (see job.call): they are subject to
// MaxQueueTime.
func (e *Engine) doUntil(ctx context.Context, deadline time.Time, id string, fn func(h *host)) error {
	return e.runOn(ctx, deadline, id, true, fn)
}

func (e *Engine) runOn(ctx context.Context, deadline time.Time, id string, call bool, fn func(h *host)) error {
	if err := callchain.Cycle(ctx, id); err != nil {
		return err
	}
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := timerPool.Get().(*time.Timer)
		t.Reset(time.Until(deadline))
		defer func() {
			t.Stop()
			timerPool.Put(t)
		}()
		timeout = t.C
	}
	for {
		errc := make(chan error, 1)
		j := job{
			run: func(h *host) {
				if err := ctx.Err(); err != nil {
					errc <- err
					return
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					errc <- errDeadline
					return
				}
				fn(h)
				errc <- nil
			},
			fail:     func(err error) { errc <- err },
			ctx:      ctx,
			deadline: deadline,
			call:     call,
		}
		if err := ctx.Err(); err != nil {
			return err // do not wake an actor for a caller that is gone
		}
		if err := e.push(ctx, id, j); err != nil {
			return err
		}
		select {
		case err := <-errc:
			if err == errRetry {
				continue
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return errDeadline
		}
	}
}

func keyString(key []string) string { return strings.Join(key, "/") }

// Lookup finds the live actor with a key.
func (e *Engine) Lookup(ctx context.Context, ns, name string, key []string) (rivetdriver.ActorRecord, error) {
	if _, ok := e.behaviors[name]; !ok {
		return rivetdriver.ActorRecord{}, rivettype.ErrNotRegistered.With("Actor name %q is not registered.", name)
	}
	rec, err := e.driver.LookupActor(ctx, ns, name, key)
	if err != nil {
		if errors.Is(err, rivetdriver.ErrNotFound) {
			return rec, rivettype.ErrActorNotFound.With("No actor %q with key %q.", name, keyString(key))
		}
		return rec, storageFailure(e.log, "look up actor", mapDriverErr(err, ""))
	}
	return rec, nil
}

// ActionTimeout is the action timeout of an actor name (0 if unknown).
func (e *Engine) ActionTimeout(name string) time.Duration {
	if b, ok := e.behaviors[name]; ok {
		return b.Options().ActionTimeout
	}
	return 0
}

// GetActor returns an actor's record by id.
func (e *Engine) GetActor(ctx context.Context, id string) (rivetdriver.ActorRecord, error) {
	rec, err := e.driver.GetActor(ctx, id)
	if err != nil {
		return rec, storageFailure(e.log, "get actor", mapDriverErr(err, id))
	}
	if rec.Destroyed {
		return rec, rivettype.ErrActorNotFound.With("Actor %s was destroyed.", id)
	}
	return rec, nil
}

// Create creates an actor and activates it, so that its create hooks have
// run (and their result is durable) when Create returns. With orGet, an
// existing actor with the key is returned instead of ErrDuplicateKey.
func (e *Engine) Create(ctx context.Context, ns, name string, key []string, input []byte, orGet bool) (rivetdriver.ActorRecord, bool, error) {
	return e.create(ctx, ns, name, key, input, orGet, true)
}

// GetOrCreateForWork is Create with orGet for a caller that sends the
// actor a job right away (an action, a connection, a request): a new
// actor is stored but not activated, and that job activates it, so that
// the create hooks and the job share one commit and one fsync. Nothing
// is acknowledged early: the job's result waits for that commit, which
// the driver makes durable together with the record, and a concurrent
// lookup of the key gets the record only once it is durable (a driver
// guarantee). If the create hooks fail, the job fails with their error.
func (e *Engine) GetOrCreateForWork(ctx context.Context, ns, name string, key []string, input []byte) (rivetdriver.ActorRecord, bool, error) {
	return e.create(ctx, ns, name, key, input, true, false)
}

func (e *Engine) create(ctx context.Context, ns, name string, key []string, input []byte, orGet, activate bool) (rivetdriver.ActorRecord, bool, error) {
	if _, ok := e.behaviors[name]; !ok {
		return rivetdriver.ActorRecord{}, false, rivettype.ErrNotRegistered.With("Actor name %q is not registered.", name)
	}
	for attempt := 0; ; attempt++ {
		if orGet {
			rec, err := e.driver.LookupActor(ctx, ns, name, key)
			if err == nil {
				return rec, false, nil
			}
			if !errors.Is(err, rivetdriver.ErrNotFound) {
				return rec, false, storageFailure(e.log, "look up actor", mapDriverErr(err, ""))
			}
		}
		rec := rivetdriver.ActorRecord{
			ID: actorid.New(0), Namespace: ns, Name: name, Key: key, Input: input,
			CreatedAt: e.clock.Now().UTC(),
		}
		err := e.driver.CreateActor(ctx, rec)
		switch {
		case err == nil:
			if nm := e.prom.names[name]; nm != nil {
				nm.known.Add(1)
			}
			if !activate {
				return rec, true, nil
			}
			// Activation holds the create hooks' commit until the job
			// ends; wait for it to be durable.
			var g *Gate
			err := e.do(ctx, rec.ID, func(h *host) { g = h.lastGate() })
			if err == nil {
				err = g.Wait(ctx)
			}
			if err != nil && !errors.Is(err, rivettype.ErrActorNotFound) {
				return rec, true, err
			}
			// Created (and, unless someone destroyed it at once, awake).
			return rec, true, nil
		case errors.Is(err, rivetdriver.ErrDuplicateKey):
			if orGet && attempt < 3 {
				continue
			}
			return rec, false, rivettype.ErrDuplicateKey.With("An actor %q with key %q already exists.", name, keyString(key))
		case errors.Is(err, rivetdriver.ErrDuplicateID) && attempt < 3:
			continue
		default:
			return rec, false, storageFailure(e.log, "create actor", mapDriverErr(err, rec.ID))
		}
	}
}

// ActionResult is the outcome of an action, released after its gate.
type ActionResult struct {
	// Output is the action's result encoded by the codec.
	Output any
}

// Call runs an action on an actor and returns its output once durable.
// conn is the connection the call comes through; nil for a stateless
// call, which runs the connection hooks around the action when the
// definition has any. encode turns the action's result into bytes inside
// the turn, so the result cannot alias state that later turns change.
// timeout bounds the wait for the action (queueing included); past it the
// call fails with actor.action_timed_out and the turn's context is
// canceled.
func (e *Engine) Call(ctx context.Context, id string, conn *Conn, params []byte, name string, args []byte, encode func(any) ([]byte, error), timeout time.Duration) ([]byte, error) {
	var (
		out  []byte
		gate *Gate
		det  *Detached
		cerr error
		nm   *nameMetrics
	)
	start := time.Now()
	var deadline time.Time
	if timeout > 0 {
		deadline = start.Add(timeout)
	}
	err := e.doUntil(ctx, deadline, id, func(h *host) {
		nm = h.nm
		out, gate, det, cerr = h.action(ctx, deadline, conn, params, name, args, encode)
	})
	if err == nil && !deadline.IsZero() && !time.Now().Before(deadline) &&
		(cerr == nil || errors.Is(cerr, context.DeadlineExceeded) || errors.Is(cerr, context.Canceled)) {
		err = errDeadline // the action ran out of time (and maybe said so)
	}
	if err != nil {
		if err == errDeadline {
			return nil, rivettype.ErrActionTimedOut
		}
		return nil, err
	}
	// The job ran (err == nil), so nm is safe to read.
	if nm != nil {
		defer func() { nm.actionSeconds.Observe(time.Since(start).Seconds()) }()
	}
	if werr := gate.Wait(ctx); werr != nil {
		if det != nil {
			e.releaseDetached(id, det)
		}
		return nil, werr
	}
	if det != nil {
		return e.runDetached(ctx, id, name, args, det, encode, deadline)
	}
	return out, cerr
}

// Connect opens a connection: the connect hooks run in a turn and, when
// they succeed, the connection joins the actor.
func (e *Engine) Connect(ctx context.Context, id string, c *Conn) error {
	var gate *Gate
	var cerr error
	err := e.do(ctx, id, func(h *host) {
		if e.maxConns > 0 && len(h.conns) >= e.maxConns {
			cerr = rivettype.ErrTooManyConns.With("The actor has %d connections, the most max_connections_per_actor allows; close one or retry later.", e.maxConns)
			return
		}
		gate, cerr = h.connect(ctx, c)
	})
	if err != nil {
		return err
	}
	if werr := gate.Wait(ctx); werr != nil {
		return werr
	}
	return cerr
}

// Disconnect removes a connection and runs onDisconnect. It is safe to call
// more than once. A connection of a sleeping actor (its socket kept by the
// gateway) wakes the actor, which rebuilds it and then lets it go.
func (e *Engine) Disconnect(c *Conn, id, reason string) {
	c.gone.Store(true)
	e.doIdle(id, func(h *host) { h.disconnect(c, reason) })
	if e.isParked(id, c) && !e.unpark(id, c) {
		_ = e.do(e.ctx, id, func(h *host) { h.disconnect(c, reason) })
	}
}

// SetParkedCloseWakes chooses what happens when the client of a
// connection parked with its sleeping actor leaves: wake the actor to
// run onDisconnect (on, the default), or drop the socket and leave the
// record, which the actor's next start finds without a socket and
// disconnects then (off: runner mode, where only the Rivet Engine starts
// actors).
func (e *Engine) SetParkedCloseWakes(on bool) { e.parkedStay.Store(!on) }

// unpark drops a parked connection without waking its actor, when
// SetParkedCloseWakes is off; it reports whether it did.
func (e *Engine) unpark(id string, c *Conn) bool {
	if !e.parkedStay.Load() {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.mu.parked[id]
	i := slices.Index(cs, c)
	if i < 0 {
		return false
	}
	e.mu.parked[id] = slices.Delete(cs, i, i+1)
	if len(e.mu.parked[id]) == 0 {
		delete(e.mu.parked, id)
	}
	return true
}

// Adopt parks c, a connection whose record is in the actor's store and
// whose socket reached this process while the actor is not running here
// (the Rivet Engine kept it while the actor moved): the actor's next
// activation rebuilds it from the record, without connect hooks. It
// fails when the actor is running here.
func (e *Engine) Adopt(id string, c *Conn) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.mu.hosts[id]; ok {
		return fmt.Errorf("rivet: actor %s is running: a connection cannot be adopted", id)
	}
	if c.subs == nil {
		c.subs = map[string]struct{}{}
	}
	e.mu.parked[id] = append(e.mu.parked[id], c)
	return nil
}

// Subscribe adds or removes an event subscription of a connection, in a
// turn that rewrites the connection's record. The change takes effect at
// once; its commit is not awaited (nothing is acknowledged to the client).
func (e *Engine) Subscribe(ctx context.Context, id string, c *Conn, event string, on bool) error {
	var terr error
	err := e.do(ctx, id, func(h *host) {
		if c.h != h || c.closed {
			terr = rivettype.ErrConnectionClosed
			return
		}
		if on {
			c.subs[event] = struct{}{}
		} else {
			delete(c.subs, event)
		}
		t := newTurn(h, ctx, c)
		_, terr = h.endTurn(t, nil)
	})
	if err != nil {
		return err
	}
	return terr
}

// SetHibernation chooses whether actors sleep with connections open (the
// default): a connection then does not keep its actor awake unless the
// actor's KeepAwakeWhileConnected option says so; while the actor sleeps
// its socket stays open, and the connection is rebuilt from its record
// when the actor wakes. Off, every connection keeps its actor awake (runner
// mode, until the Rivet Engine's hibernatable WebSockets are served). Set
// it before the engine serves anything.
func (e *Engine) SetHibernation(on bool) { e.hibernate.Store(on) }

// park keeps the sockets of a sleeping actor's connections. Their
// in-memory state is dropped: the next incarnation rebuilds it from the
// records. A connection whose client already left is closed instead; its
// record goes at the next wake.
func (e *Engine) park(id string, cs []*Conn) {
	if len(cs) == 0 {
		return
	}
	var closing []*Conn
	e.mu.Lock()
	for _, c := range cs {
		if c.gone.Load() || e.mu.closing {
			closing = append(closing, c)
			continue
		}
		c.h, c.State, c.subs, c.rec = nil, nil, nil, nil
		e.mu.parked[id] = append(e.mu.parked[id], c)
	}
	e.mu.Unlock()
	for _, c := range closing {
		c.closed = true
		c.transport.Close("actor stopped")
	}
}

// takeParked removes and returns the parked connections of an actor.
func (e *Engine) takeParked(id string) []*Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.mu.parked[id]
	delete(e.mu.parked, id)
	return cs
}

func (e *Engine) isParked(id string, c *Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.mu.parked[id], c)
}

// Parked is the number of connections kept open for sleeping actors.
func (e *Engine) Parked() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, cs := range e.mu.parked {
		n += len(cs)
	}
	return n
}

// Enter runs fn as a turn of the actor and waits until its changes are
// durable. It is how background work re-enters its actor.
func (e *Engine) Enter(ctx context.Context, id string, fn func(t *Turn) error) error {
	return e.EnterAs(ctx, id, nil, fn)
}

// EnterAs is Enter with the turn serving connection c (nil for none).
func (e *Engine) EnterAs(ctx context.Context, id string, c *Conn, fn func(t *Turn) error) error {
	return e.runTurn(ctx, id, c, func(h *host) error {
		if c != nil && (c.h != h || c.closed) {
			return rivettype.ErrConnectionClosed
		}
		return nil
	}, fn, nil)
}

// ConnectRaw adds c, a raw connection (an onWebSocket socket, an
// onRequest request), to the actor. If the actor has connection hooks
// they run as for Connect (onBeforeConnect may refuse c), and
// Disconnect or Detach runs onDisconnect. c stays out of the actor's
// connection list and gets no events; it keeps the actor awake until
// Disconnect or Detach. Turns serve it with EnterAs.
func (e *Engine) ConnectRaw(ctx context.Context, id string, c *Conn) error {
	c.raw = true
	var gate *Gate
	var cerr error
	err := e.do(ctx, id, func(h *host) {
		if !h.opts.ConnHooks {
			h.addConn(c) // nothing to commit, nothing to wait for
			return
		}
		c.hooked = true
		gate, cerr = h.connect(ctx, c)
	})
	if err != nil {
		return err
	}
	if werr := gate.Wait(ctx); werr != nil {
		return werr
	}
	return cerr
}

// runTurn runs fn as one turn of the actor serving c and waits until the
// turn is durable. prepare runs first on the actor's loop and may refuse
// the turn; undo (optional) runs when the turn failed.
func (e *Engine) runTurn(ctx context.Context, id string, c *Conn, prepare func(h *host) error, fn func(t *Turn) error, undo func(h *host)) error {
	var gate *Gate
	var terr error
	err := e.do(ctx, id, func(h *host) {
		if terr = prepare(h); terr != nil {
			return
		}
		t := newTurn(h, ctx, c)
		terr = h.call("turn", "", func() error { return fn(t) })
		e.metrics.Turns.Add(1)
		if terr != nil && undo != nil {
			undo(h)
		}
		var ferr error
		gate, ferr = h.endTurn(t, terr)
		if terr == nil {
			terr = ferr
		}
	})
	if err != nil {
		return err
	}
	if werr := gate.Wait(ctx); werr != nil {
		return werr
	}
	return terr
}

// Detach removes a raw connection, running fn (if not nil) as its last
// turn. A hibernated one wakes its actor for that.
func (e *Engine) Detach(id string, c *Conn, fn func(t *Turn) error) {
	c.gone.Store(true)
	e.doIdle(id, func(h *host) { h.detachConn(c, fn) })
	if e.isParked(id, c) && !e.unpark(id, c) {
		_ = e.do(e.ctx, id, func(h *host) { h.detachConn(c, fn) })
	}
}

// detachConn removes c; fn (if not nil) runs as the close turn, then
// onDisconnect for a connection whose hooks ran.
func (h *host) detachConn(c *Conn, fn func(t *Turn) error) {
	if _, ok := h.conns[c.ID]; !ok || c.closed {
		return
	}
	c.closed = true
	h.removeConn(c)
	if fn != nil {
		t := newTurn(h, context.WithoutCancel(h.e.ctx), c)
		h.e.metrics.Turns.Add(1)
		err := h.call("raw WebSocket onClose", "", func() error { return fn(t) })
		if err != nil && !Reported(err) {
			h.log().Warn("raw WebSocket onClose failed", "conn", c.ID, "err", err)
		}
		_, _ = h.endTurn(t, err)
	}
	if c.hooked && !h.abandoned {
		t := newTurn(h, context.WithoutCancel(h.e.ctx), c)
		h.e.metrics.Turns.Add(1)
		err := h.call("onDisconnect", "", func() error { return h.inst.Disconnect(t, c) })
		if err != nil && !Reported(err) {
			h.log().Warn("onDisconnect failed", "conn", c.ID, "err", err)
		}
		_, _ = h.endTurn(t, err)
	}
}

// Destroy destroys an actor: onDestroy runs, then its state, KV and alarms
// are deleted. Later calls to the id fail with not_found.
func (e *Engine) Destroy(ctx context.Context, id string) error {
	return e.do(ctx, id, func(h *host) { h.destroyNow() })
}

// Sleep puts an awake actor to sleep now. A sleeping actor is left as is.
func (e *Engine) Sleep(ctx context.Context, id string) error {
	e.mu.Lock()
	h := e.mu.hosts[id]
	e.mu.Unlock()
	if h == nil {
		return nil
	}
	done := make(chan struct{})
	if e.pushTo(h, job{run: func(h *host) { defer close(done); h.sleepNow(true) }, fail: func(error) { close(done) }}) != pushed {
		<-h.stopped
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-h.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Awake reports whether an actor is active in memory.
func (e *Engine) Awake(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.mu.hosts[id]
	return ok
}

// Settle waits until no actor's mailbox is being drained: every job
// handed to an actor so far has run, with the bookkeeping after it (the
// idle timer armed). Tests with a fake clock call it before moving time,
// so a timer is not armed after the jump it should have seen. It gives up
// when ctx ends (an actor kept busy by its own background work).
func (e *Engine) Settle(ctx context.Context) {
	for {
		busy := false
		e.mu.Lock()
		for _, h := range e.mu.hosts {
			h.mb.mu.Lock()
			busy = h.mb.running || len(h.mb.items) > 0
			h.mb.mu.Unlock()
			if busy {
				break
			}
		}
		e.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Microsecond):
		}
	}
}

// AwakeCount is the number of actors in memory.
func (e *Engine) AwakeCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.mu.hosts)
}

// FireDueAlarms delivers every alarm due now and, with SyncTimers, waits
// until their turns ran.
func (e *Engine) FireDueAlarms() { e.sched.fire() }

// deliverAlarm runs a due alarm on its actor, waking it if needed.
func (e *Engine) deliverAlarm(actorID, alarmID string) {
	run := func() {
		err := e.do(e.ctx, actorID, func(h *host) { h.runAlarm(alarmID) })
		if err != nil && !errors.Is(err, rivettype.ErrStopping) && !errors.Is(err, context.Canceled) &&
			!errors.Is(err, rivettype.ErrActorNotFound) {
			e.ActorLog(actorID).Warn("deliver alarm", "alarm", alarmID, "err", err)
		}
	}
	if e.syncTimers {
		run()
		return
	}
	e.goTracked(run)
}

// Registered reports whether name is a registered actor name.
func (e *Engine) Registered(name string) bool {
	_, ok := e.behaviors[name]
	return ok
}

// ListActors lists live actors (destroyed ones only if asked).
func (e *Engine) ListActors(ctx context.Context, opts rivetdriver.ListActorsOptions) ([]rivetdriver.ActorRecord, error) {
	return e.driver.ListActors(ctx, opts)
}

// OnSleep sets a function called after an actor went to sleep on its own
// (idle, or asked by its code): runner mode tells the Rivet Engine. Set it
// before the engine serves anything.
func (e *Engine) OnSleep(fn func(id string)) { e.onSleep = fn }

// SleepThrough makes actors that would sleep on their own (idle, or asked
// by their code) ask fn instead of stopping: fn is called once per
// incarnation, from the actor's goroutine (it must not block on the
// actor), and the actor keeps serving until Sleep stops it. Runner mode
// sets it: the Rivet Engine answers a sleep intent with a stop command,
// and an actor that stopped before that command would be woken here by a
// request the engine still routes to it, then stopped a second time.
// Set it before the engine serves anything.
func (e *Engine) SleepThrough(fn func(id string)) { e.sleepThrough = fn }

// OnDestroy sets a function called after an actor was destroyed and its
// data deleted (by its own code or through Destroy): runner mode tells
// the Rivet Engine. Set it before the engine serves anything.
func (e *Engine) OnDestroy(fn func(id string)) { e.onDestroy = fn }

// OnAlarm sets a function told an actor's earliest alarm (zero: none)
// whenever it changes, once the commit that changed it is durable and
// before that commit's callers see it. Its generation is the commit's.
// After an activation the earliest is taken as none, so a woken actor
// with alarms reports its earliest again. It also makes each activation
// schedule the actor's stored alarms (running overdue ones at once),
// for a driver that lists none at start: runner mode, where the Rivet
// Engine keeps the time and wakes the actor then. fn runs on the
// committer's goroutine (or the actor's) and must not wait on actors.
// Set it before the engine serves anything.
func (e *Engine) OnAlarm(fn func(id string, generation uint64, at time.Time)) {
	e.onAlarm = fn
	e.committer.onAlarm = fn
}

// Region is the region actors run in.
func (e *Engine) Region() string { return e.region }
