package rivet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/internal/inspector"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/internal/remote"
	"github.com/rivetgo/rivet/internal/runner"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetengine"
)

// EngineConfig connects a registry to a Rivet Engine as one of its
// runners (runner mode): the engine places actors on the runner, tunnels
// client requests to it and stores actor data in its KV.
type EngineConfig struct {
	// URL is the engine's endpoint (its guard), e.g.
	// http://127.0.0.1:6420.
	URL string
	// Namespace defaults to "default".
	Namespace string
	// Runner is the runner pool; defaults to "default".
	Runner string
	// RunnerKey identifies this process to the engine; defaults to a
	// random key. Two processes must not share one.
	RunnerKey string
	// Token authenticates the runner, when the engine wants one.
	Token string
	// WrapKV, when set, wraps the engine KV through which the runner
	// stores its actors' data: a test's seam for storage faults (a
	// *rivetfault.Driver). An interface, so that EngineConfig stays
	// comparable.
	WrapKV interface {
		WrapEngineKV(rivetengine.KV) rivetengine.KV
	}
}

// EngineRunner is a runtime serving as a runner of a Rivet Engine.
type EngineRunner struct {
	rt     *Runtime
	r      *runner.Runner
	drv    *rivetengine.Driver
	cancel context.CancelFunc
	done   chan struct{}
	runErr error

	ns       string
	url      string
	mu       sync.Mutex
	stopping map[string]bool
}

// StartEngineRunner starts a runtime for reg whose actors are placed,
// reached and stored by the Rivet Engine at cfg.Engine.URL, and connects
// it. The
// connection is kept (and re-established) until Stop. cfg's storage
// settings are ignored: actor data lives in the engine.
func StartEngineRunner(ctx context.Context, reg *Registry, cfg *Config) (*EngineRunner, error) {
	var ec EngineConfig
	if cfg != nil {
		ec = cfg.Engine
	}
	if ec.URL == "" {
		return nil, errors.New("rivet: runner mode needs the engine's URL")
	}
	if err := checkRunnerKey(ec.RunnerKey); err != nil {
		return nil, err
	}
	if ec.Namespace == "" {
		ec.Namespace = DefaultNamespace
	}
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	er := &EngineRunner{ns: ec.Namespace, url: ec.URL, stopping: map[string]bool{}}
	var kv runnerKV
	var store rivetengine.KV = &kv
	if ec.WrapKV != nil {
		store = ec.WrapKV.WrapEngineKV(store)
	}
	er.drv = rivetengine.New(store)
	c.Driver = er.drv
	rt, err := Start(ctx, reg, &c)
	if err != nil {
		return nil, err
	}
	er.rt = rt
	// Actors sleep with connections open: the engine keeps the clients'
	// sockets (hibernatable WebSockets), and only the engine starts
	// actors, so a client leaving a sleeping actor does not wake it here
	// (its record is dropped at the actor's next start).
	rt.e.SetParkedCloseWakes(false)
	er.r = runner.New(runner.Config{
		Endpoint: ec.URL, Namespace: ec.Namespace, Pool: ec.Runner, Key: ec.RunnerKey, Token: ec.Token,
		Names: reg.Names(), Actors: (*engineActors)(er), Handler: rt.Handler(), Log: rt.log,
	})
	kv.r = er.r
	// An actor that would sleep asks the engine, which answers with a
	// stop command; it keeps serving the requests the engine routes to
	// it until then (stopping first, it would be woken here by them and
	// stopped once more).
	rt.e.SleepThrough(func(id string) { er.r.Intent(id, true) })
	rt.e.OnDestroy(func(id string) {
		er.mu.Lock()
		stopping := er.stopping[id]
		er.mu.Unlock()
		if stopping {
			return // the engine asked for it
		}
		// Destroyed by its own code: nothing may bring it back here
		// (a request meanwhile must not create it afresh); the engine
		// answers the intent with a stop and marks it destroyed.
		if gen, ok := er.r.Generation(id); ok {
			er.drv.Release(id, uint64(gen))
		}
		er.r.Intent(id, false)
	})
	rt.e.OnAlarm(func(id string, gen uint64, at time.Time) { er.r.SetAlarm(id, uint32(gen), at) })
	// Actors' clients (and rt.Client) call through the engine, which
	// reaches an actor wherever it is placed.
	remotes.Store(rt.e, &remote.Client{
		Endpoint: engineHTTP(ec.URL), Namespace: ec.Namespace, Token: ec.Token, Runner: ec.Runner,
		Enc: protocol.BARE, HTTP: http.DefaultClient, UserAgent: "rivetgo/" + Version,
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	er.cancel, er.done = cancel, make(chan struct{})
	go func() {
		defer close(er.done)
		er.runErr = er.r.Run(runCtx)
	}()
	return er, nil
}

// runnerKV breaks the cycle driver → runner → runtime → driver.
type runnerKV struct{ r *runner.Runner }

func (k *runnerKV) KV(ctx context.Context, id string, req envoy.KVRequestData) (envoy.KVResponseData, error) {
	return k.r.KV(ctx, id, req)
}

// Runtime is the runtime the engine's actors run in.
func (er *EngineRunner) Runtime() *Runtime { return er.rt }

// Handler serves what a runner keeps on its local listener (rivet serve
// listens on the listen setting in runner mode too): Prometheus metrics
// at /metrics, /health, and the inspector (/ui/, /inspector/…) over the
// actors running here. Actor traffic goes through the engine: any other
// path answers 404 with a JSON error that says so.
func (er *EngineRunner) Handler() http.Handler {
	gw := er.rt.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/metrics" || p == "/health" || inspector.Owns(p) {
			gw.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		b, _ := json.Marshal(map[string]any{
			"group": "runner", "code": "use_engine",
			"message": "This is a Rivet Engine runner: actors are reached through the engine at " + er.url +
				"; this listener serves /metrics, /health and the inspector (/ui/).",
		})
		_, _ = w.Write(b)
	})
}

