package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

// Backend is where the server process keeps its actors.
type Backend struct {
	// Name labels the report: embedded, postgres, engine.
	Name string
	// Mode is the server process's RIVET_SOAK_MODE.
	Mode string
	// PostgresURL is the database of the postgres mode.
	PostgresURL string
	// EngineURL is the engine's guard (engine mode): the runner connects
	// to it and clients call through it.
	EngineURL string
	// Resends marks a backend that may deliver a request twice (the
	// engine's gateway re-sends a request whose runner went away): effects
	// applied twice are counted in Report.Resent, not Doubled.
	Resends bool
	// Timeout bounds how long an actor may take to answer after a restart
	// before it counts as stuck (the engine needs its lost threshold to
	// move actors off a dead runner).
	Timeout time.Duration
}

// Options shape a soak run.
type Options struct {
	// Kills is how many times the server is killed (then restarted).
	Kills int
	// Actors is how many actors share the load (default 6).
	Actors int
	// MaxAcks bounds the acknowledged operations between two kills; each
	// round kills after a random number up to it (default 200). One round
	// in ten kills within the first few acknowledgements, while the
	// restarted server is still waking actors and firing alarms.
	MaxAcks int
	// Dir holds the embedded store and the server's log.
	Dir string
	// Command builds the server process (run RunChild in it); env is
	// added to its environment.
	Command func(env []string) *exec.Cmd
	// Seed makes the kill points reproducible (0: from the clock).
	Seed uint64
	// For, when positive, ends the kills early once that much time has
	// passed (the audit still runs): a time budget for slow backends.
	For time.Duration
	// Log receives a line per round and the report.
	Log io.Writer
}

// Report is what the audit found.
type Report struct {
	Backend string
	Kills   int
	// Acked counts operations the server acknowledged (actions,
	// connection calls, alarms armed, queue sends, queue receives).
	Acked int
	// Failed counts operations that failed (most were cut by a kill).
	Failed int
	// Events counts events connections received.
	Events int
	// AlarmsPendingAtKill counts alarms acknowledged but not yet fired
	// when the server was killed (recovery had to fire them).
	AlarmsPendingAtKill int
	// Armed counts alarms acknowledged.
	Armed   int
	Elapsed time.Duration

	// Violations: each must be 0.
	Lost            int      // acknowledged writes missing after restart
	Doubled         int      // effects applied twice (not alarms)
	AlarmsNeverFire int      // acknowledged alarms that never fired
	Stuck           int      // actors that never answered again after a restart
	Phantom         int      // effects never sent that appeared (or events of effects never applied)
	Examples        []string // a few violations, for the log

	// Allowed, counted: alarms are at least once; an operation whose
	// answer the kill cut may still have been applied.
	AlarmRepeats int
	AnswerLost   int
	// Resent counts effects applied twice on a backend that re-sends
	// requests (Backend.Resends): at least once, as documented there.
	Resent int
}

// Violations sums the counts that must be 0.
func (r *Report) Violations() int {
	return r.Lost + r.Doubled + r.AlarmsNeverFire + r.Stuck + r.Phantom
}

func (r *Report) String() string {
	return fmt.Sprintf("%s: %d kills in %v, %d operations acknowledged (%d failed, %d events received, %d alarms armed, %d pending at a kill); "+
		"lost %d, doubled %d, alarms never fired %d, stuck %d, phantom %d; allowed: alarm repeats %d, applied but answer lost %d, applied twice by a re-sent request %d",
		r.Backend, r.Kills, r.Elapsed.Round(time.Second), r.Acked, r.Failed, r.Events, r.Armed, r.AlarmsPendingAtKill,
		r.Lost, r.Doubled, r.AlarmsNeverFire, r.Stuck, r.Phantom, r.AlarmRepeats, r.AnswerLost, r.Resent)
}

