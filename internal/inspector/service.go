// Package inspector is the runtime's admin view: a Go Service that reads
// and changes actors on behalf of an operator (list and search actors,
// read and edit state, connections, recent events and logs, alarms, KV,
// call actions), the JSON API over it (/inspector/…) and a single-page UI
// embedded in the binary (/ui/). See docs/inspector.md.
//
// Values cross the API as JSON in RivetKit's compat form: what JSON cannot
// carry (byte strings, big integers) is tagged as the JSON wire encoding of
// the protocol does (["$Uint8Array", "<base64>"], ["$BigInt", "<digits>"]).
package inspector

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/keyenc"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// Errors of the inspector, in the gateway's {group, code, message} shape.
var (
	// ErrInvalidState: an edited state is not valid JSON or does not fit
	// the actor's state type. Nothing was changed.
	ErrInvalidState = &rivettype.Error{Group: "inspector", Code: "invalid_state", Message: "The state does not fit the actor's state type.", Public: true}
	// ErrBadRequest: a malformed inspector request.
	ErrBadRequest = &rivettype.Error{Group: "inspector", Code: "bad_request", Message: "Bad inspector request.", Public: true}
	// ErrUnauthorized: no admin token, or a wrong one.
	ErrUnauthorized = &rivettype.Error{Group: "auth", Code: "unauthorized", Message: "The inspector needs the admin token.", Public: true}
	// ErrForbidden: the inspector is open without a token only to
	// loopback clients.
	ErrForbidden = &rivettype.Error{Group: "auth", Code: "forbidden", Message: "The inspector is open only to loopback clients.", Public: true}
	// ErrDisabled: the engine keeps no inspector data.
	ErrDisabled = &rivettype.Error{Group: "inspector", Code: "disabled", Message: "The inspector is disabled.", Public: true}
)

// Limits of listings.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
	// maxScan bounds how many actor records one search reads; a search
	// that reaches it returns what it found with a cursor to go on.
	maxScan = 20_000
)

// Service reads and changes actors for an operator. Its methods are safe
// for concurrent use.
type Service struct {
	e   *engine.Engine
	log *slog.Logger
}

// New returns a service over an engine.
func New(e *engine.Engine, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{e: e, log: log}
}

// ActorSummary identifies an actor in listings.
type ActorSummary struct {
	ID string `json:"id"`
	// Namespace tells apart actors of the same name and key in two
	// namespaces.
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Key       []string `json:"key"`
	KeyString string   `json:"keyString"`
	CreatedAt string   `json:"createdAt"`
	// Awake reports whether the actor is in memory; asleep otherwise.
	Awake       bool `json:"awake"`
	Initialized bool `json:"initialized"`
}

// ActorList is one page of actors.
type ActorList struct {
	Actors []ActorSummary `json:"actors"`
	// Next is the cursor of the next page (the after parameter), empty
	// at the end.
	Next string `json:"next,omitempty"`
}

// ListOptions filter ListActors. Empty fields match everything.
type ListOptions struct {
	// Namespace is an exact namespace.
	Namespace string
	// Name is an exact actor name.
	Name string
	// Key is an exact key in its string form (elements joined by "/",
	// as the rivetkit client serializes keys).
	Key string
	// Q matches actors whose key string or id contains it, ignoring case.
	Q string
	// After resumes after this actor id.
	After string
	Limit int
}

// ListActors lists live actors by id, filtered.
func (s *Service) ListActors(ctx context.Context, o ListOptions) (ActorList, error) {
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	q := strings.ToLower(o.Q)
	out := ActorList{Actors: []ActorSummary{}}
	after, scanned := o.After, 0
	for {
		page := 500
		recs, err := s.e.ListActors(ctx, rivetdriver.ListActorsOptions{Namespace: o.Namespace, Name: o.Name, After: after, Limit: page})
		if err != nil {
			return ActorList{}, fmt.Errorf("list actors: %w", err)
		}
		for _, r := range recs {
			after = r.ID
			scanned++
			ks := actorkey.Serialize(r.Key)
			if o.Key != "" && ks != o.Key {
				continue
			}
			if q != "" && !strings.Contains(strings.ToLower(ks), q) && !strings.Contains(r.ID, q) {
				continue
			}
			out.Actors = append(out.Actors, s.summary(r))
			if len(out.Actors) == limit {
				out.Next = r.ID
				return out, nil
			}
		}
		if len(recs) < page {
			return out, nil
		}
		if scanned >= maxScan {
			out.Next = after
			return out, nil
		}
	}
}

