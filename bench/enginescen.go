package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

// engineTargets are the targets of the engine plan (-scenario engine):
// rivetgo embedded as a reference, then rivetgo's and RivetKit's runners
// behind the same engine build.
var engineTargets = []string{"serve", "serve-engine", "peer-engine"}

// engineSuite is the engine plan for one target: the same parameters on
// every target (RivetKit's runner does tens of actions/s on one actor),
// plus, behind an engine, where the time goes (split, split-ws) and the
// failover after kill -9 of a runner.
func engineSuite(target string) []job {
	var js []job
	add := func(j job) {
		if !supports(target, j.scenario) {
			return
		}
		if j.timeout == 0 {
			j.timeout = 2 * time.Minute
		}
		js = append(js, j)
	}
	add(job{scenario: "hot", enc: "json", c: 8, n: 400})
	add(job{scenario: "ws-rtt", enc: "json", n: 200})
	add(job{scenario: "fanout", enc: "json", conns: 100, n: 10})
	// Creations through the engine can stall for 15 s each
	// (pegboard.route_resolve_query_timeout): at most 10 of them.
	add(job{scenario: "cold", enc: "json", n: 10, timeout: 3 * time.Minute})
	add(job{scenario: "split", enc: "json", n: 200})
	add(job{scenario: "split-id", enc: "json", n: 200})
	add(job{scenario: "split-hot", enc: "json", c: 8, n: 200})
	add(job{scenario: "split-ws", enc: "json", n: 200})
	add(job{scenario: "failover", enc: "json", rounds: 2, timeout: 4 * time.Minute})
	// The same with the engine's lost thresholds cut from 15 s to 4 s.
	add(job{scenario: "failover", enc: "json", rounds: 2, timeout: 3 * time.Minute, engineLost: 4 * time.Second})
	return js
}

// split makes n sequential increment calls (HTTP, or on one WebSocket
// connection with ws) through the engine and sets, per call, the client's
// round trip against the runner's share seen at the timing proxy: the
// rest is the engine's (guard, routing, tunnel) and the network's.
//
// byID (split-id) calls over HTTP by actor id (/gateway/{id}/action/…)
// instead of the query form (getOrCreate by key, which the engine resolves
// on every request).
func split(ctx context.Context, s *server, client *rivetclient.Client, ws, byID bool, n int, r *result) error {
	if s.proxy == nil {
		return errors.New("split needs an engine target (serve-engine, peer-engine)")
	}
	h := client.GetOrCreate("counter", rivet.Key{"split"})
	if byID {
		var id string
		if err := warmUp(ctx, func(ctx context.Context) (err error) { id, err = h.ID(ctx); return err }); err != nil {
			return err
		}
		h = client.GetForID("counter", id)
	}
	call := func(ctx context.Context) error {
		_, err := h.Call(ctx, "increment", 1)
		return err
	}
	if ws {
		conn := h.Connect()
		defer conn.Close()
		call = func(ctx context.Context) error {
			_, err := conn.Call(ctx, "increment", 1)
			return err
		}
	}
	if err := warmUp(ctx, call); err != nil { // creates the actor, opens the socket
		return err
	}
	s.proxy.take()
	var rtts, runners, engines, storage []time.Duration
	var storageCalls, unmatched int
	meter.mark()
	t0 := time.Now()
	for range n {
		start := time.Now()
		if err := call(ctx); err != nil {
			return err
		}
		rtt := time.Since(start)
		spans := s.proxy.take()
		if len(spans) != 1 {
			unmatched++
			continue
		}
		sp := spans[0]
		rtts = append(rtts, rtt)
		runners = append(runners, sp.runner)
		engines = append(engines, rtt-sp.runner)
		storage = append(storage, sp.storage)
		storageCalls += sp.requests
	}
	summarize(r, rtts, time.Since(t0))
	r.Runner = pcts(runners)
	r.Engine = pcts(engines)
	r.Storage = pcts(storage)
	if len(rtts) > 0 {
		r.StoragePerCall = float64(storageCalls) / float64(len(rtts))
	}
	if unmatched > 0 {
		r.Note = fmt.Sprintf("%d calls left out: the proxy did not see exactly one request/response pair for them", unmatched)
	}
	return nil
}

