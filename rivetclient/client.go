// Package rivetclient is a Go client for actors served over the network by
// a rivetgo server (or any RivetKit endpoint): handles, typed action calls,
// raw HTTP and WebSocket, and stateful connections with events, action
// queueing and automatic reconnection. It speaks RivetKit's client
// protocol, in BARE by default (json and cbor selectable), so it is a Go
// peer of the official rivetkit TypeScript client.
//
//	c := rivetclient.New("http://127.0.0.1:6420")
//	n, err := rivetclient.Call[int](ctx, c.GetOrCreate("counter", rivet.Key{"a"}), "increment", 5)
//
// InProcess serves a runtime's handler over an in-memory listener, so that
// tests and single-binary programs use the very same client and wire
// protocol without a port.
package rivetclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/memnet"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/internal/remote"
	"github.com/rivetgo/rivet/rivettype"
)

// Error is the error actors and the server return: group, code, message
// and metadata. Compare kinds with errors.Is against rivet's Err values.
type Error = rivettype.Error

// Client talks to one endpoint.
type Client struct {
	endpoint  string
	namespace string
	token     string
	enc       protocol.Encoding
	http      *http.Client
	header    http.Header
	closers   []func()
}

// Option configures a Client.
type Option func(*Client)

// WithEncoding selects the wire encoding: "bare" (default), "cbor" or
// "json".
func WithEncoding(name string) Option {
	return func(c *Client) {
		if e, err := protocol.ParseEncoding(name); err == nil {
			c.enc = e
		}
	}
}

// WithNamespace sets the namespace (default "default").
func WithNamespace(ns string) Option { return func(c *Client) { c.namespace = ns } }

// WithToken sends a token with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the HTTP client (its Transport also dials
// WebSockets).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithHeader adds a header to every HTTP request.
func WithHeader(key, value string) Option { return func(c *Client) { c.header.Add(key, value) } }

