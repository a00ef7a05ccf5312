package rivet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/gateway"
	"github.com/rivetgo/rivet/internal/inspector"
	"github.com/rivetgo/rivet/rivettype"
)

// DefaultAddr is where ListenAndServe listens without an address or
// $PORT: RivetKit's default endpoint is http://localhost:6420.
const DefaultAddr = "127.0.0.1:6420"

// Unauthorized returns the error an OnAuth hook returns to refuse a caller
// that did not authenticate (HTTP 401, auth.unauthorized).
func Unauthorized(message string) *Error {
	return &Error{Group: "auth", Code: "unauthorized", Message: message, Public: true}
}

// Forbidden returns the error an OnAuth or OnBeforeConnect hook returns to
// refuse a caller that may not do what it asks (HTTP 403, auth.forbidden).
func Forbidden(message string) *Error {
	return &Error{Group: "auth", Code: "forbidden", Message: message, Public: true}
}

// GatewayConfig configures the HTTP/WebSocket gateway. The zero value
// has RivetKit's defaults.
type GatewayConfig struct {
	// AllowedOrigins are the browser origins allowed to call the gateway
	// ("https://app.example.com"). Empty allows every origin, echoing it
	// back with credentials as RivetKit's engine does: convenient in
	// development, to be set in production.
	AllowedOrigins []string
	// MaxIncomingMessageSize bounds an action request or WebSocket message
	// (default 64 KiB); past it: message.incoming_too_long.
	MaxIncomingMessageSize int
	// MaxOutgoingMessageSize bounds a response or message to a client
	// (default 1 MiB); past it: message.outgoing_too_long.
	MaxOutgoingMessageSize int
	// MaxInputSize bounds an actor's create-time input (default 4 MiB).
	MaxInputSize int
	// SendQueue bounds the messages waiting for one WebSocket client
	// (default 1024); a client that does not read is disconnected past it.
	SendQueue int
}

// Handler returns the runtime's HTTP handler: the RivetKit engine API
// (/metadata, /actors) and the actor gateway (/gateway/…), which the
// official rivetkit client and @rivetkit/react talk to. Mount it at the
// root of a server or under a prefix with http.StripPrefix.
func (rt *Runtime) Handler() http.Handler {
	rt.gwOnce.Do(func() {
		c := rt.gwConfig
		rt.gw = gateway.New(gateway.Config{
			Engine: rt.e, Hooks: hooks{defs: rt.reg.defs, e: rt.e, log: rt.log}, Log: rt.log,
			Origins: c.AllowedOrigins, MaxIncoming: c.MaxIncomingMessageSize,
			MaxOutgoing: c.MaxOutgoingMessageSize, MaxInput: c.MaxInputSize, SendQueue: c.SendQueue,
			Version: Version, Inspector: rt.inspectorHandler(), InspectorPath: inspector.Owns,
		})
	})
	return rt.gw
}

// inspectorHandler serves the inspector (nil when disabled). Its token is
// Config.Inspector.Token, else $RIVET_ADMIN_TOKEN.
func (rt *Runtime) inspectorHandler() http.Handler {
	c := rt.inspConfig
	if c.Disabled {
		return nil // a nil *inspector.Handler would not be a nil interface
	}
	token := c.Token
	if token == "" {
		token = os.Getenv("RIVET_ADMIN_TOKEN")
	}
	rt.insp = inspector.NewHandler(inspector.New(rt.e, rt.log), inspector.Config{Token: token})
	return rt.insp
}

// ListenAddr is the address to listen on: addr if set, else
// 127.0.0.1:$PORT, else DefaultAddr.
func ListenAddr(addr string) string {
	if addr != "" {
		return addr
	}
	if p := os.Getenv("PORT"); p != "" {
		return net.JoinHostPort("127.0.0.1", p)
	}
	return DefaultAddr
}

// Serve serves the runtime's Handler on l until ctx is canceled, then
// shuts the server down gracefully (the runtime keeps running; Stop it).
func (rt *Runtime) Serve(ctx context.Context, l net.Listener) error {
	return rt.ServeHandler(ctx, l, rt.Handler())
}

