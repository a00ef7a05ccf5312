package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetclient"
)

// Every scenario runs end to end against both targets, loses nothing and
// measures what it ran.
func TestScenarios(t *testing.T) {
	for _, target := range []string{"baseline", "rivet"} {
		t.Run(target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			endpoint, stop, err := start(ctx, target, &options{})
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			for _, enc := range []string{"json", "bare"} {
				c := rivetclient.New(endpoint, rivetclient.WithEncoding(enc))
				var r result
				if err := hot(ctx, c, 4, 50, &r); err != nil || r.OK != 50 || r.Lost != 0 || r.PerSec <= 0 {
					t.Fatalf("hot %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := wsRTT(ctx, c, 20, &r); err != nil || r.OK != 20 || r.P50us <= 0 {
					t.Fatalf("ws-rtt %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := fanout(ctx, c, 5, 10, &r); err != nil || r.Lost != 0 || r.OK != 50 {
					t.Fatalf("fanout %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := spread(ctx, c, "spread", 4, 40, &r); err != nil || r.OK != 40 {
					t.Fatalf("spread %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := cold(ctx, c, 10, &r); err != nil || r.OK != 10 {
					t.Fatalf("cold %s: %+v %v", enc, r, err)
				}
				if target == "rivet" { // the baseline has no /actors API
					r = result{}
					if err := wake(ctx, c, endpoint, 10, &r); err != nil || r.OK != 10 {
						t.Fatalf("wake %s: %+v %v", enc, r, err)
					}
				}
			}
		})
	}
}

func TestMain(m *testing.M) {
	// The sleeping scenario runs this binary as `bench populate`, the
	// baseline target as `bench baseline-serve`.
	if len(os.Args) > 1 && (os.Args[1] == "populate" || os.Args[1] == "baseline-serve") {
		if err := subcommand(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	removeBuild()
	os.Exit(code)
}

// The scenarios that restart, kill or populate the server run against
// `rivet serve` as a child process: no acknowledged increment is lost
// across kill -9, actors answer after a restart, and RSS is read from the
// child.
func TestChildScenarios(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logOut = io.Discard
	o := &options{noDelay: true}
	s, err := startServer(ctx, "serve", o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if s.rssMiB() <= 0 {
		t.Fatal("no RSS for the child process")
	}

	var r result
	if err := durability(ctx, s, o, "json", 4, 60, 2, &r); err != nil || r.Rounds != 2 || r.Lost != 0 || r.Acked < 60 || r.Observed < r.Acked || r.Unacked > r.InFlight {
		t.Fatalf("durability: %+v %v", r, err)
	}
	r = result{}
	if err := wakeRestart(ctx, s, o, "bare", 10, &r); err != nil || r.OK != 10 || r.Lost != 0 || r.P50us <= 0 {
		t.Fatalf("wake-restart: %+v %v", r, err)
	}
	r = result{}
	if err := idle(ctx, s, o, "json", 4, 50, false, &r); err != nil || r.OK != 50 || r.Awake < 50 || r.RSSMiB <= 0 {
		t.Fatalf("idle: %+v %v", r, err)
	}
	r = result{}
	if err := openConns(ctx, s, newClient(s.endpoint, "json", true), 8, 50, &r); err != nil || r.OK != 50 || r.RSSMiB <= 0 || r.HeapMiB <= 0 {
		t.Fatalf("conns: %+v %v", r, err)
	}
	r = result{}
	if err := hotActors(ctx, newClient(s.endpoint, "json", true), 6, 60, 3, &r); err != nil || r.OK != 60 {
		t.Fatalf("hot on 3 actors: %+v %v", r, err)
	}
	r = result{}
	if err := sleeping(ctx, s, o, 8, 300, &r); err != nil || r.OK != 300 || r.Sleeping < 300 || r.RSSMiB <= 0 {
		t.Fatalf("sleeping: %+v %v", r, err)
	}
}

// The report run covers every scenario on rivetgo, and every row's
// command reruns that row alone.
func TestSuitePlan(t *testing.T) {
	seen := map[string]bool{}
	for _, j := range suite("serve", true, false) {
		seen[j.scenario] = true
		if a := j.args("serve"); a[0] != "-scenario" || a[1] != j.scenario {
			t.Fatalf("args %v", a)
		}
	}
	for _, s := range allScenarios {
		if !seen[s] && supports("serve", s) {
			t.Errorf("suite on serve misses %s", s)
		}
	}
	for _, j := range suite("peer", true, false) {
		if !j.capped {
			t.Errorf("peer row %s runs uncapped parameters", j.scenario)
		}
	}
	if len(suite("baseline", false, false)) == 0 || slices.ContainsFunc(suite("baseline", false, false), func(j job) bool { return j.capped }) {
		t.Error("baseline without the peer: want only full rows")
	}
}

// The baseline target runs as a process of its own (`bench baseline-serve`)
// and its RSS is that process's.
func TestBaselineChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := startServer(ctx, "baseline", &options{noDelay: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	var r result
	if err := hot(ctx, newClient(s.endpoint, "bare", true), 4, 40, &r); err != nil || r.OK != 40 {
		t.Fatalf("hot: %+v %v", r, err)
	}
	if s.proc == nil || s.rssMiB() <= 0 {
		t.Fatal("baseline is not a child process with an RSS")
	}
}
