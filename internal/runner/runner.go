// Package runner connects the runtime to a Rivet Engine as one of its
// runners ("envoys"): the engine places actors here with start and stop
// commands, tunnels client HTTP requests to them over the runner's one
// WebSocket, and keeps their data in its per-actor KV (used by the
// rivetdriver/rivetengine driver through Runner.KV).
//
// The wire protocol is internal/envoy (version 8); docs/engine-runner.md
// describes the flows. The runner is a second front door beside the
// gateway: a tunnelled request is served by the same http.Handler as a
// local one, under the path /gateway/{actorId}/….
package runner

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/envoy"
)

// Config configures a Runner.
type Config struct {
	// Endpoint is the engine's guard URL (http, https, ws or wss).
	Endpoint string
	// Namespace defaults to "default".
	Namespace string
	// Pool is the runner pool (pool_name); defaults to "default".
	Pool string
	// Key identifies this runner process (envoy_key); defaults to a
	// random id. Two processes must never share one: the engine evicts
	// the older connection.
	Key string
	// Token is sent as the subprotocol rivet_token.TOKEN and as a bearer
	// token on API calls.
	Token string
	// Version is the deployment version (default 1).
	Version uint32
	// Names are the actor names of the registry, announced in the
	// handshake.
	Names []string
	// Actors starts and stops actors in the runtime.
	Actors Actors
	// Handler serves tunnelled requests (the gateway).
	Handler http.Handler
	// NoRunnerConfig skips the upsert of the pool's runner config
	// before connecting.
	NoRunnerConfig bool
	Log            *slog.Logger
	// Now is the clock of the write fence; defaults to time.Now (tests
	// replace it).
	Now func() time.Time
}

// Actors is the runtime side of the start and stop commands.
type Actors interface {
	// Start activates the actor under the engine's id and generation and
	// returns once it can serve.
	Start(ctx context.Context, a Actor) error
	// Stop stops the actor for the given reason and returns once its last
	// commit is settled.
	Stop(ctx context.Context, id string, generation uint32, reason envoy.StopActorReason) error
}

// Actor is what a start command says about an actor.
type Actor struct {
	ID         string
	Name       string
	Key        string // serialized (internal/actorkey)
	Generation uint32
	Input      []byte
	CreateTs   int64
	// Hibernating lists the WebSockets the engine kept open for the
	// actor; Actors.Start calls Runner.Restore with them before the
	// actor activates.
	Hibernating []envoy.HibernatingRequest
}

// ErrNotConnected fails KV requests while the engine connection is down:
// a runner that cannot reach the engine must not write (it may have lost
// its actors).
var ErrNotConnected = errors.New("runner: not connected to the engine")

// ErrWriteFenced fails KV writes while the engine's last ping is too old
// (see Runner.Writable): the engine may already have given this runner's
// actors to another runner.
var ErrWriteFenced = errors.New("runner: no engine ping for too long; KV writes refused (the engine may have moved this runner's actors)")

// FenceMargin is how much younger than the engine's lost threshold the
// last ping must be for a KV write to be sent (at most a third of the
// threshold when that is short).
const FenceMargin = 5 * time.Second

type genKey struct {
	actor string
	gen   uint32
}

// Runner is one connection to the engine, reconnected until Run's context
// ends or the engine evicts it.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu struct {
		sync.Mutex
		conn       *websocket.Conn
		ready      chan struct{} // closed while connected and initialized
		nextKV     uint32
		kv         map[uint32]chan kvResult
		lastCmd    map[genKey]int64
		nextEvent  map[genKey]int64
		unacked    []envoy.EventWrapper
		actors     map[string]*actorQueue
		generation map[string]uint32
		requests   map[[8]byte]*pendingRequest
		serving    map[[8]byte]context.CancelFunc // requests being served, by requestKey
		sockets    map[[8]byte]*tunnelSocket
		pingAt     time.Time
		lostAfter  time.Duration // the engine's envoyLostThreshold
		lostTimer  *time.Timer
		// alarms is per actor generation: whether Running was sent
		// (alarm times go straight out then) and the time reported
		// before that, sent right after Running.
		alarms   map[genKey]*alarmState
		draining bool
		// actorRequests counts tunnelled requests (and client messages
		// of hibernatable WebSockets) in flight per actor.
		actorRequests map[string]int
		// stopping: a stop command is being carried out for the actor.
		stopping map[string]bool
		// missing: per actor starting, the hibernating requests Restore
		// found no socket for.
		missing map[string][]envoy.HibernatingRequest
	}
	// evMu keeps an actor's events in index order on the wire: the
	// engine drops an event whose index is not above the last it took.
	evMu    sync.Mutex
	writeMu sync.Mutex
	// drained is signaled when an actor stopped or the last tunnelled
	// request in flight was answered (Drain waits on it).
	drained  chan struct{}
	inflight atomic.Int64
	wg       sync.WaitGroup
	local    local
}

