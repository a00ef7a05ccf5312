package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/callchain"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// actorRef is a resolved gateway target.
type actorRef struct {
	ID   string
	Name string
	Key  []string
	Auth any
}

// resolve finds (or, for getOrCreate, creates) the target actor after
// running the auth hook with the caller's intents: "get" and the route's
// intent, plus "create" for getOrCreate (as RivetKit's manager did).
func (g *Gateway) resolve(ctx context.Context, r *http.Request, t target, params []byte, intent string) (actorRef, error) {
	if len(params) > maxConnParams {
		return actorRef{}, errInvalidRequest.With("The connection params are %d bytes encoded, over the limit of %d.", len(params), maxConnParams)
	}
	if !t.Query {
		rec, err := g.getActor(ctx, t.ActorID)
		if err != nil {
			return actorRef{}, g.idNotFound(t, err)
		}
		auth, err := g.cfg.Hooks.Auth(r, AuthRequest{Namespace: rec.Namespace, Name: rec.Name, Key: rec.Key,
			Token: requestToken(r, t.Token), Intents: []string{IntentGet, intent}}, params)
		if err != nil {
			return actorRef{}, err
		}
		return actorRef{ID: rec.ID, Name: rec.Name, Key: rec.Key, Auth: auth}, nil
	}
	if err := g.checkNamespace(t.Namespace); err != nil {
		return actorRef{}, err
	}
	if !g.e.Registered(t.Name) {
		return actorRef{}, rivettype.ErrNotRegistered.With("Actor name %q is not registered.", clip(t.Name))
	}
	if err := actorkey.Validate(t.Key); err != nil {
		return actorRef{}, rivettype.ErrInvalidKey.With("Invalid actor key: %v", err)
	}
	if len(t.Input) > g.cfg.MaxInput {
		return actorRef{}, errInputTooLarge.With("Actor input is larger than %d bytes.", g.cfg.MaxInput)
	}
	intents := []string{IntentGet, intent}
	if t.Create {
		intents = []string{IntentGet, IntentCreate, intent}
	}
	auth, err := g.cfg.Hooks.Auth(r, AuthRequest{Namespace: t.Namespace, Name: t.Name, Key: t.Key,
		Token: requestToken(r, t.Token), Intents: intents}, params)
	if err != nil {
		return actorRef{}, err
	}
	var input []byte
	if t.Create && t.Input != nil {
		if input, err = protocol.DecodeCBORValue(t.Input); err != nil {
			return actorRef{}, errQueryBadCBOR.With("invalid query gateway input cbor: %v", err)
		}
	}
	if id, ok := g.keys.get(t.Namespace, t.Name, t.Key); ok && g.e.Awake(id) {
		return actorRef{ID: id, Name: t.Name, Key: t.Key, Auth: auth}, nil
	}
	if t.Create {
		// Every caller of resolve sends the actor a job next, whose
		// result waits for the creation to be durable.
		rec, _, err := g.e.GetOrCreateForWork(ctx, t.Namespace, t.Name, t.Key, input)
		if err != nil {
			return actorRef{}, err
		}
		g.keys.put(t.Namespace, t.Name, t.Key, rec.ID)
		return actorRef{ID: rec.ID, Name: rec.Name, Key: rec.Key, Auth: auth}, nil
	}
	rec, err := g.e.Lookup(ctx, t.Namespace, t.Name, t.Key)
	if err != nil {
		return actorRef{}, err
	}
	g.keys.put(t.Namespace, t.Name, t.Key, rec.ID)
	return actorRef{ID: rec.ID, Name: rec.Name, Key: rec.Key, Auth: auth}, nil
}

// getActor is Engine.GetActor for an id a client sent: one longer than
// any id is not found without a lookup, and echoed clipped.
func (g *Gateway) getActor(ctx context.Context, id string) (rivetdriver.ActorRecord, error) {
	if len(id) > maxActorID {
		return rivetdriver.ActorRecord{}, rivettype.ErrActorNotFound.With("Actor %s was not found.", clip(id))
	}
	return g.e.GetActor(ctx, id)
}

