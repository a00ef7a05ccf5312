package rivet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rivetgo/rivet/internal/clock"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/inspector"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

// Version is this module's version, reported by /metadata.
const Version = "0.1.0-dev"

// Registry is a validated set of actor definitions.
type Registry struct {
	behaviors []engine.Behavior
	names     []string
	defs      map[string]Definition
}

// NewRegistry validates actor definitions: every action signature must be
// servable, every state encodable, every name unique.
func NewRegistry(defs ...Definition) (*Registry, error) {
	r := &Registry{defs: map[string]Definition{}}
	seen := map[string]bool{}
	for _, d := range defs {
		if seen[d.Name()] {
			return nil, fmt.Errorf("rivet: actor name %q registered twice", d.Name())
		}
		seen[d.Name()] = true
		b, err := d.build()
		if err != nil {
			return nil, err
		}
		r.behaviors = append(r.behaviors, b)
		r.defs[d.Name()] = d
		r.names = append(r.names, d.Name())
	}
	sort.Strings(r.names)
	return r, nil
}

// MustRegistry is NewRegistry that panics on an invalid definition, for
// package-level registries.
func MustRegistry(defs ...Definition) *Registry {
	r, err := NewRegistry(defs...)
	if err != nil {
		panic(err)
	}
	return r
}

// Names lists the registered actor names.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Clock is the runtime's source of time; rivettest provides a fake one.
type Clock = clock.Clock

// Timer is a pending Clock.AfterFunc call.
type Timer = clock.Timer

// Config configures a Runtime. The zero value runs on the embedded store
// in the default data directory.
type Config struct {
	// Driver is the storage driver. Nil opens the embedded store in
	// DataDir; the runtime then owns it and closes it on Stop.
	Driver rivetdriver.Driver
	// DataDir is the embedded store's directory. Empty means
	// $RIVET_DATA_DIR, or else a directory under the user's data dir
	// that is unique to the working directory (see DefaultDataDir).
	DataDir string
	// PostgresURL stores actors in PostgreSQL (rivetdriver/rivetpg) when
	// Driver is nil: postgres://user:pass@host:5432/db. Start applies the
	// schema's pending migrations.
	PostgresURL string
	// StoreTimeout bounds one store call the runtime makes on its own
	// (default 30 s): writing a batch of turns, and loading an actor
	// when it wakes. Past it the batch's callers get actor.commit_failed
	// (their actors restart from what is durable) and a wake fails with
	// actor.storage_error, so a store that hangs for one actor holds
	// neither the other actors' writes nor that actor forever.
	StoreTimeout time.Duration
	// Listen is the address ListenAndServe listens on when it is given
	// none (see ListenAddr).
	Listen string
	// Logger receives the runtime's and the actors' logs. Nil builds one
	// on standard error from Log.
	Logger *slog.Logger
	// Log configures the logger built when Logger is nil.
	Log LogConfig
	// Clock defaults to the wall clock.
	Clock Clock
	// Region is reported to actors as their region.
	Region string
	// MailboxSize bounds each actor's queue of pending calls (default
	// 10,000); past it calls fail with actor.overloaded.
	MailboxSize int
	// MaxQueueTime bounds the time a call (an action, a queue send) may
	// wait for the calls ahead of it on one actor (default 30 s; negative:
	// no bound). A call that would wait longer, estimated from the calls
	// waiting and the actor's recent time per call, is refused at once
	// with actor.overloaded; one that waited longer anyway fails the same
	// way when its turn comes. Either way the call did not run, so it is
	// safe to retry.
	MaxQueueTime time.Duration
	// MaxConnectionsPerActor bounds the connections one actor holds open
	// (RivetKit connections: Connect, useActor; 0: no bound). Past it a
	// new connection is refused with actor.too_many_connections.
	// Hibernated connections of a sleeping actor count once it wakes.
	MaxConnectionsPerActor int
	// MaxAwakeActors bounds the actors awake in memory at once (default
	// 100,000; negative: no bound). Past it the actors idle the longest
	// go to sleep before their sleep timeout, as they would have later;
	// busy actors and actors that may not sleep stay awake, so the bound
	// is soft. A sleeping actor costs no memory.
	MaxAwakeActors int
	// Gateway configures the HTTP/WebSocket gateway (Runtime.Handler).
	Gateway GatewayConfig
	// Inspector configures the admin inspector (/ui/ and /inspector/ on
	// Runtime.Handler; see docs/inspector.md).
	Inspector InspectorConfig
	// Engine, when its URL is set, makes StartEngineRunner run the
	// registry as a runner of a Rivet Engine (runner.go).
	Engine EngineConfig
}

// InspectorConfig configures the inspector: a web UI at /ui/ and a JSON
// API at /inspector/ that show and change actors (state, connections,
// events, logs, alarms, KV, actions).
type InspectorConfig struct {
	// Token is the admin token that requests must carry
	// (Authorization: Bearer <token>). Empty means $RIVET_ADMIN_TOKEN;
	// when that is empty too, the inspector is open only to clients on a
	// loopback address.
	Token string
	// Disabled turns the inspector off: its routes answer not found and
	// the engine keeps no recent events or log lines.
	Disabled bool
}

