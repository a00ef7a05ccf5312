package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// logOut receives progress lines; the table and the JSON lines go to
// stdout.
var logOut io.Writer = os.Stderr

type result struct {
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"`
	Encoding string  `json:"encoding"`
	C        int     `json:"c,omitempty"`
	Conns    int     `json:"conns,omitempty"`
	Messages int     `json:"messages,omitempty"` // fanout: messages sent (N is events expected)
	N        int     `json:"n"`
	OK       int     `json:"ok"`
	Lost     int     `json:"lost"`
	PerSec   float64 `json:"per_sec"`
	P50us    float64 `json:"p50_us"`
	P90us    float64 `json:"p90_us"`
	P99us    float64 `json:"p99_us"`
	P999us   float64 `json:"p999_us"`
	RSSMiB   float64 `json:"rss_mib,omitempty"`
	Seconds  float64 `json:"seconds"`
	// CPUusPerOp is the server's CPU time (user + system) in the measured
	// phase divided by the operations that succeeded (calls, events
	// delivered, actors); CPUScope says whose CPU: "server" (a child
	// target's process tree, /proc/PID/stat) or this whole process for
	// an in-process target. Absent where the server restarts inside the
	// measured phase.
	CPUusPerOp float64 `json:"cpu_us_per_op,omitempty"`
	CPUScope   string  `json:"cpu_scope,omitempty"`
	// NoDelay false: the load generator's sockets ran with Nagle's
	// algorithm (TCP_NODELAY off).
	NoDelay bool `json:"nodelay"`
	// GuardNoDelay: RivetKit's engine ran with RIVET__GUARD__TCP_NODELAY=true.
	GuardNoDelay bool `json:"guard_nodelay,omitempty"`
	// ReadOnly: getCount instead of increment (hot, ws-rtt).
	ReadOnly bool `json:"read_only,omitempty"`
	// Capped: the reduced parameters used for RivetKit (and, for the
	// ratio, the other targets too).
	Capped bool `json:"capped,omitempty"`
	// durability
	Rounds   int `json:"rounds,omitempty"`
	Acked    int `json:"acked,omitempty"`
	Observed int `json:"observed,omitempty"`
	Unacked  int `json:"unacked_applied,omitempty"`
	InFlight int `json:"in_flight,omitempty"`
	// memory
	Awake            int     `json:"awake,omitempty"`
	Sleeping         int     `json:"sleeping,omitempty"`
	RSSBeforeMiB     float64 `json:"rss_before_mib,omitempty"`
	RSSAfterSleepMiB float64 `json:"rss_after_sleep_mib,omitempty"`
	// HeapMiB, HeapAfterSleepMiB: the server's Go heap in use
	// (go_memstats_heap_inuse_bytes) next to RSSMiB and RSSAfterSleepMiB.
	HeapMiB           float64 `json:"heap_inuse_mib,omitempty"`
	HeapAfterSleepMiB float64 `json:"heap_inuse_after_sleep_mib,omitempty"`
	KiBPerActor       float64 `json:"kib_per_actor,omitempty"`
	// conns: the server's Go heap before (after a GC), RSS and heap per
	// open connection; hot: the actors the callers are spread over.
	HeapBeforeMiB  float64 `json:"heap_inuse_before_mib,omitempty"`
	KiBPerConn     float64 `json:"kib_per_conn,omitempty"`
	HeapKiBPerConn float64 `json:"heap_kib_per_conn,omitempty"`
	Actors         int     `json:"actors,omitempty"`
	// split, split-ws: the runner's share of each call (seen at a proxy
	// on the runner's socket to the engine), the rest (the engine's), and
	// the runner's waits on the engine's storage inside its share.
	Runner         *splitPcts `json:"runner,omitempty"`
	Engine         *splitPcts `json:"engine,omitempty"`
	Storage        *splitPcts `json:"storage,omitempty"`
	StoragePerCall float64    `json:"storage_round_trips_per_call,omitempty"`
	// Load is the machine's 1/5/15-minute load average when the row
	// started (/proc/loadavg): the machine is shared.
	Load string `json:"load,omitempty"`
	// EngineLost: the engine ran with this envoy_ping_timeout and
	// envoy_lost_threshold (-engine-lost).
	EngineLost string `json:"engine_lost,omitempty"`
	// MaxQueueTime: the server's max_queue_time (overload; "" = default).
	MaxQueueTime string `json:"max_queue_time,omitempty"`
	Note         string `json:"note,omitempty"`
	Error        string `json:"error,omitempty"`
	Command      string `json:"command"`
	Time         string `json:"time"`
}