// ServeHandler is Serve with a handler of your own around rt.Handler():
// a web app's files in front of it, middleware, a router that mounts it
// under a prefix. Shutdown waits up to 10 s for requests in flight and
// ends the inspector's event streams.
func (rt *Runtime) ServeHandler(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if rt.insp != nil {
		srv.RegisterOnShutdown(rt.insp.CloseStreams) // event streams never end by themselves
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	<-errc
	return err
}

// ListenAndServe starts a runtime for reg, serves it on addr (see
// ListenAddr) until ctx is canceled, then stops it gracefully.
//
// A nil cfg is LoadConfig(""): settings from $RIVET_CONFIG and the
// environment. An empty addr is cfg.Listen.
func ListenAndServe(ctx context.Context, addr string, reg *Registry, cfg *Config) error {
	if cfg == nil {
		var err error
		if cfg, err = LoadConfig(""); err != nil {
			return err
		}
	}
	if addr == "" {
		addr = cfg.Listen
	}
	rt, err := Start(ctx, reg, cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", ListenAddr(addr))
	if err != nil {
		_ = rt.Stop(context.Background())
		return err
	}
	rt.log.Info("rivet: listening", "addr", "http://"+l.Addr().String())
	serr := rt.Serve(ctx, l)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Stop(sctx); serr == nil {
		serr = err
	}
	if errors.Is(serr, http.ErrServerClosed) {
		serr = nil
	}
	return serr
}

// hooks runs the typed definitions' gateway hooks.
type hooks struct {
	defs map[string]Definition
	e    *engine.Engine
	log  *slog.Logger
}

func (h hooks) Auth(r *http.Request, name string, key []string, params []byte, intents []string) (any, error) {
	if d := h.defs[name]; d != nil {
		return d.auth(h.log, r, name, key, params, intents)
	}
	return nil, nil
}

func (h hooks) Request(ctx context.Context, id, name string, w http.ResponseWriter, r *http.Request) error {
	d := h.defs[name]
	if d == nil {
		return gateway.ErrNoHandler
	}
	return d.serveRequest(ctx, h.e, id, w, r)
}

func (h hooks) WebSocket(ctx context.Context, id, name string, ws *gateway.RawSocket, r *http.Request) error {
	d := h.defs[name]
	if d == nil {
		return gateway.ErrNoHandler
	}
	return d.serveWebSocket(ctx, h.e, id, ws, r)
}

func (h hooks) QueueSend(ctx context.Context, id, name, queue string, conn *engine.Conn, body []byte, wait bool, waitTimeout time.Duration) (engine.QueueSendResult, error) {
	d := h.defs[name]
	if d == nil {
		return engine.QueueSendResult{}, ErrQueueNotDeclared.With("Queue %q is not declared by actor %q.", queue, name)
	}
	return d.sendQueue(ctx, h.e, id, queue, conn, body, wait, waitTimeout)
}

func (a *Actor[S, C, V]) auth(log *slog.Logger, r *http.Request, name string, key []string, params []byte, intents []string) (any, error) {
	if a.opts.OnAuth == nil {
		return nil, nil
	}
	ac := &AuthContext{Request: r, Name: name, Key: append(Key(nil), key...)} // its own copy: the gateway still needs key
	for _, i := range intents {
		ac.Intents = append(ac.Intents, Intent(i))
	}
	out, err := a.callAuth(log, ac, params)
	if err != nil && !engine.Reported(err) {
		if e, ok := rivettype.As(err); !ok || !e.Public {
			log.Error("actor code failed", "in", "onAuth", "actor", name, "key", strings.Join(key, "/"), "err", err)
			return nil, engine.AsReported(fmt.Errorf("onAuth: %w", err))
		}
	}
	return out, err
}

// callAuth runs OnAuth, turning a panic into core.internal_error logged
// with the actor's name and key (there may be no actor yet to have an id).
func (a *Actor[S, C, V]) callAuth(log *slog.Logger, ac *AuthContext, params []byte) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in actor code", "in", "onAuth", "actor", a.name, "key", strings.Join(ac.Key, "/"),
				"panic", r, "stack", string(debug.Stack()))
			out, err = nil, engine.AsReported(fmt.Errorf("panic: %v", r))
		}
	}()
	return a.opts.OnAuth(ac, Value{params})
}