// DefaultDataDir is where the embedded store lives when neither
// Config.DataDir nor RIVET_DATA_DIR is set: $XDG_DATA_HOME/rivetgo (or
// ~/.local/share/rivetgo) / <working dir name>-<hash of its path>, so that
// each project gets its own store.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("RIVET_DATA_DIR"); d != "" {
		return d, nil
	}
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("rivet: no data dir: set RIVET_DATA_DIR: %w", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("rivet: no data dir: set RIVET_DATA_DIR: %w", err)
	}
	sum := sha256.Sum256([]byte(wd))
	return filepath.Join(base, "rivetgo", filepath.Base(wd)+"-"+hex.EncodeToString(sum[:])[:12]), nil
}

// Runtime runs the actors of a registry. Create one with Start.
type Runtime struct {
	gwConfig GatewayConfig
	gwOnce   sync.Once
	gw       http.Handler
	// inspConfig configures the inspector routes of Handler; insp serves
	// them (nil when disabled or before Handler).
	inspConfig InspectorConfig
	insp       *inspector.Handler

	reg        *Registry
	e          *engine.Engine
	driver     rivetdriver.Driver
	ownsDriver bool
	dataDir    string
	store      string // the store as WriteBanner shows it
	log        *slog.Logger
}

// syncClock is implemented by fake clocks whose timer callbacks should
// wait for the work they trigger (see rivettest).
type syncClock interface{ SyncTimers() bool }

// Start starts a runtime for reg.
func Start(ctx context.Context, reg *Registry, cfg *Config) (*Runtime, error) {
	if reg == nil {
		return nil, errors.New("rivet: Start needs a registry")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	rt := &Runtime{reg: reg, driver: cfg.Driver, log: cfg.Logger, gwConfig: cfg.Gateway, inspConfig: cfg.Inspector}
	if rt.log == nil {
		l, err := NewLogger(os.Stderr, cfg.Log)
		if err != nil {
			return nil, err
		}
		rt.log = l
	}
	if rt.driver == nil && cfg.PostgresURL != "" {
		d, err := rivetpg.Open(ctx, cfg.PostgresURL, &rivetpg.Options{AutoMigrate: true})
		if err != nil {
			return nil, err
		}
		rt.driver, rt.ownsDriver, rt.store = d, true, "postgres, "+redactURL(cfg.PostgresURL)
	}
	if rt.driver == nil {
		dir := cfg.DataDir
		if dir == "" {
			var err error
			if dir, err = DefaultDataDir(); err != nil {
				return nil, err
			}
		}
		d, err := rivetembed.Open(dir, nil)
		if err != nil {
			return nil, err
		}
		rt.driver, rt.ownsDriver, rt.dataDir, rt.store = d, true, dir, "embedded, "+dir
		rt.log.Debug("rivet: embedded store opened", "data_dir", dir)
	}
	sync := false
	if sc, ok := cfg.Clock.(syncClock); ok {
		sync = sc.SyncTimers()
	}
	e, err := engine.New(engine.Config{
		Driver: rt.driver, Behaviors: reg.behaviors, Clock: cfg.Clock, Log: rt.log,
		Region: cfg.Region, MailboxSize: cfg.MailboxSize, MaxQueueTime: maxQueueTime(cfg.MaxQueueTime), MaxConnectionsPerActor: cfg.MaxConnectionsPerActor, MaxAwake: cfg.MaxAwakeActors, SyncTimers: sync,
		Inspect: !cfg.Inspector.Disabled, StoreTimeout: cfg.StoreTimeout,
	})
	if err == nil {
		err = e.Start(ctx)
	}
	if err != nil {
		if rt.ownsDriver {
			_ = rt.driver.Close()
		}
		return nil, err
	}
	rt.e = e
	return rt, nil
}

// DataDir is the embedded store's directory, empty with another driver.
func (rt *Runtime) DataDir() string { return rt.dataDir }

// Client returns an in-process client in the default namespace.
// In runner mode it goes through the engine, in the runner's namespace.
func (rt *Runtime) Client() *Client { return newClient(rt.e, "") }

// DefaultNamespace is the namespace of Runtime.Client and of network
// callers that name none, as in RivetKit.
const DefaultNamespace = "default"

// Stop shuts the runtime down gracefully: new calls are refused, every
// awake actor runs onSleep and commits, background work is canceled and
// awaited, and the store is closed if the runtime opened it.
func (rt *Runtime) Stop(ctx context.Context) error {
	err := rt.e.Stop(ctx)
	if rt.ownsDriver {
		if cerr := rt.driver.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Engine exposes the engine to the repository's own packages (gateway,
// inspector, test kit). It is not part of the stable API.
func (rt *Runtime) Engine() *engine.Engine { return rt.e }

// DefaultMaxQueueTime is Config.MaxQueueTime's default.
const DefaultMaxQueueTime = 30 * time.Second

// maxQueueTime is the engine's bound for Config.MaxQueueTime d: the
// default for 0, none (0) for a negative d.
func maxQueueTime(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultMaxQueueTime
	case d < 0:
		return 0
	}
	return d
}