type alarmState struct {
	running bool
	pending *time.Time
	// intent is a sleep or stop intent made before Running was sent,
	// sent right after it (the engine ignores an intent of an actor it
	// has not seen running).
	intent envoy.ActorIntent
}

type kvResult struct {
	data envoy.KVResponseData
	err  error
}

// New returns a runner; Run connects it.
func New(cfg Config) *Runner {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.Pool == "" {
		cfg.Pool = "default"
	}
	if cfg.Key == "" {
		var b [16]byte
		_, _ = crand.Read(b[:])
		cfg.Key = hex.EncodeToString(b[:])
	}
	if cfg.Version == 0 {
		cfg.Version = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Runner{cfg: cfg, log: cfg.Log.With("runner", cfg.Key)}
	r.mu.ready = make(chan struct{})
	r.mu.kv = map[uint32]chan kvResult{}
	r.mu.lastCmd = map[genKey]int64{}
	r.mu.nextEvent = map[genKey]int64{}
	r.mu.actors = map[string]*actorQueue{}
	r.mu.generation = map[string]uint32{}
	r.mu.alarms = map[genKey]*alarmState{}
	r.mu.actorRequests = map[string]int{}
	r.mu.stopping = map[string]bool{}
	r.mu.missing = map[string][]envoy.HibernatingRequest{}
	r.mu.requests = map[[8]byte]*pendingRequest{}
	r.mu.serving = map[[8]byte]context.CancelFunc{}
	r.mu.sockets = map[[8]byte]*tunnelSocket{}
	r.mu.lostAfter = 15 * time.Second
	r.drained = make(chan struct{}, 1)
	return r
}

// Key is the runner's envoy key.
func (r *Runner) Key() string { return r.cfg.Key }

// ErrEvicted is returned by Run when another connection with the same key
// took over.
var ErrEvicted = errors.New("runner: evicted by another runner with the same key")

// Run connects and serves until ctx ends (then it sends Stopping, stops
// nothing itself and closes the socket) or the engine evicts the runner.
func (r *Runner) Run(ctx context.Context) error {
	defer r.closeLocal()
	if !r.cfg.NoRunnerConfig {
		if err := r.upsertRunnerConfig(ctx); err != nil {
			r.log.Warn("engine runner config", "err", err)
		}
	}
	attempt := 0
	for {
		start := time.Now()
		err := r.session(ctx)
		r.disconnected()
		if ctx.Err() != nil {
			// Shutting down, not lost: the timer disconnected armed must
			// not stop actors (or log) after Run returned.
			r.mu.Lock()
			if r.mu.lostTimer != nil {
				r.mu.lostTimer.Stop()
				r.mu.lostTimer = nil
			}
			r.mu.Unlock()
			r.wg.Wait()
			return nil
		}
		if errors.Is(err, ErrEvicted) {
			r.log.Error("engine connection evicted: another runner uses this key; stopping", "err", err)
			r.lose()
			r.wg.Wait()
			return err
		}
		if time.Since(start) > time.Minute {
			attempt = 0
		}
		d := backoff(attempt)
		attempt++
		r.log.Warn("engine connection lost; reconnecting", "err", err, "in", d)
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return nil
		case <-time.After(d):
		}
	}
}

// backoff is exponential from 500 ms to 15 s with ±25% jitter.
func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt, 5)
	d = min(d, 15*time.Second)
	j := time.Duration(rand.Int64N(int64(d) / 2))
	return d*3/4 + j
}