// job is one row: a scenario with its parameters on one target.
type job struct {
	scenario  string
	enc       string
	c, n      int
	conns     int
	rounds    int
	actors    int // hot: callers spread over this many actors (0, 1: one)
	waitSleep bool
	nagle     bool // TCP_NODELAY off on the load generator's sockets
	guardND   bool // RivetKit's engine with RIVET__GUARD__TCP_NODELAY=true
	readOnly  bool // hot, ws-rtt: getCount instead of increment
	capped    bool
	timeout   time.Duration
	// engineLost: the engine's envoy_ping_timeout and envoy_lost_threshold
	// (engine targets; 0 = the engine's default).
	engineLost time.Duration
	// overload: the scenario's parameters, and the server's
	// max_queue_time ("" = its default).
	ov           overloadOpts
	maxQueueTime string
}

// args are the flags that rerun this row alone.
func (j job) args(target string) []string {
	a := []string{"-scenario", j.scenario, "-target", target, "-encoding", j.enc}
	switch j.scenario {
	case "hot", "spread", "durability", "idle", "sleeping", "split-hot", "overload", "conns":
		a = append(a, "-c", strconv.Itoa(j.c))
	}
	if j.actors > 1 {
		a = append(a, "-actors", strconv.Itoa(j.actors))
	}
	if j.scenario == "overload" {
		a = append(a, "-duration", j.ov.duration.String(), "-client-timeout", j.ov.clientTimeout.String(), "-work", j.ov.work.String(), "-backoff", j.ov.backoff.String())
		if j.maxQueueTime != "" {
			a = append(a, "-max-queue-time", j.maxQueueTime)
		}
	} else if j.scenario != "failover" && j.scenario != "conns" {
		a = append(a, "-n", strconv.Itoa(j.n))
	}
	if j.engineLost > 0 {
		a = append(a, "-engine-lost", j.engineLost.String())
	}
	if j.scenario == "fanout" || j.scenario == "conns" {
		a = append(a, "-conns", strconv.Itoa(j.conns))
	}
	if j.scenario == "durability" || j.scenario == "failover" {
		a = append(a, "-rounds", strconv.Itoa(j.rounds))
	}
	if j.scenario == "idle" && !j.waitSleep {
		a = append(a, "-wait-sleep=false")
	}
	if j.nagle {
		a = append(a, "-nodelay=false")
	}
	if j.guardND {
		a = append(a, "-peer-guard-nodelay")
	}
	if j.readOnly {
		a = append(a, "-read-only")
	}
	a = append(a, "-timeout", j.timeout.String())
	return a
}

// supports reports whether a target can run a scenario.
func supports(target, scenario string) bool {
	switch scenario {
	case "hot", "ws-rtt", "fanout", "spread", "cold":
		return true
	case "split", "split-id", "split-ws", "split-hot", "failover":
		return isEngineTarget(target)
	case "wake":
		return target == "rivet" || target == "serve"
	case "wake-restart", "durability":
		return target == "serve" || target == "peer"
	case "idle", "conns":
		return target == "serve" || target == "rivet"
	case "sleeping":
		return target == "serve"
	case "overload":
		return target == "rivet"
	}
	return false
}

