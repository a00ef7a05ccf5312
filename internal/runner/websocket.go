package runner

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/internal/memnet"
)

// A tunnelled WebSocket is relayed to the gateway handler over an
// in-memory connection: the runner dials /gateway/{actorId}{path} on an
// http.Server that serves the handler on a pipe listener, so actor
// connections and raw WebSockets behave exactly as on a local listener.
// Frames are copied both ways unchanged.
//
// Actor connections (/connect) are hibernatable (canHibernate=true): the
// engine keeps the client's socket while the actor sleeps or moves. The
// socket is then also the connection's engine.TunnelLink: it numbers the
// client's messages with the engine's indexes, drops the ones replayed
// after a wake that were handled already, tells each turn what to
// persist in the connection's record, and acknowledges a message to the
// engine once its turn is durable (docs/engine-runner.md §7). Raw
// WebSockets are not hibernatable through the engine: they keep their
// actor awake.

// socketQueue bounds the engine's messages waiting for one socket; a
// socket that falls further behind is closed.
const socketQueue = 1024

// socketHeader names the socket a local dial is for (the local server is
// reachable from this process only; the header is stripped from what the
// engine forwards).
const socketHeader = "X-Rivetgo-Tunnel-Socket"

type tunnelSocket struct {
	r            *Runner
	id           envoy.MessageID // gateway and request ids; the index is ours
	actorID      string
	token        string
	hibernatable bool
	meta         engine.TunnelMeta
	restore      *engine.ConnRecord // set for a socket restored in this process
	// gen is the actor's generation here when the socket opened (0: not
	// running).
	gen    uint32
	in     chan envoy.ToEnvoyWebSocketMessage
	once   sync.Once
	done   chan struct{}
	opened chan error // the gateway's Opened

	mu   sync.Mutex
	ws   *websocket.Conn // nil until the gateway accepted
	next envoy.MessageIndex
	// quiet: dropped here while the engine keeps the client's socket;
	// its close is not reported.
	quiet bool
	// waiting: restored, the actor has not taken it back yet.
	waiting bool
	// Client messages (hibernatable sockets). fifo: accepted and written
	// towards the gateway, not yet read by it; seen/last: the last index
	// accepted; w: every message up to w is finished; finished and
	// turned: the ones after w finished, and handled by a turn; pending:
	// accepted and not finished; acked: the last index acknowledged.
	fifo     []uint16
	seen     bool
	last     uint16
	w        uint16
	finished map[uint16]bool
	turned   map[uint16]bool
	pending  map[uint16]bool
	acked    uint16
}

func (r *Runner) newSocket(id envoy.MessageID, actorID, path string, headers map[string]string) *tunnelSocket {
	var tok [16]byte
	_, _ = crand.Read(tok[:])
	p, _, _ := strings.Cut(path, "?")
	r.mu.Lock()
	gen := r.mu.generation[actorID]
	r.mu.Unlock()
	return &tunnelSocket{gen: gen,
		r: r, id: envoy.MessageID{GatewayID: id.GatewayID, RequestID: id.RequestID}, actorID: actorID,
		token: hex.EncodeToString(tok[:]), hibernatable: p == "/connect" || p == "connect",
		meta: engine.TunnelMeta{Path: path, Headers: headers, GatewayID: bytes.Clone(id.GatewayID[:]), RequestID: bytes.Clone(id.RequestID[:])},
		in:   make(chan envoy.ToEnvoyWebSocketMessage, socketQueue), done: make(chan struct{}), opened: make(chan error, 1),
		finished: map[uint16]bool{}, turned: map[uint16]bool{}, pending: map[uint16]bool{},
	}
}

func (s *tunnelSocket) conn() *websocket.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws
}

func (s *tunnelSocket) index() envoy.MessageIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.next
	s.next++
	return i
}

func (s *tunnelSocket) stop() { s.once.Do(func() { close(s.done) }) }

