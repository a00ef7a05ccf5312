package enginetest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rivetgo/rivet/internal/enginetest"
)

// TestCaptureRunnerFrames records what RivetKit 2.3.19's runner (its Rust
// envoy client, through rivetkit-napi) and the engine say to each other:
// testdata/capture/runner.mjs runs a registry whose RIVET_ENDPOINT is a
// recording proxy in front of the engine, and drives it with the official
// client: first action, KV, raw HTTP, a WebSocket connection with an
// event, a raw WebSocket, an alarm, sleep with a connection kept open and
// a wake through that hibernated socket, destroy by the actor, destroy
// through the API, and a graceful runner shutdown. Every WebSocket message of
// the runner connection is written, with its hex bytes, its direction and
// the scenario step, to testdata/frames/session.jsonl and decoded there by
// the npm package @rivetkit/engine-envoy-protocol itself
// (testdata/capture/decode.mjs), which makes the file golden data for the
// Go codec.
//
// It runs only when RIVET_CAPTURE_NODE_DIR names a directory where
// rivetkit 2.3.19 is installed (e.g. a copy of bench/peer after npm
// install); RIVET_CAPTURE_OUT overrides the output directory.
func TestCaptureRunnerFrames(t *testing.T) {
	c := newCapture(t, enginetest.Options{})
	p := c.runNode("runner.mjs", "")
	if err := p.wait(); err != nil {
		t.Fatalf("runner.mjs: %v\n%s", err, p.output())
	}
	t.Logf("runner.mjs output:\n%s", p.output())
	c.write("session.jsonl")
}

// TestCaptureRunnerLost records what happens when a runner dies: runner A
// (testdata/capture/lost.mjs, role hold) serves an actor and is killed
// with SIGKILL; runner B (role takeover) calls the actor until it answers
// again, with its state, from B. The engine's lost thresholds are cut to
// 4 s to keep it short. Frames go to testdata/frames/lost.jsonl; the
// takeover time is logged. Same environment variables as
// TestCaptureRunnerFrames.
func TestCaptureRunnerLost(t *testing.T) {
	c := newCapture(t, enginetest.Options{Pegboard: map[string]any{
		"envoy_ping_timeout":   4000,
		"envoy_lost_threshold": 4000,
	}})
	a := c.runNode("lost.mjs", "hold")
	if !a.waitLine("ready", time.Minute) {
		t.Fatalf("runner A never got ready:\n%s", a.output())
	}
	c.rec.setStep("kill-a")
	killed := time.Now()
	a.kill9()
	_ = a.wait()
	c.rec.setStep("takeover")
	b := c.runNode("lost.mjs", "takeover")
	if err := b.wait(); err != nil {
		t.Fatalf("runner B: %v\n%s", err, b.output())
	}
	t.Logf("actor answered from runner B %v after runner A was killed\nA:\n%s\nB:\n%s",
		time.Since(killed).Round(10*time.Millisecond), a.output(), b.output())
	c.write("lost.jsonl")
}

// TestCaptureRunnerReconnect records a runner whose socket to the engine is
// cut (no close frame, as a network failure) while it holds an actor: the
// runner reconnects with the same envoy key, and the actor keeps serving
// from it. Frames go to testdata/frames/reconnect.jsonl.
func TestCaptureRunnerReconnect(t *testing.T) {
	c := newCapture(t, enginetest.Options{})
	p := c.runNode("reconnect.mjs", "")
	if !p.waitLine("ready", time.Minute) {
		t.Fatalf("runner never got ready:\n%s", p.output())
	}
	c.rec.setStep("cut")
	c.rec.cutRunnerSockets()
	if _, err := p.stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("reconnect.mjs: %v\n%s", err, p.output())
	}
	t.Logf("reconnect.mjs output:\n%s", p.output())
	c.write("reconnect.jsonl")
}

// capture is one engine, a recording proxy in front of it, and the node
// directory the scenarios run in.
type capture struct {
	t       *testing.T
	nodeDir string
	out     string
	engine  *enginetest.Engine
	rec     *recorder
	proxy   string
	ctx     context.Context
}

