package rivet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/rivetclient"
)

// clusterPegboard shortens the engine's runner thresholds so that a dead
// runner's actors move in seconds, not the default 15 s (docs/scaling.md
// lists the defaults).
var clusterPegboard = map[string]any{
	"envoy_update_ping_interval": 1000,
	"envoy_ping_timeout":         3000,
	"envoy_lost_threshold":       3000,
}

// TestEngineCluster runs two engine nodes on PostgreSQL + NATS and runner
// processes (`rivet serve --example demo` with RIVET_ENGINE), and checks
// what a user of a cluster relies on, one step after the other on the same
// cluster:
//   - routing: a client of either node reaches actors on every runner;
//   - kill -9 of a runner under concurrent load: its actors come back on
//     another runner with their state, no acknowledged increment lost,
//     none applied that was not attempted;
//   - SIGTERM of a runner under load: no call fails, and a connected
//     client receives events after its actor moved (reconnecting once);
//   - kill -9 of an engine node: clients of the other node keep working.
//
// It logs the measured times (failover, handover) that docs/scaling.md
// quotes.
func TestEngineCluster(t *testing.T) {
	nodes := enginetest.StartCluster(t, 2, enginetest.Options{Pegboard: clusterPegboard})
	nodes[0].EnsureRunnerConfig(t, "default", "default")
	bin := buildRivet(t)
	// The engine stalls creating new actors after a handful
	// (pegboard.route_resolve_query_timeout for every further key for
	// minutes, with rivetgo's runner and RivetKit's alike: BENCHMARKS.md,
	// bench/README.md), so every step reuses the same six actors.
	c := &cluster{t: t, nodes: nodes, bin: bin, keys: keysN("counter", 6)}
	c.hc = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.hc.CloseIdleConnections)
	// Runners 1 and 3 on node 0, runner 2 on node 1.
	c.startRunner("runner-1", 0)
	c.startRunner("runner-2", 1)
	c.startRunner("runner-3", 0)

	t.Run("routing", c.routing)
	if t.Failed() {
		return
	}
	t.Run("kill9-runner", c.kill9Runner)
	if t.Failed() {
		return
	}
	t.Run("sigterm-runner", c.sigtermRunner)
	if t.Failed() {
		return
	}
	t.Run("kill9-engine-node", c.kill9Node)
}

type cluster struct {
	t       *testing.T
	nodes   []*enginetest.Engine
	bin     string
	keys    []string
	hc      *http.Client
	runners []*runnerProc
}

func (c *cluster) client(node int) *rivetclient.Client {
	return rivetclient.New(c.nodes[node].GuardURL(), rivetclient.WithHTTPClient(c.hc), rivetclient.WithEncoding("json"))
}

func (c *cluster) startRunner(key string, node int) *runnerProc {
	r := startRunnerProc(c.t, c.bin, c.nodes[node].GuardURL(), key)
	r.node = node
	c.runners = append(c.runners, r)
	return r
}

// live are the runners whose process still runs.
func (c *cluster) live() []*runnerProc {
	var out []*runnerProc
	for _, r := range c.runners {
		if !r.exited() {
			out = append(out, r)
		}
	}
	return out
}

// holder is the live runner serving actor id (by the runners' logs), or nil.
func (c *cluster) holder(id string) *runnerProc {
	for _, r := range c.live() {
		if r.actors()[id] {
			return r
		}
	}
	return nil
}

func (c *cluster) actorID(t *testing.T, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	id, err := c.client(0).GetOrCreate("counter", rivet.Key{key}).ID(ctx)
	if err != nil {
		t.Fatalf("actor id of %s: %v", key, err)
	}
	return id
}

