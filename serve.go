package rivet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
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

// DefaultIdleTimeout closes a keep-alive connection without a request
// for this long (GatewayConfig.IdleTimeout).
const DefaultIdleTimeout = 60 * time.Second

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
	// with credentials (cookies): "https://app.example.com", or "*" for
	// every origin (RivetKit's engine behaviour). Other origins, except
	// this server's own pages, are then refused. Empty: this server's
	// pages and localhost pages get credentials, any other origin may call
	// without them (the cookies its requests carry are ignored).
	AllowedOrigins []string
	// CORSOptions refines the CORS answers with RivetKit's cors options:
	// an origin function, methods, headers, credentials, max age and
	// exposed headers (see CORSOptions).
	CORSOptions CORSOptions
	// Namespaces lists the namespaces clients may name besides
	// "default", which always exists; "*" allows any. A request naming
	// another is refused with namespace.not_found.
	Namespaces []string
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
	// SendQueueBytes bounds the bytes of those messages (default 4 MiB);
	// past it the client is disconnected with 1011
	// message.outgoing_queue_full.
	SendQueueBytes int
	// MaxSubscriptions bounds the event subscriptions of one connection
	// (default 1000); past it: connection.too_many_subscriptions.
	MaxSubscriptions int
	// BodyTimeout bounds the time a request body takes to arrive
	// (default 30 s); past it: message.incoming_timeout (408).
	BodyTimeout time.Duration
	// WriteTimeout bounds the writing of a response from its first byte,
	// and of each batch of WebSocket messages (default 30 s); a client
	// that does not read in time is disconnected.
	WriteTimeout time.Duration
	// PingInterval is the time between two pings the server sends each
	// WebSocket (default 30 s), and PingTimeout how long it waits for the
	// pong (default 30 s). A client that does not answer is disconnected,
	// so a dead or half-open peer is closed within PingInterval +
	// PingTimeout (one minute by default) and cannot keep its actor awake.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// IdleTimeout closes a keep-alive connection that has no request for
	// this long (default 60 s). Serve, ServeHandler and ListenAndServe
	// apply it; a server of your own has its own.
	IdleTimeout time.Duration
	// MaxConnections bounds the connections the server holds open, idle
	// keep-alive connections and WebSockets included (default: three
	// quarters of the process's open-file limit). At the bound, a new
	// connection first closes the longest-idle keep-alive connection; if
	// none is idle it is answered 503 and closed. Serve, ServeHandler and
	// ListenAndServe apply it.
	MaxConnections int
}

// CORS describes the cross-origin policy in one line, for a startup
// banner.
func (c GatewayConfig) CORS() string {
	return gateway.CORSSummary(c.AllowedOrigins, c.CORSOptions.gateway())
}

