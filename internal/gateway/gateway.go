// Package gateway serves actors over HTTP and WebSocket in the RivetKit
// wire protocol (rivetkit@2.3.x): the engine REST API the client uses to
// locate actors (/metadata, /actors), and the actor gateway
// (/gateway/{id|name}/…) with stateless actions, WebSocket connections and
// raw HTTP / WebSocket pass-through. See docs/PROTOCOL.md.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivettype"
)

// Defaults of the limits, as RivetKit's.
const (
	DefaultMaxIncoming = 64 << 10
	DefaultMaxOutgoing = 1 << 20
	// DefaultMaxInput bounds a create-time input (REST and rvt-input).
	DefaultMaxInput = 4 << 20
	// DefaultSendQueue bounds the messages waiting to be written to one
	// WebSocket; a client that does not read is disconnected past it.
	DefaultSendQueue = 1024
	// DefaultSendQueueBytes bounds the bytes of those messages.
	DefaultSendQueueBytes = 4 << 20
	// DefaultMaxSubscriptions bounds the event subscriptions of one
	// connection.
	DefaultMaxSubscriptions = 1000
	// DefaultBodyTimeout bounds the time a request body takes to arrive.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds the writing of one response, or of one
	// batch of WebSocket messages.
	DefaultWriteTimeout = 30 * time.Second
	// maxEventName bounds the event name of a subscription request.
	maxEventName = 256
	// maxPendingActions bounds the actions of one connection under way
	// at once; the connection's next message is read when one finishes.
	maxPendingActions = 1000
	// maxRESTBody bounds the body of a REST call.
	maxRESTBody = 8 << 20
)

// Intents a caller has, as an auth hook sees them. Every route that
// reaches or reveals an actor runs its auth hook with them (see
// docs/concepts/auth.md for which route passes which).
const (
	IntentGet     = "get"
	IntentCreate  = "create"
	IntentConnect = "connect"
	IntentAction  = "action"
	IntentDestroy = "destroy"
	IntentSleep   = "sleep"
)

// Hooks are the user hooks the gateway runs; package rivet implements them
// over the typed actor definitions.
type Hooks interface {
	// Auth runs the actor's onAuth hook, if it has one, before any actor
	// work; its result becomes the connection's auth data.
	Auth(r *http.Request, a AuthRequest, params []byte) (any, error)
	// Request serves a raw HTTP request with the actor's onRequest hook,
	// on connection conn (its params, auth and request set).
	// r.URL.Path is the path after /request.
	Request(ctx context.Context, actorID, name string, conn *engine.Conn, w http.ResponseWriter, r *http.Request) error
	// WebSocket serves a raw WebSocket with the actor's onWebSocket hook,
	// on connection conn (its transport ws); it returns when the socket
	// is done.
	WebSocket(ctx context.Context, actorID, name string, conn *engine.Conn, ws *RawSocket, r *http.Request) error
}

// AuthRequest is what the auth hook learns about a request besides the
// HTTP request and the connection params.
type AuthRequest struct {
	// Namespace is the namespace of the actor reached: the one the
	// request named, or for an actor addressed by id, the actor's own.
	Namespace string
	Name      string
	Key       []string
	// Token is the token the client presented in any of the places the
	// RivetKit client puts its token option (see requestToken); "" when
	// none. The gateway checks nothing about it: the auth hook may.
	Token   string
	Intents []string
}

// requestToken is the token a request carries: the @token path segment
// or rvt-token (already in t.Token), the x-rivet-token header, a
// rivet_token.* subprotocol, or (REST) Authorization: Bearer.
func requestToken(r *http.Request, t string) string {
	if t != "" {
		return t
	}
	if h := r.Header.Get("X-Rivet-Token"); h != "" {
		return h
	}
	for _, sp := range subprotocols(r) {
		if v, ok := strings.CutPrefix(sp, "rivet_token."); ok {
			if s, err := url.PathUnescape(v); err == nil {
				return s
			}
		}
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return v
	}
	return ""
}