var allScenarios = []string{"hot", "ws-rtt", "fanout", "spread", "cold", "wake", "wake-restart", "durability", "idle", "sleeping", "split", "split-id", "split-ws", "split-hot", "failover", "overload", "conns"}

// suite is the report run (-scenario all) for one target. The full
// parameters run on every target but RivetKit; withPeer adds the capped
// rows (RivetKit does ~36 actions/s on one actor and creates 2–4 actors/s
// here), run on every target so that the ratio compares like with like.
func suite(target string, withPeer, cappedOnly bool) []job {
	var js []job
	add := func(j job) {
		if !supports(target, j.scenario) {
			return
		}
		if target == "peer" && !j.capped {
			return
		}
		if j.capped && !withPeer && !cappedOnly || !j.capped && cappedOnly {
			return
		}
		if j.timeout == 0 {
			j.timeout = 2 * time.Minute
		}
		if j.rounds == 0 && j.scenario == "durability" {
			j.rounds = 1
		}
		js = append(js, j)
	}
	for _, enc := range []string{"json", "bare"} {
		add(job{scenario: "hot", enc: enc, c: 64, n: 20000})
		add(job{scenario: "ws-rtt", enc: enc, n: 5000})
		add(job{scenario: "ws-rtt", enc: enc, n: 5000, readOnly: true})
		add(job{scenario: "fanout", enc: enc, conns: 1000, n: 50})
	}
	add(job{scenario: "fanout", enc: "json", conns: 100, n: 200})
	add(job{scenario: "fanout", enc: "json", conns: 10000, n: 5, timeout: 3 * time.Minute})
	add(job{scenario: "spread", enc: "json", c: 64, n: 10000})
	add(job{scenario: "spread", enc: "json", c: 64, n: 100000, timeout: 3 * time.Minute})
	add(job{scenario: "cold", enc: "json", n: 500})
	add(job{scenario: "wake", enc: "json", n: 500})
	add(job{scenario: "wake-restart", enc: "json", n: 1000})
	add(job{scenario: "durability", enc: "json", c: 16, n: 4000, rounds: 3})
	add(job{scenario: "idle", enc: "json", c: 64, n: 100000, waitSleep: true, timeout: 4 * time.Minute})
	add(job{scenario: "conns", enc: "json", c: 64, conns: 10000, timeout: 3 * time.Minute})
	add(job{scenario: "sleeping", enc: "json", c: 256, n: 1000000, timeout: 8 * time.Minute})

	// Capped parameters, the same on every target.
	for _, enc := range []string{"json", "bare"} {
		add(job{scenario: "hot", enc: enc, c: 8, n: 200, capped: true})
		add(job{scenario: "ws-rtt", enc: enc, n: 100, capped: true})
	}
	// Nagle's algorithm on the client side: does TCP_NODELAY change the
	// latencies?
	add(job{scenario: "ws-rtt", enc: "json", n: 100, capped: true, nagle: true})
	add(job{scenario: "hot", enc: "json", c: 8, n: 200, capped: true, nagle: true})
	if target == "peer" { // TCP_NODELAY on RivetKit's side
		add(job{scenario: "ws-rtt", enc: "json", n: 100, capped: true, guardND: true})
		add(job{scenario: "hot", enc: "json", c: 8, n: 200, capped: true, guardND: true})
	}
	add(job{scenario: "fanout", enc: "json", conns: 100, n: 10, capped: true})
	// RivetKit subscribes few of 1,000 connections: bound the subscribe
	// phase (half the row's time limit) to 20 s.
	add(job{scenario: "fanout", enc: "json", conns: 1000, n: 5, capped: true, timeout: 40 * time.Second})
	add(job{scenario: "spread", enc: "json", c: 8, n: 20, capped: true})
	add(job{scenario: "cold", enc: "json", n: 10, capped: true})
	add(job{scenario: "wake-restart", enc: "json", n: 20, capped: true})
	add(job{scenario: "durability", enc: "json", c: 8, n: 200, rounds: 2, capped: true})
	return js
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "populate" || os.Args[1] == "baseline-serve") {
		if err := subcommand(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	scenario := flag.String("scenario", "hot", "comma-separated: "+strings.Join(allScenarios, ", ")+"; or all (the report run), or capped (only the rows with RivetKit's capped parameters), or engine (the engine plan: use with -target engine), or memory (memory per actor and connection, cold start, 10x growth: memSuite)")
	target := flag.String("target", "serve", "comma-separated: baseline (its own process), baseline-inproc, rivet (in this process), serve (rivet serve child process), peer (RivetKit, needs -peer-dir), serve-engine and peer-engine (rivet serve's or RivetKit's runner behind a fresh rivet-engine), an http:// endpoint; both = serve,peer; all = baseline,serve,peer; engine = serve,serve-engine,peer-engine")
	enc := flag.String("encoding", "json", "comma-separated: json, cbor, bare")
	c := flag.Int("c", 64, "concurrent callers (hot, spread, durability, idle, sleeping, overload)")
	n := flag.Int("n", 20000, "operations (actors for spread, cold, wake, wake-restart, idle, sleeping; acknowledged increments per round, at most, for durability)")
	conns := flag.Int("conns", 100, "connections (fanout, conns)")
	actors := flag.Int("actors", 1, "hot: spread the callers over this many counters")
	rounds := flag.Int("rounds", 3, "kill -9 rounds (durability)")
	waitSleep := flag.Bool("wait-sleep", true, "idle: also measure RSS once the actors have gone to sleep")
	noDelay := flag.Bool("nodelay", true, "TCP_NODELAY on the load generator's sockets")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up on a row after this long")
	peerDir := flag.String("peer-dir", os.Getenv("RIVET_BENCH_PEER_DIR"), "directory with bench/peer/server.mjs and rivetkit installed (bench/peer/run.sh prepares it)")
	readOnly := flag.Bool("read-only", false, "hot, ws-rtt: call getCount (no commit) instead of increment")
	guardND := flag.Bool("peer-guard-nodelay", false, "peer: run RivetKit's engine with RIVET__GUARD__TCP_NODELAY=true")
	rivetBin := flag.String("rivet-bin", "", "rivet binary for -target serve (default: build ./cmd/rivet)")
	profile := flag.String("profile", "", "directory for CPU, allocs, mutex and block profiles (in-process -target rivet only)")
	engineBin := flag.String("engine-bin", "", "rivet-engine binary for the engine targets (default: RIVET_ENGINE_BIN, else the one `make engine` installed)")
	engineLost := flag.Duration("engine-lost", 0, "engine targets: set the engine's envoy_ping_timeout and envoy_lost_threshold (0: the engine's default, 15 s)")
	ovDuration := flag.Duration("duration", 20*time.Second, "overload: how long the callers run")
	ovClientTimeout := flag.Duration("client-timeout", 2*time.Second, "overload: each call's timeout on the caller's side")
	ovWork := flag.Duration("work", 5*time.Millisecond, "overload: the slow actor's time per call (whole milliseconds)")
	ovBackoff := flag.Duration("backoff", 100*time.Millisecond, "overload: a caller's pause after actor.overloaded")
	maxQueueTime := flag.String("max-queue-time", "", "overload: the server's max_queue_time (default: the server's default; 0 turns it off)")
	flag.Parse()

	raiseFileLimit()
	o := &options{rivetBin: *rivetBin, peerDir: *peerDir, noDelay: *noDelay, engineBin: *engineBin, engineLost: *engineLost}
	targets := expandTargets(*target)
	withPeer := slices.Contains(targets, "peer")
	var rows []result
	for _, t := range targets {
		var jobs []job
		switch {
		case *scenario == "engine":
			jobs = engineSuite(t)
		case *scenario == "memory":
			jobs = memSuite(t)
		case *scenario == "all" || *scenario == "capped":
			jobs = suite(t, withPeer, *scenario == "capped")
		default:
			for _, s := range strings.Split(*scenario, ",") {
				encs := strings.Split(*enc, ",")
				if s != "hot" && s != "ws-rtt" && s != "fanout" {
					encs = encs[:1]
				}
				for _, e := range encs {
					jobs = append(jobs, job{scenario: s, enc: e, c: *c, n: *n, conns: *conns, actors: *actors, rounds: *rounds, waitSleep: *waitSleep, nagle: !*noDelay, guardND: *guardND, readOnly: *readOnly, timeout: *timeout, engineLost: *engineLost,
						ov: overloadOpts{duration: *ovDuration, clientTimeout: *ovClientTimeout, work: *ovWork, backoff: *ovBackoff}, maxQueueTime: *maxQueueTime})
				}
			}
		}
		for _, j := range jobs {
			if !supports(t, j.scenario) && !strings.HasPrefix(t, "http") {
				fmt.Fprintf(logOut, "skip %s on %s: not supported by this target\n", j.scenario, t)
				continue
			}
			r := runJob(t, j, o, *profile)
			rows = append(rows, r)
			printRow(r)
		}
	}
	removeBuild()
	printTable(os.Stdout, rows)
	if slices.ContainsFunc(targets, isEngineTarget) {
		printEngineTable(os.Stdout, rows)
	} else if len(targets) > 1 {
		printRatios(os.Stdout, rows)
	}
	// RivetKit's failures and losses are results, not failures of the run.
	for _, r := range rows {
		if r.Target != "peer" && r.Target != "peer-engine" && (r.Error != "" || r.Scenario == "durability" && r.Lost > 0) {
			os.Exit(1)
		}
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE to 1<<20 where allowed (root): an
// in-process target with 10,000 connections holds both ends of each. Child
// servers inherit the limit.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	want := syscall.Rlimit{Cur: 1 << 20, Max: max(l.Max, 1<<20)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// subcommand runs the helper processes the scenarios start: populate
// (sleeping) and baseline-serve (the baseline target).
func subcommand(name string, args []string) error {
	if name == "populate" {
		return populateMain(args)
	}
	return baselineServeMain(args)
}

func expandTargets(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		switch t {
		case "both":
			out = append(out, "serve", "peer")
		case "all":
			out = append(out, "baseline", "serve", "peer")
		case "engine":
			out = append(out, engineTargets...)
		default:
			out = append(out, t)
		}
	}
	return out
}

// runJob starts a fresh server for the row, runs it and stops the server.
func runJob(target string, j job, o *options, profileDir string) result {
	ctx, cancel := context.WithTimeout(context.Background(), j.timeout)
	defer cancel()
	r := result{Scenario: j.scenario, Target: target, Encoding: j.enc, N: j.n, NoDelay: !j.nagle, GuardNoDelay: j.guardND, ReadOnly: j.readOnly, Capped: j.capped,
		Command: "go run ./bench " + strings.Join(j.args(target), " "), Time: time.Now().UTC().Format(time.RFC3339), Load: loadAvg()}
	switch j.scenario {
	case "hot", "spread", "durability", "idle", "sleeping", "split-hot", "overload":
		r.C = j.c
	case "fanout":
		r.Conns = j.conns
		r.Messages = j.n
	case "conns":
		r.C, r.Conns, r.N = j.c, j.conns, j.conns
	case "failover":
		r.Rounds = j.rounds
	}
	if j.engineLost > 0 {
		r.EngineLost = j.engineLost.String()
	}
	fmt.Fprintf(logOut, "run: %s\n", r.Command)
	oo := *o
	oo.noDelay = !j.nagle
	oo.guardNoDelay = j.guardND
	oo.withProxy = strings.HasPrefix(j.scenario, "split")
	oo.engineLost = j.engineLost
	oo.maxQueueTime = j.maxQueueTime
	oo.pprof = memoryRow(j.scenario)
	s, err := startServer(ctx, target, &oo)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer s.stop()
	stopProfile := func() {}
	if profileDir != "" && target == "rivet" {
		stopProfile, err = startProfile(profileDir, j)
		if err != nil {
			r.Error = err.Error()
			return r
		}
	}
	loopAction, loopArgs = "increment", []any{1}
	if j.readOnly {
		loopAction, loopArgs = "getCount", nil
	}
	meter = newCPUMeter(s)
	err = runScenario(ctx, s, &oo, j, &r)
	stopProfile()
	r.CPUusPerOp, r.CPUScope = meter.perOp(r.OK)
	meter = nil
	if err != nil {
		r.Error = err.Error()
	}
	if r.RSSMiB == 0 && s.isLocal() {
		r.RSSMiB = s.rssMiB()
	}
	return r
}

func runScenario(ctx context.Context, s *server, o *options, j job, r *result) error {
	client := newClient(s.endpoint, j.enc, o.noDelay)
	switch j.scenario {
	case "hot":
		r.C = j.c
		if j.actors > 1 {
			r.Actors = j.actors
			return hotActors(ctx, client, j.c, j.n, j.actors, r)
		}
		return hot(ctx, client, j.c, j.n, r)
	case "conns":
		return openConns(ctx, s, client, j.c, j.conns, r)
	case "ws-rtt":
		return wsRTT(ctx, client, j.n, r)
	case "fanout":
		r.Conns = j.conns
		return fanout(ctx, client, j.conns, j.n, r)
	case "spread":
		r.C = j.c
		return spread(ctx, client, "spread", j.c, j.n, r)
	case "cold":
		return cold(ctx, client, j.n, r)
	case "wake":
		if !s.sleepAPI {
			return errors.New("wake after sleep needs rivetgo's POST /actors/{id}/sleep (targets rivet, serve)")
		}
		return wake(ctx, client, s.endpoint, j.n, r)
	case "wake-restart":
		return wakeRestart(ctx, s, o, j.enc, j.n, r)
	case "durability":
		r.C = j.c
		return durability(ctx, s, o, j.enc, j.c, j.n, j.rounds, r)
	case "idle":
		r.C = j.c
		return idle(ctx, s, o, j.enc, j.c, j.n, j.waitSleep, r)
	case "sleeping":
		r.C = j.c
		return sleeping(ctx, s, o, j.c, j.n, r)
	case "split", "split-id", "split-ws":
		return split(ctx, s, client, j.scenario == "split-ws", j.scenario == "split-id", j.n, r)
	case "split-hot":
		r.C = j.c
		return splitHot(ctx, s, client, j.c, j.n, r)
	case "failover":
		return failover(ctx, s, o, j.enc, j.rounds, r)
	case "overload":
		r.C = j.c
		r.MaxQueueTime = j.maxQueueTime
		return overload(ctx, client, j.c, j.ov, r)
	}
	return fmt.Errorf("unknown scenario %q (%s)", j.scenario, strings.Join(allScenarios, ", "))
}

// startProfile records CPU, mutex and block profiles of this process for
// one row and an allocs profile at its end.
func startProfile(dir string, j job) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s-n%d", j.scenario, j.enc, j.n))
	f, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	runtime.SetMutexProfileFraction(20)
	runtime.SetBlockProfileRate(int((50 * time.Microsecond).Nanoseconds()))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, p := range []string{"allocs", "mutex", "block"} {
			if w, err := os.Create(base + "." + p + ".pprof"); err == nil {
				_ = pprof.Lookup(p).WriteTo(w, 0)
				w.Close()
			}
		}
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	}, nil
}