func (r *Runner) baseURL() (*url.URL, error) {
	u, err := url.Parse(r.cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("engine endpoint: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, fmt.Errorf("engine endpoint %q: scheme must be http, https, ws or wss", r.cfg.Endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// ConnectURL is the WebSocket URL of the runner connection.
func (r *Runner) ConnectURL() (string, error) {
	u, err := r.baseURL()
	if err != nil {
		return "", err
	}
	u.Path += "/envoys/connect"
	q := url.Values{}
	q.Set("protocol_version", strconv.Itoa(int(envoy.Version)))
	q.Set("namespace", r.cfg.Namespace)
	q.Set("envoy_key", r.cfg.Key)
	q.Set("version", strconv.FormatUint(uint64(r.cfg.Version), 10))
	q.Set("pool_name", r.cfg.Pool)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (r *Runner) upsertRunnerConfig(ctx context.Context) error {
	u, err := r.baseURL()
	if err != nil {
		return err
	}
	u.Path += "/runner-configs/" + url.PathEscape(r.cfg.Pool)
	u.RawQuery = url.Values{"namespace": {r.cfg.Namespace}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(),
		strings.NewReader(`{"datacenters":{"default":{"normal":{}}}}`))
	if err != nil {
		return err
	}
	req.Header.Set("content-type", "application/json")
	if r.cfg.Token != "" {
		req.Header.Set("authorization", "Bearer "+r.cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("PUT %s: %s: %s", u.Path, resp.Status, strings.TrimSpace(b.String()))
	}
	return nil
}

// session dials, handshakes and reads until the connection ends.
func (r *Runner) session(ctx context.Context) error {
	wsURL, err := r.ConnectURL()
	if err != nil {
		return err
	}
	protos := []string{"rivet"}
	if r.cfg.Token != "" {
		protos = append(protos, "rivet_token."+r.cfg.Token)
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{Subprotocols: protos})
	cancel()
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial engine: %s: %w", resp.Status, err)
		}
		return fmt.Errorf("dial engine: %w", err)
	}
	conn.SetReadLimit(64 << 20)
	r.mu.Lock()
	r.mu.conn = conn
	r.mu.Unlock()
	r.log.Info("engine connection open", "url", wsURL)
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		drained := r.mu.draining
		r.mu.Unlock()
		if !drained {
			_ = r.write(context.Background(), envoy.ToRivetStopping{})
		}
		_ = conn.Close(websocket.StatusNormalClosure, "envoy.shutdown")
	})
	defer stop()
	watchDone := make(chan struct{})
	defer close(watchDone)
	go r.watchStall(func() { _ = conn.CloseNow() }, watchDone)

	names := map[string]envoy.ActorName{}
	for _, n := range r.cfg.Names {
		names[n] = envoy.ActorName{Metadata: "{}"}
	}
	meta := `{"rivetgo":{}}`
	if err := r.write(ctx, envoy.ToRivetMetadata{PrepopulateActorNames: &names, Metadata: &meta}); err != nil {
		return err
	}
	// Reads outlive ctx: on shutdown the close handshake above ends them
	// (a read canceled at once would reset the socket instead).
	rctx := context.WithoutCancel(ctx)
	for {
		typ, data, err := conn.Read(rctx)
		if err != nil {
			if websocket.CloseStatus(err) != -1 {
				var ce websocket.CloseError
				if errors.As(err, &ce) && strings.HasPrefix(ce.Reason, "ws.eviction") {
					return ErrEvicted
				}
			}
			return err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		msg, err := envoy.DecodeToEnvoy(data)
		if err != nil {
			r.log.Warn("engine sent an undecodable message", "err", err)
			continue
		}
		r.handle(ctx, msg)
	}
}

// write sends one message on the current connection.
func (r *Runner) write(ctx context.Context, m envoy.ToRivet) error {
	b, err := envoy.EncodeToRivet(m)
	if err != nil {
		return err
	}
	r.mu.Lock()
	conn := r.mu.conn
	r.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return conn.Write(wctx, websocket.MessageBinary, b)
}

// disconnected fails what waits on the lost connection.
func (r *Runner) disconnected() {
	r.mu.Lock()
	if r.mu.conn != nil {
		_ = r.mu.conn.CloseNow()
	}
	r.mu.conn = nil
	select {
	case <-r.mu.ready:
		r.mu.ready = make(chan struct{})
	default:
	}
	kv := r.mu.kv
	r.mu.kv = map[uint32]chan kvResult{}
	if r.mu.lostTimer == nil {
		// Without a new init within the engine's lost threshold, the
		// engine has rescheduled our actors elsewhere: stop them here.
		r.mu.lostTimer = time.AfterFunc(r.mu.lostAfter, r.lose)
	}
	r.mu.Unlock()
	for _, ch := range kv {
		ch <- kvResult{err: ErrNotConnected}
	}
	r.closeSockets()
	r.log.Info("engine connection closed")
}

// Connected reports whether the runner is connected and initialized.
func (r *Runner) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.mu.ready:
		return true
	default:
		return false
	}
}