// Config configures a Gateway.
type Config struct {
	Engine *engine.Engine
	Hooks  Hooks
	Log    *slog.Logger
	// Origins lists the browser origins allowed to call the gateway with
	// credentials (CORS); "*" allows every origin with credentials, as
	// RivetKit's engine does. Empty: see cors.
	Origins []string
	// CORS refines the CORS answers (RivetKit's cors options).
	CORS CORS
	// Admin reports whether a request carries the admin token; the REST
	// API (/actors) then skips the actors' auth hooks (operators' tools).
	Admin func(r *http.Request) bool
	// Namespaces lists the namespaces callers may name besides "default";
	// "*" allows any. An unknown namespace is refused with
	// namespace.not_found.
	Namespaces []string
	// Limits; zero means the default.
	MaxIncoming int
	MaxOutgoing int
	MaxInput    int
	SendQueue   int
	// SendQueueBytes bounds the bytes queued for one WebSocket.
	SendQueueBytes int
	// MaxSubscriptions bounds the subscriptions of one connection.
	MaxSubscriptions int
	// BodyTimeout bounds the arrival of a request body, from the start
	// of the request; WriteTimeout the writing of a response, from its
	// first byte, and of each batch of WebSocket messages.
	BodyTimeout  time.Duration
	WriteTimeout time.Duration
	// PingInterval is the time between two pings of a WebSocket, and
	// PingTimeout the wait for its pong: a peer that does not answer is
	// closed (see liveness.go).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// Version is reported by /metadata.
	Version string
	// Inspector, when set, serves the paths InspectorPath accepts (/ui/
	// and /inspector/) outside the gateway's CORS rules: the admin API is
	// for same-origin pages and tools only.
	Inspector     http.Handler
	InspectorPath func(path string) bool
}

// Gateway is the HTTP handler.
type Gateway struct {
	cfg     Config
	e       *engine.Engine
	log     *slog.Logger
	metrics *metrics
	keys    keyCache // query-form targets of awake actors
}

// New returns a gateway.
func New(cfg Config) *Gateway {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxIncoming <= 0 {
		cfg.MaxIncoming = DefaultMaxIncoming
	}
	if cfg.MaxOutgoing <= 0 {
		cfg.MaxOutgoing = DefaultMaxOutgoing
	}
	if cfg.MaxInput <= 0 {
		cfg.MaxInput = DefaultMaxInput
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.SendQueueBytes <= 0 {
		cfg.SendQueueBytes = DefaultSendQueueBytes
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	return &Gateway{cfg: cfg, e: cfg.Engine, log: cfg.Log, metrics: newMetrics(cfg.Engine)}
}

// Request kinds, the kind label of gateway_requests_total.
const (
	kindMetadata = iota
	kindActors
	kindOther
	kindAction
	kindConnect
	kindRequest
	kindWebSocket
	kindGateway
	numKinds
)

var kindNames = [numKinds]string{"metadata", "actors", "other", "action", "connect", "request", "websocket", "gateway"}

// kind names a request's route for metrics.
func kind(path string) int {
	switch {
	case path == "/metadata":
		return kindMetadata
	case path == "/actors" || strings.HasPrefix(path, "/actors/"):
		return kindActors
	case !strings.HasPrefix(path, "/gateway/"):
		return kindOther
	case strings.Contains(path, "/action/"):
		return kindAction
	case strings.HasSuffix(path, "/connect"):
		return kindConnect
	case strings.Contains(path, "/request"):
		return kindRequest
	case strings.Contains(path, "/websocket"):
		return kindWebSocket
	}
	return kindGateway
}

// A route is an entry of the gateway's routing table. paths are the
// paths of /openapi.json it serves: a test checks that the table and the
// document list the same routes, and the auth sweep sends every route of
// the document to an actor whose OnAuth refuses everyone. So a route
// cannot be added here without its documentation and an auth test case.
// A path ending in "*" stands for every path of the document under it.
type route struct {
	paths []string
	match func(g *Gateway, r *http.Request) bool
	serve func(g *Gateway, w http.ResponseWriter, r *http.Request, raw string)
}

// early routes are served outside CORS and the request metrics: the
// Prometheus endpoint and the inspector (an admin API for same-origin
// pages and tools, with its own access rule).
var early = []route{
	{
		paths: []string{"/metrics"},
		match: func(_ *Gateway, r *http.Request) bool { return r.URL.Path == "/metrics" },
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) { g.metrics.handler.ServeHTTP(w, r) },
	},
	{
		paths: []string{"/inspector/*"},
		match: func(g *Gateway, r *http.Request) bool {
			return g.cfg.Inspector != nil && g.cfg.InspectorPath(r.URL.Path)
		},
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) { g.cfg.Inspector.ServeHTTP(w, r) },
	},
}