// after reports whether index a comes after b (indexes wrap at 2^16).
func after(a, b uint16) bool { return int16(a-b) > 0 }

// Meta implements engine.TunnelLink.
func (s *tunnelSocket) Meta() *engine.TunnelMeta {
	m := s.meta
	return &m
}

// Restore implements engine.TunnelLink.
func (s *tunnelSocket) Restore() *engine.ConnRecord { return s.restore }

// Opened implements engine.TunnelLink.
func (s *tunnelSocket) Opened(err error) {
	select {
	case s.opened <- err:
	default:
	}
}

// Received implements engine.TunnelLink.
func (s *tunnelSocket) Received() uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fifo) == 0 {
		return s.last // not an engine message (cannot happen)
	}
	n := s.fifo[0]
	s.fifo = s.fifo[1:]
	return n
}

// Turn implements engine.TunnelLink.
func (s *tunnelSocket) Turn(n uint16) (uint16, []uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[n] && after(n, s.w) {
		s.turned[n] = true
	}
	var handled []uint16
	for i := range s.turned {
		handled = append(handled, i)
	}
	slices.SortFunc(handled, func(a, b uint16) int { return int(int16(a-s.w)) - int(int16(b-s.w)) })
	return s.w, handled
}

// Done implements engine.TunnelLink: once every message up to some
// index is finished, that index is acknowledged to the engine.
func (s *tunnelSocket) Done(n uint16) {
	s.mu.Lock()
	if !s.pending[n] {
		s.mu.Unlock()
		return
	}
	delete(s.pending, n)
	if after(n, s.w) {
		s.finished[n] = true
	}
	s.advanceLocked()
	ack, send := s.w, after(s.w, s.acked)
	if send {
		s.acked = ack
	}
	s.mu.Unlock()
	s.r.requestDone(s.actorID)
	if send && s.hibernatable {
		id := s.id
		id.MessageIndex = ack
		if err := s.r.write(context.Background(), envoy.ToRivetTunnelMessage{MessageID: id, MessageKind: envoy.ToRivetWebSocketMessageAck{Index: ack}}); err != nil {
			s.r.log.Debug("websocket message ack not sent", "err", err)
		}
	}
}

// advanceLocked moves w past the finished messages that follow it.
func (s *tunnelSocket) advanceLocked() {
	for s.finished[s.w+1] {
		delete(s.finished, s.w+1)
		s.w++
	}
	for i := range s.turned {
		if !after(i, s.w) {
			delete(s.turned, i)
		}
	}
}

// fromRecordLocked sets the socket's client indexes from its connection
// record: every message up to ClientIndex and those in Handled are
// finished, and the next one the engine sends is not checked for a gap
// (it replays from what it saw acknowledged).
func (s *tunnelSocket) fromRecordLocked(t *engine.TunnelMeta) {
	s.w, s.acked = t.ClientIndex, t.ClientIndex
	clear(s.finished)
	clear(s.turned)
	clear(s.pending)
	s.fifo = nil
	s.seen = false
	for _, i := range t.Handled {
		if after(i, s.w) {
			s.finished[i], s.turned[i] = true, true
		}
	}
	s.advanceLocked()
}

// catchUp brings a socket kept on this runner while its actor slept up to
// date with the actor's record, when the actor ran on another runner in
// between and finished messages there: without it, the next message
// looked like a gap (1008 ws.message_index_skip) or an earlier one like
// a new message. A record not ahead of the socket changes nothing (the
// socket may be ahead: a message that caused no commit is acknowledged
// without one).
func (s *tunnelSocket) catchUp(t *engine.TunnelMeta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ahead := after(t.ClientIndex, s.w)
	for _, i := range t.Handled {
		ahead = ahead || (after(i, s.w) && !s.finished[i])
	}
	if ahead {
		s.fromRecordLocked(t)
	}
}

// verdict is what becomes of a client message.
type verdict int

const (
	accept verdict = iota
	duplicate
	skipped // a gap: messages were lost
)

