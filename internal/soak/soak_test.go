package soak_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/internal/soak"
)

// TestSoakChild is the server process the soak kills.
func TestSoakChild(t *testing.T) {
	if os.Getenv(soak.EnvMode) == "" {
		t.Skip("the server process of TestCrashSoak")
	}
	soak.RunChild()
}

// kills is the number of kills per backend: SOAK_KILLS, or def (the short
// form CI runs).
func kills(t *testing.T, def int) int {
	if v := os.Getenv("SOAK_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SOAK_KILLS=%q: want a positive number", v)
		}
		return n
	}
	return def
}

func options(t *testing.T, n int) soak.Options {
	var seed uint64
	if v := os.Getenv("SOAK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	var budget time.Duration
	if v := os.Getenv("SOAK_FOR"); v != "" {
		var err error
		if budget, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SOAK_FOR=%q: %v", v, err)
		}
	}
	maxAcks := 0
	if v := os.Getenv("SOAK_MAX_ACKS"); v != "" {
		maxAcks, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	if v := os.Getenv("SOAK_DIR"); v != "" {
		// Kept after the run: the server's log (store.log) explains a
		// violation.
		dir = filepath.Join(v, strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return soak.Options{
		Kills:   n,
		For:     budget,
		MaxAcks: maxAcks,
		Dir:     dir,
		Seed:    seed,
		Log:     logWriter{t},
		Command: func(env []string) *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSoakChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), env...)
			cmd.Stderr = os.Stderr
			return cmd
		},
	}
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	if os.Getenv("SOAK_VERBOSE") != "" || !isRoundLine(b) {
		w.t.Log(string(b))
	}
	return len(b), nil
}

func isRoundLine(b []byte) bool { return len(b) > 8 && string(b[:8]) == "  round " }

func check(t *testing.T, r *soak.Report, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%v (so far: %v)", err, r)
	}
	t.Logf("SOAK %v", r)
	if r.Violations() > 0 {
		t.Errorf("%d violations:", r.Violations())
		for _, e := range r.Examples {
			t.Errorf("  %s", e)
		}
	}
	if r.AlarmsPendingAtKill == 0 && r.Armed >= 10 {
		t.Errorf("no alarm was pending at any kill: recovery of alarms went unexercised")
	}
}

// TestCrashSoak runs mixed load (actions, connections with events, alarms,
// queue sends and receives) against a server process on each backend,
// kills it with SIGKILL at random points SOAK_KILLS times and restarts it,
// then audits: no acknowledged write lost, no effect applied twice (alarms
// are at least once), every acknowledged alarm fired, every actor answers
// after each restart, nothing that was never sent appears. The short form
// (a few kills per backend) runs in CI; `make soak` runs the long one.
func TestCrashSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	// The backends soak side by side (separate stores, separate server
	// processes): the short form's time is the slowest one's.
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		o := options(t, kills(t, 3))
		r, err := soak.Run(context.Background(), soak.Backend{Name: "embedded", Mode: "embedded"}, o)
		check(t, r, err)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		if os.Getenv("SOAK_SKIP_POSTGRES") != "" {
			t.Skip("SOAK_SKIP_POSTGRES")
		}
		db := enginetest.FreshDatabase(t)
		o := options(t, kills(t, 2))
		r, err := soak.Run(context.Background(), soak.Backend{Name: "postgres", Mode: "postgres", PostgresURL: db}, o)
		check(t, r, err)
	})
	t.Run("engine", func(t *testing.T) {
		t.Parallel()
		if os.Getenv("SOAK_SKIP_ENGINE") != "" {
			t.Skip("SOAK_SKIP_ENGINE")
		}
		n := kills(t, 1)
		if v := os.Getenv("SOAK_ENGINE_KILLS"); v != "" {
			n, _ = strconv.Atoi(v)
		}
		// Short runner thresholds (docs/engine-runner.md §10): a dead
		// runner's actors move after 3 s; an actor whose runner died
		// while starting it (the soak's actors sleep after 1.5 s idle and
		// wake often) is given up after 5 s rather than the default 30 s;
		// a runner 2.5 s without a ping gets no new actors (default 10 s:
		// the engine could place a restarted actor on the dead runner).
		// Each runner gets a key of its own: one restarted with its
		// predecessor's key finds that predecessor's actors stuck (the
		// engine keeps them placed on the key; observed, 4 minutes and
		// counting), so "newer runner wins" does not speed a kill up.
		eng := enginetest.Start(t, enginetest.Options{Pegboard: map[string]any{
			"envoy_update_ping_interval": 1000,
			"envoy_ping_timeout":         3000,
			"envoy_lost_threshold":       3000,
			"actor_start_threshold":      5000,
			"envoy_eligible_threshold":   2500,
			// An actor lost again and again (its runner killed, or
			// starved past the 3 s threshold on this loaded machine)
			// waits a backoff of 2 s × 2^n before the engine starts it
			// again: up to 8.5 minutes by default, longer than the soak
			// lets an actor take to answer. Capped at 16 s.
			"reschedule_backoff_max_exponent": 3,
		}})
		o := options(t, n)
		o.Actors = 4 // the engine stalls creating more than a handful of actors
		if o.MaxAcks == 0 {
			// Kills are what the engine soak is short of: a round's
			// load is short, its restart is not.
			o.MaxAcks = 20
		}
		r, err := soak.Run(context.Background(), soak.Backend{Name: "engine", Mode: "engine", EngineURL: eng.GuardURL(), Resends: true, Timeout: 2 * time.Minute}, o)
		check(t, r, err)
	})
}

// TestCrashSoakSeesLoss runs the soak on the in-memory store, which keeps
// nothing across a kill: the audit must report the acknowledged writes and
// alarms as lost (and nothing as doubled or phantom), or it could not see
// the failures it exists to find.
func TestCrashSoakSeesLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	o := options(t, 1)
	o.MaxAcks = 60
	o.Seed = 7 // kill points with acknowledged writes before each kill
	r, err := soak.Run(context.Background(), soak.Backend{Name: "memory", Mode: "memory", Timeout: 3 * time.Second}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", r)
	if r.Lost == 0 || (r.Armed > 0 && r.AlarmsNeverFire == 0) {
		t.Errorf("the in-memory store lost everything at each kill, but the audit reports %d writes lost and %d of %d alarms never fired", r.Lost, r.AlarmsNeverFire, r.Armed)
	}
	if r.Doubled != 0 || r.Phantom != 0 || r.Stuck != 0 {
		t.Errorf("false alarms: doubled %d, phantom %d, stuck %d", r.Doubled, r.Phantom, r.Stuck)
	}
}