func (r *Runner) handle(ctx context.Context, msg envoy.ToEnvoy) {
	switch m := msg.(type) {
	case envoy.ToEnvoyInit:
		r.log.Info("engine connection ready", "lost_threshold_ms", m.Metadata.EnvoyLostThreshold)
		r.mu.Lock()
		r.mu.pingAt = r.cfg.Now()
		if m.Metadata.EnvoyLostThreshold > 0 {
			r.mu.lostAfter = time.Duration(m.Metadata.EnvoyLostThreshold) * time.Millisecond
		}
		if r.mu.lostTimer != nil {
			r.mu.lostTimer.Stop()
			r.mu.lostTimer = nil
		}
		select {
		case <-r.mu.ready:
		default:
			close(r.mu.ready)
		}
		r.mu.Unlock()
		r.evMu.Lock() // before any newer event of the same actors
		r.mu.Lock()
		resend := append([]envoy.EventWrapper(nil), r.mu.unacked...)
		r.mu.Unlock()
		if len(resend) > 0 {
			_ = r.write(ctx, envoy.ToRivetEvents(resend))
		}
		r.evMu.Unlock()
	case envoy.ToEnvoyPing:
		r.mu.Lock()
		r.mu.pingAt = r.cfg.Now()
		r.mu.Unlock()
		_ = r.write(ctx, envoy.ToRivetPong{Ts: m.Ts})
	case envoy.ToEnvoyCommands:
		r.commands(ctx, m)
	case envoy.ToEnvoyAckEvents:
		r.ackEvents(m.LastEventCheckpoints)
	case envoy.ToEnvoyKVResponse:
		r.mu.Lock()
		ch := r.mu.kv[m.RequestID]
		delete(r.mu.kv, m.RequestID)
		r.mu.Unlock()
		if ch != nil {
			ch <- kvResult{data: m.Data}
		}
	case envoy.ToEnvoyTunnelMessage:
		r.tunnel(ctx, m)
	default:
		r.log.Debug("engine message ignored", "type", fmt.Sprintf("%T", msg))
	}
}

// commands acknowledges a batch of commands and runs each new one on its
// actor's queue (in order per actor).
func (r *Runner) commands(ctx context.Context, cmds envoy.ToEnvoyCommands) {
	var acks []envoy.ActorCheckpoint
	for _, c := range cmds {
		k := genKey{c.Checkpoint.ActorID, c.Checkpoint.Generation}
		r.mu.Lock()
		last, seen := r.mu.lastCmd[k]
		if seen && c.Checkpoint.Index <= last {
			r.mu.Unlock()
			continue // replayed after a reconnect: already handled
		}
		r.mu.lastCmd[k] = c.Checkpoint.Index
		r.mu.Unlock()
		acks = append(acks, c.Checkpoint)
		r.run(c.Checkpoint.ActorID, func() { r.command(ctx, c) })
	}
	if len(acks) > 0 {
		_ = r.write(ctx, envoy.ToRivetAckCommands{LastCommandCheckpoints: acks})
	}
}