func printRow(r result) {
	fmt.Fprintf(logOut, "  %s\n", rowText(r))
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func rowText(r result) string {
	if r.Error != "" {
		return "ERROR: " + r.Error
	}
	switch r.Scenario {
	case "durability":
		return fmt.Sprintf("%d rounds: acknowledged %d, observed %d, lost acknowledged %d, applied unacknowledged %d (≤ %d in flight)", r.Rounds, r.Acked, r.Observed, r.Lost, r.Unacked, r.InFlight)
	case "idle":
		return fmt.Sprintf("%d actors awake: RSS %.0f → %.0f MiB (%.1f KiB/actor), Go heap %.0f MiB; after sleep RSS %.0f MiB, heap %.0f MiB; created %.0f/s", r.OK, r.RSSBeforeMiB, r.RSSMiB, r.KiBPerActor, r.HeapMiB, r.RSSAfterSleepMiB, r.HeapAfterSleepMiB, r.PerSec)
	case "conns":
		return fmt.Sprintf("%d connections: RSS %.0f → %.0f MiB (%.1f KiB/conn), Go heap %.1f → %.1f MiB (%.1f KiB/conn); open p50=%s p99=%s [load %s]", r.OK, r.RSSBeforeMiB, r.RSSMiB, r.KiBPerConn, r.HeapBeforeMiB, r.HeapMiB, r.HeapKiBPerConn, us(r.P50us), us(r.P99us), r.Load)
	case "sleeping":
		return fmt.Sprintf("%d actors asleep: server RSS %.0f MiB, Go heap %.0f MiB", r.OK, r.RSSMiB, r.HeapMiB)
	case "split-hot":
		if r.Runner == nil {
			break
		}
		return fmt.Sprintf("ok=%d %.0f/s round trip p50=%s p90=%s; runner p50=%s p90=%s; storage wait p50=%s (%.2f round trips/call) [load %s]",
			r.OK, r.PerSec, us(r.P50us), us(r.P90us), us(r.Runner.P50us), us(r.Runner.P90us), us(r.Storage.P50us), r.StoragePerCall, r.Load)
	case "split", "split-id", "split-ws":
		if r.Runner == nil {
			break
		}
		return fmt.Sprintf("ok=%d round trip p50=%s p90=%s; runner p50=%s p90=%s; engine p50=%s p90=%s; storage wait p50=%s (%.2f round trips/call) [load %s]",
			r.OK, us(r.P50us), us(r.P90us), us(r.Runner.P50us), us(r.Runner.P90us), us(r.Engine.P50us), us(r.Engine.P90us), us(r.Storage.P50us), r.StoragePerCall, r.Load)
	case "overload":
		return fmt.Sprintf("%.0f successes/s p50=%s p99=%s; %s", r.PerSec, us(r.P50us), us(r.P99us), r.Note)
	case "failover":
		return fmt.Sprintf("%d of %d rounds answered: kill -9 → first answer p50=%s max=%s; %s [load %s]", r.OK, r.Rounds, us(r.P50us), us(r.P999us), r.Note, r.Load)
	}
	cpu := ""
	if r.CPUusPerOp > 0 {
		cpu = fmt.Sprintf(" cpu=%.1fµs/op", r.CPUusPerOp)
	}
	return fmt.Sprintf("ok=%d lost=%d %.0f/s%s p50=%s p90=%s p99=%s p99.9=%s rss=%.0fMiB %.2fs", r.OK, r.Lost, r.PerSec, cpu, us(r.P50us), us(r.P90us), us(r.P99us), us(r.P999us), r.RSSMiB, r.Seconds)
}

// loadAvg is the first three fields of /proc/loadavg ("" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func us(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fms", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fms", v/1000)
	}
	return fmt.Sprintf("%.0fµs", v)
}