func (s *Service) summary(r rivetdriver.ActorRecord) ActorSummary {
	key := r.Key
	if key == nil {
		key = []string{}
	}
	return ActorSummary{
		ID: r.ID, Namespace: r.Namespace, Name: r.Name, Key: key, KeyString: actorkey.Serialize(r.Key),
		CreatedAt: r.CreatedAt.UTC().Format(time.RFC3339Nano), Awake: s.e.Awake(r.ID), Initialized: r.Initialized,
	}
}

// ConnectionInfo is an open connection of an actor.
type ConnectionInfo struct {
	ID            string          `json:"id"`
	Params        json.RawMessage `json:"params"`
	State         json.RawMessage `json:"state"`
	Subscriptions []string        `json:"subscriptions"`
}

// AlarmInfo is a scheduled call.
type AlarmInfo struct {
	ID        string          `json:"id"`
	At        string          `json:"at"`
	Action    string          `json:"action"`
	Args      json.RawMessage `json:"args"`
	CreatedAt string          `json:"createdAt"`
}

// EventInfo is a recent broadcast.
type EventInfo struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
	At   string          `json:"at"`
}

// LogInfo is a recent log line.
type LogInfo struct {
	Time    string      `json:"time"`
	Level   string      `json:"level"`
	Message string      `json:"message"`
	Attrs   []LogAttrKV `json:"attrs"`
}

// LogAttrKV is one attribute of a log line.
type LogAttrKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ActorDetail is everything the inspector shows about an actor.
type ActorDetail struct {
	ActorSummary
	// State is the committed state; null if the actor has none yet.
	State       json.RawMessage  `json:"state"`
	Connections []ConnectionInfo `json:"connections"`
	Alarms      []AlarmInfo      `json:"alarms"`
	Events      []EventInfo      `json:"events"`
}

// Actor returns an actor's summary, state, connections, alarms and recent
// events, without waking it when the store can read its state directly.
// A destroyed or unknown actor is actor.not_found.
func (s *Service) Actor(ctx context.Context, id string) (ActorDetail, error) {
	v, err := s.e.InspectActor(ctx, id)
	if err != nil {
		return ActorDetail{}, err
	}
	d := ActorDetail{ActorSummary: s.summary(v.Record), State: json.RawMessage("null")}
	d.Awake = v.Awake
	if v.State != nil {
		if d.State, err = toJSON(v.State); err != nil {
			return ActorDetail{}, fmt.Errorf("state of actor %s: %w", id, err)
		}
	}
	d.Connections = connInfos(v.Conns)
	d.Alarms = alarmInfos(v.Alarms)
	d.Events = eventInfos(v.Events)
	return d, nil
}

// StateInfo is an actor's state.
type StateInfo struct {
	State json.RawMessage `json:"state"`
	Awake bool            `json:"awake"`
}

// State returns an actor's committed state. It does not wake a sleeping
// actor when the store can read state directly. An actor created but never
// activated is actor.not_initialized.
func (s *Service) State(ctx context.Context, id string) (StateInfo, error) {
	st, awake, err := s.e.ActorState(ctx, id)
	if err != nil {
		return StateInfo{}, err
	}
	j := json.RawMessage("null")
	if st != nil {
		if j, err = toJSON(st); err != nil {
			return StateInfo{}, fmt.Errorf("state of actor %s: %w", id, err)
		}
	}
	return StateInfo{State: j, Awake: awake}, nil
}

// SetState replaces an actor's state with a JSON value, in a turn of the
// actor (waking it if asleep): the value must decode into the actor's
// state type, and every field it names must exist there. On success the
// change is committed like any turn's (onStateChange runs, connected
// clients see what it broadcasts) and the committed state is returned; on
// failure (ErrInvalidState) nothing changes.
func (s *Service) SetState(ctx context.Context, id string, state json.RawMessage) (StateInfo, error) {
	if _, err := s.e.GetActor(ctx, id); err != nil {
		return StateInfo{}, err
	}
	if len(bytes.TrimSpace(state)) == 0 {
		return StateInfo{}, ErrInvalidState.With("The new state is missing.")
	}
	enc, err := protocol.DecodeJSONValue(state)
	if err != nil {
		return StateInfo{}, ErrInvalidState.With("The new state is not valid JSON: %v", unwrapMsg(err))
	}
	var want any
	if err := codec.Unmarshal(enc, &want); err != nil {
		return StateInfo{}, ErrInvalidState.With("The new state cannot be decoded: %v", err)
	}
	var committed []byte
	err = s.e.Enter(ctx, id, func(t *engine.Turn) error {
		inst := t.Instance()
		if err := inst.Restore(enc); err != nil {
			return ErrInvalidState.With("The new state does not fit the actor's state type: %s", strings.TrimPrefix(err.Error(), "cbor: "))
		}
		got, err := inst.EncodeState()
		if err != nil {
			return ErrInvalidState.With("The new state cannot be encoded: %v", err)
		}
		var gotTree any
		if err := codec.Unmarshal(got, &gotTree); err == nil {
			if msg := mismatch(want, gotTree, "state"); msg != "" {
				return ErrInvalidState.With("The new state does not fit the actor's state type: %s.", msg)
			}
		}
		committed = got
		return nil
	})
	if err != nil {
		return StateInfo{}, err
	}
	j, err := toJSON(committed)
	if err != nil {
		return StateInfo{}, err
	}
	return StateInfo{State: j, Awake: true}, nil
}