// admit decides on client message n of a hibernatable socket and, when
// it is accepted, queues its index for the gateway's Received.
func (s *tunnelSocket) admit(n uint16) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !after(n, s.w) || s.finished[n] || s.turned[n] || s.pending[n] || (s.seen && !after(n, s.last)) {
		if !s.seen || after(n, s.last) {
			s.seen, s.last = true, n
		}
		return duplicate
	}
	if s.seen && n != s.last+1 {
		return skipped
	}
	s.seen, s.last = true, n
	s.pending[n] = true
	s.fifo = append(s.fifo, n)
	return accept
}

// local is the in-memory server of the gateway handler, started on first
// use.
type local struct {
	once sync.Once
	l    *memnet.Listener
	srv  *http.Server
	http *http.Client
	// sockets by token, for the handler to find the link of a dial.
	sockets sync.Map
}

func (r *Runner) localClient() *http.Client {
	r.local.once.Do(func() {
		r.local.l = memnet.NewListener()
		h := r.cfg.Handler
		r.local.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if tok := req.Header.Get(socketHeader); tok != "" {
				req.Header.Del(socketHeader)
				if v, ok := r.local.sockets.Load(tok); ok && v.(*tunnelSocket).hibernatable {
					req = req.WithContext(engine.WithTunnelLink(req.Context(), v.(*tunnelSocket)))
				}
			}
			h.ServeHTTP(w, req)
		})}
		go func() { _ = r.local.srv.Serve(r.local.l) }()
		r.local.http = &http.Client{Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return r.local.l.Dial(ctx) },
		}}
	})
	return r.local.http
}

func (r *Runner) closeLocal() {
	if r.local.srv != nil {
		_ = r.local.srv.Close()
	}
}

// hopHeaders are set by the WebSocket handshake itself.
var hopHeaders = map[string]bool{
	"connection": true, "upgrade": true, "sec-websocket-key": true, "sec-websocket-version": true,
	"sec-websocket-extensions": true, "sec-websocket-protocol": true, "content-length": true, "host": true,
}

func (r *Runner) openSocket(ctx context.Context, id envoy.MessageID, open envoy.ToEnvoyWebSocketOpen) {
	s := r.newSocket(id, open.ActorID, open.Path, open.Headers)
	r.startSocket(ctx, s, true)
}

// startSocket registers s and relays it on its own goroutine; sendOpen:
// tell the engine once the gateway accepted.
func (r *Runner) startSocket(ctx context.Context, s *tunnelSocket, sendOpen bool) {
	k := requestKey(s.id)
	r.mu.Lock()
	if old := r.mu.sockets[k]; old != nil && old != s {
		old.stop()
		if ws := old.conn(); ws != nil {
			_ = ws.CloseNow()
		}
	}
	r.mu.sockets[k] = s
	r.mu.Unlock()
	r.local.sockets.Store(s.token, s)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.local.sockets.Delete(s.token)
			r.mu.Lock()
			if r.mu.sockets[k] == s {
				delete(r.mu.sockets, k)
			}
			r.mu.Unlock()
			s.release()
		}()
		r.relay(ctx, s, sendOpen)
	}()
}

// release finishes the messages the gateway will not handle any more
// (the socket ended), so that a stop does not wait for them.
func (s *tunnelSocket) release() {
	s.mu.Lock()
	n := len(s.pending)
	s.pending = map[uint16]bool{}
	s.fifo = nil
	s.mu.Unlock()
	for range n {
		s.r.requestDone(s.actorID)
	}
}

