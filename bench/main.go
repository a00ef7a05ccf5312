// Command bench is rivetgo's load generator. It speaks RivetKit's client
// protocol (through rivetclient) to any endpoint, or starts the server it
// measures itself, on loopback:
//
//	go run ./bench -scenario hot -target rivet          # the runtime, embedded store, in this process
//	go run ./bench -scenario hot -target baseline       # plain in-memory maps: the ceiling
//	go run ./bench -scenario ws-rtt -target http://127.0.0.1:6420
//
// Scenarios (all bounded in count and time):
//
//	hot     one counter actor, -c concurrent HTTP callers, -n increments
//	ws-rtt  -n sequential increments on one connection
//	fanout  -conns connections on one chatRoom, -n messages from one sender;
//	        events delivered/s, delivery latency, events lost
//	spread  -n distinct counters, -c concurrent callers, one increment each
//	        (getOrCreate): creations/s, latency, server RSS (in-process targets)
//	cold    -n sequential first calls on new keys: creation latency
//	wake    -n actors put to sleep (POST /actors/{id}/sleep), then one call
//	        each: wake latency
//
// Each run prints a table row and a JSON line with its parameters.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
	"github.com/rivetgo/rivet/rivetclient"
)

type result struct {
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"`
	Encoding string  `json:"encoding"`
	C        int     `json:"c,omitempty"`
	Conns    int     `json:"conns,omitempty"`
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
	Command  string  `json:"command"`
}

func main() {
	scenario := flag.String("scenario", "hot", "hot, ws-rtt or fanout")
	target := flag.String("target", "rivet", "rivet (in-process server on the embedded store), baseline, or an endpoint URL")
	enc := flag.String("encoding", "json", "json, cbor or bare")
	c := flag.Int("c", 64, "concurrent callers (hot)")
	n := flag.Int("n", 20000, "operations")
	conns := flag.Int("conns", 100, "connections (fanout)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	endpoint, stop, err := start(ctx, *target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer stop()
	client := rivetclient.New(endpoint, rivetclient.WithEncoding(*enc), rivetclient.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}))
	r := result{Scenario: *scenario, Target: *target, Encoding: *enc, N: *n, Command: commandLine()}
	switch *scenario {
	case "hot":
		r.C = *c
		err = hot(ctx, client, *c, *n, &r)
	case "ws-rtt":
		err = wsRTT(ctx, client, *n, &r)
	case "fanout":
		r.Conns = *conns
		err = fanout(ctx, client, *conns, *n, &r)
	case "spread":
		r.C = *c
		err = spread(ctx, client, *c, *n, &r)
	case "cold":
		err = cold(ctx, client, *n, &r)
	case "wake":
		err = wake(ctx, client, endpoint, *n, &r)
	default:
		err = fmt.Errorf("unknown scenario %q", *scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *target == "rivet" || *target == "baseline" {
		r.RSSMiB = rssMiB()
	}
	fmt.Printf("%-7s %-9s %-5s ops=%d ok=%d lost=%d %.0f/s p50=%.0fµs p90=%.0fµs p99=%.0fµs p99.9=%.0fµs rss=%.0fMiB\n",
		r.Scenario, r.Target, r.Encoding, r.N, r.OK, r.Lost, r.PerSec, r.P50us, r.P90us, r.P99us, r.P999us, r.RSSMiB)
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

func commandLine() string {
	s := "go run ./bench"
	for _, a := range os.Args[1:] {
		s += " " + strconv.Quote(a)
	}
	return s
}

// start brings up the target on loopback and returns its endpoint.
func start(ctx context.Context, target string) (string, func(), error) {
	if target != "rivet" && target != "baseline" {
		return target, func() {}, nil
	}
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
		rt, err := rivet.Start(ctx, rivet.MustRegistry(demo.Definitions()...), &rivet.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
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

func summarize(r *result, lats []time.Duration, elapsed time.Duration) {
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[min(len(lats)-1, int(float64(len(lats))*p))].Microseconds())
	}
	r.OK = len(lats)
	r.Seconds = elapsed.Seconds()
	r.PerSec = float64(len(lats)) / elapsed.Seconds()
	r.P50us, r.P90us, r.P99us, r.P999us = pct(0.5), pct(0.9), pct(0.99), pct(0.999)
}

func hot(ctx context.Context, c *rivetclient.Client, callers, n int, r *result) error {
	h := c.GetOrCreate("counter", rivet.Key{"hot"})
	if _, err := h.Call(ctx, "increment", 1); err != nil {
		return err
	}
	var next atomic.Int64
	lats := make([][]time.Duration, callers)
	var firstErr atomic.Value
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for int(next.Add(1)) <= n && ctx.Err() == nil {
				s := time.Now()
				if _, err := h.Call(ctx, "increment", 1); err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				lats[g] = append(lats[g], time.Since(s))
			}
		})
	}
	wg.Wait()
	summarize(r, slices.Concat(lats...), time.Since(t0))
	r.Lost = n - r.OK
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d of %d calls failed: %w", r.Lost, n, err)
	}
	return nil
}