// RunnerKey is the key the runner connected with.
func (er *EngineRunner) RunnerKey() string { return er.r.Key() }

// Ready waits until the runner is connected to the engine.
func (er *EngineRunner) Ready(ctx context.Context) error { return er.r.WaitReady(ctx) }

// Done is closed when the runner's connection loop ended: after Stop, or
// when the engine evicted it (Err says).
func (er *EngineRunner) Done() <-chan struct{} { return er.done }

// Err is why the connection loop ended, once Done is closed: nil after
// Stop, an error when another process with the same runner key took over.
func (er *EngineRunner) Err() error {
	select {
	case <-er.done:
		return er.runErr
	default:
		return nil
	}
}

// Stop shuts the runner down gracefully: it tells the engine it is going
// away, and the engine stops each of its actors (their stop hooks run
// once, their last commits land) and starts them on another runner at
// their next request, so callers see no failed request. Then the runtime
// stops and the connection closes. When the engine cannot be told (no
// connection) or ctx ends first, the remaining actors are stopped here.
// checkRunnerKey refuses a runner key the engine would refuse at every
// connection attempt (it allows 3 to 128 characters); empty means a
// random key.
func checkRunnerKey(k string) error {
	if k == "" || (len(k) >= 3 && len(k) <= 128) {
		return nil
	}
	return fmt.Errorf("rivet: runner_key %q must be 3 to 128 characters long (the engine refuses other keys)", k)
}