// routes is the table of the gateway proper, tried in order after CORS.
var routes = []route{
	{
		paths: []string{"/metadata"},
		match: func(_ *Gateway, r *http.Request) bool { return r.URL.Path == "/metadata" || r.URL.Path == "/" },
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) { g.metadata(w, r) },
	},
	{
		paths: []string{"/health"},
		match: func(_ *Gateway, r *http.Request) bool { return r.URL.Path == "/health" },
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("ok"))
		},
	},
	{
		paths: []string{"/openapi.json"},
		match: func(_ *Gateway, r *http.Request) bool { return r.URL.Path == "/openapi.json" },
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) { g.openAPI(w, r) },
	},
	{
		paths: []string{"/devtools/mod.js"},
		match: func(_ *Gateway, r *http.Request) bool { return r.URL.Path == "/devtools/mod.js" },
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) {
			w.Header().Set("Content-Type", "text/javascript")
		},
	},
	{
		paths: []string{"/actors", "/actors/{actor_id}", "/actors/{actor_id}/sleep"},
		match: func(_ *Gateway, r *http.Request) bool {
			return r.URL.Path == "/actors" || strings.HasPrefix(r.URL.Path, "/actors/")
		},
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, _ string) { g.actors(w, r) },
	},
	{
		paths: []string{"/gateway/{actor}/action/{action}", "/gateway/{actor}/queue/{queue}", "/gateway/{actor}/connect", "/gateway/{actor}/request",
			"/gateway/{actor}/request/{path}", "/gateway/{actor}/websocket/{path}"},
		match: func(_ *Gateway, r *http.Request) bool {
			return r.URL.Path == "/gateway" || strings.HasPrefix(r.URL.Path, "/gateway/")
		},
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, raw string) { g.gateway(w, r, raw) },
	},
	{
		// Header/subprotocol routing (the client's skipReadyWait mode):
		// /request/…, /connect, /websocket/… with the actor named in
		// x-rivet-actor or a rivet_actor.* subprotocol.
		paths: []string{"/connect", "/request/{path}", "/websocket/{path}"},
		match: func(_ *Gateway, r *http.Request) bool { return headerTarget(r) != "" },
		serve: func(g *Gateway, w http.ResponseWriter, r *http.Request, raw string) {
			g.route(w, r, target{ActorID: headerTarget(r), ViaHeader: true, Path: raw})
		},
	},
}

// ServeHTTP routes a request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, rt := range early {
		if rt.match(g, r) {
			rt.serve(g, w, r, "")
			return
		}
	}
	// One allocation for the request's bookkeeping: the recorder, its
	// response controller and the body's deadline wrapper.
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { g.metrics.observe(kind(r.URL.Path), rec.status) }()
	if !isWebSocket(r) {
		// A WebSocket's deadlines are its own (the sender's write
		// timeout); hijacking clears the connection's.
		g.deadlines(rec, r)
	}
	g.serve(rec, r)
}

