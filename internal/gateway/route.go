package gateway

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/rivettype"
)

// Routing errors of the query gateway, with RivetKit's engine codes.
var (
	errQueryInvalidParams  = &rivettype.Error{Group: "guard", Code: "query_invalid_params", Message: "invalid query gateway params", Public: true}
	errQueryPathToken      = &rivettype.Error{Group: "guard", Code: "query_path_token_syntax", Message: "query gateway paths must not use @token syntax", Public: true}
	errQueryGetDisallowed  = &rivettype.Error{Group: "guard", Code: "query_get_disallowed_params", Message: "query gateway method=get does not allow rvt-input, rvt-region, rvt-crash-policy, or rvt-pool params", Public: true}
	errQueryMissingPool    = &rivettype.Error{Group: "guard", Code: "query_missing_pool", Message: "query gateway method=getOrCreate requires rvt-pool param", Public: true}
	errQueryEmptyName      = &rivettype.Error{Group: "guard", Code: "query_empty_actor_name", Message: "query gateway actor name must not be empty", Public: true}
	errQueryDuplicate      = &rivettype.Error{Group: "guard", Code: "query_duplicate_param", Message: "duplicate query gateway param", Public: true}
	errQueryBadBase64      = &rivettype.Error{Group: "guard", Code: "query_invalid_base64_input", Message: "invalid base64url in query gateway input", Public: true}
	errQueryBadCBOR        = &rivettype.Error{Group: "guard", Code: "query_invalid_cbor_input", Message: "invalid query gateway input cbor", Public: true}
	errQueryBadPercent     = &rivettype.Error{Group: "guard", Code: "query_invalid_percent_encoding", Message: "invalid percent-encoding for query gateway param", Public: true}
	errNoRoute             = &rivettype.Error{Group: "guard", Code: "no_route", Message: "No route found.", Public: true}
	errUnsupportedEncoding = &rivettype.Error{Group: "actor", Code: "unsupported_websocket_encoding", Message: "Unsupported WebSocket encoding.", Public: true}
)

// Limits of what a client names. Past them a request is refused before
// anything is looked up, stored or echoed back.
const (
	// maxNamespace bounds a namespace name (bytes).
	maxNamespace = 64
	// maxActorID bounds an actor id; ids are 30 characters.
	maxActorID = 128
	// maxRvtValue bounds an rvt-* query value other than rvt-input
	// (bounded by MaxInput) and rvt-key (by the key limit).
	maxRvtValue = 4096
	// maxConnParams bounds the connection params (encoded as CBOR): they
	// are kept with each connection and shown by the inspector.
	maxConnParams = 16 << 10
	// maxActionName bounds an action name sent over HTTP; no actor
	// defines a longer one.
	maxActionName = 256
	// maxEcho bounds what an error message repeats of client input.
	maxEcho = 80
)

var (
	errNamespaceNotFound = &rivettype.Error{Group: "namespace", Code: "not_found", Message: "The namespace does not exist.", Public: true}
	errNamespaceInvalid  = &rivettype.Error{Group: "namespace", Code: "invalid", Message: "Invalid namespace name.", Public: true}
)

// clip shortens client input repeated in an error message.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// checkNamespace refuses a namespace name that is too long or not
// printable, and one that is not configured: "default" always exists,
// Config.Namespaces lists the others ("*": any), so that a mistyped
// namespace is an error instead of a second, empty world.
func (g *Gateway) checkNamespace(ns string) error {
	if ns == "default" {
		return nil
	}
	if ns == "" || len(ns) > maxNamespace || !utf8.ValidString(ns) || strings.ContainsFunc(ns, unicode.IsControl) {
		return errNamespaceInvalid.With("Namespace %q is not valid: a namespace is 1 to %d bytes of printable UTF-8.", clip(ns), maxNamespace)
	}
	if slices.Contains(g.cfg.Namespaces, ns) || slices.Contains(g.cfg.Namespaces, "*") {
		return nil
	}
	return errNamespaceNotFound.With("Namespace %q does not exist. Only \"default\" exists unless the server lists others in its namespaces setting (RIVET_NAMESPACES; \"*\" allows any).", clip(ns))
}

// target is where a /gateway/... request goes.
type target struct {
	// Direct form: the actor id (and an optional token, unchecked).
	ActorID string
	Token   string
	// ViaHeader: the id came from x-rivet-actor or a rivet_actor.*
	// subprotocol, not from the path.
	ViaHeader bool

	// Query form (ActorID empty): resolve Name and Key in Namespace,
	// creating the actor with Input when Create is set.
	Query     bool
	Namespace string
	Name      string
	Key       []string
	Create    bool
	Input     []byte // CBOR, nil when absent
	Region    string

	// Path is what remains for the actor: the path after the actor
	// segment plus the query without rvt-* pairs; "/" when empty.
	Path string
}

// parseTarget parses the request target of a gateway request (the raw
// path and query, as sent). It returns ok=false for a path that is not a
// gateway path, or a malformed direct path (which falls through to "no
// route"), and an error for a malformed query-form path.
func parseTarget(raw string) (t target, ok bool, err error) {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	base, query, hasQuery := strings.Cut(raw, "?")
	if strings.Contains(base, "//") {
		return target{}, false, nil
	}
	segs := segments(base)
	if len(segs) == 0 || segs[0] != "gateway" {
		return target{}, false, nil
	}
	if hasQuery && hasRvt(query) {
		t, err := parseQueryTarget(base, segs, query)
		return t, err == nil, err
	}
	if len(segs) < 2 {
		return target{}, false, nil
	}
	seg := segs[1]
	rawID, rawToken, hasToken := strings.Cut(seg, "@")
	if hasToken && (rawID == "" || rawToken == "") {
		return target{}, false, nil
	}
	id, err := url.PathUnescape(rawID)
	if err != nil || id == "" {
		return target{}, false, nil
	}
	if hasToken {
		if t.Token, err = url.PathUnescape(rawToken); err != nil {
			return target{}, false, nil
		}
	}
	t.ActorID = id
	q := ""
	if hasQuery {
		q = "?" + query
	}
	t.Path = remainingPath(base, segs, q)
	return t, true, nil
}