// mismatch compares a submitted value with what the state type kept of it
// and describes the first difference that shows the value did not fit:
// a field the type does not have, or a value of another shape. Fields the
// type dropped because they were zero (omitempty) are not differences.
func mismatch(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s is an object, but the type wants %s", path, shape(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				if isZero(w[k]) {
					continue
				}
				return fmt.Sprintf("%s has no field %q", path, k)
			}
			if m := mismatch(w[k], gv, path+"."+k); m != "" {
				return m
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			if len(w) == 0 {
				return ""
			}
			return fmt.Sprintf("%s is an array, but the type wants %s", path, shape(got))
		}
		if len(g) != len(w) {
			return fmt.Sprintf("%s has %d elements, but the type keeps %d", path, len(w), len(g))
		}
		for i := range w {
			if m := mismatch(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); m != "" {
				return m
			}
		}
	case nil:
		if got != nil && !isZero(got) {
			return fmt.Sprintf("%s is null, but the type wants %s", path, shape(got))
		}
	}
	return ""
}

func shape(v any) string {
	switch v.(type) {
	case map[string]any, map[any]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	case []byte:
		return "bytes"
	}
	return "a number"
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case uint64:
		return x == 0
	case int64:
		return x == 0
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	case []byte:
		return len(x) == 0
	}
	return false
}

// Connections lists an awake actor's open connections (none while it
// sleeps).
func (s *Service) Connections(ctx context.Context, id string) ([]ConnectionInfo, error) {
	v, err := s.e.InspectActor(ctx, id)
	if err != nil {
		return nil, err
	}
	return connInfos(v.Conns), nil
}

// Alarms lists an actor's scheduled calls by time.
func (s *Service) Alarms(ctx context.Context, id string) ([]AlarmInfo, error) {
	v, err := s.e.InspectActor(ctx, id)
	if err != nil {
		return nil, err
	}
	return alarmInfos(v.Alarms), nil
}

// Events lists the recent broadcasts of an awake actor, oldest first
// (none while it sleeps: they are kept in memory only).
func (s *Service) Events(ctx context.Context, id string) ([]EventInfo, error) {
	if !s.e.Inspecting() {
		return nil, ErrDisabled
	}
	v, err := s.e.InspectActor(ctx, id)
	if err != nil {
		return nil, err
	}
	return eventInfos(v.Events), nil
}

// Logs lists an actor's recent log lines (Info and above), oldest first.
func (s *Service) Logs(ctx context.Context, id string) ([]LogInfo, error) {
	if !s.e.Inspecting() {
		return nil, ErrDisabled
	}
	if _, err := s.e.GetActor(ctx, id); err != nil {
		return nil, err
	}
	return logInfos(s.e.RecentLogs(id)), nil
}

// KVEntry is one key/value pair. Keys and values are shown in the most
// readable form that represents them exactly: a key as a "tuple" (the
// structured keys of c.KV(), as a JSON array), "text" (UTF-8) or "hex";
// a value as "json" (a value the runtime encoded), "text" or "hex".
type KVEntry struct {
	Key           string          `json:"key"`
	KeyEncoding   string          `json:"keyEncoding"`
	KeyTuple      json.RawMessage `json:"keyTuple,omitempty"`
	KeyHex        string          `json:"keyHex"`
	Value         json.RawMessage `json:"value"`
	ValueEncoding string          `json:"valueEncoding"`
	Size          int             `json:"size"`
}