func (r *Report) violation(format string, args ...any) {
	if len(r.Examples) < 20 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// Operation kinds.
const (
	opApply = iota // stateless action
	opConn         // action through a connection
	opArm          // alarm armed
	opSend         // queue message sent
	numKinds
)

const (
	stSent = iota
	stAcked
	stFailed
)

type op struct {
	kind, actor, status int
	round               int
	due                 time.Time // alarms: when it should fire
}

// soak is one run's shared bookkeeping.
type soak struct {
	b     Backend
	o     Options
	rng   *rand.Rand
	keys  []rivet.Key
	mu    sync.Mutex
	ops   map[int]*op
	took  map[int]int // ids acknowledged by take, and how often
	event map[int]int // events received per id, over all connections
	next  atomic.Int64
	rep   Report
}

// Run soaks backend b: Kills rounds of start, mixed load, kill -9; then a
// last start and the audit.
func Run(ctx context.Context, b Backend, o Options) (*Report, error) {
	if o.Actors <= 0 {
		o.Actors = 6
	}
	if o.MaxAcks <= 0 {
		o.MaxAcks = 200
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if b.Timeout <= 0 {
		b.Timeout = time.Minute
	}
	s := &soak{b: b, o: o, rng: rand.New(rand.NewPCG(o.Seed, 13)), ops: map[int]*op{}, took: map[int]int{}, event: map[int]int{}}
	s.rep.Backend = b.Name
	nonce := strconv.FormatUint(o.Seed%1e6, 36)
	for i := range o.Actors {
		s.keys = append(s.keys, rivet.Key{"soak", nonce, strconv.Itoa(i)})
	}
	fmt.Fprintf(o.Log, "soak %s: %d kills, %d actors, seed %d\n", b.Name, o.Kills, o.Actors, o.Seed)
	t0 := time.Now()
	for round := range o.Kills {
		if o.For > 0 && time.Since(t0) > o.For {
			fmt.Fprintf(o.Log, "soak %s: time budget %v spent after %d kills\n", b.Name, o.For, round)
			break
		}
		if err := s.round(ctx, round); err != nil {
			return &s.rep, fmt.Errorf("round %d: %w", round, err)
		}
		s.rep.Kills++
	}
	srv, err := s.start(ctx)
	if err != nil {
		return &s.rep, fmt.Errorf("final start: %w", err)
	}
	defer srv.kill()
	cl, closeClient := s.client(srv.endpoint)
	defer closeClient()
	t1 := time.Now()
	s.checkStuck(ctx, cl, o.Kills)
	t2 := time.Now()
	if err := s.audit(ctx, cl); err != nil {
		return &s.rep, err
	}
	fmt.Fprintf(o.Log, "  final start: every actor answered after %v; audit took %v\n", t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
	s.rep.Elapsed = time.Since(t0)
	fmt.Fprintln(o.Log, s.rep.String())
	for _, e := range s.rep.Examples {
		fmt.Fprintln(o.Log, "  violation:", e)
	}
	return &s.rep, nil
}

// server is one server process.
type server struct {
	cmd      *exec.Cmd
	endpoint string
	done     chan struct{}
}

func (sv *server) kill() {
	_ = sv.cmd.Process.Kill() // SIGKILL
	<-sv.done
}

func (s *soak) start(ctx context.Context) (*server, error) {
	env := []string{EnvMode + "=" + s.b.Mode, envDir + "=" + filepath.Join(s.o.Dir, "store")}
	switch s.b.Mode {
	case "postgres":
		env = append(env, envPostgres+"="+s.b.PostgresURL)
	case "engine":
		env = append(env, envEngine+"="+s.b.EngineURL, envRunnerKey+"=soak-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	cmd := s.o.Command(env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sv := &server{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var said []string
		for sc.Scan() {
			if ep, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- ep
			} else if len(said) < 20 {
				said = append(said, sc.Text())
			}
		}
		_ = cmd.Wait()
		if len(said) > 0 {
			fmt.Fprintf(s.o.Log, "  server said: %s\n", strings.Join(said, " | "))
		}
		close(sv.done)
	}()
	select {
	case sv.endpoint = <-ready:
		return sv, nil
	case <-sv.done:
		return nil, errors.New("the server exited before it was ready (log: " + filepath.Join(s.o.Dir, "store") + ".log)")
	case <-time.After(2 * time.Minute):
		sv.kill()
		return nil, errors.New("the server was not ready within 2 minutes")
	case <-ctx.Done():
		sv.kill()
		return nil, ctx.Err()
	}
}

func (s *soak) client(endpoint string) (*rivetclient.Client, func()) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	cl := rivetclient.New(endpoint, rivetclient.WithHTTPClient(hc))
	return cl, func() { _ = cl.Close(); hc.CloseIdleConnections() }
}

// checkStuck calls every actor after a restart: one that does not answer
// within the backend's timeout is stuck.
func (s *soak) checkStuck(ctx context.Context, cl *rivetclient.Client, round int) {
	var wg sync.WaitGroup
	for i, k := range s.keys {
		wg.Go(func() {
			deadline := time.Now().Add(s.b.Timeout)
			var err error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				cctx, cancel := context.WithDeadline(ctx, deadline)
				_, err = cl.GetOrCreate(ActorName, k).Call(cctx, "ping")
				cancel()
				if err == nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			s.mu.Lock()
			s.rep.Stuck++
			s.rep.violation("round %d: actor %d did not answer within %v after the restart: %v", round, i, s.b.Timeout, err)
			s.mu.Unlock()
		})
	}
	wg.Wait()
}

// begin records a new operation as sent and returns its id.
func (s *soak) begin(kind, actor, round int, due time.Time) int {
	id := int(s.next.Add(1))
	s.mu.Lock()
	s.ops[id] = &op{kind: kind, actor: actor, round: round, due: due}
	s.mu.Unlock()
	return id
}

func (s *soak) end(id int, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.ops[id].status = stFailed
		s.rep.Failed++
		return false
	}
	s.ops[id].status = stAcked
	s.rep.Acked++
	if s.ops[id].kind == opArm {
		s.rep.Armed++
	}
	return true
}

// round starts the server, checks every actor answers, runs the mixed
// load until a random number of acknowledgements, and kills the server.
func (s *soak) round(ctx context.Context, round int) error {
	killAt := int64(1 + s.rng.IntN(s.o.MaxAcks))
	if s.rng.IntN(10) == 0 {
		killAt = int64(s.rng.IntN(4)) // while recovering
	}
	seed := s.rng.Uint64()
	started := time.Now()
	srv, err := s.start(ctx)
	if err != nil {
		return err
	}
	cl, closeClient := s.client(srv.endpoint)
	defer closeClient()
	t0 := time.Now()
	s.checkStuck(ctx, cl, round)
	answered := time.Since(t0)
	var acks atomic.Int64
	lctx, stopLoad := context.WithCancel(ctx)
	var killOnce sync.Once
	kill := func() { killOnce.Do(func() { srv.kill(); stopLoad() }) }
	ack := func() {
		if acks.Add(1) >= killAt {
			kill()
		}
	}
	if killAt == 0 {
		kill()
	}
	// Alarms acknowledged but not fired yet at the kill.
	var wg sync.WaitGroup
	for w := range 6 {
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() { s.worker(lctx, cl, w, round, rng, ack) })
	}
	// A kill even if the load stalls (counted below as a stuck actor
	// only by the next round's check).
	select {
	case <-lctx.Done():
	case <-time.After(s.b.Timeout):
		kill()
	}
	kill()
	wg.Wait()
	s.mu.Lock()
	now := time.Now()
	for _, o := range s.ops {
		if o.round == round && o.kind == opArm && o.status == stAcked && o.due.After(now) {
			s.rep.AlarmsPendingAtKill++
		}
	}
	s.mu.Unlock()
	fmt.Fprintf(s.o.Log, "  round %d: ready after %v, every actor answered after %v, killed after %d acks (%v)\n", round, t0.Sub(started).Round(time.Millisecond), answered.Round(time.Millisecond), acks.Load(), time.Since(t0).Round(time.Millisecond))
	return nil
}