// Serve serves the runner's local handler (metrics, health, the
// inspector: Handler) on l until ctx is canceled or the runner ends
// (Done), then stops the runner gracefully, waiting up to 30 s for the
// engine to move its actors, and closes l.
func (er *EngineRunner) Serve(ctx context.Context, l net.Listener) error {
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer lcancel()
	lerr := make(chan error, 1)
	go func() { lerr <- er.rt.ServeHandler(lctx, l, er.Handler()) }()
	var serr error
	select {
	case <-ctx.Done():
	case <-er.Done():
	case serr = <-lerr:
		serr = fmt.Errorf("local listener: %w", serr)
	}
	er.rt.log.Info("stopping: the engine moves this runner's actors")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := errors.Join(serr, er.Err(), er.Stop(sctx))
	lcancel()
	if serr == nil {
		if e := <-lerr; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// RunnerListener listens for a runner's local handler on addr (see
// ListenAddr). An empty addr without $PORT tries the default address,
// which a Rivet Engine on the same machine usually holds (its guard's
// port is the same), and falls back to a free loopback port.
func RunnerListener(addr string) (net.Listener, error) {
	a := ListenAddr(addr)
	l, err := net.Listen("tcp", a)
	if err == nil {
		return l, nil
	}
	if addr != "" || os.Getenv("PORT") != "" {
		return nil, fmt.Errorf("cannot listen on %s: %w", a, err)
	}
	l, err2 := net.Listen("tcp", "127.0.0.1:0")
	if err2 != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", a, err)
	}
	return l, nil
}

func (er *EngineRunner) Stop(ctx context.Context) error {
	if err := er.r.Drain(ctx); err != nil {
		er.rt.log.Warn("engine runner: drain incomplete; stopping the remaining actors here", "err", err)
	}
	err := er.rt.Stop(ctx)
	remotes.Delete(er.rt.e)
	er.cancel()
	select {
	case <-er.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// engineActors carries out the engine's start and stop commands.
type engineActors EngineRunner

func (a *engineActors) Start(ctx context.Context, act runner.Actor) error {
	key, err := actorkey.Deserialize(act.Key)
	if err != nil {
		return fmt.Errorf("actor key %q: %w", act.Key, err)
	}
	if !a.rt.e.Registered(act.Name) {
		return fmt.Errorf("actor name %q is not in this registry", act.Name)
	}
	a.mu.Lock()
	delete(a.stopping, act.ID)
	a.mu.Unlock()
	a.drv.Place(rivetdriver.ActorRecord{
		ID: act.ID, Namespace: a.ns, Name: act.Name, Key: key, Input: act.Input,
		CreatedAt: time.UnixMilli(act.CreateTs), Generation: uint64(act.Generation),
	})
	// The WebSockets the engine kept for the actor: their connections are
	// rebuilt from their records at activation (no connect hooks).
	var recs []engine.ConnRecord
	if len(act.Hibernating) > 0 {
		rows, err := a.drv.KVList(ctx, act.ID, rivetdriver.ListOptions{Prefix: engine.ConnRecordPrefix()})
		if err != nil {
			a.drv.Release(act.ID, uint64(act.Generation))
			return fmt.Errorf("load connection records: %w", err)
		}
		for _, row := range rows {
			if r, err := engine.DecodeConnRecord(row.Key, row.Value); err == nil && r.Tunnel != nil {
				recs = append(recs, r)
			}
		}
	}
	a.r.Restore(ctx, act.ID, act.Hibernating, recs)
	// An empty turn activates the actor (create or load, start hooks) and
	// returns once that is durable.
	if err := a.rt.e.Enter(ctx, act.ID, func(*engine.Turn) error { return nil }); err != nil {
		a.drv.Release(act.ID, uint64(act.Generation))
		return err
	}
	return nil
}

func (a *engineActors) Stop(ctx context.Context, id string, gen uint32, reason envoy.StopActorReason) error {
	a.mu.Lock()
	a.stopping[id] = true
	a.mu.Unlock()
	a.drv.Stopping(id, uint64(gen))
	defer func() {
		a.drv.Release(id, uint64(gen))
		a.mu.Lock()
		delete(a.stopping, id)
		a.mu.Unlock()
	}()
	switch reason {
	case envoy.StopActorReasonLost:
		// The engine gave the actor up: nothing more may be written.
		a.drv.Release(id, uint64(gen))
		return a.rt.e.Sleep(ctx, id)
	case envoy.StopActorReasonDestroy:
		return a.rt.e.Destroy(ctx, id)
	default:
		return a.rt.e.Sleep(ctx, id)
	}
}

// engineHTTP is the engine's URL as an http(s) endpoint without a
// trailing slash.
func engineHTTP(u string) string {
	u = strings.TrimRight(u, "/")
	if strings.HasPrefix(u, "ws") {
		u = "http" + strings.TrimPrefix(u, "ws")
	}
	return u
}

// setEngineURL sets the engine URL; user info in it (namespace:token@)
// sets the namespace and the token, as RivetKit's endpoint does.
func setEngineURL(c *Config, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return fmt.Errorf("want the engine's URL, e.g. http://127.0.0.1:6420")
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("want an http, https, ws or wss URL")
	}
	if u.User != nil {
		c.Engine.Namespace = u.User.Username()
		if tok, ok := u.User.Password(); ok {
			c.Engine.Token = tok
		}
		u.User = nil
	}
	c.Engine.URL = u.String()
	return nil
}

// runnerMode reports whether e is the engine of a runtime serving as a
// runner of a Rivet Engine.
func runnerMode(e *engine.Engine) bool {
	_, ok := remotes.Load(e)
	return ok
}
