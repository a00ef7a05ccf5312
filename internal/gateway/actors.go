package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// actorJSON is the engine's actor object (protocol.md §1.3).
type actorJSON struct {
	ActorID            string  `json:"actor_id"`
	Name               string  `json:"name"`
	Key                string  `json:"key"`
	NamespaceID        string  `json:"namespace_id"`
	Datacenter         string  `json:"datacenter"`
	RunnerNameSelector string  `json:"runner_name_selector"`
	CrashPolicy        string  `json:"crash_policy"`
	CreateTS           int64   `json:"create_ts"`
	StartTS            *int64  `json:"start_ts"`
	PendingAllocTS     *int64  `json:"pending_allocation_ts"`
	ConnectableTS      *int64  `json:"connectable_ts"`
	SleepTS            *int64  `json:"sleep_ts"`
	RescheduleTS       *int64  `json:"reschedule_ts"`
	DestroyTS          *int64  `json:"destroy_ts"`
	Error              *string `json:"error,omitempty"`
}

func (g *Gateway) actorObject(rec rivetdriver.ActorRecord) actorJSON {
	dc := g.e.Region()
	if dc == "" {
		dc = "default"
	}
	created := rec.CreatedAt.UnixMilli()
	return actorJSON{
		ActorID: rec.ID, Name: rec.Name, Key: actorkey.Serialize(rec.Key), NamespaceID: rec.Namespace,
		Datacenter: dc, RunnerNameSelector: "default", CrashPolicy: "sleep",
		CreateTS: created, StartTS: &created, ConnectableTS: &created,
	}
}

// namespace is the request's namespace ("default" when absent); an
// unknown one is an error (checkNamespace).
func (g *Gateway) namespace(r *http.Request) (string, error) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = "default"
	}
	return ns, g.checkNamespace(ns)
}

// restParams reads the connection params a REST call may carry for the
// auth hook (x-rivet-conn-params).
func restParams(r *http.Request) ([]byte, error) {
	params, err := connParams(r)
	if err == nil && len(params) > maxConnParams {
		err = errInvalidRequest.With("The connection params are %d bytes encoded, over the limit of %d.", len(params), maxConnParams)
	}
	return params, err
}

// authorize runs the auth hook of the actor a REST call reaches or
// reveals, unless the caller presents the admin token.
func (g *Gateway) authorize(r *http.Request, ns, name string, key []string, params []byte, intents ...string) error {
	if g.cfg.Admin != nil && g.cfg.Admin(r) {
		return nil
	}
	_, err := g.cfg.Hooks.Auth(r, AuthRequest{Namespace: ns, Name: name, Key: key, Token: requestToken(r, ""), Intents: intents}, params)
	return err
}

// createBody is the body of PUT and POST /actors.
type createBody struct {
	Name   string  `json:"name"`
	Key    *string `json:"key"`
	Input  *string `json:"input"`
	Region string  `json:"datacenter"`
}

