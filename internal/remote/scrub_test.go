package remote

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rivetgo/rivet/internal/protocol"
)

// TestErrorsDoNotRepeatTheToken: a failed request's error names its URL,
// which carries the token (/gateway/{id}@token, rvt-token); the error
// an actor or a log sees must not.
func TestErrorsDoNotRepeatTheToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close() // nothing listens there any more: every request fails
	const token = "engine/secret+token"
	c := &Client{Endpoint: dead, Namespace: "default", Token: token, Enc: protocol.JSON, HTTP: http.DefaultClient}
	ctx := context.Background()
	for what, call := range map[string]func() error{
		"action by id": func() error {
			_, err := c.Action(ctx, Target{ID: "abc"}, "x", []byte{0x80})
			return err
		},
		"action by key": func() error {
			_, err := c.Action(ctx, Target{Name: "n", Key: []string{"k"}, Create: true}, "x", []byte{0x80})
			return err
		},
		"rest": func() error { return c.REST(ctx, http.MethodGet, "/actors", nil, nil) },
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s: no error from a closed server", what)
		}
		msg := err.Error()
		for _, form := range []string{"secret", "engine%2Fsecret", token} {
			if strings.Contains(msg, form) {
				t.Errorf("%s: the error repeats the token: %s", what, msg)
			}
		}
		if what != "rest" && !strings.Contains(msg, "REDACTED") {
			t.Errorf("%s: %s, want the URL with the token REDACTED", what, msg)
		}
	}
}