func (c *cluster) routing(t *testing.T) {
	keys := c.keys
	on := map[string]bool{}
	for _, k := range keys {
		for i, node := range []int{0, 1, 0, 1} {
			n := callInt(t, c.client(node), k, "increment", 1)
			if n != i+1 {
				t.Fatalf("%s: increment %d through node %d = %d, want %d", k, i+1, node, n, i+1)
			}
		}
		for node := range c.nodes {
			if n := callInt(t, c.client(node), k, "getCount"); n != 4 {
				t.Fatalf("%s: getCount through node %d = %d, want 4", k, node, n)
			}
		}
		id := c.actorID(t, k)
		r := c.holder(id)
		if r == nil {
			t.Fatalf("%s (%s) is on no runner (runner logs)", k, id)
		}
		on[r.key] = true
	}
	t.Logf("%d actors placed on runners %v; each reached through both nodes", len(keys), slices.Sorted(maps.Keys(on)))
	if len(on) < 2 {
		t.Logf("the engine placed every actor on one runner; the other runners were not exercised by this step")
	}
}

// kill9Runner: a runner dies under load; its actors come back elsewhere.
func (c *cluster) kill9Runner(t *testing.T) {
	keys := c.keys
	l := startLoad(t, []*rivetclient.Client{c.client(0), c.client(1)}, keys)
	l.waitAcked(t, 2)
	victim := c.busiest(t, keys)
	victimKeys := c.keysOn(t, victim, keys)
	t.Logf("killing runner %s (serving %v) with SIGKILL", victim.key, victimKeys)
	killed := time.Now()
	victim.kill9()
	l.waitAckedAfter(t, victimKeys, killed, 90*time.Second)
	failover := l.firstAckAfter(victimKeys, killed)
	for _, k := range victimKeys {
		t.Logf("%s: first successful call %v after the kill", k, l.firstAckAfter([]string{k}, killed).Round(time.Millisecond))
	}
	l.stop()
	t.Logf("MEASURED failover (kill -9 of a runner to the first successful call on each of its actors): max %v; %d calls failed meanwhile", failover.Round(time.Millisecond), l.failed())
	l.check(t, c.client(1))
	for _, k := range victimKeys {
		id := c.actorID(t, k)
		if r := c.holder(id); r == nil || r == victim {
			t.Fatalf("%s (%s) not on a live runner after the kill", k, id)
		}
	}
}

