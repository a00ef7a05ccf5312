package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
)

// idle creates n actors over the wire (one increment each, c callers) and
// reads the server's RSS while they are all awake and idle, then, when
// waitSleep is set, again once they have all gone to sleep (the default
// sleep timeout is 30 s). r.RSSMiB is the awake figure.
func idle(ctx context.Context, s *server, o *options, enc string, c, n int, waitSleep bool, r *result) error {
	if !s.isLocal() {
		return errors.New("idle reads the server's RSS: use -target serve (or rivet, where RSS includes the load generator)")
	}
	r.RSSBeforeMiB = s.rssMiB()
	if err := spread(ctx, newClient(s.endpoint, enc, o.noDelay), "idle", c, n, r); err != nil {
		return err
	}
	r.RSSMiB = s.rssMiB()
	r.Awake, r.Sleeping = actorGauges(ctx, s.endpoint)
	r.HeapMiB = gcHeapMiB(ctx, s)
	// Creating n actors may outlast the sleep timeout (30 s), so the first
	// ones can be asleep already: the cost per actor is taken over the
	// actors the gauge reports awake.
	awake := n
	if r.Awake > 1 {
		awake = r.Awake - 1 // counter["ready"]
	}
	r.KiBPerActor = (r.RSSMiB - r.RSSBeforeMiB) * 1024 / float64(awake)
	r.Note = fmt.Sprintf("RSS of the server process after creating %d actors, %d of them awake and idle (%.1f KiB per awake actor: %.0f MiB for %d)",
		n, r.Awake, r.KiBPerActor, r.RSSBeforeMiB+r.KiBPerActor*float64(n)/1024, n)
	if !waitSleep {
		return nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		awake, _ := actorGauges(ctx, s.endpoint)
		if awake <= 1 { // counter["ready"] may still be awake
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Let the Go runtime's background scavenger return freed pages, as it
	// would on a server that stays up.
	time.Sleep(5 * time.Second)
	r.RSSAfterSleepMiB = s.rssMiB()
	r.HeapAfterSleepMiB = gcHeapMiB(ctx, s)
	awake, sleeping := actorGauges(ctx, s.endpoint)
	r.Note += fmt.Sprintf("; after they slept (gauges: %d awake, %d sleeping): RSS %.0f MiB (%.2f KiB per sleeping actor over the start), Go heap in use %.0f MiB",
		awake, sleeping, r.RSSAfterSleepMiB, (r.RSSAfterSleepMiB-r.RSSBeforeMiB)*1024/float64(max(n, 1)), r.HeapAfterSleepMiB)
	return nil
}

// actorGauges reads rivet_actors_awake and rivet_actors_sleeping (summed
// over actor names) from the server's /metrics; -1 when unavailable.
func actorGauges(ctx context.Context, endpoint string) (awake, sleeping int) {
	m := scrape(ctx, endpoint)
	awake, sleeping = -1, -1
	if v, ok := m["rivet_actors_awake"]; ok {
		awake = int(v)
	}
	if v, ok := m["rivet_actors_sleeping"]; ok {
		sleeping = int(v)
	}
	return awake, sleeping
}

// heapInuseMiB is the server's Go heap in use (go_memstats_heap_inuse_bytes),
// 0 when unavailable: RSS minus this is memory the Go runtime has not
// returned to the OS yet.
func heapInuseMiB(ctx context.Context, endpoint string) float64 {
	return scrape(ctx, endpoint)["go_memstats_heap_inuse_bytes"] / (1 << 20)
}

// scrape reads a Prometheus text page, summing each metric over its
// labels.
func scrape(ctx context.Context, endpoint string) map[string]float64 {
	out := map[string]float64{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(f[0], "{")
		out[name] += v
	}
	return out
}

// sleeping measures a server holding n actors asleep on disk. Creating a
// million actors over HTTP would take minutes, so the server is stopped,
// `bench populate` (a separate process running the runtime on the same
// data directory) creates them in-process through rt.Client() and stops
// (every actor flushes and goes to sleep), and the server starts again on
// that store. r.RSSMiB is the server's RSS once it answers, with the
// store's sleeping-actor gauge checked.
func sleeping(ctx context.Context, s *server, o *options, c, n int, r *result) error {
	if s.proc == nil || s.proc.kind != "serve" {
		return errors.New("sleeping populates rivetgo's store directly: use -target serve")
	}
	if err := s.proc.stop(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "populate", "-data", s.proc.dir, "-n", strconv.Itoa(n), "-c", strconv.Itoa(c))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	var pop populateResult
	if err := json.Unmarshal(out, &pop); err != nil {
		return fmt.Errorf("populate output %q: %w", out, err)
	}
	fmt.Fprintf(logOut, "  populate: %d actors in %.1f s (%.0f/s), populating process peak RSS %.0f MiB\n", pop.N, pop.Seconds, float64(pop.N)/pop.Seconds, pop.PeakRSSMiB)
	t0 := time.Now()
	if err := s.proc.start(ctx); err != nil {
		return fmt.Errorf("restart on the populated store: %w", err)
	}
	startup := time.Since(t0)
	// Let start-up garbage be collected and scavenged before reading RSS.
	time.Sleep(5 * time.Second)
	r.RSSMiB = s.rssMiB()
	r.HeapMiB = heapInuseMiB(ctx, s.endpoint)
	r.Awake, r.Sleeping = actorGauges(ctx, s.endpoint)
	r.OK = pop.N
	r.PerSec = float64(pop.N) / pop.Seconds
	r.Seconds = pop.Seconds
	r.Note = fmt.Sprintf("server RSS with %d actors asleep on disk (gauges: %d sleeping, %d awake); created in-process by `bench populate` at %.0f/s; server start-up %.1f s; store %.0f MiB", n, r.Sleeping, r.Awake, r.PerSec, startup.Seconds(), dirMiB(s.proc.dir))
	if r.Sleeping >= 0 && r.Sleeping < n {
		return fmt.Errorf("the store reports %d sleeping actors, want ≥ %d", r.Sleeping, n)
	}
	return nil
}

func dirMiB(dir string) float64 {
	out, err := exec.Command("du", "-sk", dir).Output()
	if err != nil {
		return 0
	}
	kb, _ := strconv.Atoi(strings.Fields(string(out))[0])
	return float64(kb) / 1024
}

type populateResult struct {
	N          int     `json:"n"`
	Seconds    float64 `json:"seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// populateMain is `bench populate -data DIR -n N -c C`: it runs the demo
// registry on DIR, creates N counters (one increment each) in-process
// from C goroutines, stops the runtime (every actor sleeps) and prints a
// JSON populateResult.
func populateMain(args []string) error {
	fs := flag.NewFlagSet("populate", flag.ContinueOnError)
	dir := fs.String("data", "", "data directory")
	n := fs.Int("n", 1_000_000, "actors to create")
	c := fs.Int("c", 256, "concurrent creators")
	prefix := fs.String("prefix", "sleeping", "first key part")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("populate: -data is required")
	}
	ctx := context.Background()
	rt, err := rivet.Start(ctx, rivet.MustRegistry(demo.Definitions()...), &rivet.Config{DataDir: *dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	client := rt.Client()
	var next atomic.Int64
	var firstErr atomic.Value
	var peak atomic.Int64
	done := make(chan struct{})
	go func() { // sample RSS while creating
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if v := int64(procRSSMiB(os.Getpid())); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	t0 := time.Now()
	var wg sync.WaitGroup
	for range *c {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > *n || firstErr.Load() != nil {
					return
				}
				if _, err := client.GetOrCreate("counter", rivet.Key{*prefix, strconv.Itoa(i)}).Call(ctx, "increment", 1); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				if i%100_000 == 0 {
					fmt.Fprintf(os.Stderr, "  populate: %d actors, %.0f s\n", i, time.Since(t0).Seconds())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	close(done)
	if err := rt.Stop(ctx); err != nil {
		return err
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(populateResult{N: *n, Seconds: elapsed.Seconds(), PeakRSSMiB: float64(peak.Load())})
}
