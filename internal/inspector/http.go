package inspector

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/rivettype"
)

//go:embed ui
var uiFiles embed.FS

// maxBody bounds a request body (an edited state, action arguments).
const maxBody = 8 << 20

// keepAlive is how often an idle event stream sends a comment, so that
// proxies keep it open.
const keepAlive = 15 * time.Second

// Config configures the HTTP handler.
type Config struct {
	// Token is the admin token. Empty: the inspector is open only to
	// clients on a loopback address, connecting to a loopback address.
	Token string
}

// Handler serves the inspector's JSON API under /inspector/ and its UI
// under /ui/. Mount it at the root of the runtime's handler.
type Handler struct {
	s     *Service
	token [32]byte
	open  bool // no token: loopback only
	ui    http.Handler

	mu struct {
		sync.Mutex
		// closing is closed by CloseStreams to end the open streams.
		closing chan struct{}
	}
}

// NewHandler returns the inspector's HTTP handler.
func NewHandler(s *Service, cfg Config) *Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	h := &Handler{s: s, open: cfg.Token == "", ui: http.StripPrefix("/ui/", http.FileServerFS(sub))}
	h.token = sha256.Sum256([]byte(cfg.Token))
	h.mu.closing = make(chan struct{})
	return h
}

// CloseStreams ends every open event stream (the UI reconnects on its
// own). A server calls it when it shuts down, since streams never end by
// themselves.
func (h *Handler) CloseStreams() {
	h.mu.Lock()
	close(h.mu.closing)
	h.mu.closing = make(chan struct{})
	h.mu.Unlock()
}

func (h *Handler) streamsClosing() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.closing
}

// Owns reports whether a request path belongs to the inspector.
func Owns(path string) bool {
	return path == "/ui" || strings.HasPrefix(path, "/ui/") || path == "/inspector" || strings.HasPrefix(path, "/inspector/")
}

// ServeHTTP routes an inspector request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/ui":
		http.Redirect(w, r, "ui/", http.StatusMovedPermanently)
		return
	case strings.HasPrefix(p, "/ui/"):
		// The page holds no data: it asks for the token and calls the API.
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ui.ServeHTTP(w, r)
		return
	}
	if err := h.authorize(r); err != nil {
		writeError(w, h.s.log, err)
		return
	}
	h.api(w, r)
}

// authorize applies the access rules: with a token configured, every
// request must carry it (Authorization: Bearer, or ?token= on the event
// stream, which browsers open without headers); without one, only
// loopback clients that reached a loopback address under a loopback host
// name are served.
func (h *Handler) authorize(r *http.Request) error {
	if h.open {
		if loopback(r) {
			return nil
		}
		return ErrForbidden.With("The inspector is open only to clients on this machine (loopback) while no admin token is set. Set RIVET_ADMIN_TOKEN (Config.Inspector.Token) to allow remote access with the token.")
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && strings.HasSuffix(r.URL.Path, "/stream") {
		got, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if !ok || got == "" {
		return ErrUnauthorized.With("The inspector needs the admin token: send Authorization: Bearer <token>.")
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], h.token[:]) != 1 {
		return ErrUnauthorized.With("The admin token is wrong.")
	}
	return nil
}

// Admin reports whether a request carries the configured admin token
// (Authorization: Bearer). Without a token configured nothing does: the
// loopback rule of the inspector grants nothing elsewhere.
func (h *Handler) Admin(r *http.Request) bool {
	if h.open {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], h.token[:]) == 1
}

// loopback reports whether a request came from a loopback address, to a
// loopback address, naming a loopback host (a page of another site that
// rebinds its DNS name to 127.0.0.1 sends its own host name, and is
// refused).
//
// Two more cases are not local even though the connection is: a request
// relayed by a reverse proxy on this machine (it carries Forwarded,
// X-Forwarded-For or X-Real-IP), and a request a browser sends on behalf
// of a page of another origin (its Origin names another host), which
// would otherwise let any web site call actions through the visitor's
// browser.
func loopback(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ta, ok := la.(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			return false
		}
	}
	name := r.Host
	if hn, _, err := net.SplitHostPort(name); err == nil {
		name = hn
	}
	name = strings.Trim(name, "[]")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

