package protocol

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rivetgo/rivet/internal/codec"
)

// JSON and CBOR messages have the same structure: a message is built as a
// tree of envelope nodes, then written in either encoding. Envelope nodes
// are object, string, bool, nil, uint64 (a plain number), id and value.

// object is a JSON object or CBOR map whose fields keep their order.
type object []field

type field struct {
	key string
	val any
}

// id is an action id: a JS bigint, so ["$BigInt","N"] in JSON and 0x1b
// plus 8 bytes in CBOR (cbor-x decodes shorter integers as numbers).
type id uint64

// value is a user value: an internal CBOR value parsed into a tree.
type value struct{ tree any }

func userValue(b []byte) (value, error) {
	t, err := parseInternal(b)
	return value{t}, err
}

func userArgs(b []byte) (value, error) {
	v, err := userValue(b)
	return value{argsTree(v.tree)}, err
}

func body(tag string, val object) object {
	return object{{"body", object{{"tag", tag}, {"val", val}}}}
}

func appendJSONTree(b []byte, n any) ([]byte, error) {
	switch x := n.(type) {
	case object:
		b = append(b, '{')
		for i, f := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.key)
			b = append(b, ':')
			var err error
			if b, err = appendJSONTree(b, f.val); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case nil:
		return append(b, "null"...), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case id:
		return appendBigIntTag(b, strconv.FormatUint(uint64(x), 10)), nil
	case value:
		return appendJSONValue(b, x.tree, 0)
	}
	return nil, fmt.Errorf("unsupported envelope node %T", n)
}

// appendCBORTree writes an envelope in CBOR. From the client it imitates
// cbor-x: maps have a 16-bit length (b9 0001) and values are written as is.
// To the client, maps have the shortest length, as the Rust server writes
// them, and values are compat-tagged (toCompat).
func appendCBORTree(b []byte, n any, fromClient bool) ([]byte, error) {
	switch x := n.(type) {
	case object:
		if fromClient {
			b = binary.BigEndian.AppendUint16(append(b, 0xb9), uint16(len(x)))
		} else {
			b = appendCBORHead(b, 5, uint64(len(x)))
		}
		for _, f := range x {
			b = appendCBORText(b, f.key)
			var err error
			if b, err = appendCBORTree(b, f.val, fromClient); err != nil {
				return nil, err
			}
		}
		return b, nil
	case string:
		return appendCBORText(b, x), nil
	case bool:
		if x {
			return append(b, 0xf5), nil
		}
		return append(b, 0xf4), nil
	case nil:
		return append(b, 0xf6), nil
	case uint64:
		return appendCBORHead(b, 0, x), nil
	case id:
		return binary.BigEndian.AppendUint64(append(b, 0x1b), uint64(x)), nil
	case value:
		t := x.tree
		if !fromClient {
			var err error
			if t, err = toCompat(t, false, 0); err != nil {
				return nil, err
			}
		}
		v, err := codec.Marshal(t)
		if err != nil {
			return nil, err
		}
		return append(b, v...), nil
	}
	return nil, fmt.Errorf("unsupported envelope node %T", n)
}

func appendCBORText(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return append(appendCBORHead(b, 3, uint64(len(s))), s...)
}

func (m ActionRequest) tree() (object, error) {
	args, err := userArgs(m.Args)
	if err != nil {
		return nil, err
	}
	return body("ActionRequest", object{{"id", id(m.ID)}, {"name", m.Name}, {"args", args}}), nil
}

func (m SubscriptionRequest) tree() (object, error) {
	return body("SubscriptionRequest", object{{"eventName", m.EventName}, {"subscribe", m.Subscribe}}), nil
}

func (m Init) tree() (object, error) {
	return body("Init", object{{"actorId", m.ActorID}, {"connectionId", m.ConnectionID}}), nil
}

// tree writes the fields in the order of the captured traces; actionId is
// always present.
func (m Error) tree() (object, error) {
	val, err := errorFields(m.Group, m.Code, m.Message, m.Metadata, m.Actor)
	if err != nil {
		return nil, err
	}
	var actionID any
	if m.ActionID != nil {
		actionID = id(*m.ActionID)
	}
	return body("Error", append(val, field{"actionId", actionID})), nil
}

func errorFields(group, code, message string, metadata []byte, actor *ActorSpecifier) (object, error) {
	o := object{{"group", group}, {"code", code}, {"message", message}}
	if metadata != nil {
		v, err := userValue(metadata)
		if err != nil {
			return nil, err
		}
		o = append(o, field{"metadata", v})
	}
	if actor != nil {
		a := object{{"actorId", actor.ActorID}, {"generation", actor.Generation}}
		if actor.Key != nil {
			a = append(a, field{"key", *actor.Key})
		}
		o = append(o, field{"actor", a})
	}
	return o, nil
}