// newCapture skips unless RIVET_CAPTURE_NODE_DIR is set, copies the
// scenario scripts there, and starts the engine and the proxy.
func newCapture(t *testing.T, opts enginetest.Options) *capture {
	nodeDir := os.Getenv("RIVET_CAPTURE_NODE_DIR")
	if nodeDir == "" {
		t.Skip("set RIVET_CAPTURE_NODE_DIR to a directory with rivetkit 2.3.19 installed to record runner frames")
	}
	out := os.Getenv("RIVET_CAPTURE_OUT")
	if out == "" {
		out = filepath.Join("testdata", "frames")
	}
	for _, f := range []string{"runner.mjs", "lost.mjs", "reconnect.mjs", "decode.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "capture", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(nodeDir, "rivetgo-capture-"+f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := enginetest.Start(t, opts)
	e.EnsureRunnerConfig(t, "default", "default")
	rec := &recorder{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &capture{t: t, nodeDir: nodeDir, out: out, engine: e, rec: rec, proxy: startRecordingProxy(t, e.GuardURL(), rec), ctx: ctx}
}

// nodeProc is one scenario process; lines starting with "step " set the
// recorder's step.
type nodeProc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	lines   chan string
	scanned chan struct{}
	stderr  bytes.Buffer
	waited  sync.Once
	waitErr error
	stdin   io.WriteCloser
}

func (c *capture) runNode(script, role string) *nodeProc {
	t := c.t
	cmd := exec.CommandContext(c.ctx, "node", "rivetgo-capture-"+script)
	cmd.Dir = c.nodeDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = append(os.Environ(),
		"HOME="+t.TempDir(),
		"RIVET_ENDPOINT="+c.proxy,
		"RIVET_NAMESPACE=default",
		"RIVET_POOL=default",
		"RIVET_ENVOY_VERSION=1",
		"RIVET_RUN_ENGINE=0",
		"RIVET_RUN_SERVICES=0",
		// The official client goes through the proxy too, so its requests
		// to the engine (paths, x-rivet-* headers, gateway sockets) are
		// recorded beside the runner's.
		"CLIENT_ENDPOINT="+c.proxy,
		"ROLE="+role,
	)
	p := &nodeProc{cmd: cmd, lines: make(chan string, 1000), scanned: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill9()
		_ = p.wait()
	})
	go func() {
		defer close(p.scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if name, ok := strings.CutPrefix(line, "step "); ok {
				c.rec.setStep(name)
			}
			select {
			case p.lines <- line:
			default:
			}
		}
	}()
	return p
}

func (p *nodeProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String() + "stderr (tail):\n" + string(tail(p.stderr.Bytes(), 4000))
}

// waitLine waits for a stdout line equal to want.
func (p *nodeProc) waitLine(want string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case l := <-p.lines:
			if l == want {
				return true
			}
		case <-p.scanned:
			return false
		case <-deadline:
			return false
		}
	}
}

// wait waits for the process to exit (once; later calls return the same
// error) and kills what is left of its group.
func (p *nodeProc) wait() error {
	p.waited.Do(func() {
		<-p.scanned
		p.waitErr = p.cmd.Wait()
		p.kill9()
	})
	return p.waitErr
}