// deadlines bounds a plain HTTP request on its connection: its body must
// arrive within BodyTimeout (from now), and its response be written
// within WriteTimeout of its first byte. Waiting for a long action counts
// against neither. Where the connection has no deadlines (an in-memory
// listener), nothing is bounded.
func (g *Gateway) deadlines(rec *statusRecorder, r *http.Request) {
	rec.rc = *http.NewResponseController(rec.ResponseWriter)
	rec.writeTimeout = g.cfg.WriteTimeout
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	if rec.rc.SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout)) == nil {
		rec.body = deadlineBody{ReadCloser: r.Body, rc: &rec.rc}
		r.Body = &rec.body
	}
}

// deadlineBody lifts the body's read deadline once the body has been read
// to its end: the server then keeps reading the connection to notice a
// client that hangs up, and a deadline there would cancel the request.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	if !g.cors(w, r) {
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	raw := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		raw += "?" + r.URL.RawQuery
	}
	for _, rt := range routes {
		if rt.match(g, r) {
			rt.serve(g, w, r, raw)
			return
		}
	}
	g.fail(w, r, errNoRoute.With("No route found for path %s.", clip(r.URL.Path)))
}

// headerTarget is the actor id of a header-routed request, or "".
func headerTarget(r *http.Request) string {
	p := r.URL.Path
	if p != "/connect" && p != "/request" && !strings.HasPrefix(p, "/request/") && p != "/websocket" && !strings.HasPrefix(p, "/websocket/") {
		return ""
	}
	if r.Header.Get("X-Rivet-Target") == "actor" {
		return r.Header.Get("X-Rivet-Actor")
	}
	isActor, id := false, ""
	for _, sp := range subprotocols(r) {
		switch {
		case sp == "rivet_target.actor":
			isActor = true
		case strings.HasPrefix(sp, "rivet_actor."):
			id, _ = url.PathUnescape(strings.TrimPrefix(sp, "rivet_actor."))
		}
	}
	if isActor {
		return id
	}
	return ""
}

// CORS holds RivetKit's cors options; zero values keep the defaults.
type CORS struct {
	// AllowOrigin decides for an origin that is neither this server's
	// nor in Origins: true allows it as if it were listed. Set, it
	// replaces the default policy for the origins it sees: those it
	// refuses are refused (403 guard.forbidden_origin).
	AllowOrigin func(origin string, r *http.Request) bool
	// AllowMethods answer a preflight (default: GET, POST, PUT, DELETE,
	// OPTIONS, PATCH).
	AllowMethods []string
	// AllowHeaders answer a preflight (default: the headers it asks for).
	AllowHeaders []string
	// NoCredentials: allowed origins are answered without
	// Access-Control-Allow-Credentials, and their cookies are dropped.
	NoCredentials bool
	// MaxAge is how long a browser may cache a preflight's answer
	// (default 24 h; negative: not at all).
	MaxAge time.Duration
	// ExposeHeaders are the response headers a page may read. Default:
	// all of them: "*" for a request without credentials, and the names
	// of the response's own headers for one with credentials (browsers
	// read "*" there as a header named "*").
	ExposeHeaders []string
}

const defaultCORSMethods = "GET, POST, PUT, DELETE, OPTIONS, PATCH"