// Handler returns the runtime's HTTP handler: the RivetKit engine API
// (/metadata, /actors) and the actor gateway (/gateway/…), which the
// official rivetkit client and @rivetkit/react talk to. Mount it at the
// root of a server or under a prefix with http.StripPrefix.
func (rt *Runtime) Handler() http.Handler {
	rt.gwOnce.Do(func() {
		c := rt.gwConfig
		insp := rt.inspectorHandler()
		var admin func(*http.Request) bool
		if rt.insp != nil {
			admin = rt.insp.Admin
		}
		rt.gw = gateway.New(gateway.Config{
			Engine: rt.e, Hooks: hooks{defs: rt.reg.defs, e: rt.e, log: rt.log}, Log: rt.log,
			Origins: c.AllowedOrigins, CORS: c.CORSOptions.gateway(), Namespaces: c.Namespaces, Admin: admin,
			MaxIncoming: c.MaxIncomingMessageSize,
			MaxOutgoing: c.MaxOutgoingMessageSize, MaxInput: c.MaxInputSize, SendQueue: c.SendQueue,
			SendQueueBytes: c.SendQueueBytes, MaxSubscriptions: c.MaxSubscriptions,
			BodyTimeout: c.BodyTimeout, WriteTimeout: c.WriteTimeout,
			PingInterval: c.PingInterval, PingTimeout: c.PingTimeout,
			Version: Version, Inspector: insp, InspectorPath: inspector.Owns,
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
	c := rt.gwConfig
	idle := c.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	// No ReadTimeout or WriteTimeout: they would cut WebSockets and long
	// actions. The gateway sets per-request deadlines instead (body_timeout,
	// write_timeout).
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle}
	maxConns := c.MaxConnections
	if maxConns <= 0 {
		maxConns = defaultMaxConnections()
	}
	if maxConns > 0 {
		cl := newConnLimiter(l, maxConns, rt.log)
		l, srv.ConnState = cl, cl.connState
	}
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
// ListenAddr) until ctx is canceled, then stops it gracefully. Once it
// listens it prints the banner of WriteBanner on standard error (as one
// log record instead with a Config.Logger of your own or LOG_FORMAT=json;
// not at all when the log level is above info).
//
// A nil cfg is LoadConfig(""): settings from $RIVET_CONFIG and the
// environment. An empty addr is cfg.Listen.
//
// With an engine set (cfg.Engine.URL, RIVET_ENGINE) reg runs as a runner
// of the Rivet Engine instead (StartEngineRunner): clients go through
// the engine, and addr serves only metrics, health and the inspector.
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
	if cfg.Engine.URL != "" {
		return listenAndServeRunner(ctx, addr, reg, cfg)
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
	rt.announce(ctx, cfg, l.Addr())
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

// listenAndServeRunner is ListenAndServe with an engine set: reg runs as
// a runner of the Rivet Engine, which routes clients to it; addr serves
// only metrics, health and the inspector.
func listenAndServeRunner(ctx context.Context, addr string, reg *Registry, cfg *Config) error {
	l, err := RunnerListener(addr)
	if err != nil {
		return err
	}
	er, err := StartEngineRunner(ctx, reg, cfg)
	if err != nil {
		l.Close()
		return err
	}
	er.rt.log.Info("running as a Rivet Engine runner", "engine", redactURL(cfg.Engine.URL),
		"runner_key", er.RunnerKey(), "local", "http://"+browserAddr(l.Addr()))
	return er.Serve(ctx, l)
}

// WriteBanner writes the few lines a server prints when it starts
// serving rt at addr: the version and the actors, the endpoint, the
// store, the inspector and the metrics. ListenAndServe and rivet serve
// print it; call it when you serve rt.Handler() yourself. title names
// what is served (rivet serve's example) and may be empty; app, if not
// empty, is the path of a web app served next to the runtime.
func (rt *Runtime) WriteBanner(w io.Writer, addr net.Addr, title, app string) error {
	var b strings.Builder
	b.WriteString(rt.bannerTitle(title) + "\n")
	for _, l := range rt.bannerLines(addr, app) {
		fmt.Fprintf(&b, "  %-10s %s\n", l[0], l[1])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// announce prints the banner when ListenAndServe listens: as text on
// standard error beside the default text logger's lines, as one log
// record with any other logger, not at all above info level.
func (rt *Runtime) announce(ctx context.Context, cfg *Config, addr net.Addr) {
	if !rt.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if cfg.Logger == nil && !strings.EqualFold(cfg.Log.Format, "json") {
		_ = rt.WriteBanner(os.Stderr, addr, "", "")
		return
	}
	var attrs []any
	for _, l := range rt.bannerLines(addr, "") {
		attrs = append(attrs, l[0], l[1])
	}
	rt.log.Info(rt.bannerTitle(""), attrs...)
}

func (rt *Runtime) bannerTitle(title string) string {
	names := strings.Join(rt.reg.Names(), ", ")
	if title != "" {
		return fmt.Sprintf("rivet %s serving %q (%s)", Version, title, names)
	}
	return fmt.Sprintf("rivet %s serving %s", Version, names)
}

// bannerLines are the banner's labelled lines.
func (rt *Runtime) bannerLines(addr net.Addr, app string) [][2]string {
	base := "http://" + browserAddr(addr)
	lines := [][2]string{{"endpoint", base}}
	if app != "" {
		lines = append(lines, [2]string{"app", base + app})
	}
	store := rt.store
	if store == "" {
		store = fmt.Sprintf("%T", rt.driver)
	}
	lines = append(lines, [2]string{"store", store})
	inspector := base + "/ui/ (loopback clients only; set RIVET_ADMIN_TOKEN to open it to others)"
	switch {
	case rt.inspConfig.Disabled:
		inspector = "off"
	case rt.inspConfig.Token != "" || os.Getenv("RIVET_ADMIN_TOKEN") != "":
		inspector = base + "/ui/ (admin token required)"
	}
	return append(lines, [2]string{"inspector", inspector}, [2]string{"metrics", base + "/metrics"},
		[2]string{"cors", rt.gwConfig.CORS()})
}

// browserAddr is a listener's address as a browser should use it: an
// unspecified host (":6420", "0.0.0.0") shows as 127.0.0.1.
func browserAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// redactURL hides a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// hooks runs the typed definitions' gateway hooks.
type hooks struct {
	defs map[string]Definition
	e    *engine.Engine
	log  *slog.Logger
}

func (h hooks) Auth(r *http.Request, a gateway.AuthRequest, params []byte) (any, error) {
	if d := h.defs[a.Name]; d != nil {
		return d.auth(h.log, r, a, params)
	}
	return nil, nil
}

func (h hooks) Request(ctx context.Context, id, name string, conn *engine.Conn, w http.ResponseWriter, r *http.Request) error {
	d := h.defs[name]
	if d == nil {
		return gateway.ErrNoHandler
	}
	return d.serveRequest(ctx, h.e, id, conn, w, r)
}

func (h hooks) WebSocket(ctx context.Context, id, name string, conn *engine.Conn, ws *gateway.RawSocket, r *http.Request) error {
	d := h.defs[name]
	if d == nil {
		return gateway.ErrNoHandler
	}
	return d.serveWebSocket(ctx, h.e, id, conn, ws, r)
}

func (h hooks) QueueSend(ctx context.Context, id, name, queue string, conn *engine.Conn, body []byte, wait bool, waitTimeout time.Duration) (engine.QueueSendResult, error) {
	d := h.defs[name]
	if d == nil {
		return engine.QueueSendResult{}, ErrQueueNotDeclared.With("Queue %q is not declared by actor %q.", queue, name)
	}
	return d.sendQueue(ctx, h.e, id, queue, conn, body, wait, waitTimeout)
}

func (a *Actor[S, C, V]) auth(log *slog.Logger, r *http.Request, req gateway.AuthRequest, params []byte) (any, error) {
	if a.opts.OnAuth == nil {
		return nil, nil
	}
	name, key := req.Name, req.Key
	ac := &AuthContext{Request: r, Namespace: req.Namespace, Name: name, Key: append(Key(nil), key...), Token: req.Token} // its own copy of key: the gateway still needs it
	for _, i := range req.Intents {
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

func (a *Actor[S, C, V]) serveWebSocket(ctx context.Context, e *engine.Engine, id string, conn *engine.Conn, sock *gateway.RawSocket, r *http.Request) error {
	if a.opts.OnWebSocket == nil {
		return gateway.ErrNoHandler.With("Actor %q has no onWebSocket handler.", a.name)
	}
	ws := &WebSocket[S, C, V]{req: r, sock: sock, conn: conn}
	conn.Hibernatable = a.opts.CanHibernateWebSocket
	if f := a.opts.CanHibernateWebSocketFunc; f != nil {
		conn.Hibernatable = f(r)
	}
	if conn.Hibernatable && runnerMode(e) {
		// Through the Rivet Engine a raw WebSocket is not hibernatable
		// (its handlers live in this process, its record does not
		// exist): it keeps its actor awake.
		conn.Hibernatable = false
	}
	if err := e.ConnectRaw(ctx, id, conn); err != nil {
		return err
	}
	err := e.EnterAs(ctx, id, conn, func(t *engine.Turn) error {
		c := t.Instance().(*instance[S, C, V]).ctx(t)
		return finish(c, a.opts.OnWebSocket(c, ws))
	})
	if err != nil {
		e.Detach(id, conn, nil)
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