func (r *Runner) relay(ctx context.Context, s *tunnelSocket, sendOpen bool) {
	path := s.meta.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	opts := &websocket.DialOptions{HTTPClient: r.localClient(), HTTPHeader: http.Header{}}
	for k, v := range s.meta.Headers {
		lk := strings.ToLower(k)
		if lk == "sec-websocket-protocol" {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					opts.Subprotocols = append(opts.Subprotocols, p)
				}
			}
			continue
		}
		if !hopHeaders[lk] && lk != strings.ToLower(socketHeader) {
			opts.HTTPHeader.Set(k, v)
		}
	}
	opts.HTTPHeader.Set(socketHeader, s.token)
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, "ws://in-process/gateway/"+url.PathEscape(s.actorID)+path, opts)
	if err != nil {
		reason := "rivetgo.websocket_refused"
		if resp != nil {
			reason += ": " + resp.Status
		}
		r.log.Debug("tunnelled websocket refused", "actor_id", s.actorID, "path", s.meta.Path, "err", err)
		s.Opened(err)
		r.sendSocket(s, envoy.ToRivetWebSocketClose{Code: ptr(uint16(1011)), Reason: &reason})
		return
	}
	ws.SetReadLimit(-1) // the gateway enforces its own limits
	s.mu.Lock()
	s.ws = ws
	s.mu.Unlock()
	if sendOpen {
		if err := r.sendSocket(s, envoy.ToRivetWebSocketOpen{CanHibernate: s.hibernatable}); err != nil && !s.hibernatable {
			_ = ws.CloseNow()
			return
		}
	}
	// engine -> gateway
	go func() {
		for {
			select {
			case m := <-s.in:
				typ := websocket.MessageText
				if m.Binary {
					typ = websocket.MessageBinary
				}
				if err := ws.Write(dctx, typ, m.Data); err != nil {
					_ = ws.CloseNow()
					return
				}
			case <-s.done:
				return
			}
		}
	}()
	// gateway -> engine
	for {
		typ, data, err := ws.Read(dctx)
		if err != nil {
			s.stop()
			var ce websocket.CloseError
			code, reason := uint16(1000), ""
			if errors.As(err, &ce) {
				code, reason = uint16(ce.Code), ce.Reason
			} else if !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
				code = 1011
			}
			if !s.silent() {
				r.sendSocket(s, envoy.ToRivetWebSocketClose{Code: &code, Reason: &reason})
			}
			return
		}
		if r.sendSocket(s, envoy.ToRivetWebSocketMessage{Data: data, Binary: typ == websocket.MessageBinary}) != nil && !s.hibernatable {
			_ = ws.CloseNow()
		}
	}
}

// silent reports whether the socket was dropped here while the engine
// keeps it for the actor (its close is not reported).
func (s *tunnelSocket) silent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quiet
}

func ptr[T any](v T) *T { return &v }

func (r *Runner) sendSocket(s *tunnelSocket, kind envoy.ToRivetTunnelMessageKind) error {
	id := s.id
	id.MessageIndex = s.index()
	return r.write(context.Background(), envoy.ToRivetTunnelMessage{MessageID: id, MessageKind: kind})
}

// socketMessage queues a client message for its socket. A message of a
// hibernatable socket whose actor is not running here (asleep, starting,
// stopping) is dropped: the engine sends it again after the socket is
// restored, as it does every message not acknowledged.
func (r *Runner) socketMessage(id envoy.MessageID, m envoy.ToEnvoyWebSocketMessage) {
	r.mu.Lock()
	s := r.mu.sockets[requestKey(id)]
	var serving bool
	if s != nil {
		_, serving = r.mu.generation[s.actorID]
		serving = serving && !r.mu.stopping[s.actorID]
	}
	r.mu.Unlock()
	if s != nil && serving {
		s.mu.Lock()
		serving = !s.waiting
		s.mu.Unlock()
	}
	if s == nil {
		return
	}
	if s.hibernatable {
		if !serving {
			return
		}
		switch s.admit(id.MessageIndex) {
		case duplicate:
			return
		case skipped:
			r.log.Warn("tunnelled websocket lost messages; closing it", "actor_id", s.actorID, "index", id.MessageIndex)
			s.mu.Lock()
			s.quiet = true
			s.mu.Unlock()
			reason := "ws.message_index_skip"
			_ = r.sendSocket(s, envoy.ToRivetWebSocketClose{Code: ptr(uint16(1008)), Reason: &reason})
			if ws := s.conn(); ws != nil {
				_ = ws.Close(websocket.StatusPolicyViolation, reason)
			}
			return
		}
		r.requestStart(s.actorID)
	}
	select {
	case s.in <- m:
	default:
		r.log.Warn("tunnelled websocket falls behind; closing it")
		if ws := s.conn(); ws != nil {
			_ = ws.Close(websocket.StatusPolicyViolation, "rivetgo.websocket_overloaded")
		}
	}
}

