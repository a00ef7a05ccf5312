package rivetclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/protocol"
)

// SendOptions are the options of Handle.Send.
type SendOptions struct {
	// Wait waits until a turn of the actor has received the message and
	// committed, and returns its response.
	Wait bool
	// Timeout bounds the wait (0: as long as the server allows, five
	// minutes); past it the result is TimedOut.
	Timeout time.Duration
}

// SendResult is the outcome of a Send with Wait.
type SendResult struct {
	// TimedOut: no turn received the message within the timeout. The
	// message stays queued.
	TimedOut bool
	// Response is what the receiver passed to Message.Complete; absent
	// when it completed without one.
	Response rivet.Value
}

// Send sends a message to one of the actor's queues (POST /queue/{name},
// handle.send of RivetKit's client). It returns once the message is
// durable; with opts.Wait, once it was received.
func (h *Handle) Send(ctx context.Context, queue string, body any, opts ...SendOptions) (SendResult, error) {
	var o SendOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	enc := h.c.enc
	b, err := codec.Marshal(body)
	if err != nil {
		return SendResult{}, fmt.Errorf("rivetclient: %w", err)
	}
	req := protocol.HTTPQueueSendRequest{Body: b, Name: &queue, Wait: &o.Wait}
	if o.Timeout > 0 {
		ms := uint64(o.Timeout / time.Millisecond)
		req.Timeout = &ms
	}
	data, err := protocol.Encode(enc, req)
	if err != nil {
		return SendResult{}, err
	}
	u, err := h.gatewayURL("/queue/"+url.PathEscape(queue), "")
	if err != nil {
		return SendResult{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return SendResult{}, err
	}
	h.c.headers(hr)
	hr.Header.Set("Content-Type", enc.ContentType())
	hr.Header.Set("X-Rivet-Encoding", enc.String())
	if p, err := h.paramsJSON(); err != nil {
		return SendResult{}, err
	} else if p != "" {
		hr.Header.Set("X-Rivet-Conn-Params", p)
	}
	resp, err := h.c.http.Do(hr)
	if err != nil {
		return SendResult{}, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return SendResult{}, err
	}
	if resp.StatusCode/100 != 2 {
		return SendResult{}, decodeHTTPError(resp, rb, enc)
	}
	out, err := protocol.DecodeHTTPQueueSendResponse(enc, rb)
	if err != nil {
		return SendResult{}, fmt.Errorf("rivetclient: %w", err)
	}
	return SendResult{TimedOut: out.Status == "timedOut", Response: rivet.RawValue(out.Response)}, nil
}

// Send sends a queue message for this connection's actor. As with the
// official client's conn.send, it goes over HTTP (POST /queue/{name})
// with the connection's params, not over the socket.
func (c *Connection) Send(ctx context.Context, queue string, body any, opts ...SendOptions) (SendResult, error) {
	return c.h.Send(ctx, queue, body, opts...)
}