// KVQuery selects KV entries.
type KVQuery struct {
	// Prefix selects keys: a JSON array is a tuple prefix (["users"]
	// selects every key whose first element is "users"); "hex:…" is a
	// raw byte prefix; other text selects keys whose bytes start with it
	// or whose first string element starts with it.
	Prefix string
	Limit  int
}

// KV lists an actor's committed key/value entries in key order.
func (s *Service) KV(ctx context.Context, id string, q KVQuery) ([]KVEntry, error) {
	if _, err := s.e.GetActor(ctx, id); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxLimit)
	prefixes, err := kvPrefixes(q.Prefix)
	if err != nil {
		return nil, err
	}
	var all []rivetdriver.KV
	seen := map[string]bool{}
	for _, p := range prefixes {
		kvs, err := s.e.Driver().KVList(ctx, id, rivetdriver.ListOptions{Prefix: p, Limit: limit})
		if err != nil {
			return nil, fmt.Errorf("list kv of actor %s: %w", id, err)
		}
		for _, kv := range kvs {
			if len(p) == 0 && bytes.HasPrefix(kv.Key, engine.InternalKeyPrefix) {
				continue // the engine's own rows (the queue: see Queue)
			}
			if !seen[string(kv.Key)] {
				seen[string(kv.Key)] = true
				all = append(all, kv)
			}
		}
	}
	slices.SortFunc(all, func(a, b rivetdriver.KV) int { return bytes.Compare(a.Key, b.Key) })
	if len(all) > limit {
		all = all[:limit]
	}
	out := make([]KVEntry, 0, len(all))
	for _, kv := range all {
		out = append(out, kvEntry(kv))
	}
	return out, nil
}

func kvPrefixes(p string) ([][]byte, error) {
	switch {
	case p == "":
		return [][]byte{nil}, nil
	case strings.HasPrefix(p, "hex:"):
		b, err := hex.DecodeString(strings.TrimPrefix(p, "hex:"))
		if err != nil {
			return nil, ErrBadRequest.With("KV prefix %q is not valid hex: %v", p, err)
		}
		return [][]byte{b}, nil
	case strings.HasPrefix(p, "["):
		var elems []any
		d := json.NewDecoder(strings.NewReader(p))
		d.UseNumber()
		if err := d.Decode(&elems); err != nil {
			return nil, ErrBadRequest.With("KV prefix %s is not a JSON array: %v", p, err)
		}
		for i, e := range elems {
			if n, ok := e.(json.Number); ok {
				if iv, err := n.Int64(); err == nil {
					elems[i] = iv
				} else if fv, err := n.Float64(); err == nil {
					elems[i] = fv
				}
			}
		}
		b, err := keyenc.Encode(elems...)
		if err != nil {
			return nil, ErrBadRequest.With("KV prefix %s: %v", p, err)
		}
		return [][]byte{b}, nil
	}
	// Raw text, or the start of a tuple's first string element (its tag
	// and escaped bytes, without the terminator).
	elem, err := keyenc.Encode(p)
	if err != nil {
		return nil, ErrBadRequest.With("KV prefix %q: %v", p, err)
	}
	return [][]byte{[]byte(p), elem[:len(elem)-2]}, nil
}

func kvEntry(kv rivetdriver.KV) KVEntry {
	e := KVEntry{KeyHex: hex.EncodeToString(kv.Key), Size: len(kv.Value)}
	if elems, err := keyenc.Decode(kv.Key); err == nil && len(elems) > 0 {
		if b, err := json.Marshal(tupleJSON(elems)); err == nil {
			e.KeyTuple = b
			e.Key, e.KeyEncoding = string(b), "tuple"
		}
	}
	if e.KeyEncoding == "" {
		if printable(kv.Key) {
			e.Key, e.KeyEncoding = string(kv.Key), "text"
		} else {
			e.Key, e.KeyEncoding = e.KeyHex, "hex"
		}
	}
	switch {
	case codec.Valid(kv.Value) == nil:
		if j, err := toJSON(kv.Value); err == nil {
			e.Value, e.ValueEncoding = j, "json"
			return e
		}
		fallthrough
	default:
		if printable(kv.Value) {
			j, _ := json.Marshal(string(kv.Value))
			e.Value, e.ValueEncoding = j, "text"
		} else {
			j, _ := json.Marshal(hex.EncodeToString(kv.Value))
			e.Value, e.ValueEncoding = j, "hex"
		}
	}
	return e
}