// requestStart and requestDone count a client message in flight for its
// actor, as a tunnelled request is: a stop waits for them.
func (r *Runner) requestStart(actorID string) {
	r.mu.Lock()
	r.mu.actorRequests[actorID]++
	r.mu.Unlock()
}

func (r *Runner) requestDone(actorID string) {
	r.mu.Lock()
	if r.mu.actorRequests[actorID]--; r.mu.actorRequests[actorID] <= 0 {
		delete(r.mu.actorRequests, actorID)
	}
	r.mu.Unlock()
}

// socketClose closes a socket the client closed.
func (r *Runner) socketClose(id envoy.MessageID, m envoy.ToEnvoyWebSocketClose) {
	r.mu.Lock()
	s := r.mu.sockets[requestKey(id)]
	delete(r.mu.sockets, requestKey(id))
	r.mu.Unlock()
	if s == nil {
		return
	}
	s.stop()
	if ws := s.conn(); ws != nil {
		code := websocket.StatusNormalClosure
		if m.Code != nil {
			code = websocket.StatusCode(*m.Code)
		}
		reason := ""
		if m.Reason != nil {
			reason = *m.Reason
		}
		go func() { _ = ws.Close(code, reason) }()
	}
}

// closeSockets closes the tunnelled sockets that are not hibernatable
// (the engine connection is gone, and with it the clients' end); the
// engine keeps the others for their actors.
func (r *Runner) closeSockets() {
	r.mu.Lock()
	var socks []*tunnelSocket
	for k, s := range r.mu.sockets {
		if !s.hibernatable {
			socks = append(socks, s)
			delete(r.mu.sockets, k)
		}
	}
	r.mu.Unlock()
	for _, s := range socks {
		s.stop()
		if ws := s.conn(); ws != nil {
			_ = ws.CloseNow()
		}
	}
}

// dropSockets closes, on this side only, the sockets of an actor that
// left this runner (lost, or moved): the engine keeps them for the
// actor's next runner, which restores them from their records.
// keep (called with r.mu held) spares some.
func (r *Runner) dropSockets(actorID string, keep func(k [8]byte, s *tunnelSocket) bool) {
	r.mu.Lock()
	var socks []*tunnelSocket
	for k, s := range r.mu.sockets {
		if s.actorID == actorID && (keep == nil || !keep(k, s)) {
			socks = append(socks, s)
			delete(r.mu.sockets, k)
		}
	}
	r.mu.Unlock()
	for _, s := range socks {
		s.mu.Lock()
		s.quiet = true
		s.mu.Unlock()
		s.stop()
		if ws := s.conn(); ws != nil {
			_ = ws.CloseNow()
		}
	}
}

