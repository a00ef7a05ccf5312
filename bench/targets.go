package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
	"github.com/rivetgo/rivet/rivetclient"
)

// server is one target under measurement.
type server struct {
	target   string // baseline, rivet, serve, peer, or the endpoint URL
	endpoint string
	// sleepAPI: the target answers POST /actors/{id}/sleep (rivetgo only).
	sleepAPI bool
	// proc is the server's child process (serve, peer; the runner of an
	// engine target); nil otherwise.
	proc *child
	// engine is the rivet-engine of an engine target, extra the runners a
	// scenario added (failover), proxy the timing proxy between the runner
	// and the engine (split scenarios).
	engine *child
	extra  []*child
	proxy  *timingProxy
	stop   func()
}

// isLocal reports whether the target was started by this process, so its
// RSS can be read.
func (s *server) isLocal() bool {
	return s.proc != nil || s.target == "rivet" || s.target == "baseline-inproc"
}

// rssMiB is the server's resident set: the child process tree for serve
// and peer, this whole process (load generator included) for the
// in-process targets, 0 for an external endpoint.
func (s *server) rssMiB() float64 {
	switch {
	case s.proc != nil:
		t := s.proc.rssMiB()
		if s.engine != nil {
			t += s.engine.rssMiB()
		}
		return t
	case s.isLocal():
		return procRSSMiB(os.Getpid())
	}
	return 0
}

// options are the flags that shape how targets start.
type options struct {
	rivetBin string // rivet binary for -target serve ("" builds ./cmd/rivet)
	peerDir  string // directory with server.mjs and node_modules (rivetkit)
	noDelay  bool   // TCP_NODELAY on the load generator's sockets
	// guardNoDelay sets RIVET__GUARD__TCP_NODELAY=true for RivetKit's
	// engine (its guard, the HTTP/WebSocket front, leaves it unset by
	// default).
	guardNoDelay bool
	engineBin    string        // rivet-engine for the engine targets ("" = enginetest.Binary)
	engineLost   time.Duration // engine targets: envoy_ping_timeout and envoy_lost_threshold (0 = the engine's 15 s)
	// withProxy puts a timingProxy between an engine target's runner and
	// the engine (the split scenarios).
	withProxy bool
	// maxQueueTime is the in-process runtime's max_queue_time ("" = its
	// default).
	maxQueueTime string
	// pprof runs rivet serve with --pprof (memory rows force a GC through
	// it before reading the heap).
	pprof bool
}

// startServer brings a target up on loopback.
func startServer(ctx context.Context, target string, o *options) (*server, error) {
	if isEngineTarget(target) {
		return startEngineTarget(ctx, target, o, o.withProxy)
	}
	switch target {
	case "rivet", "baseline-inproc":
		endpoint, stop, err := start(ctx, strings.TrimSuffix(target, "-inproc"), o)
		if err != nil {
			return nil, err
		}
		return &server{target: target, endpoint: endpoint, sleepAPI: target == "rivet", stop: stop}, nil
	case "baseline", "serve", "peer":
		dir, err := os.MkdirTemp("", "rivet-bench-"+target+"-")
		if err != nil {
			return nil, err
		}
		c := &child{kind: target, dir: dir, opts: o}
		if target == "serve" {
			if c.bin, err = rivetBinary(ctx, o); err != nil {
				_ = os.RemoveAll(dir)
				return nil, err
			}
		}
		if err := c.start(ctx); err != nil {
			c.kill()
			_ = os.RemoveAll(dir)
			return nil, err
		}
		return &server{target: target, endpoint: c.endpoint(), sleepAPI: target == "serve", proc: c, stop: func() {
			_ = c.stop()
			_ = os.RemoveAll(dir)
		}}, nil
	}
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		return nil, fmt.Errorf("unknown target %q (baseline, baseline-inproc, rivet, serve, peer or an http:// endpoint)", target)
	}
	return &server{target: target, endpoint: target, stop: func() {}}, nil
}

// start brings up an in-process target on loopback and returns its
// endpoint.
func start(ctx context.Context, target string, o *options) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var h http.Handler
	stopRT := func() {}
	if target == "baseline" {
		h = newBaseline()
	} else {
		dir, err := os.MkdirTemp("", "rivet-bench-")
		if err != nil {
			return "", nil, err
		}
		cfg := &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
		if o.maxQueueTime != "" {
			if err := cfg.Set("max_queue_time", o.maxQueueTime); err != nil {
				return "", nil, err
			}
		}
		rt, err := rivet.Start(ctx, rivet.MustRegistry(append(demo.Definitions(), slowActor())...), cfg)
		if err != nil {
			return "", nil, err
		}
		h = rt.Handler()
		stopRT = func() {
			_ = rt.Stop(context.Background())
			_ = os.RemoveAll(dir)
		}
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close(); stopRT() }, nil
}