// worker w runs one kind of load until ctx ends: 0-1 stateless actions,
// 2 actions through a connection (which counts the events it receives),
// 3 alarms, 4 queue sends, 5 queue receives.
func (s *soak) worker(ctx context.Context, cl *rivetclient.Client, w, round int, rng *rand.Rand, ack func()) {
	call := func(f func(cctx context.Context) error) bool {
		cctx, cancel := context.WithTimeout(ctx, s.b.Timeout)
		defer cancel()
		return f(cctx) == nil
	}
	pace := func() {
		if ctx.Err() == nil {
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}
	switch w {
	case 0, 1:
		for ctx.Err() == nil {
			a := rng.IntN(len(s.keys))
			id := s.begin(opApply, a, round, time.Time{})
			if s.end(id, callErr(call, func(c context.Context) error {
				_, err := cl.GetOrCreate(ActorName, s.keys[a]).Call(c, "apply", id)
				return err
			})) {
				ack()
			}
		}
	case 2:
		a := rng.IntN(len(s.keys))
		conn := cl.GetOrCreate(ActorName, s.keys[a]).Connect()
		defer func() { _ = conn.Close() }()
		seen := map[int]bool{}
		var smu sync.Mutex
		conn.On("applied", func(args rivet.Args) {
			var id int
			if args.Decode(0, &id) != nil {
				return
			}
			smu.Lock()
			dup := seen[id]
			seen[id] = true
			smu.Unlock()
			s.mu.Lock()
			s.rep.Events++
			s.event[id]++
			if dup {
				s.rep.Phantom++
				s.rep.violation("round %d: connection received event of effect %d twice", round, id)
			}
			s.mu.Unlock()
		})
		for ctx.Err() == nil {
			id := s.begin(opConn, a, round, time.Time{})
			if s.end(id, callErr(call, func(c context.Context) error {
				_, err := conn.Call(c, "apply", id)
				return err
			})) {
				ack()
			}
			pace()
		}
	case 3:
		for ctx.Err() == nil {
			a := rng.IntN(len(s.keys))
			ms := 20 + rng.IntN(2500)
			id := s.begin(opArm, a, round, time.Now().Add(time.Duration(ms)*time.Millisecond))
			if s.end(id, callErr(call, func(c context.Context) error {
				_, err := cl.GetOrCreate(ActorName, s.keys[a]).Call(c, "arm", id, ms)
				return err
			})) {
				ack()
			}
			pace()
		}
	case 4:
		for ctx.Err() == nil {
			a := rng.IntN(len(s.keys))
			id := s.begin(opSend, a, round, time.Time{})
			if s.end(id, callErr(call, func(c context.Context) error {
				_, err := cl.GetOrCreate(ActorName, s.keys[a]).Send(c, "jobs", id)
				return err
			})) {
				ack()
			}
		}
	case 5:
		for ctx.Err() == nil {
			a := rng.IntN(len(s.keys))
			var got int
			if !call(func(c context.Context) error {
				var err error
				got, err = rivetclient.Call[int](c, cl.GetOrCreate(ActorName, s.keys[a]), "take")
				return err
			}) {
				pace()
				continue
			}
			if got >= 0 {
				s.mu.Lock()
				s.took[got]++
				s.rep.Acked++
				s.mu.Unlock()
				ack()
			} else {
				pace()
			}
		}
	}
}

func callErr(call func(func(context.Context) error) bool, f func(context.Context) error) error {
	if call(f) {
		return nil
	}
	return errors.New("failed")
}

// records reads every record of kind from actor a.
func (s *soak) records(ctx context.Context, cl *rivetclient.Client, a int, kind string) (map[int]int, error) {
	out := map[int]int{}
	from := 0
	for {
		var page []Rec
		var err error
		for try := 0; ; try++ {
			cctx, cancel := context.WithTimeout(ctx, s.b.Timeout)
			page, err = rivetclient.Call[[]Rec](cctx, cl.GetOrCreate(ActorName, s.keys[a]), "records", kind, from, 2000)
			cancel()
			if err == nil || try == 5 {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			return nil, fmt.Errorf("records %s of actor %d: %w", kind, a, err)
		}
		for _, r := range page {
			out[r.ID] = r.N
			from = r.ID + 1
		}
		if len(page) < 2000 {
			return out, nil
		}
	}
}

// audit waits for every acknowledged alarm to fire, drains the queues and
// compares what the actors recorded with what was acknowledged.
func (s *soak) audit(ctx context.Context, cl *rivetclient.Client) error {
	// Drain the queues: a message sent (acknowledged) and not yet
	// received is still queued.
	for a := range s.keys {
		for {
			cctx, cancel := context.WithTimeout(ctx, s.b.Timeout)
			got, err := rivetclient.Call[int](cctx, cl.GetOrCreate(ActorName, s.keys[a]), "take")
			cancel()
			if err != nil {
				return fmt.Errorf("draining the queue of actor %d: %w", a, err)
			}
			if got < 0 {
				break
			}
			s.took[got]++
		}
	}
	// Alarms: wait until every acknowledged one fired, or a deadline
	// well past the last due time.
	var lastDue time.Time
	for _, o := range s.ops {
		if o.kind == opArm && o.due.After(lastDue) {
			lastDue = o.due
		}
	}
	deadline := time.Now().Add(s.b.Timeout)
	if d := lastDue.Add(s.b.Timeout); d.After(deadline) {
		deadline = d
	}
	rec := make([][numKinds]map[int]int, len(s.keys))
	for {
		missing := 0
		for a := range s.keys {
			f, err := s.records(ctx, cl, a, KindFire)
			if err != nil {
				return err
			}
			rec[a][opArm] = f
		}
		for id, o := range s.ops {
			if o.kind == opArm && o.status == stAcked && rec[o.actor][opArm][id] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for a := range s.keys {
		ap, err := s.records(ctx, cl, a, KindApply)
		if err != nil {
			return err
		}
		q, err := s.records(ctx, cl, a, KindTake)
		if err != nil {
			return err
		}
		rec[a][opApply], rec[a][opConn], rec[a][opSend] = ap, ap, q
	}
	s.classify(rec)
	return nil
}

// classify compares the actors' records (rec[actor][kind]: id -> times
// applied) with the operations sent and acknowledged, and counts.
func (s *soak) classify(rec [][numKinds]map[int]int) {
	r := &s.rep
	ids := slices.Sorted(maps.Keys(s.ops))
	for _, id := range ids {
		o := s.ops[id]
		n := rec[o.actor][o.kind][id]
		name := [...]string{"action", "connection action", "alarm", "queue message"}[o.kind]
		switch {
		case o.status == stAcked && n == 0 && o.kind == opArm:
			r.AlarmsNeverFire++
			r.violation("round %d: acknowledged alarm %d (actor %d) never fired", o.round, id, o.actor)
		case o.status == stAcked && n == 0:
			r.Lost++
			r.violation("round %d: acknowledged %s %d (actor %d) lost", o.round, name, id, o.actor)
		case o.status != stAcked && n > 0:
			r.AnswerLost++
		}
		switch {
		case n > 1 && o.kind == opArm:
			r.AlarmRepeats++
		case n > 1 && s.b.Resends:
			r.Resent++
			if r.Resent <= 5 {
				fmt.Fprintf(s.o.Log, "  round %d: %s %d (actor %d) applied %d times (a re-sent request)\n", o.round, name, id, o.actor, n)
			}
		case n > 1:
			r.Doubled++
			r.violation("round %d: %s %d (actor %d) applied %d times", o.round, name, id, o.actor, n)
		}
	}
	// Effects no operation sent, queue receives acknowledged but not
	// recorded, events of effects never applied.
	for a := range rec {
		for _, kind := range []int{opApply, opArm, opSend} {
			for id := range rec[a][kind] {
				if o := s.ops[id]; o == nil || o.actor != a || (o.kind != kind && !(kind == opApply && o.kind == opConn)) {
					r.Phantom++
					r.violation("actor %d holds record %d of kind %d that was never sent to it", a, id, kind)
				}
			}
		}
	}
	for id, k := range s.took {
		o := s.ops[id]
		switch {
		case o == nil:
			r.Phantom++
			r.violation("queue message %d received but never sent", id)
		case rec[o.actor][opSend][id] == 0:
			r.Lost++
			r.violation("round %d: queue message %d received (acknowledged) but its record is lost", o.round, id)
		case k > 1 && !(s.b.Resends && rec[o.actor][opSend][id] >= k):
			// (On a backend that re-sends requests, a send applied
			// twice queued two copies, counted in Resent above: each
			// copy received once is not a double.)
			r.Doubled++
			r.violation("round %d: queue message %d received %d times", o.round, id, k)
		}
	}
	for id := range s.event {
		o := s.ops[id]
		switch {
		case o == nil:
			r.Phantom++
			r.violation("event of effect %d received, but no such effect was sent", id)
		case rec[o.actor][opApply][id] == 0 && o.status != stAcked:
			// (Acknowledged ones are counted lost above.) A client saw
			// the effect's event, so the effect must have committed.
			r.Lost++
			r.violation("round %d: event of effect %d received, but the effect is not applied", o.round, id)
		}
	}
}