// responseBuffer holds an onRequest response until its turn is durable.
type responseBuffer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *responseBuffer) Header() http.Header { return b.header }
func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *responseBuffer) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (a *Actor[S, C, V]) serveRequest(ctx context.Context, e *engine.Engine, id string, w http.ResponseWriter, r *http.Request) error {
	if a.opts.OnRequest == nil {
		return gateway.ErrNoHandler.With("Actor %q has no onRequest handler.", a.name)
	}
	buf := &responseBuffer{header: http.Header{}}
	err := e.Enter(ctx, id, func(t *engine.Turn) error {
		c := t.Instance().(*instance[S, C, V]).ctx(t)
		buf.header, buf.code = http.Header{}, 0
		buf.body.Reset()
		return finish(c, a.opts.OnRequest(c, buf, r))
	})
	if err != nil {
		return err
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	if buf.code == 0 {
		buf.code = http.StatusOK
	}
	w.WriteHeader(buf.code)
	_, _ = w.Write(buf.body.Bytes())
	return nil
}

// WebSocket is a raw WebSocket connection to an actor, handed to its
// OnWebSocket hook. Use it from the actor's turns only: in OnWebSocket,
// in the OnMessage and OnClose handlers, and in actions.
type WebSocket[S, C, V any] struct {
	req       *http.Request
	conn      *engine.Conn
	sock      *gateway.RawSocket
	onMessage func(c *Context[S, C, V], msg WebSocketMessage) error
	onClose   func(c *Context[S, C, V])
}

// WebSocketMessage is one message of a raw WebSocket.
type WebSocketMessage struct {
	// Text is set for a text message (valid UTF-8), unset for binary.
	Text bool
	Data []byte
}

// Request is the upgrade request; its URL is the path after /websocket,
// with the query (rvt-* parameters removed).
func (ws *WebSocket[S, C, V]) Request() *http.Request { return ws.req }

// OnMessage sets the handler run, as a turn, for each message. An error
// from it closes the socket with 1011.
func (ws *WebSocket[S, C, V]) OnMessage(fn func(c *Context[S, C, V], msg WebSocketMessage) error) {
	ws.onMessage = fn
}

// OnClose sets the handler run, as a turn, when the socket has closed.
func (ws *WebSocket[S, C, V]) OnClose(fn func(c *Context[S, C, V])) { ws.onClose = fn }

// SendText sends a text message once the current turn is durable.
func (ws *WebSocket[S, C, V]) SendText(s string) error { return ws.conn.Send("text", []byte(s)) }

// SendBinary sends a binary message once the current turn is durable.
func (ws *WebSocket[S, C, V]) SendBinary(b []byte) error {
	return ws.conn.Send("binary", bytes.Clone(b))
}

// Close closes the socket (code 1000) with a reason after the current
// turn's messages.
func (ws *WebSocket[S, C, V]) Close(reason string) { ws.conn.Disconnect(reason) }

func (a *Actor[S, C, V]) serveWebSocket(ctx context.Context, e *engine.Engine, id string, sock *gateway.RawSocket, r *http.Request) error {
	if a.opts.OnWebSocket == nil {
		return gateway.ErrNoHandler.With("Actor %q has no onWebSocket handler.", a.name)
	}
	ws := &WebSocket[S, C, V]{req: r, sock: sock}
	ws.conn = engine.NewConn(engine.NewConnID(), nil, nil, sock)
	err := e.Attach(ctx, id, ws.conn, func(t *engine.Turn) error {
		c := t.Instance().(*instance[S, C, V]).ctx(t)
		return finish(c, a.opts.OnWebSocket(c, ws))
	})
	if err != nil {
		return err
	}
	defer e.Detach(id, ws.conn, func(t *engine.Turn) error {
		if ws.onClose == nil {
			return nil
		}
		c := t.Instance().(*instance[S, C, V]).ctx(t)
		ws.onClose(c)
		return c.err
	})
	for {
		text, data, err := sock.Read(ctx)
		if err != nil {
			return nil
		}
		if ws.onMessage == nil {
			continue
		}
		msg := WebSocketMessage{Text: text, Data: data}
		if err := e.EnterAs(ctx, id, ws.conn, func(t *engine.Turn) error {
			c := t.Instance().(*instance[S, C, V]).ctx(t)
			return finish(c, ws.onMessage(c, msg))
		}); err != nil {
			return err
		}
	}
}
