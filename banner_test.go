package rivet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
)

var greeter = rivet.NewActor("greeter", rivet.Opts[struct{}]{}).
	Action("hello", func(c *rivet.Ctx[struct{}], name string) string {
		c.Log.Info("said hello", "to", name)
		return "hello " + name
	})

// A program of your own that calls ListenAndServe: at the default log
// level it prints where it listens, its store and its inspector, and the
// actors' info lines; it stops on SIGTERM. The program is this test
// binary, run again as a child process.
func TestListenAndServeBanner(t *testing.T) {
	if os.Getenv("RIVET_TEST_BANNER_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := rivet.ListenAndServe(ctx, "127.0.0.1:0", rivet.MustRegistry(greeter), nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	t.Run("text", func(t *testing.T) {
		dir := t.TempDir()
		out := startProgram(t, dir)
		url := out.waitFor(t, regexp.MustCompile(`(?m)^  endpoint   (http://127\.0\.0\.1:\d+)$`))
		for _, want := range []string{
			"rivet " + rivet.Version + " serving greeter\n",
			"  store      embedded, " + dir + "\n",
			"  inspector  " + url + "/ui/ (loopback clients only",
			"  metrics    " + url + "/metrics\n",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("banner lacks %q:\n%s", want, out.String())
			}
		}
		callHello(t, url)
		out.waitFor(t, regexp.MustCompile(`(level=INFO msg="said hello" actor=greeter .*to=ada)`))
	})
	t.Run("json", func(t *testing.T) {
		out := startProgram(t, t.TempDir(), "LOG_FORMAT=json")
		line := out.waitFor(t, regexp.MustCompile(`(?m)^(\{.*"endpoint".*\})$`))
		var rec map[string]string
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("the banner is not one JSON record: %v\n%s", err, out.String())
		}
		if rec["level"] != "INFO" || rec["msg"] != "rivet "+rivet.Version+" serving greeter" ||
			!strings.HasPrefix(rec["store"], "embedded, ") || !strings.HasSuffix(rec["metrics"], "/metrics") {
			t.Fatalf("banner record %v", rec)
		}
		callHello(t, rec["endpoint"])
		out.waitFor(t, regexp.MustCompile(`("msg":"said hello")`))
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !json.Valid([]byte(l)) && !strings.HasPrefix(l, "PASS") && !strings.HasPrefix(l, "=== RUN") {
				t.Errorf("a line that is not JSON with LOG_FORMAT=json: %q", l)
			}
		}
	})
}

// childOutput collects a child's standard error (and output).
type childOutput struct {
	mu   sync.Mutex
	buf  strings.Builder
	done chan struct{}
}

func (o *childOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output matches re and returns its first group.
func (o *childOutput) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(o.String()); m != nil {
			return m[1]
		}
		select {
		case <-o.done:
			if m := re.FindStringSubmatch(o.String()); m != nil {
				return m[1]
			}
			t.Fatalf("the program ended without printing %v:\n%s", re, o.String())
		case <-deadline:
			t.Fatalf("no %v in the program's output:\n%s", re, o.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startProgram runs TestListenAndServeBanner's program with a clean
// environment plus env, and stops it with SIGTERM when the test ends.
func startProgram(t *testing.T, dataDir string, env ...string) *childOutput {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenAndServeBanner$", "-test.v=false")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOG_") && !strings.HasPrefix(kv, "RIVET_") && !strings.HasPrefix(kv, "PORT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append(env, "RIVET_TEST_BANNER_CHILD=1", "RIVET_DATA_DIR="+dataDir)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &childOutput{done: make(chan struct{})}
	go func() {
		defer close(out.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.mu.Lock()
			out.buf.WriteString(sc.Text() + "\n")
			out.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-out.done
		if err := cmd.Wait(); err != nil {
			t.Errorf("the program did not stop cleanly on SIGTERM: %v\n%s", err, out.String())
		}
	})
	return out
}

func callHello(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url+"/gateway/greeter/action/hello?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=k",
		"application/json", strings.NewReader(`{"args":["ada"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("hello: %s", resp.Status)
	}
}