// cors applies the CORS headers; it reports false when the origin is not
// allowed (the request was answered).
//
// The server's own pages (same origin) are always served with
// credentials. With an allow-list (Config.Origins) or an origin function
// (CORS.AllowOrigin), listed or accepted origins are too and others are
// refused. Without either, local development pages (localhost, loopback
// addresses) are too, and any other origin may call without credentials:
// the browser does not show that page the answers to its credentialed
// requests, and the cookies it attached anyway are dropped here so that
// they authenticate nothing (no cross-site request forgery with a
// visitor's cookies, on HTTP or WebSocket).
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	c := &g.cfg.CORS
	h := w.Header()
	h.Add("Vary", "Origin")
	credentials := !c.NoCredentials
	switch {
	case sameOrigin(r, origin):
		credentials = true
	case slices.Contains(g.cfg.Origins, origin) || slices.Contains(g.cfg.Origins, "*"):
	case c.AllowOrigin != nil && c.AllowOrigin(origin, r):
	case len(g.cfg.Origins) > 0 || c.AllowOrigin != nil:
		g.fail(w, r, errForbiddenOrigin.With("Origin %s is not allowed.", clip(origin)))
		return false
	case localOrigin(origin):
	default:
		credentials = false
	}
	if !credentials {
		r.Header.Del("Cookie")
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	switch {
	case len(c.ExposeHeaders) > 0:
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
	case !credentials:
		h.Set("Access-Control-Expose-Headers", "*")
	default:
		if rec, ok := w.(*statusRecorder); ok {
			rec.exposeAll = true // named when the head is written
		}
	}
	if r.Method == http.MethodOptions {
		methods := defaultCORSMethods
		if len(c.AllowMethods) > 0 {
			methods = strings.Join(c.AllowMethods, ", ")
		}
		h.Set("Access-Control-Allow-Methods", methods)
		if len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ", "))
		} else if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		switch {
		case c.MaxAge == 0:
			h.Set("Access-Control-Max-Age", "86400")
		case c.MaxAge > 0:
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge/time.Second)))
		}
	}
	return true
}

// exposeHeaders names the response's headers a page may read, for a
// credentialed response (where "*" would be taken literally): all but
// the CORS-safelisted ones, which are always readable, and those only
// the browser reads.
func exposeHeaders(h http.Header) {
	var names []string
	for k := range h {
		switch k {
		case "Cache-Control", "Content-Language", "Content-Length", "Content-Type", "Expires", "Last-Modified", "Pragma",
			"Set-Cookie", "Vary":
			continue
		}
		if strings.HasPrefix(k, "Access-Control-") {
			continue
		}
		names = append(names, k)
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	h.Set("Access-Control-Expose-Headers", strings.Join(names, ", "))
}

// sameOrigin reports whether origin names the host the request was sent
// to (a page served by this server).
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// localOrigin reports whether origin is a page of this machine:
// localhost, *.localhost or a loopback address, any port (development
// servers).
func localOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CORSSummary describes the cross-origin policy of origins (Config.Origins)
// and c in one line, for a startup banner.
func CORSSummary(origins []string, c CORS) string {
	var s string
	switch {
	case slices.Contains(origins, "*"):
		s = "any origin, with credentials (allowed_origins=*)"
	case len(origins) > 0 && c.AllowOrigin != nil:
		s = strings.Join(origins, ", ") + ", origins the AllowOrigin function accepts and this server's pages, with credentials; other origins refused"
	case c.AllowOrigin != nil:
		s = "origins the AllowOrigin function accepts and this server's pages, with credentials; other origins refused"
	case len(origins) > 0:
		s = strings.Join(origins, ", ") + " and this server's pages, with credentials; other origins refused"
	default:
		return "this server's pages and localhost with credentials, other origins without (cookies ignored); set allowed_origins for your site"
	}
	if c.NoCredentials {
		s = strings.Replace(s, "with credentials", "without credentials (cookies ignored) except this server's pages", 1)
	}
	return s
}

func (g *Gateway) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"runtime": "rivetgo", "version": g.cfg.Version})
}

var (
	errForbiddenOrigin   = &rivettype.Error{Group: "guard", Code: "forbidden_origin", Message: "Origin not allowed.", Public: true}
	errMethodNotAllowed  = &rivettype.Error{Group: "actor", Code: "method_not_allowed", Message: "Method not allowed.", Public: true}
	errInvalidRequest    = &rivettype.Error{Group: "actor", Code: "invalid_request", Message: "Invalid request.", Public: true}
	errRouteNotFound     = &rivettype.Error{Group: "actor", Code: "not_found", Message: "Actor route was not found.", Public: true}
	errInputTooLarge     = &rivettype.Error{Group: "actor", Code: "input_too_large", Message: "Actor input too large.", Public: true}
	errInternal          = &rivettype.Error{Group: "core", Code: "internal_error", Message: rivettype.InternalMessage}
	errGatewayNotStarted = &rivettype.Error{Group: "guard", Code: "service_unavailable", Message: "The runtime is shutting down.", Public: true}
)

