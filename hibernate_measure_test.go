package rivet_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestMeasureHibernatedConnections measures the server's memory per open
// connection whose actor sleeps (hibernatingConn) and per connection
// keeping its actor awake (connKeepsAwake, RivetKit's behaviour): one
// `rivet serve --example fixtures` process per case, N WebSocket
// connections from this process, one actor each, RSS from /proc and the Go
// heap from /metrics after a forced collection. It runs only when asked:
//
//	RIVET_MEASURE_HIBERNATION=10000 go test -run TestMeasureHibernatedConnections -v .
//
// The client spreads its connections over the source addresses
// 127.0.0.2-127.0.0.9 (one address has ~28,000 ephemeral ports), so
// 100,000 connections need only a higher file limit for both processes
// (each socket is a descriptor at both ends):
//
//	ulimit -n 250000
//	RIVET_MEASURE_HIBERNATION=100000 go test -timeout 60m -run TestMeasureHibernatedConnections -v .
func TestMeasureHibernatedConnections(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RIVET_MEASURE_HIBERNATION"))
	if n <= 0 {
		t.Skip("set RIVET_MEASURE_HIBERNATION=N (connections) to measure")
	}
	bin := filepath.Join(t.TempDir(), "rivet")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/rivet").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, actor := range []string{"hibernatingConn", "connKeepsAwake"} {
		measureConns(t, bin, actor, n)
	}
}

func measureConns(t *testing.T, bin, actor string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := l.Addr().String()
	l.Close()
	// pprof's heap endpoint with gc=1 runs a garbage collection: the heap
	// figures are live memory, not garbage awaiting collection.
	cmd := exec.Command(bin, "serve", "--example", "fixtures", "--listen", addr, "--data", t.TempDir(), "--pprof", pprofAddr)
	cmd.Env = append(os.Environ(), "RIVET_LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + addr
	var dials atomic.Uint32
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+dials.Add(1)%8))}
			return (&net.Dialer{LocalAddr: src}).DialContext(ctx, network, address)
		},
	}}
	defer hc.CloseIdleConnections()
	waitForT(t, func() bool {
		resp, err := hc.Get(base + "/metadata")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	rss := func() float64 { return procRSS(t, cmd.Process.Pid) }
	settle := func() {
		time.Sleep(5 * time.Second) // let the scavenger return freed pages
		if resp, err := hc.Get("http://" + pprofAddr + "/debug/pprof/heap?gc=1"); err == nil {
			resp.Body.Close()
		}
	}
	settle()
	before, heapBefore := rss(), scrapeMetric(hc, base, "go_memstats_heap_inuse_bytes")

	var mu sync.Mutex
	var socks []*websocket.Conn
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u := fmt.Sprintf("ws://%s/gateway/%s/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-crash-policy=sleep&rvt-key=%s", addr, actor, url.QueryEscape(fmt.Sprintf("m%d", i)))
			c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{"rivet", "rivet_encoding.json", "rivet_conn_params." + url.PathEscape(`{"name":"m"}`)}})
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := c.Read(ctx); err != nil { // Init
				t.Error(err)
				return
			}
			mu.Lock()
			socks = append(socks, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	connected := time.Since(start)
	if actor == "hibernatingConn" {
		waitForT(t, func() bool { return scrapeMetric(hc, base, "rivet_actors_awake") <= 0 })
	}
	settle()
	after, heapAfter := rss(), scrapeMetric(hc, base, "go_memstats_heap_inuse_bytes")
	awake := scrapeMetric(hc, base, "rivet_actors_awake")
	t.Logf("%s: %d connections (one actor each, connected in %s), actors awake %.0f: server RSS %.1f → %.1f MiB (%.2f KiB per connection), Go heap in use %.1f → %.1f MiB (%.2f KiB per connection)",
		actor, n, connected.Round(time.Millisecond), awake, before, after, (after-before)*1024/float64(n),
		heapBefore/(1<<20), heapAfter/(1<<20), (heapAfter-heapBefore)/1024/float64(n))
	for _, c := range socks {
		c.CloseNow()
	}
}

func procRSS(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func scrapeMetric(hc *http.Client, base, name string) float64 {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if n, _, _ := strings.Cut(f[0], "{"); n == name {
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

func waitForT(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