func (r *Runner) command(ctx context.Context, c envoy.CommandWrapper) {
	cp := c.Checkpoint
	ctx = context.WithoutCancel(ctx)
	switch m := c.Inner.(type) {
	case envoy.CommandStartActor:
		a := Actor{ID: cp.ActorID, Name: m.Config.Name, Generation: cp.Generation, CreateTs: m.Config.CreateTs}
		if m.Config.Key != nil {
			a.Key = *m.Config.Key
		}
		if m.Config.Input != nil {
			a.Input = *m.Config.Input
		}
		a.Hibernating = m.HibernatingRequests
		r.mu.Lock()
		r.mu.generation[cp.ActorID] = cp.Generation
		delete(r.mu.stopping, cp.ActorID)
		r.mu.Unlock()
		log := r.log.With("actor_id", a.ID, "actor", a.Name, "generation", a.Generation)
		if err := r.cfg.Actors.Start(ctx, a); err != nil {
			log.Warn("actor start failed", "err", err)
			r.takeMissing(cp.ActorID, nil)
			r.dropSockets(cp.ActorID, nil)
			r.mu.Lock()
			if r.mu.generation[cp.ActorID] == cp.Generation {
				delete(r.mu.generation, cp.ActorID)
			}
			delete(r.mu.alarms, genKey{cp.ActorID, cp.Generation})
			r.mu.Unlock()
			r.signalDrain()
			msg := err.Error()
			r.event(ctx, cp.ActorID, cp.Generation, envoy.EventActorStateUpdate{State: envoy.ActorStateStopped{Code: envoy.StopCodeError, Message: &msg}})
			return
		}
		log.Debug("actor started")
		// Its hibernatable sockets are back before Running (as RivetKit
		// does); the engine then replays their unacknowledged messages.
		r.Reopen(cp.ActorID, m.HibernatingRequests, r.takeMissing(cp.ActorID, m.HibernatingRequests))
		// Running, then the alarm: none, then the earliest if the actor
		// has one (as RivetKit does after each start).
		k := genKey{cp.ActorID, cp.Generation}
		r.evMu.Lock()
		r.mu.Lock()
		st := r.mu.alarms[k]
		if st == nil {
			st = &alarmState{}
			r.mu.alarms[k] = st
		}
		st.running = true
		pending, intent := st.pending, st.intent
		st.pending, st.intent = nil, nil
		r.mu.Unlock()
		r.eventLocked(ctx, cp.ActorID, cp.Generation, envoy.EventActorStateUpdate{State: envoy.ActorStateRunning{}})
		r.eventLocked(ctx, cp.ActorID, cp.Generation, envoy.EventActorSetAlarm{})
		if pending != nil {
			ts := pending.UnixMilli()
			r.eventLocked(ctx, cp.ActorID, cp.Generation, envoy.EventActorSetAlarm{AlarmTs: &ts})
		}
		if intent != nil {
			r.eventLocked(ctx, cp.ActorID, cp.Generation, envoy.EventActorIntent{Intent: intent})
		}
		r.evMu.Unlock()
	case envoy.CommandStopActor:
		log := r.log.With("actor_id", cp.ActorID, "generation", cp.Generation, "reason", m.Reason.String())
		r.mu.Lock()
		r.mu.stopping[cp.ActorID] = true
		r.mu.Unlock()
		if m.Reason != envoy.StopActorReasonLost {
			// Requests the engine sent before the stop are answered by
			// this incarnation; the engine holds later ones until the
			// actor runs again (elsewhere, for GoingAway).
			wctx, cancel := context.WithTimeout(ctx, stopRequestWait)
			if err := r.waitRequests(wctx, cp.ActorID); err != nil {
				log.Warn("stopping the actor with requests still in flight", "err", err)
			}
			cancel()
		}
		state := envoy.ActorState(envoy.ActorStateStopped{Code: envoy.StopCodeOK})
		if err := r.cfg.Actors.Stop(ctx, cp.ActorID, cp.Generation, m.Reason); err != nil {
			log.Warn("actor stop failed", "err", err)
			msg := err.Error()
			state = envoy.ActorStateStopped{Code: envoy.StopCodeError, Message: &msg}
		} else {
			log.Debug("actor stopped")
		}
		// Requests that arrived during the stop are answered before
		// Stopped: the engine re-sends a request still open at Stopped to
		// the actor's next instance, which would run a committed turn
		// twice.
		wctx, cancel := context.WithTimeout(ctx, stopRequestWait)
		if err := r.waitRequests(wctx, cp.ActorID); err != nil {
			log.Warn("reporting the actor stopped with requests still in flight", "err", err)
		}
		cancel()
		r.mu.Lock()
		if r.mu.generation[cp.ActorID] == cp.Generation {
			delete(r.mu.generation, cp.ActorID)
		}
		delete(r.mu.alarms, genKey{cp.ActorID, cp.Generation})
		delete(r.mu.stopping, cp.ActorID)
		r.mu.Unlock()
		if m.Reason == envoy.StopActorReasonGoingAway || m.Reason == envoy.StopActorReasonLost {
			// The engine keeps the actor's sockets for its next runner.
			r.dropSockets(cp.ActorID, nil)
		}
		if m.Reason == envoy.StopActorReasonDestroy || m.Reason == envoy.StopActorReasonStopIntent {
			// Gone for good: no alarm may wake it (as RivetKit does).
			r.event(ctx, cp.ActorID, cp.Generation, envoy.EventActorSetAlarm{})
		}
		r.event(ctx, cp.ActorID, cp.Generation, envoy.EventActorStateUpdate{State: state})
		r.signalDrain()
	}
}

