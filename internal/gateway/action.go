package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/protocol"
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
// running the auth hook with the caller's intents.
func (g *Gateway) resolve(ctx context.Context, r *http.Request, t target, params []byte, intent string) (actorRef, error) {
	if !t.Query {
		rec, err := g.e.GetActor(ctx, t.ActorID)
		if err != nil {
			return actorRef{}, err
		}
		auth, err := g.cfg.Hooks.Auth(r, rec.Name, rec.Key, params, []string{intent})
		if err != nil {
			return actorRef{}, err
		}
		return actorRef{ID: rec.ID, Name: rec.Name, Key: rec.Key, Auth: auth}, nil
	}
	if !g.e.Registered(t.Name) {
		return actorRef{}, rivettype.ErrNotRegistered.With("Actor name %q is not registered.", t.Name)
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
	auth, err := g.cfg.Hooks.Auth(r, t.Name, t.Key, params, intents)
	if err != nil {
		return actorRef{}, err
	}
	if t.Create {
		var input []byte
		if t.Input != nil {
			if input, err = protocol.DecodeCBORValue(t.Input); err != nil {
				return actorRef{}, errQueryBadCBOR.With("invalid query gateway input cbor: %v", err)
			}
		}
		// Every caller of resolve sends the actor a job next, whose
		// result waits for the creation to be durable.
		rec, _, err := g.e.GetOrCreateForWork(ctx, t.Namespace, t.Name, t.Key, input)
		if err != nil {
			return actorRef{}, err
		}
		return actorRef{ID: rec.ID, Name: rec.Name, Key: rec.Key, Auth: auth}, nil
	}
	rec, err := g.e.Lookup(ctx, t.Namespace, t.Name, t.Key)
	if err != nil {
		return actorRef{}, err
	}
	return actorRef{ID: rec.ID, Name: rec.Name, Key: rec.Key, Auth: auth}, nil
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// gateway serves /gateway/….
func (g *Gateway) gateway(w http.ResponseWriter, r *http.Request, raw string) {
	t, ok, err := parseTarget(raw)
	if err == nil && !ok {
		err = errNoRoute.With("No route found for path %s.", r.URL.Path)
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
			g.fail(w, r, errInvalidRequest.With("%s needs a WebSocket upgrade.", path))
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
		err := errRouteNotFound.With("Actor route '%s' was not found.", path)
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

// readBody reads at most limit bytes of a body, failing with
// message.incoming_too_long past it.
func readBody(r *http.Request, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, errInvalidRequest.With("Reading the request body: %v", err)
	}
	if len(b) > limit {
		return nil, rivettype.ErrIncomingTooLong
	}
	return b, nil
}

// action serves a stateless action: POST /action/{name}.
func (g *Gateway) action(w http.ResponseWriter, r *http.Request, t target, rawName string) {
	if r.Method != http.MethodPost {
		g.fail(w, r, errMethodNotAllowed.With("Actions must be called with POST."))
		return
	}
	name, err := url.PathUnescape(rawName)
	if err != nil || name == "" || strings.Contains(name, "/") {
		g.fail(w, r, errRouteNotFound.With("Actor route '/action/%s' was not found.", rawName))
		return
	}
	enc := protocol.HTTPEncoding(r.Header.Get("X-Rivet-Encoding"))
	body, err := readBody(r, g.cfg.MaxIncoming)
	if err != nil {
		g.fail(w, r, err)
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
	ref, err := g.resolve(ctx, r, t, params, IntentAction)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	conn := engine.NewStatelessConn(params, ref.Auth)
	conn.Request = r
	out, err := g.e.Call(ctx, ref.ID, conn, params, name, req.Args, codec.Marshal, g.e.ActionTimeout(ref.Name))
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
		g.fail(w, r, rivettype.ErrOutgoingTooLong)
		return
	}
	w.Header().Set("Content-Type", enc.ContentType())
	w.Header().Set("X-Rivet-Actor", ref.ID)
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, bytes.NewReader(resp))
}

var _ = errors.Is