// tupleJSON shows a decoded key tuple; byte elements as {"hex": …}.
func tupleJSON(elems []any) []any {
	out := make([]any, len(elems))
	for i, x := range elems {
		if b, ok := x.([]byte); ok {
			out[i] = map[string]string{"hex": hex.EncodeToString(b)}
		} else {
			out[i] = x
		}
	}
	return out
}

// printable reports whether b is UTF-8 text without control characters
// (other than whitespace).
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// CallAction runs an action with JSON arguments as a stateless call (the
// actor's connection hooks run around it, with no params) and returns its
// output once durable. Errors reach the caller as they would reach a
// client: public errors as they are, others masked.
func (s *Service) CallAction(ctx context.Context, id, name string, args json.RawMessage) (json.RawMessage, error) {
	rec, err := s.e.GetActor(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("[]")
	}
	enc, err := protocol.DecodeJSONValue(args)
	if err != nil {
		return nil, ErrBadRequest.With("The arguments are not valid JSON: %v", unwrapMsg(err))
	}
	if _, err := codec.ArrayLen(enc); err != nil {
		return nil, ErrBadRequest.With("The arguments must be a JSON array.")
	}
	ctx = protocol.WithEncoding(ctx, protocol.JSON) // argument errors speak JSON
	out, err := s.e.Call(ctx, id, nil, nil, name, enc, codec.Marshal, s.e.ActionTimeout(rec.Name))
	if err != nil {
		return nil, err
	}
	if out == nil {
		return json.RawMessage("null"), nil
	}
	return toJSON(out)
}

// Watch follows an actor's changes; see engine.Watch.
func (s *Service) Watch(id string) (*engine.Watch, error) {
	if !s.e.Inspecting() {
		return nil, ErrDisabled
	}
	return s.e.Watch(id)
}

// toJSON converts an internal CBOR value to compat JSON.
func toJSON(cbor []byte) (json.RawMessage, error) {
	if len(cbor) == 0 {
		return json.RawMessage("null"), nil
	}
	j, err := protocol.EncodeJSONValue(cbor)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// jsonOrNull is toJSON that shows an undecodable value as null.
func jsonOrNull(cbor []byte) json.RawMessage {
	j, err := toJSON(cbor)
	if err != nil {
		return json.RawMessage("null")
	}
	return j
}

func unwrapMsg(err error) string {
	msg := err.Error()
	for _, p := range []string{"protocol: invalid message: json: ", "protocol: invalid message: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	var pe *rivettype.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return msg
}

func connInfos(cs []engine.ConnView) []ConnectionInfo {
	out := make([]ConnectionInfo, 0, len(cs))
	for _, c := range cs {
		subs := c.Subscriptions
		if subs == nil {
			subs = []string{}
		}
		out = append(out, ConnectionInfo{ID: c.ID, Params: jsonOrNull(c.Params), State: jsonOrNull(c.State), Subscriptions: subs})
	}
	return out
}

func alarmInfos(as []rivetdriver.Alarm) []AlarmInfo {
	out := make([]AlarmInfo, 0, len(as))
	for _, a := range as {
		args := jsonOrNull(a.Args)
		if len(a.Args) == 0 {
			args = json.RawMessage("[]")
		}
		out = append(out, AlarmInfo{
			ID: a.ID, At: a.At.UTC().Format(time.RFC3339Nano), Action: a.Action, Args: args,
			CreatedAt: a.CreatedAt.UTC().Format(time.RFC3339Nano),
		})
	}
	return out
}

func eventInfo(ev engine.EventRecord) EventInfo {
	args := jsonOrNull(ev.Args)
	if len(ev.Args) == 0 {
		args = json.RawMessage("[]")
	}
	return EventInfo{Name: ev.Name, Args: args, At: ev.At.UTC().Format(time.RFC3339Nano)}
}

func eventInfos(evs []engine.EventRecord) []EventInfo {
	out := make([]EventInfo, 0, len(evs))
	for _, ev := range evs {
		out = append(out, eventInfo(ev))
	}
	return out
}

func logInfo(l engine.LogLine) LogInfo {
	li := LogInfo{Time: l.Time.Format(time.RFC3339Nano), Level: l.Level.String(), Message: l.Message, Attrs: []LogAttrKV{}}
	for _, a := range l.Attrs {
		li.Attrs = append(li.Attrs, LogAttrKV(a))
	}
	return li
}

func logInfos(ls []engine.LogLine) []LogInfo {
	out := make([]LogInfo, 0, len(ls))
	for _, l := range ls {
		out = append(out, logInfo(l))
	}
	return out
}
