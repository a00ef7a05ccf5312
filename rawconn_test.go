package rivet_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type rawConnState struct {
	Connects, Disconnects int
}

type rawConnUser struct{ User string }

type rawConnParams struct {
	User string `json:"user"`
	Deny bool   `json:"deny"`
}

var rawConnDef = rivet.NewActor("rawconn", rivet.Options[rawConnState, rawConnUser, rivet.None]{
	OnBeforeConnect: func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], params rivet.Value) error {
		var p rawConnParams
		_ = params.Decode(&p)
		if p.Deny {
			return rivet.Forbidden("denied by onBeforeConnect")
		}
		return nil
	},
	CreateConnState: func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], params rivet.Value) (rawConnUser, error) {
		var p rawConnParams
		err := params.Decode(&p)
		return rawConnUser{User: p.User}, err
	},
	// Counted for connections with a user: the test's own action calls
	// (in-process, without params) connect too.
	OnConnect: func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], conn *rivet.Conn[rawConnUser]) error {
		if conn.State.User != "" {
			c.State.Connects++
		}
		return nil
	},
	OnDisconnect: func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], conn *rivet.Conn[rawConnUser]) {
		if conn.State.User != "" {
			c.State.Disconnects++
		}
	},
	OnRequest: func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, c.Conn.State.User+" "+c.Conn.ID())
		return err
	},
	OnWebSocket: func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], ws *rivet.WebSocket[rawConnState, rawConnUser, rivet.None]) error {
		user := c.Conn.State.User
		ws.OnMessage(func(c *rivet.Context[rawConnState, rawConnUser, rivet.None], msg rivet.WebSocketMessage) error {
			return ws.SendText(c.Conn.State.User + ":" + string(msg.Data))
		})
		return ws.SendText("hello " + user)
	},
}).Action("counts", func(c *rivet.Context[rawConnState, rawConnUser, rivet.None]) rawConnState { return *c.State })

// TestRawConnectionHooks: onRequest and onWebSocket connections run the
// connection hooks with their params (Rivet changelog 2025-46): the
// handler sees c.Conn with its state, onBeforeConnect can refuse, and
// onDisconnect runs when the request or socket is done.
func TestRawConnectionHooks(t *testing.T) {
	ctx := ctxT(t)
	rt, err := rivet.Start(context.Background(), mustRegistry(t, rawConnDef), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	defer func() { srv.Close(); _ = rt.Stop(context.Background()) }()
	const q = "?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k"
	h := rt.Client().GetOrCreate("rawconn", rivet.Key{"k"})
	counts := func() rawConnState { return must[rawConnState](t)(rivet.Call[rawConnState](ctx, h, "counts")) }

	get := func(params string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/gateway/rawconn/request/x"+q, nil)
		req.Header.Set("X-Rivet-Conn-Params", params)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(`{"user":"ada"}`)
	if user, id, _ := strings.Cut(body, " "); code != 200 || user != "ada" || len(id) != 36 {
		t.Fatalf("onRequest: %d %q", code, body)
	}
	if c := counts(); c.Connects != 1 || c.Disconnects != 1 {
		t.Fatalf("after a request: %+v, want one connect and one disconnect", c)
	}
	if code, body := get(`{"deny":true}`); code == 200 || !strings.Contains(body, "forbidden") {
		t.Fatalf("denied request: %d %q", code, body)
	}
	if c := counts(); c.Connects != 1 {
		t.Fatalf("a refused request connected: %+v", c)
	}

	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/gateway/rawconn/websocket/" + q
	dial := func(params string) (*websocket.Conn, error) {
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"rivet", "rivet_conn_params." + url.PathEscape(params)}})
		return c, err
	}
	ws, err := dial(`{"user":"bob"}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello bob", "bob:ping"} {
		if want == "bob:ping" {
			if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
				t.Fatal(err)
			}
		}
		_, b, err := ws.Read(ctx)
		if err != nil || string(b) != want {
			t.Fatalf("read %q, %v; want %q", b, err, want)
		}
	}
	if c := counts(); c.Connects != 2 || c.Disconnects != 1 {
		t.Fatalf("with a socket open: %+v", c)
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")
	for c := counts(); c.Disconnects != 2; c = counts() {
		select {
		case <-ctx.Done():
			t.Fatalf("onDisconnect did not run for the closed socket: %+v", c)
		case <-time.After(10 * time.Millisecond): // poll
		}
	}

	denied, err := dial(`{"deny":true}`)
	if err == nil {
		_, _, err = denied.Read(ctx)
	}
	if websocket.CloseStatus(err) != websocket.StatusInternalError || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("denied socket: %v", err)
	}
}