// lose stops every actor of this runner without telling the engine: the
// connection has been gone for longer than the engine's lost threshold
// (or another runner took our key), so the engine has given them up.
// Their data was already unwritable (KV requests fail while
// disconnected).
func (r *Runner) lose() {
	r.mu.Lock()
	if r.mu.lostTimer != nil {
		r.mu.lostTimer.Stop()
		r.mu.lostTimer = nil
	}
	select {
	case <-r.mu.ready:
		r.mu.Unlock()
		return // reconnected meanwhile
	default:
	}
	actors := r.mu.generation
	r.mu.generation = map[string]uint32{}
	r.mu.Unlock()
	r.stopLost(actors, "engine unreachable past its lost threshold: stopping this runner's actors")
}

// stopLost stops actors (taken from r.mu.generation) locally, with
// reason Lost, telling the engine nothing.
func (r *Runner) stopLost(actors map[string]uint32, why string) {
	r.signalDrain()
	if len(actors) > 0 {
		r.log.Warn(why, "actors", len(actors))
	}
	for id, gen := range actors {
		r.run(id, func() {
			if err := r.cfg.Actors.Stop(context.Background(), id, gen, envoy.StopActorReasonLost); err != nil {
				r.log.Debug("stop lost actor", "actor_id", id, "err", err)
			}
			r.dropSockets(id, nil)
		})
	}
}

// watchStall closes the connection when the engine's messages stop arriving while
// the socket stays open (a stalled connection: neither end sees a close)
// for longer than the engine's lost threshold. By then the engine, whose
// ping timeout is the same by default, has dropped this runner and
// started its actors elsewhere without sending it a stop command
// (docs/engine-runner.md §5 "Runner lost"): the runner stops them here,
// as after a disconnection, so that it neither serves nor writes for
// them after the connection heals, and a later drain does not wait for
// stops the engine will never send. Then it reconnects.
func (r *Runner) watchStall(closeConn func(), done <-chan struct{}) {
	for {
		r.mu.Lock()
		every := max(r.mu.lostAfter/10, 50*time.Millisecond)
		r.mu.Unlock()
		t := time.NewTimer(every)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C:
		}
		if age, actors, stalled := r.takeStalled(); stalled {
			r.stopLost(actors, fmt.Sprintf("no message from the engine for %v (its lost threshold passed): the engine has given this runner's actors to others; stopping them here and reconnecting", age.Round(time.Millisecond)))
			closeConn()
			return
		}
	}
}

// takeStalled reports whether the runner is connected and initialized
// and the engine's last ping (or init) is older than its lost
// threshold; if so it takes the runner's actors (to stop them).
func (r *Runner) takeStalled() (time.Duration, map[string]uint32, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.mu.ready:
	default:
		return 0, nil, false
	}
	age := r.cfg.Now().Sub(r.mu.pingAt)
	if age <= r.mu.lostAfter {
		return age, nil, false
	}
	actors := r.mu.generation
	r.mu.generation = map[string]uint32{}
	return age, actors, true
}

// stopRequestWait bounds how long a stop command waits for the actor's
// requests in flight.
const stopRequestWait = 30 * time.Second

