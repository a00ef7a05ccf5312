// Package enginetest starts the Rivet Engine (rivet-engine 2.3.19) for
// tests: one node on a private file store, or several nodes sharing a fresh
// PostgreSQL database and NATS.
//
// The binary comes from RIVET_ENGINE_BIN, else from the npm directory next
// to this file (internal/enginetest/npm, pinned by its package-lock.json;
// `make engine` installs it). When neither exists Start skips the test, or
// fails it when CI is set: CI must run the engine tests.
//
// Each engine gets free loopback ports for guard (the client endpoint and
// the public API), api_peer and metrics, telemetry off, and its log in a
// file under t.TempDir(), whose tail is printed when the test fails. It is
// stopped (its whole process group) when the test ends. A node starts in
// about half a second on this machine; Start waits for GET /health on the
// guard port, for the default namespace to exist and for the datacenter's
// epoxy replica to be active (only then do writes such as runner configs
// succeed).
package enginetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rivetgo/rivet/internal/pgtest"
)

// Version is the engine version the npm directory pins; GET /health
// reports it.
const Version = "2.3.19"

// Options configure an engine node. The zero value is one node on its own
// file store.
type Options struct {
	// PostgresURL stores the engine's data in PostgreSQL instead of a file
	// store; nodes given the same URL form one cluster. Use FreshDatabase
	// for a database of the test's own. NATS is then required.
	PostgresURL string
	// NATS lists NATS server addresses (host:port) for the engine's pub/sub
	// between nodes; only used with PostgresURL.
	NATS []string
	// StartTimeout bounds the wait for readiness; default 60s.
	StartTimeout time.Duration
	// Pegboard sets fields of the engine's "pegboard" config section
	// (actor and runner thresholds, in milliseconds), e.g.
	// envoy_ping_timeout and envoy_lost_threshold to make a killed runner's
	// actors move sooner in crash tests. Unknown fields make the engine
	// refuse to start.
	Pegboard map[string]any
}

// Engine is one running rivet-engine process. Its methods are safe for
// concurrent use.
type Engine struct {
	t        testing.TB
	bin      string
	dir      string // config, log and file store live here
	config   string
	logPath  string
	guard    int
	apiPeer  int
	metrics  int
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	waitErr  error
	stopping bool
}

// Binary returns the path of the rivet-engine binary: RIVET_ENGINE_BIN,
// else the one `make engine` installed under internal/enginetest/npm. It
// returns an error naming both places when neither exists.
func Binary() (string, error) {
	if p := os.Getenv("RIVET_ENGINE_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("enginetest: RIVET_ENGINE_BIN: %w", err)
		}
		return p, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("enginetest: cannot locate the package directory")
	}
	plat, err := platformPackage()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(file), "npm", "node_modules", "@rivetkit", plat, "rivet-engine")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("enginetest: rivet-engine not installed (run `make engine`, or set RIVET_ENGINE_BIN): %w", err)
	}
	return p, nil
}

// platformPackage names the @rivetkit/engine-cli platform package for this
// host, as engine-cli's own resolver does (Linux builds are static musl).
func platformPackage() (string, error) {
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64":
		return "engine-cli-linux-x64-musl", nil
	case "linux/arm64":
		return "engine-cli-linux-arm64-musl", nil
	case "darwin/amd64":
		return "engine-cli-darwin-x64", nil
	case "darwin/arm64":
		return "engine-cli-darwin-arm64", nil
	}
	return "", fmt.Errorf("enginetest: no rivet-engine build for %s/%s", runtime.GOOS, runtime.GOARCH)
}

// skipOrFail skips the test, or fails it when CI is set.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set, so this is a failure)", args...)
	}
	t.Skipf(format, args...)
}

// Start starts one engine node and waits until it answers /health. The
// node is stopped when the test ends.
func Start(t testing.TB, opts Options) *Engine {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		skipOrFail(t, "%v", err)
	}
	if opts.PostgresURL != "" && len(opts.NATS) == 0 {
		t.Fatal("enginetest: Options.PostgresURL needs Options.NATS")
	}
	e := &Engine{t: t, bin: bin, dir: t.TempDir()}
	ports := freePorts(t, 3)
	e.guard, e.apiPeer, e.metrics = ports[0], ports[1], ports[2]
	e.config = filepath.Join(e.dir, "config.json")
	e.logPath = filepath.Join(e.dir, "engine.log")
	cfg, err := json.MarshalIndent(e.configJSON(opts), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			e.printLog()
		}
	})
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if err := e.launch(timeout); err != nil {
		t.Fatalf("enginetest: %v", err)
	}
	return e
}