// Restore prepares the hibernatable sockets the engine kept for an
// actor about to start here (its start command's hibernatingRequests):
// a socket still relayed by this process is kept; one whose connection
// record is in recs is dialled again to the gateway, which adopts the
// connection under its old id for the actor's activation to rebuild it.
// It returns the requests it has no socket for. Call it before the actor
// activates; then Reopen.
func (r *Runner) Restore(ctx context.Context, actorID string, reqs []envoy.HibernatingRequest, recs []engine.ConnRecord) (missing []envoy.HibernatingRequest) {
	want := map[[8]byte]bool{}
	for _, hr := range reqs {
		k := requestKey(envoy.MessageID{GatewayID: hr.GatewayID, RequestID: hr.RequestID})
		want[k] = true
		r.mu.Lock()
		s := r.mu.sockets[k]
		r.mu.Unlock()
		var rec *engine.ConnRecord
		for i := range recs {
			t := recs[i].Tunnel
			if t != nil && bytes.Equal(t.GatewayID, hr.GatewayID[:]) && bytes.Equal(t.RequestID, hr.RequestID[:]) {
				rec = &recs[i]
				break
			}
		}
		if s != nil && s.actorID == actorID {
			// Kept here since the actor slept on this runner; if it ran
			// on another runner since, the record is ahead of the
			// socket's indexes.
			if rec != nil {
				s.catchUp(rec.Tunnel)
			}
			continue
		}
		if rec == nil {
			missing = append(missing, hr)
			continue
		}
		s = r.newSocket(envoy.MessageID{GatewayID: hr.GatewayID, RequestID: hr.RequestID}, actorID, rec.Tunnel.Path, rec.Tunnel.Headers)
		s.restore = rec
		s.waiting = true
		s.fromRecordLocked(rec.Tunnel)
		r.startSocket(ctx, s, false)
		select {
		case err := <-s.opened:
			if err != nil {
				r.log.Warn("hibernated websocket not restored", "actor_id", actorID, "conn", rec.ID, "err", err)
				missing = append(missing, hr)
			}
		case <-ctx.Done():
			missing = append(missing, hr)
		}
	}
	// Sockets of the actor's earlier generations that the engine no
	// longer lists are gone (not one opened for this generation).
	r.mu.Lock()
	gen := r.mu.generation[actorID]
	r.mu.Unlock()
	r.dropSockets(actorID, func(k [8]byte, s *tunnelSocket) bool {
		return want[k] || s.gen == 0 || s.gen >= gen
	})
	r.mu.Lock()
	r.mu.missing[actorID] = missing
	r.mu.Unlock()
	return missing
}

// takeMissing returns the hibernating requests of a starting actor that
// have no socket here: what Restore found, or, when it was not called,
// the listed requests without a live socket.
func (r *Runner) takeMissing(actorID string, reqs []envoy.HibernatingRequest) []envoy.HibernatingRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.mu.missing[actorID]; ok {
		delete(r.mu.missing, actorID)
		return m
	}
	var missing []envoy.HibernatingRequest
	for _, hr := range reqs {
		if s := r.mu.sockets[requestKey(envoy.MessageID{GatewayID: hr.GatewayID, RequestID: hr.RequestID})]; s == nil || s.actorID != actorID {
			missing = append(missing, hr)
		}
	}
	return missing
}

// Reopen tells the engine that the actor, now running, took back its
// hibernatable sockets (each one's messages start again at index 0 with
// the open; the engine then replays what was not acknowledged), and
// closes the ones it could not restore.
func (r *Runner) Reopen(actorID string, listed, missing []envoy.HibernatingRequest) {
	r.mu.Lock()
	var socks []*tunnelSocket
	for _, hr := range listed {
		s := r.mu.sockets[requestKey(envoy.MessageID{GatewayID: hr.GatewayID, RequestID: hr.RequestID})]
		if s != nil && s.actorID == actorID && s.hibernatable {
			socks = append(socks, s)
		}
	}
	r.mu.Unlock()
	for _, s := range socks {
		s.mu.Lock()
		s.next = 0
		s.waiting = false
		s.mu.Unlock()
		_ = r.sendSocket(s, envoy.ToRivetWebSocketOpen{CanHibernate: true})
	}
	for _, hr := range missing {
		reason := "ws.meta_not_found_during_restore"
		id := envoy.MessageID{GatewayID: hr.GatewayID, RequestID: hr.RequestID}
		_ = r.write(context.Background(), envoy.ToRivetTunnelMessage{MessageID: id, MessageKind: envoy.ToRivetWebSocketClose{Code: ptr(uint16(1000)), Reason: &reason}})
	}
}
