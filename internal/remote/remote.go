// Package remote calls actors over HTTP through a RivetKit endpoint: a
// rivetgo server or the Rivet Engine's guard. It is the one
// implementation of the stateless calls (resolve, create, action,
// destroy) behind both rivetclient and the runtime's Client in runner
// mode, where an actor's peers may be placed on any runner.
package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rivetgo/rivet/internal/actorkey"
	"github.com/rivetgo/rivet/internal/callchain"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/protocol"
	"github.com/rivetgo/rivet/rivettype"
)

// maxBody bounds a response body read into memory.
const maxBody = 64 << 20

// Client is an endpoint and how to talk to it. Its fields are set once,
// before use; it is then safe for concurrent use.
type Client struct {
	Endpoint  string // no trailing slash
	Namespace string
	Token     string
	// Runner is the runner pool actors are created in ("default" if
	// empty).
	Runner    string
	Enc       protocol.Encoding
	HTTP      *http.Client
	Header    http.Header
	UserAgent string
}

// Target addresses one actor: by ID, or by name and key (resolved by the
// endpoint on every request; created on demand when Create is set).
type Target struct {
	Name   string
	Key    []string
	ID     string
	Create bool
	// Input is the encoded create-time input (nil: none).
	Input []byte
	// Params is the connection params as JSON ("": none).
	Params string
}

func (c *Client) runner() string {
	if c.Runner == "" {
		return "default"
	}
	return c.Runner
}

// scrub takes the token out of an error of the HTTP client: a *url.Error
// repeats the request's URL, whose path (@token) or query (rvt-token)
// carries the token, and such errors reach actor code and the logs.
func (c *Client) scrub(err error) error {
	var ue *url.Error
	if c.Token == "" || !errors.As(err, &ue) {
		return err
	}
	for _, s := range []string{url.PathEscape(c.Token), url.QueryEscape(c.Token), c.Token} {
		ue.URL = strings.ReplaceAll(ue.URL, s, "REDACTED")
	}
	return err
}

// Headers sets the client's headers on req.
func (c *Client) Headers(req *http.Request) {
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
}