func (h *Handler) api(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/inspector")
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	if len(parts) < 1 || parts[0] != "actors" {
		writeError(w, h.s.log, ErrBadRequest.With("No inspector route %s %s.", r.Method, r.URL.Path))
		return
	}
	if len(parts) == 1 {
		if !method(w, r, http.MethodGet) {
			return
		}
		h.list(ctx, w, r)
		return
	}
	id := parts[1]
	sub := ""
	if len(parts) > 2 {
		sub = parts[2]
	}
	switch {
	case sub == "" && len(parts) == 2:
		if method(w, r, http.MethodGet) {
			h.reply(w)(h.s.Actor(ctx, id))
		}
	case sub == "state" && len(parts) == 3:
		switch r.Method {
		case http.MethodGet:
			h.reply(w)(h.s.State(ctx, id))
		case http.MethodPut, http.MethodPost:
			var body struct {
				State json.RawMessage `json:"state"`
			}
			if err := readJSON(r, &body); err != nil {
				writeError(w, h.s.log, err)
				return
			}
			h.reply(w)(h.s.SetState(ctx, id, body.State))
		default:
			writeError(w, h.s.log, errMethod(r, "GET, PUT"))
		}
	case sub == "connections" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			cs, err := h.s.Connections(ctx, id)
			h.reply(w)(map[string]any{"connections": cs}, err)
		}
	case sub == "alarms" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			as, err := h.s.Alarms(ctx, id)
			h.reply(w)(map[string]any{"alarms": as}, err)
		}
	case sub == "queue" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			ms, err := h.s.Queue(ctx, id, limit)
			h.reply(w)(map[string]any{"messages": ms}, err)
		}
	case sub == "events" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			evs, err := h.s.Events(ctx, id)
			h.reply(w)(map[string]any{"events": evs}, err)
		}
	case sub == "logs" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			ls, err := h.s.Logs(ctx, id)
			h.reply(w)(map[string]any{"logs": ls}, err)
		}
	case sub == "kv" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			limit, err := intParam(r, "limit")
			if err != nil {
				writeError(w, h.s.log, err)
				return
			}
			es, err := h.s.KV(ctx, id, KVQuery{Prefix: r.URL.Query().Get("prefix"), Limit: limit})
			h.reply(w)(map[string]any{"entries": es}, err)
		}
	case sub == "actions" && len(parts) == 4 && parts[3] != "":
		if !method(w, r, http.MethodPost) {
			return
		}
		var body struct {
			Args json.RawMessage `json:"args"`
		}
		if err := readJSON(r, &body); err != nil {
			writeError(w, h.s.log, err)
			return
		}
		out, err := h.s.CallAction(ctx, id, parts[3], body.Args)
		h.reply(w)(map[string]any{"output": out}, err)
	case sub == "stream" && len(parts) == 3:
		if method(w, r, http.MethodGet) {
			h.stream(w, r, id)
		}
	default:
		writeError(w, h.s.log, ErrBadRequest.With("No inspector route %s %s.", r.Method, r.URL.Path))
	}
}

func (h *Handler) list(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(r, "limit")
	if err != nil {
		writeError(w, h.s.log, err)
		return
	}
	h.reply(w)(h.s.ListActors(ctx, ListOptions{
		Namespace: q.Get("namespace"), Name: q.Get("name"), Key: q.Get("key"), Q: q.Get("q"), After: q.Get("after"), Limit: limit,
	}))
}

// stream sends an actor's changes as server-sent events: "state" (the
// committed state, first on connect), "event", "log", "connections" (the
// full list), "lifecycle" ({"status": "awake"|"sleeping"|"destroyed"})
// and "resync" when changes were dropped because the client fell behind
// (re-read the actor).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	closing := h.streamsClosing()
	watch, err := h.s.Watch(id)
	if err != nil {
		writeError(w, h.s.log, err)
		return
	}
	defer watch.Close()
	st, err := h.s.State(ctx, id)
	if err != nil && !errors.Is(err, engine.ErrNeverActivated) {
		writeError(w, h.s.log, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, h.s.log, fmt.Errorf("inspector: the response writer cannot stream"))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if st.State == nil {
		st.State = json.RawMessage("null")
	}
	if sendEvent(w, "state", st) != nil {
		return
	}
	fl.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var werr error
		select {
		case <-ctx.Done():
			return
		case <-closing:
			return
		case <-tick.C:
			_, werr = io.WriteString(w, ": keep-alive\n\n")
		case n := <-watch.C:
			if watch.Lost() {
				werr = sendEvent(w, "resync", map[string]any{})
				break
			}
			werr = h.notice(ctx, w, id, n)
		}
		if werr != nil {
			return
		}
		fl.Flush()
	}
}