// sigtermRunner: a runner stopped gracefully under load hands its actors
// over without a failed call; a connected client hears events after the
// move.
func (c *cluster) sigtermRunner(t *testing.T) {
	keys := c.keys
	l := startLoad(t, []*rivetclient.Client{c.client(0), c.client(1)}, keys)
	l.waitAcked(t, 2)
	victim := c.busiest(t, keys)
	victimKeys := c.keysOn(t, victim, keys)

	// A client connected through node 1 to one of the victim's actors.
	watched := victimKeys[0]
	conn := c.client(1).GetOrCreate("counter", rivet.Key{watched}).Connect()
	defer conn.Close()
	var mu sync.Mutex
	var events []int
	var statuses []rivetclient.Status
	var connErrs []string
	conn.OnError(func(err error) {
		mu.Lock()
		connErrs = append(connErrs, err.Error())
		mu.Unlock()
	})
	conn.OnStatus(func(s rivetclient.Status) {
		mu.Lock()
		statuses = append(statuses, s)
		mu.Unlock()
	})
	conn.On("newCount", func(a rivet.Args) {
		var n int
		if a.Decode(0, &n) == nil {
			mu.Lock()
			events = append(events, n)
			mu.Unlock()
		}
	})
	waitCluster(t, "the connection to open", 40*time.Second, func() bool { return conn.Status() == rivetclient.StatusConnected })
	waitCluster(t, "an event on the connection", 40*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0
	})

	t.Logf("stopping runner %s (serving %v) with SIGTERM", victim.key, victimKeys)
	termed := time.Now()
	victim.term()
	if !victim.waitExit(60 * time.Second) {
		t.Fatalf("runner %s did not exit within 60s of SIGTERM", victim.key)
	}
	exitedAfter := time.Since(termed)
	l.waitAckedAfter(t, victimKeys, termed, 60*time.Second)
	handover := l.firstAckAfter(victimKeys, termed)
	slowest := l.slowestSince(termed)
	// The connection hears the actor's events again: those of an
	// increment made after the runner exited, or of later ones.
	after := time.Now()
	n := callInt(t, c.client(0), watched, "increment", 1)
	// An increment like the load's: check must count it (left out, it
	// showed as one increment applied twice on the watched actor).
	l.count(watched, n)
	waitCluster(t, "an event after the actor moved", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		// The load goes on: any event from the increment on counts.
		return slices.ContainsFunc(events, func(v int) bool { return v >= n })
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("statuses %v, errors %q, events %v, want %d", statuses, connErrs, events, n)
	})
	l.stop()
	mu.Lock()
	reconnects := strings.Count(fmt.Sprint(statuses), string(rivetclient.StatusDisconnected))
	mu.Unlock()
	t.Logf("MEASURED graceful handover: runner exited %v after SIGTERM; first successful call on each of its actors %v after SIGTERM; slowest call meanwhile %v; %d failed calls; the connection reconnected %d time(s) and heard the event %v after the increment",
		exitedAfter.Round(time.Millisecond), handover.Round(time.Millisecond), slowest.Round(time.Millisecond), l.failed(), reconnects, time.Since(after).Round(time.Millisecond))
	if f := l.failed(); f > 0 {
		t.Errorf("%d calls failed during a graceful stop; first errors: %v", f, l.firstErrors())
	}
	// Replays are possible here too: during a drain the engine sometimes
	// stops an actor as lost (CommandStopActor{Lost}, seen on 2.3.19 with
	// the shortened thresholds) and re-sends its open requests elsewhere;
	// they are answered from their records. (The one "double" once seen
	// here was the increment above, not counted then.)
	l.check(t, c.client(0))
	if reconnects > 1 {
		t.Errorf("the connection reconnected %d times, want at most once (statuses %v)", reconnects, statuses)
	}
}

// kill9Node: an engine node dies; clients of the other node keep working,
// including for actors whose runner was connected to the dead node (they
// move once that runner is lost).
func (c *cluster) kill9Node(t *testing.T) {
	// A fresh runner on node 0, so that one survives beside the node 1 one.
	c.startRunner("runner-4", 0)
	keys := c.keys
	l := startLoad(t, []*rivetclient.Client{c.client(0)}, keys)
	l.waitAcked(t, 2)
	var onDead []string
	for _, k := range keys {
		if r := c.holder(c.actorID(t, k)); r != nil && r.node == 1 {
			onDead = append(onDead, k)
		}
	}
	t.Logf("killing engine node 1 with SIGKILL; actors whose runner is connected to it: %v", onDead)
	killed := time.Now()
	c.nodes[1].Kill9()
	l.waitAckedAfter(t, keys, killed, 90*time.Second)
	first := l.firstAckAfter(keys, killed)
	l.stop()
	t.Logf("MEASURED kill -9 of an engine node: every actor answered through node 0 within %v; %d calls failed meanwhile", first.Round(time.Millisecond), l.failed())
	l.check(t, c.client(0))
}

// busiest is the live runner serving the most of keys' actors.
func (c *cluster) busiest(t *testing.T, keys []string) *runnerProc {
	t.Helper()
	var best *runnerProc
	bestN := 0
	for _, r := range c.live() {
		if n := len(c.keysOn(t, r, keys)); n > bestN {
			best, bestN = r, n
		}
	}
	if best == nil {
		t.Fatalf("no runner serves any of %v", keys)
	}
	return best
}

func (c *cluster) keysOn(t *testing.T, r *runnerProc, keys []string) []string {
	t.Helper()
	var out []string
	held := r.actors()
	for _, k := range keys {
		if held[c.actorID(t, k)] {
			out = append(out, k)
		}
	}
	return out
}