// REST calls the endpoint's actors API with a JSON body.
func (c *Client) REST(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	u := c.Endpoint + path + sep + "namespace=" + url.QueryEscape(c.Namespace)
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	c.Headers(req)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return c.scrub(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return DecodeHTTPError(resp, b, protocol.JSON)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// DecodeHTTPError turns an error response into a public *rivettype.Error
// (group and code as the server sent them).
func DecodeHTTPError(resp *http.Response, body []byte, enc protocol.Encoding) error {
	if strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
		enc = protocol.JSON
	}
	e, err := protocol.DecodeHTTPResponseError(enc, body)
	if err != nil {
		return fmt.Errorf("rivet: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	out := &rivettype.Error{Group: e.Group, Code: e.Code, Message: e.Message, Public: true}
	if e.Metadata != nil {
		var md any
		if codec.Unmarshal(e.Metadata, &md) == nil {
			out.Metadata = md
		}
	}
	return out
}

type actorReply struct {
	Actor struct {
		ID string `json:"actor_id"`
	} `json:"actor"`
}

func (c *Client) createBody(name string, key []string, input []byte) map[string]any {
	body := map[string]any{"name": name, "key": actorkey.Serialize(key), "runner_name_selector": c.runner(), "crash_policy": "sleep"}
	if input != nil {
		body["input"] = base64.StdEncoding.EncodeToString(input)
	}
	return body
}

// Create creates an actor (actor.duplicate_key if the key is taken) and
// returns its id.
func (c *Client) Create(ctx context.Context, name string, key []string, input []byte) (string, error) {
	var out actorReply
	if err := c.REST(ctx, http.MethodPost, "/actors", c.createBody(name, key, input), &out); err != nil {
		return "", err
	}
	return out.Actor.ID, nil
}

// Resolve returns the target's actor id, creating the actor for a Create
// target.
func (c *Client) Resolve(ctx context.Context, t Target) (string, error) {
	if t.ID != "" {
		return t.ID, nil
	}
	if t.Create {
		var out actorReply
		// Not cut short by ctx: a create the engine received completes.
		if err := c.REST(context.WithoutCancel(ctx), http.MethodPut, "/actors", c.createBody(t.Name, t.Key, t.Input), &out); err != nil {
			return "", err
		}
		return out.Actor.ID, nil
	}
	var out struct {
		Actors []struct {
			ID string `json:"actor_id"`
		} `json:"actors"`
	}
	path := "/actors?name=" + url.QueryEscape(t.Name) + "&key=" + url.QueryEscape(actorkey.Serialize(t.Key))
	if err := c.REST(ctx, http.MethodGet, path, nil, &out); err != nil {
		return "", err
	}
	if len(out.Actors) == 0 {
		return "", rivettype.ErrActorNotFound.With("No actor %q with key %q.", t.Name, actorkey.Serialize(t.Key))
	}
	return out.Actors[0].ID, nil
}

// Destroy destroys the actor with id.
func (c *Client) Destroy(ctx context.Context, id string) error {
	return c.REST(ctx, http.MethodDelete, "/actors/"+url.PathEscape(id), nil, nil)
}

// GatewayURL is the target's gateway URL for an actor path ("/action/x");
// scheme "ws" turns http(s) into ws(s).
func (c *Client) GatewayURL(t Target, path, scheme string) string {
	base := c.Endpoint
	if scheme != "" {
		base = strings.Replace(base, "http", scheme, 1)
	}
	if t.ID != "" {
		seg := url.PathEscape(t.ID)
		if c.Token != "" {
			seg += "@" + url.PathEscape(c.Token)
		}
		return base + "/gateway/" + seg + path
	}
	p, q, _ := strings.Cut(path, "?")
	v := []string{"rvt-namespace=" + url.QueryEscape(c.Namespace)}
	if t.Create {
		v = append(v, "rvt-method=getOrCreate", "rvt-runner="+url.QueryEscape(c.runner()))
	} else {
		v = append(v, "rvt-method=get")
	}
	if len(t.Key) > 0 {
		v = append(v, "rvt-key="+url.QueryEscape(strings.Join(t.Key, ",")))
	}
	if t.Create && t.Input != nil {
		v = append(v, "rvt-input="+base64.RawURLEncoding.EncodeToString(t.Input))
	}
	if t.Create {
		v = append(v, "rvt-crash-policy=sleep")
	}
	if c.Token != "" {
		v = append(v, "rvt-token="+url.QueryEscape(c.Token))
	}
	query := strings.Join(v, "&")
	if q != "" {
		query = q + "&" + query
	}
	return base + "/gateway/" + url.PathEscape(t.Name) + p + "?" + query
}

// Action calls an action without a connection; args is the encoded
// argument list, the result is the encoded output.
func (c *Client) Action(ctx context.Context, t Target, action string, args []byte) ([]byte, error) {
	enc := c.Enc
	body, err := protocol.Encode(enc, protocol.HTTPActionRequest{Args: args})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.GatewayURL(t, "/action/"+url.PathEscape(action), ""), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	c.Headers(req)
	req.Header.Set("Content-Type", enc.ContentType())
	req.Header.Set("X-Rivet-Encoding", enc.String())
	if v := callchain.Encode(ctx); v != "" {
		req.Header.Set(callchain.Header, v) // a call made from an actor's turn
	}
	if t.Params != "" {
		req.Header.Set("X-Rivet-Conn-Params", t.Params)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, c.scrub(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, DecodeHTTPError(resp, b, enc)
	}
	out, err := protocol.DecodeHTTPActionResponse(enc, b)
	if err != nil {
		return nil, fmt.Errorf("rivet: %w", err)
	}
	return out.Output, nil
}