func segments(base string) []string {
	n := 0
	for s := range strings.SplitSeq(base, "/") {
		if s != "" {
			n++
		}
	}
	out := make([]string, 0, n)
	for s := range strings.SplitSeq(base, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func hasRvt(query string) bool {
	for part := range strings.SplitSeq(query, "&") {
		k, _, _ := strings.Cut(part, "=")
		if strings.HasPrefix(k, "rvt-") {
			return true
		}
	}
	return false
}

// remainingPath is the path after the gateway and actor segments, plus q.
func remainingPath(base string, segs []string, q string) string {
	n := 0
	for _, s := range segs[:min(2, len(segs))] {
		n += 1 + len(s)
	}
	rest := "/"
	if n < len(base) {
		rest = base[n:]
	}
	if !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	return rest + q
}

var rvtKnown = map[string]bool{
	"namespace": true, "method": true, "runner": true, "pool": true, "key": true,
	"input": true, "region": true, "crash-policy": true, "token": true, "skip-ready-wait": true,
}

func parseQueryTarget(base string, segs []string, query string) (target, error) {
	if len(segs) < 2 {
		return target{}, errQueryEmptyName
	}
	if strings.Contains(segs[1], "@") {
		return target{}, errQueryPathToken
	}
	name, err := url.PathUnescape(segs[1])
	if err != nil {
		return target{}, errQueryBadPercent.With("invalid percent-encoding for query gateway param 'name'")
	}
	if name == "" {
		return target{}, errQueryEmptyName
	}
	rvt := map[string]string{}
	var keep []string
	for part := range strings.SplitSeq(query, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if !strings.HasPrefix(k, "rvt-") {
			keep = append(keep, part)
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return target{}, errQueryBadPercent.With("invalid percent-encoding for query gateway param '%s'", clip(k))
		}
		short := strings.TrimPrefix(k, "rvt-")
		if _, dup := rvt[short]; dup {
			return target{}, errQueryDuplicate.With("duplicate query gateway param: %s", clip(k))
		}
		if !rvtKnown[short] {
			return target{}, errQueryInvalidParams.With("invalid query gateway params: unknown field `%s`", clip(short))
		}
		if len(val) > maxRvtValue && short != "input" && short != "key" {
			return target{}, errQueryInvalidParams.With("invalid query gateway params: %s is %d bytes, over the limit of %d", k, len(val), maxRvtValue)
		}
		rvt[short] = val
	}
	for _, req := range []string{"namespace", "method"} {
		if _, ok := rvt[req]; !ok {
			return target{}, errQueryInvalidParams.With("invalid query gateway params: missing field `%s`", req)
		}
	}
	if v, ok := rvt["skip-ready-wait"]; ok && v != "true" && v != "false" && v != "1" && v != "0" {
		return target{}, errQueryInvalidParams.With("invalid query gateway params: skip-ready-wait must be true, false, 1 or 0")
	}
	t := target{Query: true, Namespace: rvt["namespace"], Name: name, Token: rvt["token"], Region: rvt["region"]}
	if t.Namespace == "" {
		return target{}, errQueryInvalidParams.With("invalid query gateway params: namespace must not be empty")
	}
	if k := rvt["key"]; k != "" {
		t.Key = strings.Split(k, ",")
	} else {
		t.Key = []string{}
	}
	_, hasInput := rvt["input"]
	_, hasRegion := rvt["region"]
	_, hasPolicy := rvt["crash-policy"]
	_, hasRunner := rvt["runner"]
	_, hasPool := rvt["pool"]
	switch rvt["method"] {
	case "get":
		if hasInput || hasRegion || hasPolicy || hasRunner {
			return target{}, errQueryGetDisallowed
		}
	case "getOrCreate":
		if !hasRunner && !hasPool {
			return target{}, errQueryMissingPool
		}
		t.Create = true
		if hasInput {
			in, err := decodeQueryInput(rvt["input"])
			if err != nil {
				return target{}, err
			}
			t.Input = in
		}
		if hasPolicy {
			switch p := rvt["crash-policy"]; p {
			case "restart", "sleep", "destroy":
			default:
				return target{}, errQueryInvalidParams.With("invalid query gateway params: unknown crash policy: %s, expected restart, sleep, or destroy", clip(p))
			}
		}
	default:
		return target{}, errQueryInvalidParams.With("invalid query gateway params: unknown method: %s, expected get or getOrCreate", clip(rvt["method"]))
	}
	q := ""
	if len(keep) > 0 {
		q = "?" + strings.Join(keep, "&")
	}
	t.Path = remainingPath(base, segs, q)
	return t, nil
}

// decodeQueryInput decodes rvt-input: unpadded base64url of one CBOR value.
func decodeQueryInput(v string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil {
		return nil, errQueryBadBase64
	}
	if err := codec.Valid(b); err != nil {
		return nil, errQueryBadCBOR.With("invalid query gateway input cbor: %v", err)
	}
	return b, nil
}