func (m ActionResponse) tree() (object, error) {
	out, err := userValue(m.Output)
	if err != nil {
		return nil, err
	}
	return body("ActionResponse", object{{"id", id(m.ID)}, {"output", out}}), nil
}

func (m Event) tree() (object, error) {
	args, err := userArgs(m.Args)
	if err != nil {
		return nil, err
	}
	return body("Event", object{{"name", m.Name}, {"args", args}}), nil
}

func (m HTTPActionRequest) tree() (object, error) {
	args, err := userArgs(m.Args)
	if err != nil {
		return nil, err
	}
	return object{{"args", args}}, nil
}

func (m HTTPActionResponse) tree() (object, error) {
	out, err := userValue(m.Output)
	if err != nil {
		return nil, err
	}
	return object{{"output", out}}, nil
}

func (m HTTPResponseError) tree() (object, error) {
	return errorFields(m.Group, m.Code, m.Message, m.Metadata, m.Actor)
}

// tree writes the fields in the order the TS client does.
func (m HTTPQueueSendRequest) tree() (object, error) {
	v, err := userValue(m.Body)
	if err != nil {
		return nil, err
	}
	o := object{{"body", v}}
	if m.Wait != nil {
		o = append(o, field{"wait", *m.Wait})
	}
	if m.Timeout != nil {
		o = append(o, field{"timeout", *m.Timeout})
	}
	if m.Name != nil {
		o = append(o, field{"name", *m.Name})
	}
	return o, nil
}

func (m HTTPQueueSendResponse) tree() (object, error) {
	o := object{{"status", m.Status}}
	if m.Response != nil {
		v, err := userValue(m.Response)
		if err != nil {
			return nil, err
		}
		o = append(o, field{"response", v})
	}
	return o, nil
}

// Decoding. A parsed JSON or CBOR message is a tree of map[string]any; the
// getters below read its fields. Unknown fields are ignored. An optional
// field that is null (or CBOR undefined) is absent, except a user value,
// which is then present and null.

type fields map[string]any

func asFields(v any, what string) (fields, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an object, got %s", what, describe(v))
	}
	return m, nil
}

func (f fields) str(key string) (string, error) {
	s, ok := f[key].(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %s", key, describe(f[key]))
	}
	return s, nil
}

func (f fields) optStr(key string) (*string, error) {
	if f[key] == nil {
		return nil, nil
	}
	s, err := f.str(key)
	return &s, err
}

func (f fields) boolean(key string) (bool, error) {
	b, ok := f[key].(bool)
	if !ok {
		return false, fmt.Errorf("%s: want a boolean, got %s", key, describe(f[key]))
	}
	return b, nil
}

func (f fields) optBool(key string) (*bool, error) {
	if f[key] == nil {
		return nil, nil
	}
	b, err := f.boolean(key)
	return &b, err
}