func params(r result) string {
	var p []string
	if r.C > 0 {
		p = append(p, fmt.Sprintf("c=%d", r.C))
	}
	if r.Conns > 0 {
		p = append(p, fmt.Sprintf("conns=%d", r.Conns))
	}
	if r.Actors > 1 {
		p = append(p, fmt.Sprintf("actors=%d", r.Actors))
	}
	n := r.N
	if r.Scenario == "fanout" {
		n = r.Messages
	}
	if r.Scenario == "durability" || r.Scenario == "failover" {
		p = append(p, fmt.Sprintf("rounds=%d", r.Rounds))
	} else {
		p = append(p, fmt.Sprintf("n=%d", n))
	}
	if !r.NoDelay {
		p = append(p, "nagle")
	}
	if r.GuardNoDelay {
		p = append(p, "guard-nodelay")
	}
	if r.ReadOnly {
		p = append(p, "getCount")
	}
	if r.Capped {
		p = append(p, "capped")
	}
	if r.EngineLost != "" {
		p = append(p, "engine-lost="+r.EngineLost)
	}
	if r.MaxQueueTime != "" {
		p = append(p, "max_queue_time="+r.MaxQueueTime)
	}
	return strings.Join(p, " ")
}

func printTable(w io.Writer, rows []result) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | enc | params | target | result | command |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | `%s` |\n", r.Scenario, r.Encoding, params(r), r.Target, rowText(r), r.Command)
	}
}