// splitHot is hot (-c concurrent HTTP callers on one counter) behind the
// timing proxy: calls overlap, so the runner's shares are not paired with
// round trips; their distribution is set beside the round trips'.
func splitHot(ctx context.Context, s *server, client *rivetclient.Client, callers, n int, r *result) error {
	if s.proxy == nil {
		return errors.New("split-hot needs an engine target (serve-engine, peer-engine)")
	}
	err := hot(ctx, client, callers, n, r)
	spans := s.proxy.take()
	var runners, storage []time.Duration
	var calls int
	for _, sp := range spans {
		runners = append(runners, sp.runner)
		storage = append(storage, sp.storage)
		calls += sp.requests
	}
	r.Runner, r.Storage = pcts(runners), pcts(storage)
	if len(spans) > 0 {
		r.StoragePerCall = float64(calls) / float64(len(spans))
	}
	return err
}

// split percentiles, in µs.
type splitPcts struct {
	P50us float64 `json:"p50_us"`
	P90us float64 `json:"p90_us"`
	P99us float64 `json:"p99_us"`
}

func pcts(d []time.Duration) *splitPcts {
	if len(d) == 0 {
		return nil
	}
	d = slices.Clone(d)
	slices.Sort(d)
	at := func(p float64) float64 { return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) }
	return &splitPcts{at(0.5), at(0.9), at(0.99)}
}

// failover measures, per round on a fresh engine, the time from kill -9
// of the runner holding an actor to the first successful call on the
// other runner: runner A creates counter["ready"] while alone (so it holds
// it), runner B connects, A's process tree gets SIGKILL, and increment is
// called, one call at a time (each bounded by 30 s, the round by 90 s),
// until one answers.
// The answer's count tells whether the actor's state survived.
func failover(ctx context.Context, s *server, o *options, enc string, rounds int, r *result) error {
	if !isEngineTarget(s.target) {
		return errors.New("failover needs an engine target (serve-engine, peer-engine)")
	}
	var lats []time.Duration
	var notes []string
	meter.mark()
	t0 := time.Now()
	for round := range rounds {
		if ctx.Err() != nil {
			break
		}
		srv := s
		if round > 0 {
			var err error
			if srv, err = startEngineTarget(ctx, s.target, o, false); err != nil {
				return err
			}
		}
		d, note, err := failoverRound(ctx, srv, o, enc, round)
		if round > 0 {
			srv.stop()
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("round %d: %v", round+1, err))
			continue
		}
		lats = append(lats, d)
		notes = append(notes, fmt.Sprintf("round %d: %s", round+1, note))
	}
	summarize(r, lats, time.Since(t0))
	r.Rounds = rounds
	r.Lost = rounds - len(lats)
	r.Note = fmt.Sprint(notes)
	if len(lats) == 0 {
		return fmt.Errorf("no round failed over: %v", notes)
	}
	return nil
}

