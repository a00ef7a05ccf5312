package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDemoPersistsAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 2; i++ {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"demo", "-data", dir}, &out); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		want := []string{fmt.Sprintf("count is now %d", i), fmt.Sprintf("after restart: counter[demo] = %d", i), fmt.Sprintf("chatRoom[lobby] has %d message", i)}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Fatalf("run %d output lacks %q:\n%s", i, w, out.String())
			}
		}
	}
}

// syncBuffer is an output buffer a test can wait on while run writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output matches re and returns the first group.
func (b *syncBuffer) waitFor(t *testing.T, re *regexp.Regexp, done <-chan error) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, b.String())
		case <-deadline:
			t.Fatalf("no %v in output:\n%s", re, b.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startServe runs "rivet serve args…" in-process and returns its URL.
func startServe(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, args...), out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return out.waitFor(t, regexp.MustCompile(`endpoint\s+(http://\S+)`), done), out
}

func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	return out.String(), err
}

func TestServeAndActorsCommands(t *testing.T) {
	t.Setenv("RIVET_ADMIN_TOKEN", "")
	url, out := startServe(t, "--example", "demo", "--log-level", "error")
	for _, want := range []string{`serving "demo" (chatRoom, counter)`, "store      embedded, ", "inspector  " + url + "/ui/", "metrics    " + url + "/metrics"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("startup output lacks %q:\n%s", want, out.String())
		}
	}
	// Create an actor the way a client would, with one increment.
	resp, err := http.Post(url+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=default&rvt-key=demo",
		"application/json", strings.NewReader(`{"args":[5]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("increment: %s", resp.Status)
	}

	ls, err := cli(t, "actors", "ls", "--server", url)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^([0-9a-z]+)\s+counter\s+demo\s`).FindStringSubmatch(ls)
	if m == nil {
		t.Fatalf("ls output:\n%s", ls)
	}
	id := m[1]
	got, err := cli(t, "actors", "get", "--server", url, "--name", "counter", "--key", "demo")
	if err != nil || !strings.Contains(got, id) {
		t.Fatalf("get by key: %v\n%s", err, got)
	}
	got, err = cli(t, "actors", "get", id, "--server", url, "--json")
	if err != nil || !strings.Contains(got, `"actor_id":"`+id+`"`) {
		t.Fatalf("get --json: %v\n%s", err, got)
	}
	got, err = cli(t, "actors", "state", id, "--server", url)
	if err != nil || !regexp.MustCompile(`"count":\s*5`).MatchString(got) {
		t.Fatalf("state: %v\n%s", err, got)
	}
	if _, err := cli(t, "actors", "state", id, "--server", url, "--set", `{"count": 41}`); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(url+"/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=demo",
		"application/json", strings.NewReader(`{"args":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), "42") {
		t.Fatalf("increment after --set: %s", body.String())
	}
	if _, err := cli(t, "actors", "state", id, "--server", url, "--set", `{"count": "many"}`); err == nil {
		t.Fatal("a state of the wrong type was accepted")
	}
	if _, err := cli(t, "actors", "destroy", id, "--server", url); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "actors", "get", id, "--server", url); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get after destroy: %v", err)
	}
}

func TestServeWithConfigFile(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "rivet.yaml")
	if err := os.WriteFile(cfg, []byte("log_level: error\nadmin_token: tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, out := startServe(t, "--config", cfg, "--pprof", "127.0.0.1:0")
	if !strings.Contains(out.String(), "inspector  "+url+"/ui/ (admin token required)") {
		t.Fatalf("the config file's admin token is not in effect:\n%s", out.String())
	}
	prof := regexp.MustCompile(`profiler at (http://\S+)`).FindStringSubmatch(out.String())
	if prof == nil {
		t.Fatalf("no profiler line:\n%s", out.String())
	}
	resp, err := http.Get(prof[1] + "goroutine?debug=1")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("profiler: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, err := cli(t, "actors", "state", "nope", "--server", url, "--token", "wrong"); err == nil || !strings.Contains(err.Error(), "auth.") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestCommandLineMistakes(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + free.Addr().String()
	free.Close()
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badConfig, []byte("listn: :1\n"), 0o600)
	os.WriteFile(badConfig+".toml", []byte("listen = 1\n"), 0o600)
	for _, tc := range []struct {
		args  []string
		want  string
		usage bool
	}{
		{[]string{"nope"}, `unknown command "nope"`, true},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus", true},
		{[]string{"serve", "--example", "nope"}, `unknown example "nope"`, true},
		{[]string{"serve", "--log-level", "loud"}, "log_level", true},
		{[]string{"serve", "--listen", "nowhere"}, "want host:port", true},
		{[]string{"serve", "--config", badConfig}, `did you mean "listen"`, false},
		{[]string{"serve", "--pprof", "0.0.0.0:6060"}, "only listen on loopback", true},
		{[]string{"actors"}, "missing command", true},
		{[]string{"actors", "frob"}, `unknown command "frob"`, true},
		{[]string{"actors", "get"}, "give an actor ID", true},
		{[]string{"actors", "ls", "--server", dead}, "cannot reach the server at " + dead, false},
		{[]string{"actors", "ls", "--server", "ftp://x"}, "bad server URL", true},
		{[]string{"migrate"}, "no database", true},
		{[]string{"serve", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, "config file: open ", false},
		{[]string{"serve", "--config", badConfig + ".toml"}, "want a .json, .yaml or .yml file", false},
		{[]string{"help", "nope"}, `unknown command "nope"`, true},
	} {
		t.Setenv("RIVET_POSTGRES_URL", "")
		_, err := cli(t, tc.args...)
		var stderr bytes.Buffer
		code := report(&stderr, err)
		line := stderr.String()
		if err == nil || !strings.Contains(line, tc.want) || strings.Count(line, "\n") != 1 ||
			!strings.HasPrefix(line, "rivet: ") || strings.Contains(line, "rivet: rivet:") {
			t.Errorf("%q: printed %q, want one line \"rivet: ...\" containing %q", tc.args, line, tc.want)
			continue
		}
		if want := map[bool]int{true: 2, false: 1}[tc.usage]; code != want {
			t.Errorf("%q: exit status %d, want %d", tc.args, code, want)
		}
	}
	// The library's errors start with "rivet: "; it is printed once, also
	// inside joined errors.
	var stderr bytes.Buffer
	report(&stderr, errors.Join(errors.New("rivet: environment X=1: bad"), errors.New("rivet: stop: late")))
	if got, want := stderr.String(), "rivet: environment X=1: bad; stop: late\n"; got != want {
		t.Errorf("report printed %q, want %q", got, want)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"serve", "--help"}, {"actors", "--help"}, {"actors", "ls", "-h"}, {"migrate", "--help"}, {"help", "migrate"}} {
		out, err := cli(t, args...)
		if err != nil || !strings.Contains(out, "Usage") && !strings.Contains(out, "usage") {
			t.Errorf("%q: %v\n%s", args, err, out)
		}
	}
	// rivet --help and -h list the commands, as rivet help does, not
	// serve's flags.
	list, _ := cli(t, "help")
	for _, cmd := range []string{"serve", "actors ls", "actors get", "actors state", "actors destroy", "migrate", "demo", "version", "help"} {
		if !strings.Contains(list, "\n  rivet "+cmd+" ") && !strings.Contains(list, "\n  rivet ["+cmd+"] ") {
			t.Errorf("rivet help does not list %q:\n%s", cmd, list)
		}
	}
	for _, flag := range []string{"--help", "-h", "-help"} {
		if out, err := cli(t, flag); err != nil || out != list {
			t.Errorf("rivet %s: %v\n%s\nwant the command list:\n%s", flag, err, out, list)
		}
	}
	if out, _ := cli(t, "help", "serve"); !strings.Contains(out, "--listen") {
		t.Errorf("rivet help serve does not show serve's flags:\n%s", out)
	}
	out, _ := cli(t, "version")
	if !strings.HasPrefix(out, "rivet "+version) {
		t.Errorf("version: %q", out)
	}
}

// The binary's exit status and standard error, as a shell sees them.
func TestExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "rivet")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"version"}, 0}, {[]string{"nope"}, 2}, {[]string{"actors", "ls", "--server", "http://127.0.0.1:1"}, 1}} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, tc.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != tc.code || (code != 0 && strings.Count(stderr.String(), "\n") != 1) {
			t.Errorf("%q: exit %d (want %d), stderr %q", tc.args, code, tc.code, stderr.String())
		}
	}
}