func (p *nodeProc) kill9() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// write decodes the recording with the npm package and writes it to
// c.out/name.
func (c *capture) write(name string) {
	t := c.t
	dec := exec.CommandContext(c.ctx, "node", "rivetgo-capture-decode.mjs")
	dec.Dir = c.nodeDir
	dec.Stdin = bytes.NewReader(c.rec.jsonl(t))
	decoded, err := dec.Output()
	if err != nil {
		t.Fatalf("decode.mjs: %v", err)
	}
	decoded = trimLarge(t, decoded)
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(c.out, name)
	if err := os.WriteFile(path, decoded, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d records to %s", bytes.Count(decoded, []byte("\n")), path)
	if bytes.Contains(decoded, []byte(`"decode_error"`)) {
		t.Errorf("some frames did not decode with the npm package; see decode_error in %s", path)
	}
}

// maxGoldenFrame bounds the frames kept whole in session.jsonl: RivetKit's
// SQLite page traffic (8 KiB pages; rivetgo's runner does not use it)
// would otherwise make the file a megabyte.
const maxGoldenFrame = 4 << 10

// trimLarge replaces the bytes and decoding of frames larger than
// maxGoldenFrame by their size and message tag.
func trimLarge(t *testing.T, jsonl []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(jsonl), []byte("\n")) {
		var f map[string]any
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("decode.mjs output %q: %v", line, err)
		}
		if h, ok := f["hex"].(string); ok && len(h)/2 > maxGoldenFrame {
			if d, ok := f["decoded"].(map[string]any); ok {
				f["tag"] = d["tag"]
			}
			f["size"] = len(h) / 2
			f["omitted"] = true
			delete(f, "hex")
			delete(f, "decoded")
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			line = b
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// record is one line of session.jsonl before decoding.
type record struct {
	Seq       int    `json:"seq"`
	Ms        int64  `json:"ms"`
	Step      string `json:"step"`
	Kind      string `json:"kind"`           // ws_open, frame (runner socket), client_frame (a client's gateway socket), ws_close, http
	Conn      int    `json:"conn,omitempty"` // runner connection number
	Dir       string `json:"dir,omitempty"`  // to_rivet (runner -> engine), to_envoy; from_client, to_client
	Hex       string `json:"hex,omitempty"`
	Text      string `json:"text,omitempty"` // a text frame, which the protocol does not use
	URL       string `json:"url,omitempty"`
	Protocols string `json:"protocols,omitempty"`
	Method    string `json:"method,omitempty"`
	Status    int    `json:"status,omitempty"`
	Code      int    `json:"code,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Headers holds a request's x-rivet-* headers (tokens redacted).
	Headers map[string]string `json:"headers,omitempty"`
}

// rivetHeaders returns h's x-rivet-* headers, tokens redacted.
func rivetHeaders(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		k = strings.ToLower(k)
		if !strings.HasPrefix(k, "x-rivet-") {
			continue
		}
		if strings.Contains(k, "token") {
			m[k] = "<redacted>"
		} else {
			m[k] = strings.Join(v, ", ")
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

type recorder struct {
	start time.Time
	mu    sync.Mutex
	step  string
	conns int
	recs  []record
	// cut closes the TCP connections of the runner sockets relayed so far,
	// without a close handshake.
	cuts []func()
}

// cutRunnerSockets drops every runner socket the proxy relays, on both
// sides, as a network failure would.
func (r *recorder) cutRunnerSockets() {
	r.mu.Lock()
	cuts := r.cuts
	r.cuts = nil
	r.mu.Unlock()
	for _, cut := range cuts {
		cut()
	}
}

func (r *recorder) setStep(s string) {
	r.mu.Lock()
	r.step = s
	r.mu.Unlock()
}

func (r *recorder) add(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.Seq = len(r.recs) + 1
	rec.Ms = time.Since(r.start).Milliseconds()
	rec.Step = r.step
	r.recs = append(r.recs, rec)
}

func (r *recorder) newConn() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns++
	return r.conns
}

func (r *recorder) jsonl(t *testing.T) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, rec := range r.recs {
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// startRecordingProxy serves a proxy to upstream on a loopback port:
// WebSocket upgrades are relayed message by message (and recorded), other
// requests pass through a reverse proxy (and are logged).
func startRecordingProxy(t *testing.T, upstream string, rec *recorder) string {
	up, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	rp.ModifyResponse = func(resp *http.Response) error {
		rec.add(record{Kind: "http", Method: resp.Request.Method, URL: resp.Request.URL.RequestURI(), Status: resp.StatusCode, Headers: rivetHeaders(resp.Request.Header)})
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			rp.ServeHTTP(w, r)
			return
		}
		wg.Add(1)
		defer wg.Done()
		relayWebSocket(ctx, t, w, r, upstream, rec)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	return "http://" + l.Addr().String()
}

func relayWebSocket(ctx context.Context, t *testing.T, w http.ResponseWriter, r *http.Request, upstream string, rec *recorder) {
	var protocols []string
	for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			protocols = append(protocols, p)
		}
	}
	n := rec.newConn()
	redacted := make([]string, len(protocols))
	for i, p := range protocols {
		if strings.HasPrefix(p, "rivet_token.") {
			p = "rivet_token.<redacted>"
		}
		redacted[i] = p
	}
	rec.add(record{Kind: "ws_open", Conn: n, URL: r.URL.RequestURI(), Protocols: strings.Join(redacted, ", "), Headers: rivetHeaders(r.Header)})
	frameKind := "client_frame"
	if strings.HasPrefix(r.URL.Path, "/envoys/") {
		frameKind = "frame"
	}
	engine, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(upstream, "http")+r.URL.RequestURI(), &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		status := http.StatusBadGateway
		if resp != nil {
			status = resp.StatusCode
		}
		rec.add(record{Kind: "ws_close", Conn: n, Dir: "to_envoy", Reason: "dial: " + err.Error(), Status: status})
		http.Error(w, err.Error(), status)
		return
	}
	runner, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{engine.Subprotocol()}})
	if err != nil {
		_ = engine.CloseNow()
		return
	}
	engine.SetReadLimit(256 << 20)
	runner.SetReadLimit(256 << 20)
	if frameKind == "frame" {
		rec.mu.Lock()
		rec.cuts = append(rec.cuts, func() {
			_ = runner.CloseNow()
			_ = engine.CloseNow()
		})
		rec.mu.Unlock()
	}
	var wg sync.WaitGroup
	pump := func(from, to *websocket.Conn, dir string) {
		defer wg.Done()
		for {
			typ, data, err := from.Read(ctx)
			if err != nil {
				code, reason := int(websocket.CloseStatus(err)), ""
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					reason = ce.Reason
				}
				rec.add(record{Kind: "ws_close", Conn: n, Dir: dir, Code: code, Reason: reason})
				if code > 0 {
					_ = to.Close(websocket.StatusCode(code), reason)
				} else {
					_ = to.CloseNow()
				}
				return
			}
			fr := record{Kind: frameKind, Conn: n, Dir: dir}
			if typ == websocket.MessageBinary {
				fr.Hex = hex.EncodeToString(data)
			} else {
				fr.Text = string(data)
			}
			rec.add(fr)
			if err := to.Write(ctx, typ, data); err != nil {
				_ = from.CloseNow()
				return
			}
		}
	}
	wg.Add(2)
	up, down := "to_rivet", "to_envoy"
	if frameKind == "client_frame" {
		up, down = "from_client", "to_client"
	}
	go pump(runner, engine, up)
	go pump(engine, runner, down)
	wg.Wait()
}