func keysN(prefix string, n int) []string {
	var ks []string
	for i := range n {
		ks = append(ks, fmt.Sprintf("%s-%d", prefix, i))
	}
	return ks
}

// callInt calls an action and fails the test on an error. A call that
// times out resolving the actor (pegboard.route_resolve_query_timeout: the
// engine sometimes takes ~15 s to allocate a new actor, see
// docs/engine-runner.md §5 "Slow allocation") is retried twice.
func callInt(t *testing.T, cl *rivetclient.Client, key, action string, args ...any) int {
	t.Helper()
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		var n int
		n, err = rivetclient.Call[int](ctx, cl.GetOrCreate("counter", rivet.Key{key}), action, args...)
		cancel()
		if err == nil {
			return n
		}
		var e *rivet.Error
		if !errors.As(err, &e) || e.Group != "pegboard" || e.Code != "route_resolve_query_timeout" {
			break
		}
		t.Logf("%s %s: %v; retrying", action, key, err)
	}
	t.Fatalf("%s %s: %v", action, key, err)
	return 0
}

// waitCluster polls cond every 50 ms until it holds or d passes.
func waitCluster(t *testing.T, what string, d time.Duration, cond func() bool, why ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			for _, w := range why {
				msg += ": " + w()
			}
			t.Fatalf("timed out after %v waiting for %s%s", d, what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load is concurrent clients incrementing counters, one worker per
// (client, key), counting what they attempted and what was acknowledged.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	keys   []string
	base   map[string]int // counts before the load
	acks   map[string][]ack
	tried  map[string]int
	fails  map[string]int // calls that failed: applied or not, unknown
	errs   []string
	nfail  int
	slow   []callTime
}

type ack struct {
	value int
	at    time.Time
}

type callTime struct {
	start time.Time
	d     time.Duration
}

func startLoad(t *testing.T, clients []*rivetclient.Client, keys []string) *load {
	l := &load{keys: keys, base: map[string]int{}, acks: map[string][]ack{}, tried: map[string]int{}, fails: map[string]int{}}
	for _, k := range keys {
		l.base[k] = callInt(t, clients[0], k, "getCount")
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for _, cl := range clients {
		for _, k := range keys {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				h := cl.GetOrCreate("counter", rivet.Key{k})
				for ctx.Err() == nil {
					l.mu.Lock()
					l.tried[k]++
					l.mu.Unlock()
					start := time.Now()
					cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
					n, err := rivetclient.Call[int](cctx, h, "increment", 1)
					ccancel()
					l.mu.Lock()
					l.slow = append(l.slow, callTime{start, time.Since(start)})
					if err != nil {
						l.nfail++
						l.fails[k]++
						if len(l.errs) < 5 {
							l.errs = append(l.errs, k+": "+err.Error())
						}
					} else {
						l.acks[k] = append(l.acks[k], ack{n, time.Now()})
					}
					l.mu.Unlock()
					if err != nil {
						// Do not spin on a failing call.
						select {
						case <-ctx.Done():
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
			}()
		}
	}
	t.Cleanup(l.stop)
	return l
}

// count adds an increment made outside the load's workers, acknowledged
// with value n, to what check expects.
func (l *load) count(key string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tried[key]++
	l.acks[key] = append(l.acks[key], ack{n, time.Now()})
}

// stop ends the load and waits for the calls in flight.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nfail
}

func (l *load) firstErrors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// waitAcked waits until every key has n acknowledged increments.
func (l *load) waitAcked(t *testing.T, n int) {
	t.Helper()
	waitCluster(t, fmt.Sprintf("%d acknowledged increments per actor", n), 60*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range l.keys {
			if len(l.acks[k]) < n {
				return false
			}
		}
		return true
	})
}

// waitAckedAfter waits until each of keys has an acknowledgement that
// started after since.
func (l *load) waitAckedAfter(t *testing.T, keys []string, since time.Time, d time.Duration) {
	t.Helper()
	waitCluster(t, fmt.Sprintf("a successful call on each of %v", keys), d, func() bool {
		return l.firstAckAfter(keys, since) > 0
	})
}

// firstAckAfter is the longest, over keys, of the time from since to the
// key's first acknowledgement after since; 0 while one has none.
func (l *load) firstAckAfter(keys []string, since time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for _, k := range keys {
		i := slices.IndexFunc(l.acks[k], func(a ack) bool { return a.at.After(since) })
		if i < 0 {
			return 0
		}
		worst = max(worst, l.acks[k][i].at.Sub(since))
	}
	return worst
}

// slowestSince is the longest call that was in flight after since.
func (l *load) slowestSince(since time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var worst time.Duration
	for _, c := range l.slow {
		if c.start.Add(c.d).After(since) {
			worst = max(worst, c.d)
		}
	}
	return worst
}

// check reads each counter after the load stopped and checks that every
// call was applied exactly as acknowledged: no acknowledged increment
// lost (at least as many applied as acknowledged, every acknowledged
// value distinct: two acknowledgements of one value mean one increment
// overwrote another), and none applied twice (at most as many applied as
// acknowledged plus the calls that failed, whose outcome the client does
// not know). The engine's gateway re-sends a request whose runner died
// before answering; the runner that gets it answers from the record the
// first one committed with the increment, kept for 5 minutes
// (docs/scaling.md).
func (l *load) check(t *testing.T, cl *rivetclient.Client) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	acked, tried, failed := 0, 0, 0
	for _, k := range l.keys {
		final := callInt(t, cl, k, "getCount") - l.base[k]
		seen := map[int]bool{}
		for _, a := range l.acks[k] {
			if seen[a.value] {
				t.Errorf("%s: the value %d was acknowledged twice (an acknowledged increment was lost)", k, a.value)
			}
			seen[a.value] = true
			if a.value-l.base[k] > final {
				t.Errorf("%s: final count %d is below the acknowledged value %d", k, final+l.base[k], a.value)
			}
		}
		n := len(l.acks[k])
		if final < n {
			t.Errorf("%s: %d increments applied < %d acknowledged", k, final, n)
		}
		if final > n+l.fails[k] {
			t.Errorf("%s: %d increments applied > %d acknowledged + %d failed calls: an increment was applied twice", k, final, n, l.fails[k])
		}
		acked += n
		tried += l.tried[k]
		failed += l.fails[k]
	}
	t.Logf("MEASURED %d increments attempted, %d acknowledged, %d failed", tried, acked, failed)
}

// buildRivet builds ./cmd/rivet into the test's temporary directory.
func buildRivet(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rivet")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/rivet")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rivet: %v\n%s", err, b)
	}
	return out
}