// New returns a client for endpoint, e.g. "http://127.0.0.1:6420".
func New(endpoint string, opts ...Option) *Client {
	c := &Client{endpoint: strings.TrimRight(endpoint, "/"), namespace: "default", enc: protocol.BARE, http: http.DefaultClient, header: http.Header{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// InProcess returns a client of handler h (a Runtime's Handler) through
// an in-memory listener: the full wire protocol, no port. Close the
// client to stop serving.
func InProcess(h http.Handler, opts ...Option) *Client {
	l := memnet.NewListener()
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return l.Dial(ctx) }}
	c := New("http://in-process", append([]Option{WithHTTPClient(&http.Client{Transport: tr})}, opts...)...)
	c.closers = append(c.closers, func() { _ = srv.Close(); tr.CloseIdleConnections() })
	return c
}

// Close releases the client's resources (the in-memory server of
// InProcess).
func (c *Client) Close() error {
	for _, f := range c.closers {
		f()
	}
	c.closers = nil
	return nil
}

// HandleOption configures a handle.
type HandleOption func(*Handle)

// WithInput passes create-time input when the handle creates the actor.
func WithInput(v any) HandleOption { return func(h *Handle) { h.input, h.hasInput = v, true } }

// WithParams sets the connection params sent with every call and
// connection of the handle.
func WithParams(v any) HandleOption { return func(h *Handle) { h.params, h.hasParams = v, true } }

// Handle addresses one actor: by name and key (resolved on every call,
// as RivetKit's query gateway does) or by id.
type Handle struct {
	c         *Client
	name      string
	key       []string
	id        string
	create    bool
	input     any
	hasInput  bool
	params    any
	hasParams bool
}

func (c *Client) handle(name string, key rivet.Key, create bool, opts []HandleOption) *Handle {
	h := &Handle{c: c, name: name, key: append([]string{}, key...), create: create}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Get addresses an existing actor; calls fail with actor.not_found if it
// does not exist.
func (c *Client) Get(name string, key rivet.Key, opts ...HandleOption) *Handle {
	return c.handle(name, key, false, opts)
}

// GetOrCreate addresses an actor, creating it on first use.
func (c *Client) GetOrCreate(name string, key rivet.Key, opts ...HandleOption) *Handle {
	return c.handle(name, key, true, opts)
}

// GetForID addresses an actor by id.
func (c *Client) GetForID(name, id string, opts ...HandleOption) *Handle {
	h := c.handle(name, nil, false, opts)
	h.id = id
	return h
}

// Create creates an actor (actor.duplicate_key if the key is taken) and
// returns a handle to it by id.
func (c *Client) Create(ctx context.Context, name string, key rivet.Key, opts ...HandleOption) (*Handle, error) {
	h := c.handle(name, key, true, opts)
	t, err := h.target()
	if err != nil {
		return nil, err
	}
	id, err := c.wire().Create(ctx, name, h.key, t.Input)
	if err != nil {
		return nil, err
	}
	h.id, h.create = id, false
	return h, nil
}

// wire is the client's endpoint settings for the shared HTTP calls.
func (c *Client) wire() *remote.Client {
	return &remote.Client{
		Endpoint: c.endpoint, Namespace: c.namespace, Token: c.token, Enc: c.enc,
		HTTP: c.http, Header: c.header, UserAgent: "rivetgo-client/" + rivet.Version,
	}
}

// target is what the handle addresses, with its input and params encoded.
func (h *Handle) target() (remote.Target, error) {
	t := remote.Target{Name: h.name, Key: h.key, ID: h.id, Create: h.create}
	if h.hasInput {
		in, err := codec.Marshal(h.input)
		if err != nil {
			return t, fmt.Errorf("rivetclient: encode input: %w", err)
		}
		t.Input = in
	}
	p, err := h.paramsJSON()
	t.Params = p
	return t, err
}

func (c *Client) headers(req *http.Request) { c.wire().Headers(req) }

func decodeHTTPError(resp *http.Response, body []byte, enc protocol.Encoding) error {
	return remote.DecodeHTTPError(resp, body, enc)
}

// gatewayURL is the handle's gateway URL for an actor path ("/action/x").
func (h *Handle) gatewayURL(path, scheme string) (string, error) {
	t, err := h.target()
	if err != nil {
		return "", err
	}
	return h.c.wire().GatewayURL(t, path, scheme), nil
}

// paramsJSON is the handle's params as JSON ("" without params).
func (h *Handle) paramsJSON() (string, error) {
	if !h.hasParams {
		return "", nil
	}
	b, err := json.Marshal(h.params)
	if err != nil {
		return "", fmt.Errorf("rivetclient: encode params: %w", err)
	}
	return string(b), nil
}

// Call calls an action without a connection (a stateless call) and
// returns its result.
func (h *Handle) Call(ctx context.Context, action string, args ...any) (rivet.Value, error) {
	a, err := codec.MarshalArgs(args)
	if err != nil {
		return rivet.Value{}, fmt.Errorf("rivetclient: %w", err)
	}
	t, err := h.target()
	if err != nil {
		return rivet.Value{}, err
	}
	out, err := h.c.wire().Action(ctx, t, action, a)
	if err != nil {
		return rivet.Value{}, err
	}
	return rivet.RawValue(out), nil
}

// Call calls an action and decodes its result into R. A result that does
// not fit R is a *rivet.ResultError (the action ran), not a server error.
func Call[R any](ctx context.Context, h interface {
	Call(ctx context.Context, action string, args ...any) (rivet.Value, error)
}, action string, args ...any) (R, error) {
	var r R
	v, err := h.Call(ctx, action, args...)
	if err != nil {
		return r, err
	}
	if b := v.Bytes(); len(b) > 0 {
		if err := codec.Unmarshal(b, &r); err != nil {
			// Ours, not the server's: report it as such (*rivet.ResultError).
			return r, rivet.NewResultError(action, b, &r, err)
		}
	}
	return r, nil
}

// ID resolves the actor's id (creating the actor for a GetOrCreate
// handle).
func (h *Handle) ID(ctx context.Context) (string, error) {
	t, err := h.target()
	if err != nil {
		return "", err
	}
	return h.c.wire().Resolve(ctx, t)
}

// Destroy destroys the actor.
func (h *Handle) Destroy(ctx context.Context) error {
	id, err := h.ID(ctx)
	if err != nil {
		return err
	}
	return h.c.wire().Destroy(ctx, id)
}

// Fetch sends a raw HTTP request to the actor's onRequest handler: path
// is relative to the actor ("/api/hello?x=1").
func (h *Handle) Fetch(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	u, err := h.gatewayURL("/request"+ensureSlash(path), "")
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	h.c.headers(req)
	if p, err := h.paramsJSON(); err != nil {
		return nil, err
	} else if p != "" {
		req.Header.Set("X-Rivet-Conn-Params", p)
	}
	return h.c.http.Do(req)
}

func ensureSlash(p string) string {
	if p == "" || p[0] == '/' || p[0] == '?' {
		return p
	}
	return "/" + p
}

var errClosed = errors.New("rivetclient: connection closed")