func wsRTT(ctx context.Context, c *rivetclient.Client, n int, r *result) error {
	conn := c.GetOrCreate("counter", rivet.Key{"rtt"}).Connect()
	defer conn.Close()
	if _, err := conn.Call(ctx, "increment", 1); err != nil {
		return err
	}
	lats := make([]time.Duration, 0, n)
	t0 := time.Now()
	for range n {
		s := time.Now()
		if _, err := conn.Call(ctx, "increment", 1); err != nil {
			return err
		}
		lats = append(lats, time.Since(s))
	}
	summarize(r, lats, time.Since(t0))
	return nil
}

func fanout(ctx context.Context, c *rivetclient.Client, conns, n int, r *result) error {
	room := c.GetOrCreate("chatRoom", rivet.Key{"fanout"})
	var mu sync.Mutex
	sent := make([]time.Time, n)
	var lats []time.Duration
	var got atomic.Int64
	list := make([]*rivetclient.Connection, conns)
	ready := make(chan struct{}, conns)
	for i := range list {
		conn := room.Connect()
		list[i] = conn
		defer conn.Close()
		conn.On("newMessage", func(a rivet.Args) {
			var m demo.Message
			if a.Decode(0, &m) != nil {
				return
			}
			i, err := strconv.Atoi(m.Text)
			if err != nil || i < 0 || i >= n {
				if m.Text == "ready" {
					ready <- struct{}{}
				}
				return
			}
			mu.Lock()
			lats = append(lats, time.Since(sent[i]))
			mu.Unlock()
			got.Add(1)
		})
	}
	// Every connection is subscribed once it has seen a message.
	for {
		if _, err := room.Call(ctx, "sendMessage", "bench", "ready"); err != nil {
			return err
		}
		deadline := time.After(200 * time.Millisecond)
		seen := 0
	wait:
		for seen < conns {
			select {
			case <-ready:
				seen++
			case <-deadline:
				break wait
			}
		}
		if seen == conns {
			break
		}
		if ctx.Err() != nil {
			return errors.New("connections did not subscribe in time")
		}
	}
	t0 := time.Now()
	for i := range n {
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		if _, err := room.Call(ctx, "sendMessage", "bench", strconv.Itoa(i)); err != nil {
			return err
		}
	}
	want := int64(n * conns)
	for got.Load() < want && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		if time.Since(t0) > 30*time.Second+time.Duration(n)*time.Millisecond {
			break
		}
	}
	elapsed := time.Since(t0)
	mu.Lock()
	defer mu.Unlock()
	summarize(r, lats, elapsed)
	r.N = int(want)
	r.Lost = int(want - got.Load())
	return nil
}

// rssMiB is this process's resident set (server and load generator
// together for in-process targets), from /proc.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// spread calls n distinct counters once each from c callers.
func spread(ctx context.Context, client *rivetclient.Client, c, n int, r *result) error {
	var next atomic.Int64
	lats := make([][]time.Duration, c)
	var firstErr atomic.Value
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				s := time.Now()
				if _, err := client.GetOrCreate("counter", rivet.Key{"spread", strconv.Itoa(i)}).Call(ctx, "increment", 1); err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				lats[g] = append(lats[g], time.Since(s))
			}
		})
	}
	wg.Wait()
	summarize(r, slices.Concat(lats...), time.Since(t0))
	r.Lost = n - r.OK
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d of %d calls failed: %w", r.Lost, n, err)
	}
	return nil
}

// cold measures n sequential first calls on new keys.
func cold(ctx context.Context, client *rivetclient.Client, n int, r *result) error {
	lats := make([]time.Duration, 0, n)
	t0 := time.Now()
	for i := range n {
		s := time.Now()
		if _, err := client.GetOrCreate("counter", rivet.Key{"cold", strconv.Itoa(i), strconv.FormatInt(t0.UnixNano(), 36)}).Call(ctx, "increment", 1); err != nil {
			return err
		}
		lats = append(lats, time.Since(s))
	}
	summarize(r, lats, time.Since(t0))
	return nil
}

// wake creates n actors, puts each to sleep, then measures one call each.
func wake(ctx context.Context, client *rivetclient.Client, endpoint string, n int, r *result) error {
	hs := make([]*rivetclient.Handle, n)
	for i := range hs {
		h := client.GetOrCreate("counter", rivet.Key{"wake", strconv.Itoa(i), strconv.FormatInt(time.Now().UnixNano(), 36)})
		id, err := h.ID(ctx)
		if err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/actors/"+id+"/sleep?namespace=default", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("sleep %s: %s", id, resp.Status)
		}
		hs[i] = client.GetForID("counter", id)
	}
	lats := make([]time.Duration, 0, n)
	t0 := time.Now()
	for _, h := range hs {
		s := time.Now()
		if _, err := h.Call(ctx, "getCount"); err != nil {
			return err
		}
		lats = append(lats, time.Since(s))
	}
	summarize(r, lats, time.Since(t0))
	return nil
}
