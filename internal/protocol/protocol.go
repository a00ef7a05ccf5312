package protocol

import (
	"context"
	"errors"
	"fmt"
)

// Encoding is one of the three wire encodings. The zero value is JSON, the
// default when a request names none.
type Encoding uint8

const (
	JSON Encoding = iota
	CBOR
	BARE
)

// HeaderEncoding is the HTTP request header that names the encoding, and
// SubprotocolEncodingPrefix prefixes it in a WebSocket subprotocol
// ("rivet_encoding.cbor").
const (
	HeaderEncoding            = "x-rivet-encoding"
	SubprotocolEncodingPrefix = "rivet_encoding."
)

// CurrentVersion is the BARE protocol version that Encode writes. Decoders
// accept versions 1 to CurrentVersion.
const CurrentVersion = 4

// ErrInvalid reports input that is not a valid message. Every error returned
// by a Decode function wraps it, with a detail; the gateway answers it with
// actor.invalid_request.
var ErrInvalid = errors.New("protocol: invalid message")

// ErrUnsupportedEncoding reports an encoding name other than json, cbor and
// bare (actor.unsupported_websocket_encoding on a WebSocket).
var ErrUnsupportedEncoding = errors.New("protocol: unsupported encoding")

func (e Encoding) String() string {
	switch e {
	case JSON:
		return "json"
	case CBOR:
		return "cbor"
	case BARE:
		return "bare"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// ContentType is the HTTP Content-Type of bodies in this encoding.
func (e Encoding) ContentType() string {
	if e == JSON {
		return "application/json"
	}
	return "application/octet-stream"
}

// Binary reports whether WebSocket messages in this encoding are binary
// frames; JSON is sent as text frames.
func (e Encoding) Binary() bool { return e != JSON }

// ParseEncoding parses an encoding name strictly: "json", "cbor" or "bare".
// Use it for the rivet_encoding.* WebSocket subprotocol, where a missing
// subprotocol means JSON but an unknown name is an error.
func ParseEncoding(name string) (Encoding, error) {
	switch name {
	case "json":
		return JSON, nil
	case "cbor":
		return CBOR, nil
	case "bare":
		return BARE, nil
	}
	return JSON, fmt.Errorf("%w: %q", ErrUnsupportedEncoding, name)
}

// HTTPEncoding returns the encoding named by an x-rivet-encoding header
// value. A missing or unknown value means JSON.
func HTTPEncoding(header string) Encoding {
	e, err := ParseEncoding(header)
	if err != nil {
		return JSON
	}
	return e
}

// Message is a message of the client protocol: one of the types below. It is
// implemented by this package's types only.
type Message interface {
	// tree returns the message as a JSON object / CBOR map.
	tree() (object, error)
	// appendBARE appends the message body (after the version) in the
	// given BARE version.
	appendBARE(b []byte, version uint16) ([]byte, error)
	// fromClient reports the direction, which decides how CBOR values are
	// written (see the package doc).
	fromClient() bool
}

// ToServer is a WebSocket message from the client: ActionRequest or
// SubscriptionRequest.
type ToServer interface {
	Message
	toServer()
}

// ToClient is a WebSocket message to the client: Init, Error, ActionResponse
// or Event.
type ToClient interface {
	Message
	toClient()
}

// ActionRequest asks the actor to run an action on a WebSocket connection.
type ActionRequest struct {
	ID   uint64
	Name string
	// Args is the internal CBOR array of arguments.
	Args []byte
}

// SubscriptionRequest subscribes the connection to an event, or
// unsubscribes it.
type SubscriptionRequest struct {
	EventName string
	Subscribe bool
}

// Init is the first message on a connection.
type Init struct {
	ActorID      string
	ConnectionID string
	// ConnectionToken exists only in BARE version 1; it is written when
	// encoding version 1 and read when decoding it.
	ConnectionToken string
}

// Error is an error on a connection. With a nil ActionID it is a
// connection-level error, and actionId is sent as null.
type Error struct {
	Group    string
	Code     string
	Message  string
	Metadata []byte // internal CBOR; nil when absent
	ActionID *uint64
	Actor    *ActorSpecifier // not in BARE versions before 4
}

// ActionResponse carries the output of a successful action.
type ActionResponse struct {
	ID     uint64
	Output []byte // internal CBOR; nil is sent as null
}

// Event is a broadcast or a message sent to one connection.
type Event struct {
	Name string
	Args []byte // internal CBOR array
}

// ActorSpecifier names the actor an error came from.
type ActorSpecifier struct {
	ActorID    string
	Generation uint64
	Key        *string
}

// HTTPActionRequest is the body of POST /action/{name}.
type HTTPActionRequest struct {
	Args []byte // internal CBOR array
}

// HTTPActionResponse is the body of a successful action response.
type HTTPActionResponse struct {
	Output []byte // internal CBOR; nil is sent as null
}

// HTTPResponseError is the body of an HTTP error response.
type HTTPResponseError struct {
	Group    string
	Code     string
	Message  string
	Metadata []byte          // internal CBOR; nil when absent
	Actor    *ActorSpecifier // not in BARE versions before 4
}

// HTTPQueueSendRequest is the body of POST /queue/{name} (BARE version 3 and
// later).
type HTTPQueueSendRequest struct {
	Body    []byte // internal CBOR; nil is sent as null
	Name    *string
	Wait    *bool
	Timeout *uint64 // milliseconds
}

// HTTPQueueSendResponse is the body of a queue send response (BARE version 3
// and later). Status is "completed" or "timedOut".
type HTTPQueueSendResponse struct {
	Status   string
	Response []byte // internal CBOR; nil when absent
}

func (ActionRequest) toServer()       {}
func (SubscriptionRequest) toServer() {}
func (Init) toClient()                {}
func (Error) toClient()               {}
func (ActionResponse) toClient()      {}
func (Event) toClient()               {}

func (ActionRequest) fromClient() bool         { return true }
func (SubscriptionRequest) fromClient() bool   { return true }
func (HTTPActionRequest) fromClient() bool     { return true }
func (HTTPQueueSendRequest) fromClient() bool  { return true }
func (Init) fromClient() bool                  { return false }
func (Error) fromClient() bool                 { return false }
func (ActionResponse) fromClient() bool        { return false }
func (Event) fromClient() bool                 { return false }
func (HTTPActionResponse) fromClient() bool    { return false }
func (HTTPResponseError) fromClient() bool     { return false }
func (HTTPQueueSendResponse) fromClient() bool { return false }

// Encode encodes m. BARE messages are written in CurrentVersion.
func Encode(enc Encoding, m Message) ([]byte, error) {
	switch enc {
	case JSON, CBOR:
		t, err := m.tree()
		if err != nil {
			return nil, fmt.Errorf("protocol: encode %T: %w", m, err)
		}
		if enc == JSON {
			b, err := appendJSONTree(nil, t)
			if err != nil {
				return nil, fmt.Errorf("protocol: encode %T: %w", m, err)
			}
			return b, nil
		}
		b, err := appendCBORTree(nil, t, m.fromClient())
		if err != nil {
			return nil, fmt.Errorf("protocol: encode %T: %w", m, err)
		}
		return b, nil
	case BARE:
		return EncodeBARE(m, CurrentVersion)
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupportedEncoding, enc)
}

// EncodeBARE encodes m in an older BARE version, for a client that sent one.
// Fields the version lacks (Error.Actor before 4) are dropped; the queue
// messages need version 3 or later.
func EncodeBARE(m Message, version uint16) ([]byte, error) {
	if version < 1 || version > CurrentVersion {
		return nil, fmt.Errorf("protocol: encode %T: unsupported BARE version %d", m, version)
	}
	b, err := m.appendBARE([]byte{byte(version), byte(version >> 8)}, version)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %T: %w", m, err)
	}
	return b, nil
}

// BAREVersion returns the version prefix of a BARE message.
func BAREVersion(data []byte) (uint16, error) {
	r := bareReader{buf: data}
	v := r.version(1)
	if r.err != nil {
		return 0, invalid(BARE, r.err)
	}
	return v, nil
}

// DecodeToServer decodes a WebSocket message from the client.
func DecodeToServer(enc Encoding, data []byte) (ToServer, error) {
	return decode(enc, data, decodeBAREToServer, func(t any) (ToServer, error) {
		return toServerFromTree(t, enc == JSON)
	})
}

// DecodeToClient decodes a WebSocket message from the server (for a client).
func DecodeToClient(enc Encoding, data []byte) (ToClient, error) {
	return decode(enc, data, decodeBAREToClient, toClientFromTree)
}

// DecodeHTTPActionRequest decodes an action request body. Arguments that
// are not an array are normalized: null becomes [] and any other value v
// becomes [v]; a missing args field (JSON, CBOR) is [].
func DecodeHTTPActionRequest(enc Encoding, data []byte) (HTTPActionRequest, error) {
	return decode(enc, data, decodeBAREHTTPActionRequest, func(t any) (HTTPActionRequest, error) {
		return httpActionRequestFromTree(t, enc == JSON)
	})
}

// DecodeHTTPActionResponse decodes an action response body (for a client).
func DecodeHTTPActionResponse(enc Encoding, data []byte) (HTTPActionResponse, error) {
	return decode(enc, data, decodeBAREHTTPActionResponse, httpActionResponseFromTree)
}

// DecodeHTTPResponseError decodes an HTTP error body (for a client).
func DecodeHTTPResponseError(enc Encoding, data []byte) (HTTPResponseError, error) {
	return decode(enc, data, decodeBAREHTTPResponseError, httpResponseErrorFromTree)
}

// DecodeHTTPQueueSendRequest decodes a queue send request body.
func DecodeHTTPQueueSendRequest(enc Encoding, data []byte) (HTTPQueueSendRequest, error) {
	return decode(enc, data, decodeBAREHTTPQueueSendRequest, func(t any) (HTTPQueueSendRequest, error) {
		return httpQueueSendRequestFromTree(t, enc == JSON)
	})
}

// DecodeHTTPQueueSendResponse decodes a queue send response body (for a
// client).
func DecodeHTTPQueueSendResponse(enc Encoding, data []byte) (HTTPQueueSendResponse, error) {
	return decode(enc, data, decodeBAREHTTPQueueSendResponse, httpQueueSendResponseFromTree)
}

// decode parses data and hands it to the BARE decoder or, for JSON and
// CBOR, to the decoder of the parsed tree.
func decode[T any](enc Encoding, data []byte, fromBARE func(*bareReader) T, fromTree func(any) (T, error)) (T, error) {
	var zero T
	switch enc {
	case JSON, CBOR:
		var t any
		var err error
		if enc == JSON {
			t, err = parseJSON(data)
		} else {
			t, err = parseCBOR(data, false)
		}
		if err != nil {
			return zero, invalid(enc, err)
		}
		m, err := fromTree(t)
		if err != nil {
			return zero, invalid(enc, err)
		}
		return m, nil
	case BARE:
		r := bareReader{buf: data}
		m := fromBARE(&r)
		if err := r.end(); err != nil {
			return zero, invalid(enc, err)
		}
		return m, nil
	}
	return zero, fmt.Errorf("%w: %v", ErrUnsupportedEncoding, enc)
}

func invalid(enc Encoding, err error) error {
	return fmt.Errorf("%w: %v: %w", ErrInvalid, enc, err)
}

// DecodeJSONValue converts one compat-tagged JSON value (§2.2) to internal
// CBOR.
func DecodeJSONValue(data []byte) ([]byte, error) { return decodeJSONValue(data, true) }

// DecodePlainJSONValue converts one plain JSON value to internal CBOR,
// without reviving compat tags: for values the client sends through
// JSON.stringify, such as connection parameters.
func DecodePlainJSONValue(data []byte) ([]byte, error) { return decodeJSONValue(data, false) }

func decodeJSONValue(data []byte, revive bool) ([]byte, error) {
	t, err := parseJSON(data)
	if err != nil {
		return nil, invalid(JSON, err)
	}
	v, err := wireValue(t, revive)
	if err != nil {
		return nil, invalid(JSON, err)
	}
	return v, nil
}

// EncodeJSONValue converts an internal CBOR value to compat-tagged JSON.
func EncodeJSONValue(value []byte) ([]byte, error) {
	t, err := parseInternal(value)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode value: %w", err)
	}
	b, err := appendJSONValue(nil, t, 0)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode value: %w", err)
	}
	return b, nil
}

type encodingKey struct{}

// WithEncoding records in ctx the encoding a request arrived in, so that
// an error about its values can speak of them in that encoding's terms.
func WithEncoding(ctx context.Context, e Encoding) context.Context {
	return context.WithValue(ctx, encodingKey{}, e)
}

// EncodingName returns the name of the encoding recorded by WithEncoding,
// "" when none was (a call from Go code).
func EncodingName(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if e, ok := ctx.Value(encodingKey{}).(Encoding); ok {
		return e.String()
	}
	return ""
}
