package runner

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/internal/memnet"
)

// A tunnelled WebSocket is relayed to the gateway handler over an
// in-memory connection: the runner dials /gateway/{actorId}{path} on an
// http.Server that serves the handler on a pipe listener, so actor
// connections and raw WebSockets behave exactly as on a local listener.
// Frames are copied both ways unchanged. Sockets are not hibernatable yet
// (canHibernate=false): they close when the actor stops.

// socketQueue bounds the engine's messages waiting for one socket; a
// socket that falls further behind is closed.
const socketQueue = 1024

type tunnelSocket struct {
	id   envoy.MessageID // gateway and request ids; the index is ours
	in   chan envoy.ToEnvoyWebSocketMessage
	once sync.Once
	done chan struct{}

	mu   sync.Mutex
	ws   *websocket.Conn // nil until the gateway accepted
	next envoy.MessageIndex
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

// local is the in-memory server of the gateway handler, started on first
// use.
type local struct {
	once sync.Once
	l    *memnet.Listener
	srv  *http.Server
	http *http.Client
}

func (r *Runner) localClient() *http.Client {
	r.local.once.Do(func() {
		r.local.l = memnet.NewListener()
		r.local.srv = &http.Server{Handler: r.cfg.Handler}
		go func() { _ = r.local.srv.Serve(r.local.l) }()
		r.local.http = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return r.local.l.Dial(ctx) },
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
	k := requestKey(id)
	s := &tunnelSocket{id: envoy.MessageID{GatewayID: id.GatewayID, RequestID: id.RequestID}, in: make(chan envoy.ToEnvoyWebSocketMessage, socketQueue), done: make(chan struct{})}
	r.mu.Lock()
	r.mu.sockets[k] = s
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			if r.mu.sockets[k] == s {
				delete(r.mu.sockets, k)
			}
			r.mu.Unlock()
		}()
		r.relay(ctx, s, open)
	}()
}

func (r *Runner) relay(ctx context.Context, s *tunnelSocket, open envoy.ToEnvoyWebSocketOpen) {
	path := open.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	opts := &websocket.DialOptions{HTTPClient: r.localClient(), HTTPHeader: http.Header{}}
	for k, v := range open.Headers {
		lk := strings.ToLower(k)
		if lk == "sec-websocket-protocol" {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					opts.Subprotocols = append(opts.Subprotocols, p)
				}
			}
			continue
		}
		if !hopHeaders[lk] {
			opts.HTTPHeader.Set(k, v)
		}
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, "ws://in-process/gateway/"+url.PathEscape(open.ActorID)+path, opts)
	if err != nil {
		reason := "rivetgo.websocket_refused"
		if resp != nil {
			reason += ": " + resp.Status
		}
		r.log.Debug("tunnelled websocket refused", "actor_id", open.ActorID, "path", open.Path, "err", err)
		r.sendSocket(s, envoy.ToRivetWebSocketClose{Code: ptr(uint16(1011)), Reason: &reason})
		return
	}
	ws.SetReadLimit(-1) // the gateway enforces its own limits
	s.mu.Lock()
	s.ws = ws
	s.mu.Unlock()
	if err := r.sendSocket(s, envoy.ToRivetWebSocketOpen{CanHibernate: false}); err != nil {
		_ = ws.CloseNow()
		return
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
			r.sendSocket(s, envoy.ToRivetWebSocketClose{Code: &code, Reason: &reason})
			return
		}
		if r.sendSocket(s, envoy.ToRivetWebSocketMessage{Data: data, Binary: typ == websocket.MessageBinary}) != nil {
			_ = ws.CloseNow()
		}
	}
}

func ptr[T any](v T) *T { return &v }

func (r *Runner) sendSocket(s *tunnelSocket, kind envoy.ToRivetTunnelMessageKind) error {
	id := s.id
	id.MessageIndex = s.index()
	return r.write(context.Background(), envoy.ToRivetTunnelMessage{MessageID: id, MessageKind: kind})
}

// socketMessage queues a client message for its socket.
func (r *Runner) socketMessage(id envoy.MessageID, m envoy.ToEnvoyWebSocketMessage) {
	r.mu.Lock()
	s := r.mu.sockets[requestKey(id)]
	r.mu.Unlock()
	if s == nil {
		return
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

// closeSockets closes every tunnelled socket (the engine connection is
// gone, and with it the clients' end).
func (r *Runner) closeSockets() {
	r.mu.Lock()
	socks := r.mu.sockets
	r.mu.sockets = map[[8]byte]*tunnelSocket{}
	r.mu.Unlock()
	for _, s := range socks {
		s.stop()
		if ws := s.conn(); ws != nil {
			_ = ws.CloseNow()
		}
	}
}
