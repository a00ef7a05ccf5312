package inspector_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/inspector"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type counterState struct {
	Count int      `json:"count"`
	Label string   `json:"label,omitempty"`
	Tags  []string `json:"tags"`
}

type connState struct {
	User string `json:"user"`
}

type ctx = rivet.Context[counterState, connState, rivet.None]

var counter = rivet.NewActor("counter", rivet.Options[counterState, connState, rivet.None]{
	State: counterState{Tags: []string{}},
	CreateConnState: func(c *ctx, params rivet.Value) (connState, error) {
		var p struct {
			User string `json:"user"`
		}
		if err := params.Decode(&p); err != nil {
			return connState{}, err
		}
		return connState{User: p.User}, nil
	},
	OnStateChange: func(c *ctx, s *counterState) { c.Broadcast("stateChanged", s.Count) },
}).Queues(rivet.Queue[rivet.Value]("jobs")).
	Action("enqueue", func(c *ctx, body rivet.Value) error { return c.Queue().Send("jobs", body) }).
	Action("increment", func(c *ctx, n int) (int, error) {
		c.State.Count += n
		c.Broadcast("newCount", c.State.Count)
		c.Log.Info("incremented", "by", n)
		return c.State.Count, nil
	}).
	Action("getCount", func(c *ctx) int { return c.State.Count }).
	Action("putKV", func(c *ctx, key, value string) error {
		return c.KV().Put(rivet.K("items", key), value)
	}).
	Action("putRaw", func(c *ctx, key string, value []byte) error {
		return c.KV().Put(rivet.K("raw", key), value)
	}).
	Action("remind", func(c *ctx, seconds int) (string, error) {
		return c.Schedule().After(time.Duration(seconds)*time.Second, "increment", 1)
	}).
	Action("boom", func(c *ctx) error {
		c.Log.Warn("about to fail")
		return rivet.UserError("boom happened", rivet.WithCode("boom"))
	})

type bundle struct {
	rt  *rivet.Runtime
	svc *inspector.Service
	srv *httptest.Server
}

// setup starts a runtime on the memory store with the inspector, served
// on a loopback httptest server.
func setup(t *testing.T, token string) *bundle {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(counter), &rivet.Config{
		Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler),
		Inspector: rivet.InspectorConfig{Token: token},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(sctx); err != nil {
			t.Error(err)
		}
	})
	return &bundle{rt: rt, svc: inspector.New(rt.Engine(), nil), srv: srv}
}

// actor creates (or gets) a counter and returns its id.
func (b *bundle) actor(t *testing.T, key ...string) (string, *rivet.Handle) {
	t.Helper()
	h := b.rt.Client().GetOrCreate("counter", rivet.Key(key))
	id, err := h.ID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id, h
}

func call(t *testing.T, h *rivet.Handle, action string, args ...any) {
	t.Helper()
	if _, err := h.Call(context.Background(), action, args...); err != nil {
		t.Fatalf("%s: %v", action, err)
	}
}

// do sends a request to the inspector API and decodes the JSON answer.
func (b *bundle) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: status %d, body is not a JSON object: %s", method, path, res.StatusCode, raw)
	}
	return res.StatusCode, out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