// uint reads an unsigned integer: a number or ["$BigInt","N"], as
// parse_json_compat_u64 in actor_connect.rs.
func (f fields) uint(key string) (uint64, error) {
	switch x := f[key].(type) {
	case json.Number:
		if n, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return n, nil
		}
	case int64:
		if x >= 0 {
			return uint64(x), nil
		}
	case uint64:
		return x, nil
	case []any:
		if len(x) == 2 && x[0] == "$BigInt" {
			if s, ok := x[1].(string); ok {
				if n, err := strconv.ParseUint(s, 10, 64); err == nil {
					return n, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("%s: want an unsigned 64-bit integer, got %s", key, brief(f[key]))
}

// brief formats a decoded value for an error message.
func brief(v any) string {
	if v == nil {
		return "null"
	}
	s := fmt.Sprint(v)
	if _, ok := v.(string); ok {
		s = strconv.Quote(s)
	}
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

func (f fields) optUint(key string) (*uint64, error) {
	if f[key] == nil {
		return nil, nil
	}
	n, err := f.uint(key)
	return &n, err
}

// value reads a user value; a missing field is null.
func (f fields) value(key string, revive bool) ([]byte, error) {
	v, err := wireValue(f[key], revive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}

// optValue reads an optional user value: present (even null) or absent.
func (f fields) optValue(key string, revive bool) ([]byte, error) {
	if _, ok := f[key]; !ok {
		return nil, nil
	}
	return f.value(key, revive)
}

func (f fields) args(key string, revive bool) ([]byte, error) {
	v, err := wireArgs(f[key], revive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}

func (f fields) actor(key string) (*ActorSpecifier, error) {
	if f[key] == nil {
		return nil, nil
	}
	a, err := asFields(f[key], key)
	if err != nil {
		return nil, err
	}
	var s ActorSpecifier
	var errs [3]error
	s.ActorID, errs[0] = a.str("actorId")
	s.Generation, errs[1] = a.uint("generation")
	s.Key, errs[2] = a.optStr("key")
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &s, nil
}

// unwrapBody reads {"body":{"tag":T,"val":{...}}}.
func unwrapBody(t any) (string, fields, error) {
	root, err := asFields(t, "message")
	if err != nil {
		return "", nil, err
	}
	b, err := asFields(root["body"], "body")
	if err != nil {
		return "", nil, err
	}
	tag, err := b.str("tag")
	if err != nil {
		return "", nil, err
	}
	val, err := asFields(b["val"], "val")
	if err != nil {
		return "", nil, err
	}
	return tag, val, nil
}

func toServerFromTree(t any, revive bool) (ToServer, error) {
	tag, val, err := unwrapBody(t)
	if err != nil {
		return nil, err
	}
	switch tag {
	case "ActionRequest":
		var m ActionRequest
		var errs [3]error
		m.ID, errs[0] = val.uint("id")
		m.Name, errs[1] = val.str("name")
		if _, ok := val["args"]; !ok {
			errs[2] = errors.New("args: missing")
		} else {
			m.Args, errs[2] = val.args("args", revive)
		}
		return m, errors.Join(errs[:]...)
	case "SubscriptionRequest":
		var m SubscriptionRequest
		var errs [2]error
		m.EventName, errs[0] = val.str("eventName")
		m.Subscribe, errs[1] = val.boolean("subscribe")
		return m, errors.Join(errs[:]...)
	}
	return nil, fmt.Errorf("unknown tag %.40q", tag)
}

// toClientFromTree decodes a server message; the client revives every
// value (decodeCborCompat), in CBOR as in JSON.
func toClientFromTree(t any) (ToClient, error) {
	tag, val, err := unwrapBody(t)
	if err != nil {
		return nil, err
	}
	switch tag {
	case "Init":
		var m Init
		var errs [2]error
		m.ActorID, errs[0] = val.str("actorId")
		m.ConnectionID, errs[1] = val.str("connectionId")
		return m, errors.Join(errs[:]...)
	case "Error":
		var m Error
		var errs [6]error
		m.Group, errs[0] = val.str("group")
		m.Code, errs[1] = val.str("code")
		m.Message, errs[2] = val.str("message")
		m.Metadata, errs[3] = val.optValue("metadata", true)
		m.ActionID, errs[4] = val.optUint("actionId")
		m.Actor, errs[5] = val.actor("actor")
		return m, errors.Join(errs[:]...)
	case "ActionResponse":
		var m ActionResponse
		var errs [2]error
		m.ID, errs[0] = val.uint("id")
		m.Output, errs[1] = val.value("output", true)
		return m, errors.Join(errs[:]...)
	case "Event":
		var m Event
		var errs [2]error
		m.Name, errs[0] = val.str("name")
		m.Args, errs[1] = val.args("args", true)
		return m, errors.Join(errs[:]...)
	}
	return nil, fmt.Errorf("unknown tag %.40q", tag)
}

func httpActionRequestFromTree(t any, revive bool) (HTTPActionRequest, error) {
	f, err := asFields(t, "request")
	if err != nil {
		return HTTPActionRequest{}, err
	}
	args, err := f.args("args", revive)
	return HTTPActionRequest{Args: args}, err
}

func httpActionResponseFromTree(t any) (HTTPActionResponse, error) {
	f, err := asFields(t, "response")
	if err != nil {
		return HTTPActionResponse{}, err
	}
	out, err := f.value("output", true)
	return HTTPActionResponse{Output: out}, err
}

func httpResponseErrorFromTree(t any) (HTTPResponseError, error) {
	f, err := asFields(t, "error")
	if err != nil {
		return HTTPResponseError{}, err
	}
	var m HTTPResponseError
	var errs [5]error
	m.Group, errs[0] = f.str("group")
	m.Code, errs[1] = f.str("code")
	m.Message, errs[2] = f.str("message")
	m.Metadata, errs[3] = f.optValue("metadata", true)
	m.Actor, errs[4] = f.actor("actor")
	return m, errors.Join(errs[:]...)
}

func httpQueueSendRequestFromTree(t any, revive bool) (HTTPQueueSendRequest, error) {
	f, err := asFields(t, "request")
	if err != nil {
		return HTTPQueueSendRequest{}, err
	}
	var m HTTPQueueSendRequest
	var errs [4]error
	m.Body, errs[0] = f.value("body", revive)
	m.Name, errs[1] = f.optStr("name")
	m.Wait, errs[2] = f.optBool("wait")
	m.Timeout, errs[3] = f.optUint("timeout")
	return m, errors.Join(errs[:]...)
}

func httpQueueSendResponseFromTree(t any) (HTTPQueueSendResponse, error) {
	f, err := asFields(t, "response")
	if err != nil {
		return HTTPQueueSendResponse{}, err
	}
	var m HTTPQueueSendResponse
	var errs [2]error
	m.Status, errs[0] = f.str("status")
	m.Response, errs[1] = f.optValue("response", true)
	return m, errors.Join(errs[:]...)
}