// idNotFound explains a direct-path target that is not an actor: the
// segment after /gateway/ is read as an actor id, which is not what
// someone who wrote /gateway/counter/action/increment meant.
func (g *Gateway) idNotFound(t target, err error) error {
	e, ok := rivettype.As(err)
	if t.ViaHeader || !ok || !errors.Is(err, rivettype.ErrActorNotFound) {
		return err
	}
	name := "NAME"
	if g.e.Registered(t.ActorID) {
		name = t.ActorID
	}
	rest, _, _ := strings.Cut(t.Path, "?")
	if rest == "/" {
		rest = "/action/ACTION"
	}
	return rivettype.ErrActorNotFound.With("%s The path segment after /gateway/ is read as an actor id. "+
		"To address an actor by name and key, use the query form: /gateway/%s%s?rvt-namespace=default&rvt-method=get&rvt-key=KEY "+
		"(rvt-method=getOrCreate&rvt-pool=default creates it).",
		e.Message, url.PathEscape(clip(name)), clip(rest))
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// gateway serves /gateway/….
func (g *Gateway) gateway(w http.ResponseWriter, r *http.Request, raw string) {
	t, ok, err := parseTarget(raw)
	if err == nil && !ok {
		err = errNoRoute.With("No route found for path %s.", clip(r.URL.Path))
	}
	ws := isWebSocket(r)
	if err != nil {
		if ws {
			g.rejectWebSocket(w, r, err)
		} else {
			g.fail(w, r, err)
		}
		return
	}
	g.route(w, r, t)
}

// route dispatches a resolved target by its actor path.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request, t target) {
	ws := isWebSocket(r)
	path, rawQuery, _ := strings.Cut(t.Path, "?")
	switch {
	case path == "/connect" && ws:
		g.connect(w, r, t)
	case path == "/websocket" || strings.HasPrefix(path, "/websocket/"):
		if !ws {
			g.fail(w, r, errInvalidRequest.With("%s needs a WebSocket upgrade.", clip(path)))
			return
		}
		g.rawWebSocket(w, r, t, strings.TrimPrefix(path, "/websocket"), rawQuery)
	case path == "/request" || strings.HasPrefix(path, "/request/"):
		g.rawRequest(w, r, t, strings.TrimPrefix(path, "/request"), rawQuery)
	case strings.HasPrefix(path, "/action/"):
		g.action(w, r, t, strings.TrimPrefix(path, "/action/"))
	case strings.HasPrefix(path, "/queue/") && !ws:
		g.queueSend(w, r, t, strings.TrimPrefix(path, "/queue/"))
	default:
		err := errRouteNotFound.With("Actor route '%s' was not found.", clip(path))
		if ws {
			g.rejectWebSocket(w, r, err)
			return
		}
		g.fail(w, r, err)
	}
}

// connParams reads the x-rivet-conn-params header (JSON); nil if absent.
func connParams(r *http.Request) ([]byte, error) {
	h := r.Header.Get("X-Rivet-Conn-Params")
	if h == "" {
		return nil, nil
	}
	v, err := protocol.DecodePlainJSONValue([]byte(h))
	if err != nil {
		return nil, errInvalidRequest.With("Invalid x-rivet-conn-params header: %v", err)
	}
	return v, nil
}

var errBodyTimeout = &rivettype.Error{Group: "message", Code: "incoming_timeout", Message: "The request body did not arrive in time.", Public: true}

// readBody reads an action's body, at most MaxIncoming bytes, failing
// with message.incoming_too_long past it and message.incoming_timeout
// when it does not arrive within BodyTimeout.
func (g *Gateway) readBody(r *http.Request) ([]byte, error) {
	limit := g.cfg.MaxIncoming
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= int64(limit) {
		// The usual case: the length is announced, read it in one buffer
		// (net/http fails a body shorter than announced and stops at its
		// end).
		b = make([]byte, n)
		var m int
		m, err = io.ReadFull(r.Body, b)
		b = b[:m]
		if err == io.EOF { // nothing arrived of n > 0 bytes
			err = io.ErrUnexpectedEOF
		}
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, errBodyTimeout.With("The request body did not arrive within %s (setting body_timeout, environment RIVET_BODY_TIMEOUT).", g.cfg.BodyTimeout)
	}
	if err != nil {
		return nil, errInvalidRequest.With("Reading the request body: %v", err)
	}
	if len(b) > limit {
		return nil, g.incomingTooLong()
	}
	return b, nil
}