// printRatios lines up rows with the same scenario and parameters across
// targets: rivetgo (serve, or rivet) against RivetKit and the baseline.
func printRatios(w io.Writer, rows []result) {
	type key struct{ scenario, enc, params string }
	by := map[key]map[string]result{}
	var order []key
	for _, r := range rows {
		if r.Error != "" {
			continue
		}
		k := key{r.Scenario, r.Encoding, params(r)}
		if by[k] == nil {
			by[k] = map[string]result{}
			order = append(order, k)
		}
		by[k][r.Target] = r
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | enc | params | metric | rivetgo | rivetkit | baseline | rivetgo ÷ rivetkit | rivetgo ÷ baseline |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, k := range order {
		m := by[k]
		g, ok := m["serve"]
		if !ok {
			if g, ok = m["rivet"]; !ok {
				continue
			}
		}
		p, hasP := m["peer"]
		b, hasB := m["baseline"]
		if !hasP && !hasB {
			continue
		}
		for _, met := range metrics(k.scenario) {
			cell := func(r result, has bool) string {
				if !has {
					return "–"
				}
				return met.format(met.get(r))
			}
			ratio := func(r result, has bool) string {
				if !has || met.get(r) == 0 {
					return "–"
				}
				return fmt.Sprintf("%.3g", met.get(g)/met.get(r))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k.scenario, k.enc, k.params, met.name, met.format(met.get(g)), cell(p, hasP), cell(b, hasB), ratio(p, hasP), ratio(b, hasB))
		}
	}
	fmt.Fprintln(w, "\nRivetKit acknowledges an action before its state is persisted, so its durable-path figures (hot, ws-rtt, spread, cold, fanout senders) are not like for like: rivetgo returns a write only after its fsync. The durability rows show what that costs: acknowledged increments missing after kill -9. Ratios are rivetgo ÷ other: above 1 is better for rates, below 1 is better for latencies.")
}

type metric struct {
	name   string
	get    func(result) float64
	format func(float64) string
}

func metrics(scenario string) []metric {
	rate := metric{"per s (higher is better)", func(r result) float64 { return r.PerSec }, func(v float64) string { return fmt.Sprintf("%.0f", v) }}
	p50 := metric{"p50 (lower is better)", func(r result) float64 { return r.P50us }, us}
	p99 := metric{"p99", func(r result) float64 { return r.P99us }, us}
	cpu := metric{"CPU µs per op (lower is better)", func(r result) float64 { return r.CPUusPerOp }, func(v float64) string {
		if v == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", v)
	}}
	lost := metric{"lost", func(r result) float64 { return float64(r.Lost) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }}
	switch scenario {
	case "hot", "spread":
		return []metric{rate, cpu, p50, p99}
	case "fanout":
		return []metric{rate, cpu, p99, lost}
	case "durability":
		return []metric{lost, {"acknowledged", func(r result) float64 { return float64(r.Acked) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }}}
	}
	return []metric{p50, p99, cpu}
}