// actors serves the engine REST API. Every route that reaches or reveals
// an actor runs its auth hook first (intents: listing and lookups "get",
// PUT "get"+"create", POST "create", DELETE "get"+"destroy", sleep
// "get"+"sleep"), and names only actors of the request's namespace.
func (g *Gateway) actors(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r)
	defer cancel()
	params, err := restParams(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	ns, err := g.namespace(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/actors"), "/")
	if rest != "" {
		id, action, _ := strings.Cut(rest, "/")
		var intent string
		switch {
		case action == "" && r.Method == http.MethodDelete:
			intent = IntentDestroy
		case action == "sleep" && r.Method == http.MethodPost:
			intent = IntentSleep
		default:
			g.fail(w, r, errMethodNotAllowed.With("%s /actors/%s is not supported.", r.Method, clip(rest)))
			return
		}
		rec, err := g.getActor(ctx, id)
		if err == nil && rec.Namespace != ns {
			err = rivettype.ErrActorNotFound.With("Actor %s was not found in namespace %s.", clip(id), ns)
		}
		if err == nil {
			err = g.authorize(r, ns, rec.Name, rec.Key, params, IntentGet, intent)
		}
		if err == nil && intent == IntentDestroy {
			err = g.e.Destroy(ctx, id)
		} else if err == nil {
			err = g.e.Sleep(ctx, id)
		}
		if err != nil {
			g.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	switch r.Method {
	case http.MethodGet:
		g.listActors(w, r, ns, params)
	case http.MethodPut, http.MethodPost:
		var body createBody
		if err := json.NewDecoder(io.LimitReader(r.Body, maxRESTBody)).Decode(&body); err != nil {
			g.fail(w, r, errInvalidRequest.With("Invalid JSON body: %v", err))
			return
		}
		if body.Name == "" {
			g.fail(w, r, errInvalidRequest.With("The actor name is missing."))
			return
		}
		if !g.e.Registered(body.Name) {
			g.fail(w, r, rivettype.ErrNotRegistered.With("Actor name %q is not registered.", clip(body.Name)))
			return
		}
		var key []string
		if body.Key != nil {
			k, err := actorkey.Deserialize(*body.Key)
			if err == nil {
				err = actorkey.Validate(k)
			}
			if err != nil {
				g.fail(w, r, rivettype.ErrInvalidKey.With("Invalid actor key %q: %v", clip(*body.Key), err))
				return
			}
			key = k
		}
		var input []byte
		if body.Input != nil && *body.Input != "" {
			in, err := g.decodeRESTInput(*body.Input)
			if err != nil {
				g.fail(w, r, err)
				return
			}
			input = in
		}
		orGet := r.Method == http.MethodPut
		intents := []string{IntentCreate}
		if orGet {
			intents = []string{IntentGet, IntentCreate}
		}
		if err := g.authorize(r, ns, body.Name, key, params, intents...); err != nil {
			g.fail(w, r, err)
			return
		}
		rec, created, err := g.e.Create(ctx, ns, body.Name, key, input, orGet)
		if err != nil {
			g.fail(w, r, err)
			return
		}
		if orGet {
			writeJSON(w, http.StatusOK, map[string]any{"actor": g.actorObject(rec), "created": created})
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"actor": g.actorObject(rec)})
		}
	default:
		g.fail(w, r, errMethodNotAllowed.With("%s /actors is not supported.", r.Method))
	}
}

// decodeRESTInput decodes the REST input: standard base64 of CBOR.
func (g *Gateway) decodeRESTInput(s string) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > g.cfg.MaxInput {
		return nil, errInputTooLarge.With("Actor input is larger than %d bytes.", g.cfg.MaxInput)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errInvalidRequest.With("Actor input is not valid base64: %v", err)
	}
	v, err := protocol.DecodeCBORValue(b)
	if err != nil {
		return nil, errInvalidRequest.With("Actor input is not valid CBOR: %v", err)
	}
	return v, nil
}

// listPage is the most actors one GET /actors answers; pagination.cursor
// resumes after it.
const listPage = 1000