// incomingTooLong is message.incoming_too_long naming the limit and the
// setting that raises it.
func (g *Gateway) incomingTooLong() *rivettype.Error {
	return rivettype.ErrIncomingTooLong.With("Incoming message too long: the limit is %s (setting max_incoming_message_size, environment RIVET_MAX_INCOMING_MESSAGE_SIZE).", sizeText(g.cfg.MaxIncoming))
}

// outgoingTooLong is message.outgoing_too_long naming the limit and the
// setting that raises it.
func (g *Gateway) outgoingTooLong() *rivettype.Error {
	return rivettype.ErrOutgoingTooLong.With("Outgoing message too long: the limit is %s (setting max_outgoing_message_size, environment RIVET_MAX_OUTGOING_MESSAGE_SIZE).", sizeText(g.cfg.MaxOutgoing))
}

// sizeText writes a byte count for people: "65536 bytes (64 KiB)".
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d bytes (%d MiB)", n, n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d bytes (%d KiB)", n, n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// encodeOutput encodes an action's result for a client of encoding enc,
// giving up as soon as the result cannot fit in MaxOutgoing, before
// encoding all of it. It runs in the action's turn, so a result too
// large fails the action and its changes are rolled back. The encoding
// checked is CBOR; a JSON message may be shorter than the CBOR of its
// value (0.1 takes 9 bytes in CBOR, 3 in JSON), so for JSON it allows up
// to three times the limit and the message is checked once built.
func (g *Gateway) encodeOutput(enc protocol.Encoding) func(any) ([]byte, error) {
	limit := g.cfg.MaxOutgoing
	if !enc.Binary() {
		limit *= 3
	}
	return func(v any) ([]byte, error) {
		b, err := codec.MarshalLimit(v, limit)
		if errors.Is(err, codec.ErrTooLarge) {
			return nil, g.outgoingTooLong()
		}
		return b, err
	}
}

// action serves a stateless action: POST /action/{name}.
func (g *Gateway) action(w http.ResponseWriter, r *http.Request, t target, rawName string) {
	if r.Method != http.MethodPost {
		g.fail(w, r, errMethodNotAllowed.With("Actions must be called with POST."))
		return
	}
	name, err := url.PathUnescape(rawName)
	if err != nil || name == "" || strings.Contains(name, "/") {
		g.fail(w, r, errRouteNotFound.With("Actor route '/action/%s' was not found.", clip(rawName)))
		return
	}
	if len(name) > maxActionName {
		g.fail(w, r, rivettype.ErrActionNotFound.With("Action `%s` was not found.", clip(name)))
		return
	}
	enc := protocol.HTTPEncoding(r.Header.Get("X-Rivet-Encoding"))
	body, err := g.readBody(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if len(body) == 0 {
		g.fail(w, r, errInvalidRequest.With(`Invalid %s action request: the body is empty; send the arguments, e.g. {"args":[]} in json`, enc))
		return
	}
	req, err := protocol.DecodeHTTPActionRequest(enc, body)
	if err != nil {
		g.fail(w, r, errInvalidRequest.With("Invalid %s action request: %v", enc, err))
		return
	}
	params, err := connParams(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	ctx = protocol.WithEncoding(ctx, enc) // argument errors speak its terms
	ctx = callchain.Decode(ctx, r.Header.Get(callchain.Header))
	ref, err := g.resolve(ctx, r, t, params, IntentAction)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	conn := engine.NewStatelessConn(params, ref.Auth)
	conn.Request = r
	out, err := g.e.Call(ctx, ref.ID, conn, params, name, req.Args, g.encodeOutput(enc), g.e.ActionTimeout(ref.Name))
	if err != nil {
		g.fail(w, r, err)
		return
	}
	resp, err := protocol.Encode(enc, protocol.HTTPActionResponse{Output: out})
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if len(resp) > g.cfg.MaxOutgoing {
		g.fail(w, r, g.outgoingTooLong())
		return
	}
	h := w.Header()
	h["Content-Type"] = contentTypes[enc]
	h["X-Rivet-Actor"] = []string{ref.ID}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// contentTypes are the Content-Type header values of each encoding,
// shared by every response (header values are not modified once set).
var contentTypes = map[protocol.Encoding][]string{
	protocol.JSON: {protocol.JSON.ContentType()},
	protocol.CBOR: {protocol.CBOR.ContentType()},
	protocol.BARE: {protocol.BARE.ContentType()},
}