// waitRequests waits until no tunnelled request to the actor is in
// flight (polling: a stop is rare and the wait short).
func (r *Runner) waitRequests(ctx context.Context, actorID string) error {
	for {
		r.mu.Lock()
		n := r.mu.actorRequests[actorID]
		r.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d requests: %w", n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *Runner) signalDrain() {
	select {
	case r.drained <- struct{}{}:
	default:
	}
}

// Drain tells the engine that this runner is going away
// (ToRivetStopping): the engine gives it no new actors and stops each of
// its actors with GoingAway, which the runner carries out like any stop
// command (the actors' stop hooks run, their last commits land, and the
// engine starts them elsewhere on their next request). Drain returns
// once no actor runs here and every tunnelled request in flight was
// answered, or with ctx's error. It fails with
// ErrNotConnected when there is no engine connection to tell.
func (r *Runner) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.mu.draining = true
	r.mu.Unlock()
	if !r.Connected() {
		return ErrNotConnected
	}
	if err := r.write(ctx, envoy.ToRivetStopping{}); err != nil {
		return fmt.Errorf("runner: tell the engine it is stopping: %w", err)
	}
	r.log.Info("draining: the engine moves this runner's actors", "actors", r.actorCount())
	// Then the responses of requests still in flight must leave before
	// the socket closes: the engine would send an unanswered request
	// again to the actor's next runner, and it would run twice.
	for {
		if r.actorCount() == 0 && r.inflight.Load() == 0 {
			return nil
		}
		select {
		case <-r.drained:
		case <-ctx.Done():
			return fmt.Errorf("runner: drain: %d actors and %d requests still here: %w", r.actorCount(), r.inflight.Load(), ctx.Err())
		}
	}
}

func (r *Runner) actorCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mu.generation)
}