// runnerProc is one `rivet serve --example demo` process running as a
// runner of an engine node, its log (JSON, debug) in a file.
type runnerProc struct {
	t       *testing.T
	key     string
	node    int
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startRunnerProc(t *testing.T, bin, engineURL, key string) *runnerProc {
	t.Helper()
	r := &runnerProc{t: t, key: key, logPath: filepath.Join(t.TempDir(), key+".log"), done: make(chan struct{})}
	f, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", "--example", "demo", "--log-level", "debug", "--log-format", "json")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RIVET_") {
			env = append(env, kv)
		}
	}
	r.cmd.Env = append(env, "RIVET_ENGINE="+engineURL, "RIVET_RUNNER_KEY="+key)
	r.cmd.Stdout, r.cmd.Stderr = f, f
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		_ = f.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.kill9()
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			if len(b) > 16<<10 {
				b = b[len(b)-16<<10:]
			}
			t.Logf("runner %s log (tail):\n%s", key, b)
		}
	})
	waitCluster(t, "runner "+key+" to connect", 60*time.Second, func() bool {
		if r.exited() {
			b, _ := os.ReadFile(r.logPath)
			t.Fatalf("runner %s exited:\n%s", key, b)
		}
		b, _ := os.ReadFile(r.logPath)
		return bytes.Contains(b, []byte("connected to the engine"))
	})
	return r
}