func (h *Handler) notice(ctx context.Context, w io.Writer, id string, n engine.Notice) error {
	switch n.Kind {
	case engine.NoticeState:
		if n.Gate.Wait(ctx) != nil {
			return nil // the commit failed: the change never happened
		}
		j, err := toJSON(n.State)
		if err != nil {
			return nil
		}
		return sendEvent(w, "state", StateInfo{State: j, Awake: true})
	case engine.NoticeEvent:
		if n.Gate.Wait(ctx) != nil {
			return nil
		}
		return sendEvent(w, "event", eventInfo(*n.Event))
	case engine.NoticeLog:
		return sendEvent(w, "log", logInfo(*n.Log))
	case engine.NoticeConnections:
		cs, err := h.s.Connections(ctx, id)
		if err != nil {
			return nil
		}
		return sendEvent(w, "connections", map[string]any{"connections": cs})
	case engine.NoticeLifecycle:
		return sendEvent(w, "lifecycle", map[string]string{"status": n.Lifecycle})
	}
	return nil
}

func sendEvent(w io.Writer, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	return err
}

func method(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m {
		return true
	}
	writeError(w, nil, errMethod(r, m))
	return false
}

var errMethodNotAllowed = &rivettype.Error{Group: "inspector", Code: "method_not_allowed", Message: "Method not allowed.", Public: true}

func errMethod(r *http.Request, allowed string) error {
	return errMethodNotAllowed.With("%s is not allowed on %s; use %s.", r.Method, r.URL.Path, allowed)
}

func intParam(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, ErrBadRequest.With("Parameter %s must be a non-negative integer, got %q.", name, s)
	}
	return n, nil
}

func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return ErrBadRequest.With("Cannot read the request body: %v", err)
	}
	if len(body) > maxBody {
		return ErrBadRequest.With("The request body is larger than %d bytes.", maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return ErrBadRequest.With("The request body is not valid JSON: %v", err)
	}
	return nil
}

// reply writes a result or an error.
func (h *Handler) reply(w http.ResponseWriter) func(any, error) {
	return func(v any, err error) {
		if err != nil {
			writeError(w, h.s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// publicError is what a client may see of err: a public error as is, any
// other structured error with its group and code and a generic message,
// anything else as core.internal_error.
func publicError(err error) *rivettype.Error {
	e, ok := rivettype.As(err)
	switch {
	case ok && e.Public:
		return e
	case ok:
		return &rivettype.Error{Group: e.Group, Code: e.Code, Message: rivettype.InternalMessage}
	case errors.Is(err, context.DeadlineExceeded):
		return rivettype.ErrActionTimedOut
	}
	return &rivettype.Error{Group: "core", Code: "internal_error", Message: rivettype.InternalMessage}
}

// statusOf is the HTTP status of an error.
func statusOf(e *rivettype.Error) int {
	switch e.Group + "." + e.Code {
	case "actor.not_found", "actor.action_not_found":
		return http.StatusNotFound
	case "actor.not_initialized":
		return http.StatusConflict
	case "actor.action_timed_out":
		return http.StatusRequestTimeout
	case "inspector.method_not_allowed":
		return http.StatusMethodNotAllowed
	case "auth.unauthorized":
		return http.StatusUnauthorized
	case "auth.forbidden":
		return http.StatusForbidden
	case "actor.overloaded":
		return http.StatusTooManyRequests
	case "actor.stopping", "inspector.disabled":
		return http.StatusServiceUnavailable
	case "inspector.invalid_state":
		return http.StatusUnprocessableEntity
	}
	if !e.Public {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// writeError answers with an error as JSON, logging what it masks.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	e := publicError(err)
	if pe, ok := rivettype.As(err); (!ok || !pe.Public) && log != nil {
		log.Error("inspector request failed", "err", err)
	}
	body := map[string]any{"group": e.Group, "code": e.Code, "message": e.Message}
	if e.Metadata != nil {
		if b, err := codec.Marshal(e.Metadata); err == nil {
			body["metadata"] = jsonOrNull(b)
		}
	}
	if e.Group == "auth" && e.Code == "unauthorized" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rivet inspector"`)
	}
	writeJSON(w, statusOf(e), body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"group":"core","code":"internal_error","message":"An internal error occurred"}`)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