func failoverRound(ctx context.Context, s *server, o *options, enc string, round int) (time.Duration, string, error) {
	client := newClient(s.endpoint, enc, o.noDelay)
	h := client.GetOrCreate("counter", rivet.Key{"ready"}) // created on A by its readiness call
	var count int
	for range 3 {
		v, err := h.Call(ctx, "increment", 1)
		if err != nil {
			return 0, "", fmt.Errorf("before the kill: %w", err)
		}
		if err := v.Decode(&count); err != nil {
			return 0, "", err
		}
	}
	dir, err := os.MkdirTemp("", "rivet-bench-runner-b-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	connect := s.proc.connect
	b, err := newRunner(ctx, s.target, filepath.Join(dir, "b"), o, s.endpoint, connect)
	if err != nil {
		return 0, "", err
	}
	b.noReadyCall = true
	b.key = fmt.Sprintf("bench-b-%d", round)
	if err := b.start(ctx); err != nil {
		b.kill()
		return 0, "", err
	}
	s.extra = append(s.extra, b)
	deadline := time.Now().Add(60 * time.Second)
	for {
		keys, err := envoys(ctx, s.endpoint)
		if err == nil && len(keys) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("runner B not listed by the engine after 60 s (envoys %v, %v; log %s)", keys, err, b.log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	s.proc.kill()
	// One call at a time, each bounded by 30 s: the engine holds a call to
	// an actor whose runner died until it has moved the actor (or its own
	// timeout), so the first call's answer is the failover time. A short
	// bound quantizes the figure; many overlapping calls slow the engine's
	// recovery (measured: with a call every 250 ms, 25 s became 45–54 s).
	var attempts int
	var first error
	end := killed.Add(90 * time.Second)
	for time.Now().Before(end) && ctx.Err() == nil {
		attempts++
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		v, err := h.Call(cctx, "increment", 1)
		cancel()
		if err != nil {
			if first == nil {
				var ue *url.Error
				if errors.As(err, &ue) { // the URL says nothing new
					err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
				}
				first = fmt.Errorf("after %v: %w", time.Since(killed).Round(time.Millisecond), err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		d := time.Since(killed)
		var got int
		_ = v.Decode(&got)
		state := "state kept"
		if got != count+1 {
			state = fmt.Sprintf("count %d after %d acknowledged (state not kept)", got, count)
		}
		note := fmt.Sprintf("answered after %v, %d calls, %s", d.Round(time.Millisecond), attempts, state)
		if first != nil {
			note += fmt.Sprintf("; first error %.160v", first)
		}
		return d, note, nil
	}
	return 0, "", fmt.Errorf("no answer within 90 s of the kill (%d calls, first error: %v)", attempts, first)
}

// printEngineTable lines up the engine plan's rows: rivetgo embedded,
// rivetgo's runner and RivetKit's runner on the same engine.
func printEngineTable(w io.Writer, rows []result) {
	type key struct{ scenario, enc, params string }
	by := map[key]map[string]result{}
	var order []key
	for _, r := range rows {
		k := key{r.Scenario, r.Encoding, params(r)}
		if by[k] == nil {
			by[k] = map[string]result{}
			order = append(order, k)
		}
		by[k][r.Target] = r
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | params | metric | rivetgo embedded (serve) | rivetgo runner (serve-engine) | RivetKit runner (peer-engine) | serve-engine ÷ peer-engine |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: |")
	for _, k := range order {
		m := by[k]
		for _, met := range engineMetrics(k.scenario) {
			cell := func(t string) string {
				r, ok := m[t]
				switch {
				case !ok:
					return "–"
				case r.Error != "":
					return "error"
				}
				return met.format(met.get(r))
			}
			ratio := "–"
			g, okG := m["serve-engine"]
			p, okP := m["peer-engine"]
			if okG && okP && g.Error == "" && p.Error == "" && met.get(p) != 0 {
				ratio = fmt.Sprintf("%.3g", met.get(g)/met.get(p))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", k.scenario, k.params, met.name, cell("serve"), cell("serve-engine"), cell("peer-engine"), ratio)
		}
	}
}

func engineMetrics(scenario string) []metric {
	sp := func(name string, f func(result) *splitPcts, p90 bool) metric {
		return metric{name, func(r result) float64 {
			v := f(r)
			if v == nil {
				return 0
			}
			if p90 {
				return v.P90us
			}
			return v.P50us
		}, us}
	}
	switch scenario {
	case "split-hot":
		return []metric{
			{"per s", func(r result) float64 { return r.PerSec }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
			{"client round trip p50", func(r result) float64 { return r.P50us }, us},
			sp("runner share p50", func(r result) *splitPcts { return r.Runner }, false),
			sp("runner share p90", func(r result) *splitPcts { return r.Runner }, true),
			sp("storage wait p50 (in runner share)", func(r result) *splitPcts { return r.Storage }, false),
		}
	case "split", "split-id", "split-ws":
		return []metric{
			{"client round trip p50", func(r result) float64 { return r.P50us }, us},
			sp("runner share p50", func(r result) *splitPcts { return r.Runner }, false),
			sp("engine share p50", func(r result) *splitPcts { return r.Engine }, false),
			sp("storage wait p50 (in runner share)", func(r result) *splitPcts { return r.Storage }, false),
			{"storage round trips per call", func(r result) float64 { return r.StoragePerCall }, func(v float64) string { return fmt.Sprintf("%.2f", v) }},
			{"client round trip p90", func(r result) float64 { return r.P90us }, us},
			sp("runner share p90", func(r result) *splitPcts { return r.Runner }, true),
		}
	case "failover":
		return []metric{
			{"kill -9 → first answer, p50", func(r result) float64 { return r.P50us }, us},
			{"max", func(r result) float64 { return r.P999us }, us},
			{"rounds without an answer", func(r result) float64 { return float64(r.Lost) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		}
	case "cold":
		return []metric{
			{"p50", func(r result) float64 { return r.P50us }, us},
			{"p99", func(r result) float64 { return r.P99us }, us},
			{"failed (20 s bound)", func(r result) float64 { return float64(r.Lost) }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		}
	}
	ms := metrics(scenario)
	return append(ms, metric{"server RSS MiB (runner + engine)", func(r result) float64 { return r.RSSMiB }, func(v float64) string { return fmt.Sprintf("%.0f", v) }})
}