// configJSON is the engine's config file (engine/packages/config in
// rivet-dev/rivet): the database and pub/sub sections are externally tagged
// enums flattened into the root, so the key names the driver.
func (e *Engine) configJSON(opts Options) map[string]any {
	listen := func(port int) map[string]any { return map[string]any{"host": "127.0.0.1", "port": port} }
	cfg := map[string]any{
		"guard":     listen(e.guard),
		"api_peer":  listen(e.apiPeer),
		"metrics":   listen(e.metrics),
		"telemetry": map[string]any{"enabled": false},
		// The default topology points at the default ports (6420/6421);
		// the engine forwards some API calls to its datacenter's peer_url.
		"topology": map[string]any{
			"datacenter_label": 1,
			"datacenters": map[string]any{"default": map[string]any{
				"datacenter_label": 1,
				"is_leader":        true,
				"public_url":       e.GuardURL(),
				"peer_url":         e.PeerURL(),
			}},
		},
	}
	// The engine's workflow worker admits fewer workflows as host CPU use
	// rises (down to 5% above 90% use, runtime.worker_load_shedding_curve);
	// on a loaded test machine a fresh engine then stopped creating actors
	// after about nine (PUT /actors and namespace creation hung, even with
	// no runner). A flat curve (candidate hashes are 0..999) admits all.
	cfg["runtime"] = map[string]any{"worker_load_shedding_curve": [][2]int{{0, 1000}, {1000, 999}}}
	if opts.PostgresURL != "" {
		nats := map[string]any{"addresses": opts.NATS}
		cfg["postgres"] = map[string]any{"url": opts.PostgresURL, "nats": nats}
		cfg["nats"] = nats
	} else {
		cfg["file_system"] = map[string]any{"path": filepath.Join(e.dir, "db")}
	}
	if len(opts.Pegboard) > 0 {
		cfg["pegboard"] = opts.Pegboard
	}
	return cfg
}

// launch starts the process and waits for /health.
func (e *Engine) launch(timeout time.Duration) error {
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.bin, "start", "--config", e.config)
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so cleanup reaches anything it spawns.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The engine reads RIVET__* variables as config overrides; a
	// developer's own must not leak into the test.
	cmd.Env = filteredEnv()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", e.bin, err)
	}
	exited := make(chan struct{})
	e.mu.Lock()
	e.cmd, e.exited, e.stopping = cmd, exited, false
	e.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		e.mu.Lock()
		e.waitErr = err
		e.mu.Unlock()
		close(exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if e.ready(ctx, client) {
			e.t.Logf("enginetest: rivet-engine ready in %v at %s (log %s)", time.Since(start).Round(time.Millisecond), e.GuardURL(), e.logPath)
			return nil
		}
		select {
		case <-exited:
			e.mu.Lock()
			werr := e.waitErr
			e.mu.Unlock()
			return fmt.Errorf("rivet-engine exited before it was ready: %v (log %s)", werr, e.logPath)
		case <-ctx.Done():
			e.stop()
			return fmt.Errorf("rivet-engine not ready after %v (log %s)", timeout, e.logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ready reports whether the engine answers GET /health, lists the default
// namespace and has an active epoxy replica. /health answers before the
// bootstrap workflow has created the namespace (a few hundred ms on a fresh
// store), and before the epoxy coordinator has configured this
// datacenter's replica; until then writes that go through epoxy (a runner
// config upsert, for one) fail with 500 "replica 1 has not been configured
// yet".
func (e *Engine) ready(ctx context.Context, client *http.Client) bool {
	get := func(path string) []byte {
		base := e.GuardURL()
		if strings.HasPrefix(path, "/epoxy/") {
			base = e.PeerURL()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil
		}
		return b
	}
	if get("/health") == nil {
		return false
	}
	var l struct {
		Namespaces []struct {
			Name string `json:"name"`
		} `json:"namespaces"`
	}
	b := get("/namespaces?name=default")
	if b == nil || json.Unmarshal(b, &l) != nil || len(l.Namespaces) != 1 || l.Namespaces[0].Name != "default" {
		return false
	}
	var st struct {
		Config struct {
			Replicas []struct {
				Status string `json:"status"`
			} `json:"replicas"`
		} `json:"config"`
	}
	b = get("/epoxy/coordinator/state")
	if b == nil || json.Unmarshal(b, &st) != nil {
		return false
	}
	for _, r := range st.Config.Replicas {
		if r.Status != "Active" {
			return false
		}
	}
	return len(st.Config.Replicas) > 0
}

func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RIVET__") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// GuardURL is the engine's client endpoint (RivetKit's `endpoint`): the
// gateway to actors and the public API.
func (e *Engine) GuardURL() string { return "http://127.0.0.1:" + strconv.Itoa(e.guard) }

// PeerURL is the engine's internal api_peer endpoint.
func (e *Engine) PeerURL() string { return "http://127.0.0.1:" + strconv.Itoa(e.apiPeer) }

// MetricsURL is the engine's Prometheus endpoint.
func (e *Engine) MetricsURL() string { return "http://127.0.0.1:" + strconv.Itoa(e.metrics) }

// LogPath is the file holding the engine's stdout and stderr.
func (e *Engine) LogPath() string { return e.logPath }

// Kill9 kills the engine with SIGKILL (its whole process group) and waits
// for it to exit: a crash, for crash tests. Restart brings it back on the
// same ports and the same store.
func (e *Engine) Kill9() {
	e.t.Helper()
	e.signal(syscall.SIGKILL)
	<-e.exitedChan()
}

// Restart starts the engine again after Kill9 or a crash, with the same
// config, ports and store, and waits for it to be ready.
func (e *Engine) Restart() {
	e.t.Helper()
	select {
	case <-e.exitedChan():
	default:
		e.t.Fatal("enginetest: Restart while the engine is running")
	}
	if err := e.launch(60 * time.Second); err != nil {
		e.t.Fatalf("enginetest: restart: %v", err)
	}
}

func (e *Engine) exitedChan() chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exited
}

func (e *Engine) signal(sig syscall.Signal) {
	e.mu.Lock()
	cmd := e.cmd
	e.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after 5s (the engine
// drains for about a second on SIGTERM).
func (e *Engine) stop() {
	e.mu.Lock()
	if e.cmd == nil || e.stopping {
		e.mu.Unlock()
		return
	}
	e.stopping = true
	exited := e.exited
	e.mu.Unlock()
	select {
	case <-exited:
		return
	default:
	}
	e.signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		e.signal(syscall.SIGKILL)
		<-exited
	}
	// A SIGKILL of the leader leaves nothing behind, but a child it
	// spawned could outlive a graceful exit; the group is gone either way.
	e.signal(syscall.SIGKILL)
}

// printLog prints the tail of the engine's log.
func (e *Engine) printLog() {
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		e.t.Logf("enginetest: read log: %v", err)
		return
	}
	const limit = 32 << 10
	if len(b) > limit {
		b = b[len(b)-limit:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	e.t.Logf("enginetest: last lines of %s:\n%s", e.logPath, b)
}

// freePorts reserves n distinct free loopback ports. They are released
// before the engine binds them; another process could take one in
// between, which would make the engine exit and Start fail clearly.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// Do sends one JSON request to base+path (base is GuardURL or PeerURL),
// decodes a 2xx JSON answer into out (if not nil) and returns an error
// carrying the status and body otherwise.
func Do(ctx context.Context, method, base, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode %q: %w", method, path, b, err)
		}
	}
	return nil
}

// CreateNamespace creates a namespace through the public API, so tests
// sharing an engine can keep their actors apart.
func (e *Engine) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	in := map[string]string{"name": name, "display_name": name}
	if err := Do(context.Background(), http.MethodPost, e.GuardURL(), "/namespaces", in, nil); err != nil {
		t.Fatalf("enginetest: %v", err)
	}
}

// EnsureRunnerConfig creates or updates the runner config of pool in
// namespace as a "normal" (long-running, not serverless) pool in the
// default datacenter. The engine refuses runners of a pool without one.
func (e *Engine) EnsureRunnerConfig(t testing.TB, namespace, pool string) {
	t.Helper()
	in := map[string]any{"datacenters": map[string]any{"default": map[string]any{"normal": map[string]any{}}}}
	path := "/runner-configs/" + url.PathEscape(pool) + "?namespace=" + url.QueryEscape(namespace)
	if err := Do(context.Background(), http.MethodPut, e.GuardURL(), path, in, nil); err != nil {
		t.Fatalf("enginetest: %v", err)
	}
}

// PostgresURL returns the URL of the PostgreSQL server for tests
// (RIVET_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test)
// after checking it answers; it skips the test when it does not, or fails
// it when CI is set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return pgtest.URL(t)
}