// Intent tells the engine that the actor wants to sleep (or stop for
// good); the engine answers with a stop command. An intent made while
// the actor starts (its run handler asking at once) is sent right after
// the actor's Running event.
func (r *Runner) Intent(id string, sleep bool) {
	var in envoy.ActorIntent = envoy.ActorIntentSleep{}
	if !sleep {
		in = envoy.ActorIntentStop{}
	}
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.mu.Lock()
	gen, ok := r.mu.generation[id]
	if !ok {
		r.mu.Unlock()
		return
	}
	k := genKey{id, gen}
	st := r.mu.alarms[k]
	if st == nil {
		st = &alarmState{}
		r.mu.alarms[k] = st
	}
	if !st.running {
		if _, stop := st.intent.(envoy.ActorIntentStop); !stop {
			st.intent = in // a stop outranks a sleep
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.eventLocked(context.Background(), id, gen, envoy.EventActorIntent{Intent: in})
}

// Generation is the generation the engine started the actor with, if it
// runs here.
func (r *Runner) Generation(id string) (uint32, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.mu.generation[id]
	return g, ok
}

// SetAlarm tells the engine the actor generation's earliest alarm (zero:
// none), so that the engine wakes the actor then if it sleeps. A time
// reported before the generation's Running event is sent right after it.
func (r *Runner) SetAlarm(id string, gen uint32, at time.Time) {
	k := genKey{id, gen}
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.mu.Lock()
	st := r.mu.alarms[k]
	if st == nil {
		if r.mu.generation[id] != gen {
			r.mu.Unlock()
			return // not (or no longer) running here
		}
		st = &alarmState{}
		r.mu.alarms[k] = st
	}
	if !st.running {
		st.pending = nil
		if !at.IsZero() {
			st.pending = &at
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	ev := envoy.EventActorSetAlarm{}
	if !at.IsZero() {
		ts := at.UnixMilli()
		ev.AlarmTs = &ts
	}
	r.eventLocked(context.Background(), id, gen, ev)
}

// event sends an actor event with the next index of its generation and
// keeps it until the engine acknowledges it (it is resent after a
// reconnect; the engine drops duplicates by index).
func (r *Runner) event(ctx context.Context, id string, gen uint32, ev envoy.Event) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.eventLocked(ctx, id, gen, ev)
}

// eventLocked is event with evMu held.
func (r *Runner) eventLocked(ctx context.Context, id string, gen uint32, ev envoy.Event) {
	k := genKey{id, gen}
	r.mu.Lock()
	idx := r.mu.nextEvent[k]
	r.mu.nextEvent[k] = idx + 1
	w := envoy.EventWrapper{Checkpoint: envoy.ActorCheckpoint{ActorID: id, Generation: gen, Index: idx}, Inner: ev}
	r.mu.unacked = append(r.mu.unacked, w)
	r.mu.Unlock()
	if err := r.write(ctx, envoy.ToRivetEvents{w}); err != nil {
		r.log.Debug("event not sent; resent after reconnect", "actor_id", id, "err", err)
	}
}

func (r *Runner) ackEvents(cps []envoy.ActorCheckpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.mu.unacked[:0]
	for _, w := range r.mu.unacked {
		acked := false
		for _, cp := range cps {
			if cp.ActorID == w.Checkpoint.ActorID && cp.Generation == w.Checkpoint.Generation && w.Checkpoint.Index <= cp.Index {
				acked = true
				break
			}
		}
		if !acked {
			keep = append(keep, w)
		}
	}
	r.mu.unacked = keep
}

// Writable reports whether KV writes may be sent now: nil while the
// runner is connected and initialized and the engine's last ping (or the
// init) arrived less than the engine's lost threshold minus FenceMargin
// ago (15 s - 5 s by default), ErrNotConnected or ErrWriteFenced
// otherwise.
//
// The engine drops a runner whose last pong is older than its ping
// timeout (15 s, like the lost threshold) and then starts its actors
// elsewhere. Our pong follows our receipt of the ping, so while the ping
// we received is younger than the threshold minus the margin, the engine
// has not dropped us; the margin covers the time a request takes to reach
// the engine. A write delayed by more than the margin (a stalled TCP
// connection that delivers late) is not covered: the engine's KV does not
// check the actor's generation (docs/engine-runner.md §11 "Fencing").
func (r *Runner) Writable() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writableLocked()
}

func (r *Runner) writableLocked() error {
	select {
	case <-r.mu.ready:
	default:
		return ErrNotConnected
	}
	margin := min(FenceMargin, r.mu.lostAfter/3)
	if age := r.cfg.Now().Sub(r.mu.pingAt); age >= r.mu.lostAfter-margin {
		return fmt.Errorf("%w (last ping %v ago, limit %v)", ErrWriteFenced, age.Round(time.Millisecond), r.mu.lostAfter-margin)
	}
	return nil
}

// isWrite reports whether a KV request changes data.
func isWrite(req envoy.KVRequestData) bool {
	switch req.(type) {
	case envoy.KVGetRequest, envoy.KVListRequest:
		return false
	}
	return true
}

// KV sends one KV request for an actor and waits for the engine's answer.
// It fails at once with ErrNotConnected while the connection is down, and
// a write with ErrWriteFenced while the engine's last ping is too old (see
// Writable); it fails with ErrNotConnected when the connection drops
// before the answer.
func (r *Runner) KV(ctx context.Context, actorID string, req envoy.KVRequestData) (envoy.KVResponseData, error) {
	ch := make(chan kvResult, 1)
	r.mu.Lock()
	select {
	case <-r.mu.ready:
	default:
		r.mu.Unlock()
		return nil, ErrNotConnected
	}
	if isWrite(req) {
		if err := r.writableLocked(); err != nil {
			r.mu.Unlock()
			return nil, err
		}
	}
	id := r.mu.nextKV
	r.mu.nextKV++
	r.mu.kv[id] = ch
	r.mu.Unlock()
	if err := r.write(ctx, envoy.ToRivetKVRequest{ActorID: actorID, RequestID: id, Data: req}); err != nil {
		r.mu.Lock()
		delete(r.mu.kv, id)
		r.mu.Unlock()
		return nil, fmt.Errorf("runner: send KV request: %w", err)
	}
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, res.err
		}
		if e, ok := res.data.(envoy.KVErrorResponse); ok {
			return nil, fmt.Errorf("engine KV: %s", e.Message)
		}
		return res.data, nil
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.mu.kv, id)
		r.mu.Unlock()
		return nil, ctx.Err()
	}
}

// WaitReady waits until the runner is connected and initialized.
func (r *Runner) WaitReady(ctx context.Context) error {
	r.mu.Lock()
	ready := r.mu.ready
	r.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// actorQueue runs one actor's commands one at a time, in order.
type actorQueue struct {
	jobs    []func()
	running bool
}

func (r *Runner) run(id string, fn func()) {
	r.mu.Lock()
	q := r.mu.actors[id]
	if q == nil {
		q = &actorQueue{}
		r.mu.actors[id] = q
	}
	q.jobs = append(q.jobs, fn)
	if q.running {
		r.mu.Unlock()
		return
	}
	q.running = true
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			r.mu.Lock()
			if len(q.jobs) == 0 {
				q.running = false
				delete(r.mu.actors, id)
				r.mu.Unlock()
				return
			}
			job := q.jobs[0]
			q.jobs = q.jobs[1:]
			r.mu.Unlock()
			job()
		}
	}()
}