var (
	builtRivet string
	buildErr   error
)

// rivetBinary returns the rivet binary to run: -rivet-bin, or ./cmd/rivet
// built once into a temporary directory.
func rivetBinary(ctx context.Context, o *options) (string, error) {
	if o.rivetBin != "" {
		return o.rivetBin, nil
	}
	if builtRivet != "" || buildErr != nil {
		return builtRivet, buildErr
	}
	dir, err := os.MkdirTemp("", "rivet-bench-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "rivet")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/rivetgo/rivet/cmd/rivet")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		buildErr = fmt.Errorf("building cmd/rivet (run from the module, or pass -rivet-bin): %w", err)
		return "", buildErr
	}
	builtRivet = bin
	return bin, nil
}

// removeBuild deletes the rivet binary built by rivetBinary, if any.
func removeBuild() {
	if builtRivet != "" {
		_ = os.RemoveAll(filepath.Dir(builtRivet))
		builtRivet = ""
	}
}

// child is a server running as a child process: `rivet serve` on a data
// directory, or RivetKit (node server.mjs, which spawns rivet-engine) with
// HOME pointing at a private directory so its engine's data lives there.
// Restarting it keeps the directory.
type child struct {
	kind string // baseline, serve, peer, engine, serve-runner or peer-runner
	dir  string // serve: data directory; peer, peer-runner: HOME; engine: config and store
	bin  string
	opts *options
	port int // the listener (engine: guard)
	// engine: the api_peer and metrics ports; serve: the --pprof port
	// (0: none).
	peerPort, metricsPort, pprofPort int
	// runners: client is the engine's guard (where clients call), connect
	// the URL the runner dials (the guard, or a proxy in front of it); key
	// is rivet serve's runner key. noReadyCall skips the readiness action
	// (a second runner: the caller waits for it in GET /envoys).
	client, connect, key string
	noReadyCall          bool
	cmd                  *exec.Cmd
	log                  *os.File
	done                 chan struct{}
}