// listActors serves GET /actors. It answers only if the auth hook of
// every actor it would list admits the caller ("get"): a listing reveals
// the actors' ids.
func (g *Gateway) listActors(w http.ResponseWriter, r *http.Request, ns string, params []byte) {
	ctx, cancel := requestContext(r)
	defer cancel()
	q := r.URL.Query()
	out := []actorJSON{}
	add := func(rec rivetdriver.ActorRecord) error {
		if err := g.authorize(r, rec.Namespace, rec.Name, rec.Key, params, IntentGet); err != nil {
			return err
		}
		out = append(out, g.actorObject(rec))
		return nil
	}
	switch {
	case q.Has("actor_ids"):
		ids := strings.Split(q.Get("actor_ids"), ",")
		if len(ids) > listPage {
			g.fail(w, r, errInvalidRequest.With("At most %d actor ids per request.", listPage))
			return
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			rec, err := g.getActor(ctx, id)
			if err == nil && rec.Namespace == ns {
				err = add(rec)
			} else if errors.Is(err, rivettype.ErrActorNotFound) {
				err = nil
			}
			if err != nil {
				g.fail(w, r, err)
				return
			}
		}
	case q.Has("key"):
		name := q.Get("name")
		if name == "" {
			g.fail(w, r, errInvalidRequest.With("Listing by key needs a name."))
			return
		}
		if !g.e.Registered(name) {
			g.fail(w, r, rivettype.ErrNotRegistered.With("Actor name %q is not registered.", clip(name)))
			return
		}
		key, err := actorkey.Deserialize(q.Get("key"))
		if err == nil {
			err = actorkey.Validate(key)
		}
		if err != nil {
			g.fail(w, r, rivettype.ErrInvalidKey.With("Invalid actor key %q: %v", clip(q.Get("key")), err))
			return
		}
		// Before the lookup, so that a refused caller learns nothing of
		// whether the actor exists.
		if err := g.authorize(r, ns, name, key, params, IntentGet); err != nil {
			g.fail(w, r, err)
			return
		}
		rec, err := g.e.Lookup(ctx, ns, name, key)
		if err == nil {
			out = append(out, g.actorObject(rec))
		} else if !errors.Is(err, rivettype.ErrActorNotFound) {
			g.fail(w, r, err)
			return
		}
	default:
		recs, err := g.e.ListActors(ctx, rivetdriver.ListActorsOptions{Namespace: ns, Name: q.Get("name"), After: q.Get("cursor"), Limit: listPage})
		if err != nil {
			g.fail(w, r, err)
			return
		}
		for _, rec := range recs {
			if err := add(rec); err != nil {
				g.fail(w, r, err)
				return
			}
		}
		if len(recs) == listPage {
			// A full page may have more after it: resume after its last id.
			writeJSON(w, http.StatusOK, map[string]any{"actors": out, "pagination": map[string]any{"cursor": recs[len(recs)-1].ID}})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"actors": out, "pagination": map[string]any{"cursor": nil}})
}

// keyCache remembers the actor id of the keys the query form resolved
// (namespace, name, key → id), so that a request to an awake actor by key
// costs a map lookup instead of a store lookup (the `hot` scenario's
// requests, which the official client sends by key, each paid one). An
// entry is used only while its actor is awake in this engine: a destroyed
// actor leaves the engine before its destruction is acknowledged, so a
// getOrCreate after it misses and creates a new actor, as before; an
// asleep actor is looked up in the store. The cache holds at most
// maxKeyCache entries and is emptied when full.
type keyCache struct {
	mu sync.RWMutex
	m  map[string]string
}

const maxKeyCache = 10000

// appendCacheKey writes the cache key of (ns, name, key): each part
// length-prefixed, so that no two targets share one.
func appendCacheKey(b []byte, ns, name string, key []string) []byte {
	b = strconv.AppendInt(b, int64(len(ns)), 10)
	b = append(append(b, ':'), ns...)
	b = strconv.AppendInt(b, int64(len(name)), 10)
	b = append(append(b, ':'), name...)
	for _, k := range key {
		b = strconv.AppendInt(b, int64(len(k)), 10)
		b = append(append(b, ':'), k...)
	}
	return b
}

func (c *keyCache) get(ns, name string, key []string) (string, bool) {
	var buf [128]byte
	k := appendCacheKey(buf[:0], ns, name, key)
	c.mu.RLock()
	id, ok := c.m[string(k)]
	c.mu.RUnlock()
	return id, ok
}

func (c *keyCache) put(ns, name string, key []string, id string) {
	k := string(appendCacheKey(nil, ns, name, key))
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxKeyCache {
		c.m = make(map[string]string)
	}
	c.m[k] = id
	c.mu.Unlock()
}
