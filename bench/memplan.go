package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
)

// memSuite is the memory and growth plan (-scenario memory, `make
// bench-memory`): memory per awake idle actor and per sleeping actor
// (idle, then after the sleep timeout), per open WebSocket connection
// (conns), cold start, and how hot and fanout grow with 10× the load:
// hot on 1, 10 and 100 actors, fanout to 1,000 and 10,000 connections.
func memSuite(target string) []job {
	js := []job{
		{scenario: "idle", enc: "json", c: 64, n: 20000, waitSleep: true, timeout: 4 * time.Minute},
		{scenario: "conns", enc: "json", c: 64, conns: 1000, timeout: 2 * time.Minute},
		{scenario: "conns", enc: "json", c: 64, conns: 10000, timeout: 3 * time.Minute},
		{scenario: "cold", enc: "json", n: 500, timeout: 2 * time.Minute},
	}
	for _, a := range []int{1, 10, 100} {
		js = append(js, job{scenario: "hot", enc: "json", c: 64, n: 20000, actors: a, timeout: 2 * time.Minute})
	}
	js = append(js,
		job{scenario: "fanout", enc: "json", conns: 1000, n: 50, timeout: 2 * time.Minute},
		job{scenario: "fanout", enc: "json", conns: 10000, n: 5, timeout: 3 * time.Minute},
	)
	var out []job
	for _, j := range js {
		if supports(target, j.scenario) {
			out = append(out, j)
		}
	}
	return out
}

// hotActors: callers calling increment on actors counters (caller g
// calls counter["hot", g mod actors]; one actor is counter["hot"]), n
// calls in all: how the rate grows with the actors in use.
func hotActors(ctx context.Context, c *rivetclient.Client, callers, n, actors int, r *result) error {
	hs := make([]*rivetclient.Handle, actors)
	for i := range hs {
		key := rivet.Key{"hot"}
		if actors > 1 {
			key = rivet.Key{"hot", strconv.Itoa(i)}
		}
		hs[i] = c.GetOrCreate("counter", key)
		if err := warmUp(ctx, func(ctx context.Context) error { _, err := hs[i].Call(ctx, "increment", 1); return err }); err != nil {
			return err
		}
	}
	var next atomic.Int64
	lats := make([][]time.Duration, callers)
	var firstErr atomic.Value
	meter.mark()
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range callers {
		h := hs[g%actors]
		wg.Go(func() {
			for int(next.Add(1)) <= n && ctx.Err() == nil {
				s := time.Now()
				if _, err := h.Call(ctx, loopAction, loopArgs...); err != nil {
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

// openConns opens n idle WebSocket connections to one counter (c at a
// time, each confirmed by a getCount on it) and reads the server's RSS
// and Go heap before and after: the memory per open connection.
func openConns(ctx context.Context, s *server, client *rivetclient.Client, c, n int, r *result) error {
	if !s.isLocal() {
		return errors.New("conns reads the server's memory: use -target serve (or rivet, where RSS includes the load generator)")
	}
	h := client.GetOrCreate("counter", rivet.Key{"conns"})
	if err := warmUp(ctx, func(ctx context.Context) error { _, err := h.Call(ctx, "getCount"); return err }); err != nil {
		return err
	}
	r.RSSBeforeMiB, r.HeapBeforeMiB = s.rssMiB(), gcHeapMiB(ctx, s)
	cs := make([]*rivetclient.Connection, n)
	defer func() {
		for _, cn := range cs {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	var next atomic.Int64
	var firstErr atomic.Value
	var ok atomic.Int64
	lats := make([][]time.Duration, c)
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range c {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				st := time.Now()
				cn := h.Connect()
				cs[i] = cn
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				_, err := cn.Call(cctx, "getCount")
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
				lats[g] = append(lats[g], time.Since(st))
			}
		})
	}
	wg.Wait()
	summarize(r, slices.Concat(lats...), time.Since(t0))
	r.Lost = n - r.OK
	time.Sleep(2 * time.Second) // let the sockets settle
	r.RSSMiB, r.HeapMiB = s.rssMiB(), gcHeapMiB(ctx, s)
	if r.OK > 0 {
		r.KiBPerConn = (r.RSSMiB - r.RSSBeforeMiB) * 1024 / float64(r.OK)
		r.HeapKiBPerConn = (r.HeapMiB - r.HeapBeforeMiB) * 1024 / float64(r.OK)
	}
	r.Note = fmt.Sprintf("%d idle WebSocket connections (json) open on one counter: server RSS %.0f → %.0f MiB (%.1f KiB each), Go heap in use after a GC %.1f → %.1f MiB (%.1f KiB each)",
		r.OK, r.RSSBeforeMiB, r.RSSMiB, r.KiBPerConn, r.HeapBeforeMiB, r.HeapMiB, r.HeapKiBPerConn)
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d of %d connections failed: %w", r.Lost, n, err)
	}
	return nil
}

// gcHeapMiB is the server's Go heap in use after a forced GC: the serve
// target of a memory row runs with --pprof, whose /debug/pprof/heap?gc=1
// collects first; without it, the heap as it is.
func gcHeapMiB(ctx context.Context, s *server) float64 {
	if s.proc != nil && s.proc.pprofPort != 0 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", s.proc.pprofPort), nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return heapInuseMiB(ctx, s.endpoint)
}

// memoryRow reports whether a scenario reads the server's memory (its
// serve target then runs with --pprof for a forced GC).
func memoryRow(scenario string) bool { return scenario == "conns" || scenario == "idle" }