func (c *child) endpoint() string {
	if c.client != "" {
		return c.client
	}
	return fmt.Sprintf("http://127.0.0.1:%d", c.port)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start starts the process (on a new port the first time, the same port
// on a restart) and waits until an action call succeeds.
func (c *child) start(ctx context.Context) error {
	if c.port == 0 && c.client == "" {
		p, err := freePort()
		if err != nil {
			return err
		}
		c.port = p
		if c.kind == "engine" {
			if c.peerPort, err = freePort(); err == nil {
				c.metricsPort, err = freePort()
			}
			if err != nil {
				return err
			}
		}
	}
	var cmd *exec.Cmd
	switch c.kind {
	case "engine":
		cfg, err := c.engineConfig()
		if err != nil {
			return err
		}
		cmd = exec.Command(c.bin, "start", "--config", cfg)
		cmd.Dir = c.dir
		cmd.Env = envWithoutRivet()
	case "serve-runner":
		cmd = exec.Command(c.bin, "serve", "--log-level", "warn")
		cmd.Env = append(envWithoutRivet(), "RIVET_ENGINE="+c.connect, "RIVET_NAMESPACE=default", "RIVET_RUNNER=default")
		if c.key != "" {
			cmd.Env = append(cmd.Env, "RIVET_RUNNER_KEY="+c.key)
		}
	case "peer-runner":
		cmd = exec.Command("node", "server.mjs")
		cmd.Dir = c.opts.peerDir
		cmd.Env = append(envWithoutRivet(), "HOME="+c.dir, "RIVET_ENDPOINT="+c.connect, "RIVET_NAMESPACE=default", "RIVET_POOL=default",
			"RIVET_ENVOY_VERSION=1", "RIVET_RUN_ENGINE=0", "RIVET_RUN_SERVICES=0", "RIVET_LOG_LEVEL=warn")
	case "baseline":
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd = exec.Command(self, "baseline-serve", "-listen", fmt.Sprintf("127.0.0.1:%d", c.port))
	case "serve":
		cmd = exec.Command(c.bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", c.port), "--data", c.dir)
		if c.opts.pprof {
			if c.pprofPort == 0 {
				p, err := freePort()
				if err != nil {
					return err
				}
				c.pprofPort = p
			}
			cmd.Args = append(cmd.Args, "--pprof", fmt.Sprintf("127.0.0.1:%d", c.pprofPort))
		}
	case "peer":
		if c.opts.peerDir == "" {
			return errors.New("-target peer needs -peer-dir (a directory with server.mjs and rivetkit installed: bench/peer/run.sh sets it up)")
		}
		cmd = exec.Command("node", "server.mjs")
		cmd.Dir = c.opts.peerDir
		cmd.Env = append(os.Environ(), "HOME="+c.dir, "RIVET_RUN_ENGINE=1", "RIVET_RUN_ENGINE_PORT="+strconv.Itoa(c.port), "RIVET_LOG_LEVEL=warn")
		if c.opts.guardNoDelay {
			cmd.Env = append(cmd.Env, "RIVET__GUARD__TCP_NODELAY=true")
		}
	}
	log, err := os.OpenFile(filepath.Join(c.dir, c.kind+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	c.cmd, c.log, c.done = cmd, log, make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.done) }()
	switch {
	case c.kind == "engine":
		return c.waitEngineReady(ctx)
	case c.noReadyCall:
		return nil
	}
	return c.waitReady(ctx)
}

// waitReady polls an action (getCount on counter["ready"]) until it answers:
// for RivetKit that also means the runtime has connected to its engine.
func (c *child) waitReady(ctx context.Context) error {
	cl := rivetclient.New(c.endpoint(), rivetclient.WithEncoding("json"))
	wait := 90 * time.Second
	if c.client != "" {
		wait = 2 * time.Minute
	}
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-c.done:
			return fmt.Errorf("%s exited during start-up (log: %s): %s", c.kind, c.log.Name(), tail(c.log.Name()))
		default:
		}
		// Through an engine the creation can take 15 s or more.
		per := 5 * time.Second
		if c.client != "" {
			per = 20 * time.Second
		}
		cctx, cancel := context.WithTimeout(ctx, per)
		_, err := cl.GetOrCreate("counter", rivet.Key{"ready"}).Call(cctx, "getCount")
		cancel()
		if err == nil {
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready on %s after %v: %v (log: %s)", c.kind, c.endpoint(), wait, last, c.log.Name())
}

// envWithoutRivet is this process's environment without RIVET_* variables
// (the engine reads RIVET__* as config overrides; a runner would take a
// developer's RIVET_ENDPOINT or RIVET_TOKEN).
func envWithoutRivet() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RIVET_") {
			env = append(env, kv)
		}
	}
	return env
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// pids is the process and all its descendants (RivetKit's engine runs in
// a process group of its own, so a group kill would miss it).
func (c *child) pids() []int {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		kids[ppid] = append(kids[ppid], pid)
	}
	out := []int{c.cmd.Process.Pid}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// rssMiB sums VmRSS over the process tree.
func (c *child) rssMiB() float64 {
	var t float64
	for _, p := range c.pids() {
		t += procRSSMiB(p)
	}
	return t
}

// kill sends SIGKILL to the whole tree at once (a crash) and waits for
// the main process.
func (c *child) kill() {
	pids := c.pids()
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	c.reap(pids)
}

// stop asks for a graceful shutdown (SIGTERM) and kills what is left
// after 30 s.
func (c *child) stop() error {
	if c.cmd == nil {
		return nil
	}
	pids := c.pids()
	_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	c.reap(pids)
	return nil
}

// reap waits for the main process and until every pid of the tree is gone
// (the engine must release its data directory before a restart).
func (c *child) reap(pids []int) {
	if c.done != nil {
		<-c.done
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for time.Now().Before(deadline) && syscall.Kill(p, 0) == nil && !zombie(p) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if c.log != nil {
		_ = c.log.Close()
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// procRSSMiB reads VmRSS of one process from /proc.
func procRSSMiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// newClient returns a load-generator client for the endpoint. noDelay
// false turns Nagle's algorithm back on for every socket it dials (Go
// sets TCP_NODELAY by default).
func newClient(endpoint, enc string, noDelay bool) *rivetclient.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil && !noDelay {
			_ = c.(*net.TCPConn).SetNoDelay(false)
		}
		return c, err
	}}
	return rivetclient.New(endpoint, rivetclient.WithEncoding(enc), rivetclient.WithHTTPClient(&http.Client{Transport: tr}))
}

// baselineServeMain is `bench baseline-serve -listen ADDR`: the baseline as
// a process of its own, so that it pays the same process boundary as
// `rivet serve` and RivetKit.
func baselineServeMain(args []string) error {
	fs := flag.NewFlagSet("baseline-serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:6420", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return http.ListenAndServe(*listen, newBaseline())
}