// public turns err into what a remote caller may see: a public error as
// is; any other structured error with its group and code but the generic
// message and no metadata; anything else as core.internal_error.
func public(err error) *rivettype.Error {
	e, ok := rivettype.As(err)
	if !ok {
		if errors.Is(err, context.DeadlineExceeded) {
			return rivettype.ErrActionTimedOut
		}
		return errInternal
	}
	if e.Public {
		return e
	}
	return &rivettype.Error{Group: e.Group, Code: e.Code, Message: rivettype.InternalMessage}
}

// quiet reports whether a failure needs no log line here: callers see
// it as is, or the engine already logged it with the actor's fields.
func quiet(err error) bool {
	e, ok := rivettype.As(err)
	return ok && e.Public || engine.Reported(err)
}

// status is the HTTP status of an error.
func status(e *rivettype.Error) int {
	switch e.Group + "." + e.Code {
	case "actor.not_found", "guard.no_route", "actor.action_not_found":
		return http.StatusNotFound
	case "actor.action_timed_out", "message.incoming_timeout":
		return http.StatusRequestTimeout
	case "actor.method_not_allowed":
		return http.StatusMethodNotAllowed
	case "auth.unauthorized":
		return http.StatusUnauthorized
	case "auth.forbidden", "guard.forbidden_origin":
		return http.StatusForbidden
	case "actor.overloaded", "actor.too_many_connections", "guard.rate_limit":
		return http.StatusTooManyRequests
	case "actor.stopping", "guard.service_unavailable", "actor.storage_error":
		return http.StatusServiceUnavailable
	case "core.internal_error":
		return http.StatusInternalServerError
	}
	if e.Group == "user" {
		return http.StatusBadRequest
	}
	if !e.Public {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// fail answers with an error, always as JSON: the client decodes a JSON
// error whatever encoding it asked for.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	if g.clientGone(w, r, err) {
		return
	}
	e := public(err)
	g.metrics.countError(e)
	if !quiet(err) {
		g.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"group": e.Group, "code": e.Code, "message": e.Message}
	if md := metadataJSON(e); md != nil {
		body["metadata"] = md
	}
	writeJSON(w, status(e), body)
}

// StatusClientClosed is the status a request whose client hung up before
// its answer is counted with (nginx's 499): nothing is written.
const StatusClientClosed = 499

// clientGone reports whether err only says that the client hung up
// before its answer; it then notes the request as 499 and logs at debug.
// A client canceling is not a server error.
func (g *Gateway) clientGone(w http.ResponseWriter, r *http.Request, err error) bool {
	if r.Context().Err() == nil || !errors.Is(err, context.Canceled) {
		return false
	}
	g.log.Debug("client went away before its answer", "method", r.Method, "path", r.URL.Path)
	if rec, ok := w.(*statusRecorder); ok && rec.status == 0 {
		rec.status = StatusClientClosed
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"group":"core","code":"internal_error","message":"An internal error occurred"}`)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// metadataCBOR encodes an error's metadata (nil when absent).
func metadataCBOR(e *rivettype.Error) []byte {
	if e.Metadata == nil {
		return nil
	}
	b, err := codec.Marshal(e.Metadata)
	if err != nil {
		return nil
	}
	return b
}

// metadataJSON encodes an error's metadata as compat JSON.
func metadataJSON(e *rivettype.Error) json.RawMessage {
	b := metadataCBOR(e)
	if b == nil {
		return nil
	}
	j, err := protocol.EncodeJSONValue(b)
	if err != nil {
		return nil
	}
	return j
}

// requestContext bounds the work of a request that has no deadline of its
// own: the client gives up never, so the server must.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 5*time.Minute)
}