func (r *runnerProc) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// kill9 kills the runner's process group with SIGKILL and waits for it.
func (r *runnerProc) kill9() {
	if r.exited() {
		return
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.done
}

// term sends SIGTERM (a graceful stop).
func (r *runnerProc) term() { _ = r.cmd.Process.Signal(syscall.SIGTERM) }

func (r *runnerProc) waitExit(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		return false
	}
}

// actors are the ids of the actors the runner serves now, from its log:
// started and not stopped since.
func (r *runnerProc) actors() map[string]bool {
	held := map[string]bool{}
	f, err := os.Open(r.logPath)
	if err != nil {
		return held
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			ID  string `json:"actor_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch {
		case line.Msg == "actor started":
			held[line.ID] = true
		case line.Msg == "actor stopped":
			delete(held, line.ID)
		case strings.HasPrefix(line.Msg, "engine unreachable past its lost threshold"):
			clear(held)
		}
	}
	return held
}

// TestEngineRunnerSameKeyRestart: a runner dies without a word (its
// engine connection cut and every reconnect refused, as after kill -9)
// and a new process connects with the same runner key before the engine
// gives that key up. Every actor should answer, with its state. It does
// not yet (docs/engine-runner.md §3, "A restart under the same key"):
// the engine keeps the actors placed on the key and resends no start
// command for them, and the new runner cannot report them stopped (the
// engine's requests name no generation). Run by hand, it reproduces
// that in ~20 s (guard.retry_attempts_exceeded):
//
//	RIVET_TEST_SAME_KEY=1 go test -run 'TestEngineRunnerSameKeyRestart$' .
func TestEngineRunnerSameKeyRestart(t *testing.T) {
	if os.Getenv("RIVET_TEST_SAME_KEY") == "" {
		t.Skip("known gap, run by hand with RIVET_TEST_SAME_KEY=1: a runner restarted with its predecessor's key does not get its actors back")
	}
	eng := enginetest.Start(t, enginetest.Options{Pegboard: clusterPegboard})
	proxy := enginetest.StartProxy(t, eng.GuardURL())
	startEngineRunnerURL(t, proxy.URL(), "runner-a")
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithHTTPClient(hc), rivetclient.WithEncoding("json"))
	keys := keysN("samekey", 3)
	want := map[string]int{}
	for _, k := range keys {
		want[k] = callInt(t, cl, k, "increment", 1)
	}
	proxy.Refuse(true)
	proxy.Cut()
	restarted := time.Now()
	startEngineRunnerURL(t, eng.GuardURL(), "runner-a")
	for _, k := range keys {
		if n := callInt(t, cl, k, "getCount"); n != want[k] {
			t.Errorf("%s: count %d after the restart, want %d", k, n, want[k])
		}
	}
	t.Logf("MEASURED restart under the same key: every actor answered %v after the new runner started connecting", time.Since(restarted).Round(time.Millisecond))
}

// TestEngineRunnerConnectionFaults puts a TCP proxy between a runner and
// the engine and, while concurrent clients increment counters on that
// runner's actors, first cuts the runner's engine connection (it
// reconnects), then stalls it past the engine's ping timeout (the engine
// gives the runner up and moves its actors to a second runner) and heals
// it. No acknowledged increment may be lost, no value acknowledged twice.
func TestEngineRunnerConnectionFaults(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{Pegboard: clusterPegboard})
	proxy := enginetest.StartProxy(t, eng.GuardURL())
	startEngineRunnerURL(t, proxy.URL(), "runner-a")
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithHTTPClient(hc), rivetclient.WithEncoding("json"))
	keys := keysN("fault", 4)
	for _, k := range keys {
		callInt(t, cl, k, "getCount") // created on runner A, the only one
	}
	startEngineRunnerURL(t, eng.GuardURL(), "runner-b")
	l := startLoad(t, []*rivetclient.Client{cl, cl}, keys)
	l.waitAcked(t, 3)

	// A cut: both ends see the connection drop; A reconnects through the
	// proxy and goes on serving.
	conns := proxy.Connections()
	cut := time.Now()
	proxy.Cut()
	waitCluster(t, "runner A to reconnect", 30*time.Second, func() bool { return proxy.Connections() > conns })
	l.waitAckedAfter(t, keys, cut, 60*time.Second)
	t.Logf("after the cut: every actor answered within %v; %d calls failed", l.firstAckAfter(keys, cut).Round(time.Millisecond), l.failed())

	// A stall longer than the engine's ping timeout: neither end sees a
	// close; the engine gives A up and starts its actors on B.
	stall := time.Now()
	proxy.Stall()
	l.waitAckedAfter(t, keys, stall, 90*time.Second)
	t.Logf("during the stall: every actor answered within %v (moved to runner B); %d calls failed", l.firstAckAfter(keys, stall).Round(time.Millisecond), l.failed())
	proxy.Resume()
	healed := time.Now()
	l.waitAckedAfter(t, keys, healed, 60*time.Second)
	l.stop()
	l.check(t, cl)
}

// startEngineRunnerURL starts an in-process runner of the counter
// registry connected to the engine at url with runner key key.
func startEngineRunnerURL(t *testing.T, url, key string) *rivet.EngineRunner {
	t.Helper()
	er, err := rivet.StartEngineRunner(context.Background(), rivet.MustRegistry(counterDef), &rivet.Config{
		Logger: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Engine: rivet.EngineConfig{URL: url, RunnerKey: key},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-er.Done():
			return // the test stopped it
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Teardown, not what these tests check: the last runner's drain
		// can wait out its deadline when the engine has nowhere to move
		// an actor (seen after a stall: engine-runner.md §13).
		if err := er.Stop(ctx); err != nil {
			t.Logf("stop runner %s: %v", key, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := er.Ready(ctx); err != nil {
		t.Fatalf("runner %s not connected: %v", key, err)
	}
	return er
}

// TestEngineRunnerStopDrains: stopping a runner under load hands its
// actors to the other runner through the engine (Stopping, then a stop
// command per actor): no call fails (except the known gap of a request
// reaching the old runner after its actor left, logged), no acknowledged
// increment is lost.
func TestEngineRunnerStopDrains(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{Pegboard: clusterPegboard})
	a := startEngineRunnerURL(t, eng.GuardURL(), "runner-a")
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithHTTPClient(hc), rivetclient.WithEncoding("json"))
	keys := keysN("drain", 3)
	for _, k := range keys {
		callInt(t, cl, k, "getCount") // on runner A, the only one
	}
	b := startEngineRunnerURL(t, eng.GuardURL(), "runner-b")
	l := startLoad(t, []*rivetclient.Client{cl, cl}, keys)
	l.waitAcked(t, 3)
	stopped := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("runner A stopped in %v", time.Since(stopped).Round(time.Millisecond))
	l.waitAckedAfter(t, keys, stopped, 60*time.Second)
	l.stop()
	if f := l.failed(); f > 0 {
		t.Errorf("%d calls failed while a runner stopped; first errors: %v", f, l.firstErrors())
	}
	// The runner reports Stopped before the last answers have left (the
	// engine then re-sends those requests), and the engine may declare
	// an actor lost during the drain (seen under -race): the re-sends
	// are answered from their records, not applied again.
	l.check(t, cl)
	for _, k := range keys {
		id := engineActorIDOfURL(t, eng, k)
		if !b.Runtime().Engine().Awake(id) {
			t.Errorf("%s is not on runner B after A stopped", k)
		}
	}
}

func engineActorIDOfURL(t *testing.T, eng *enginetest.Engine, key string) string {
	t.Helper()
	id, _ := engineActorIDOf(t, eng, "counter", key)
	return id
}

// TestEngineRunnerFanout: 100 connections to one actor through the
// engine (by actor id: the query form's route resolution times out under
// load, docs/engine-runner.md §13), each subscribed to the actor's
// event; every connection receives every one of 10 events, in order. A
// connection the engine closes while it opens is opened again (logged).
func TestEngineRunnerFanout(t *testing.T) {
	const conns, events = 100, 10
	eng := enginetest.Start(t, enginetest.Options{})
	startEngineRunnerURL(t, eng.GuardURL(), "runner-fanout")
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cl := rivetclient.New(eng.GuardURL(), rivetclient.WithHTTPClient(hc), rivetclient.WithEncoding("json"))
	callInt(t, cl, "fanout", "getCount") // creates it
	id := engineActorIDOfURL(t, eng, "fanout")
	h := cl.GetForID("counter", id)
	var mu sync.Mutex
	seen := make([][]int, conns)
	cs := make([]*rivetclient.Connection, conns)
	errs := map[string]int{} // why connections were given up
	open := func(k int) {
		c := h.Connect()
		t.Cleanup(func() { _ = c.Close() })
		c.OnError(func(err error) {
			mu.Lock()
			errs[err.Error()]++
			mu.Unlock()
		})
		c.On("newCount", func(a rivet.Args) {
			var n int
			if a.Decode(0, &n) != nil {
				return
			}
			mu.Lock()
			seen[k] = append(seen[k], n)
			mu.Unlock()
		})
		cs[k] = c
	}
	for k := range conns {
		open(k)
	}
	// A connection is subscribed once it has seen an event: increment
	// until all have.
	all := func(pred func([]int) bool) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if !pred(s) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !all(func(s []int) bool { return len(s) > 0 }) {
		if time.Now().After(deadline) {
			n := 0
			mu.Lock()
			for _, s := range seen {
				if len(s) > 0 {
					n++
				}
			}
			why := fmt.Sprint(errs)
			mu.Unlock()
			t.Fatalf("only %d of %d connections subscribed; errors: %v", n, conns, why)
		}
		// A connection the engine closed while it opened is given up by
		// the client (status idle): open it again, as an application
		// would.
		for k, c := range cs {
			mu.Lock()
			subscribed := len(seen[k]) > 0
			mu.Unlock()
			if !subscribed && c.Status() == rivetclient.StatusIdle {
				_ = c.Close()
				open(k)
			}
		}
		// The engine under load fails some calls (route timeouts): the
		// loop tries again.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _ = rivetclient.Call[int](ctx, h, "increment", 1)
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	count := func() int {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			n, err := rivetclient.Call[int](ctx, h, "getCount")
			cancel()
			if err == nil {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("getCount: %v", err)
			}
		}
	}
	base := count()
	for acked := 0; acked < events; {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := rivetclient.Call[int](ctx, h, "increment", 1); err == nil {
			acked++
		} else if time.Now().After(deadline) {
			t.Fatalf("increment: %v", err)
		}
		cancel()
	}
	// A failed call may have been applied too: every connection must
	// see every value from base+1 to the final count, in order.
	final := count()
	has := func(s []int) bool {
		next := base + 1
		for _, n := range s {
			if n > base {
				if n != next {
					return false
				}
				next++
			}
		}
		return next == final+1
	}
	mu.Lock()
	if len(errs) > 0 {
		t.Logf("connections reopened after the engine closed them while opening: %v", errs)
	}
	mu.Unlock()
	waitCluster(t, fmt.Sprintf("every connection to receive the %d events after %d", final-base, base), 60*time.Second, func() bool { return all(has) }, func() string {
		mu.Lock()
		defer mu.Unlock()
		short := 0
		for _, s := range seen {
			if !has(s) {
				short++
			}
		}
		return fmt.Sprintf("%d of %d connections missing events or out of order", short, conns)
	})
}