// NATS returns the NATS address for tests (RIVET_TEST_NATS, default
// 127.0.0.1:4222) after checking it accepts a connection; it skips the
// test when it does not, or fails it when CI is set.
func NATS(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("RIVET_TEST_NATS")
	if addr == "" {
		addr = "127.0.0.1:4222"
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		skipOrFail(t, "NATS unreachable (set RIVET_TEST_NATS): %v", err)
	}
	_ = c.Close()
	return addr
}

// FreshDatabase creates a database with a unique name on the test
// PostgreSQL server and returns its URL (TLS off: the engine's client
// refuses the local server's self-signed certificate). The database is
// dropped, forcibly, when the test ends, after the engines using it have
// stopped.
func FreshDatabase(t testing.TB) string {
	t.Helper()
	admin := PostgresURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "rivet_engine_test_" + hex.EncodeToString(b[:])
	run := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, sql)
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := run("CREATE DATABASE " + ident); err != nil {
		t.Fatalf("enginetest: create database: %v", err)
	}
	// Registered before any Start, so it runs after the engines stop.
	t.Cleanup(func() {
		if err := run("DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)"); err != nil {
			t.Errorf("enginetest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("enginetest: RIVET_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// StartCluster starts n engine nodes sharing a fresh PostgreSQL database and
// NATS, one after the other (the first one runs the database migrations).
// It skips the test when PostgreSQL or NATS is unreachable and CI is unset.
func StartCluster(t testing.TB, n int, opts Options) []*Engine {
	t.Helper()
	nats := NATS(t)
	opts.PostgresURL = FreshDatabase(t)
	opts.NATS = []string{nats}
	nodes := make([]*Engine, n)
	for i := range nodes {
		nodes[i] = Start(t, opts)
	}
	return nodes
}
