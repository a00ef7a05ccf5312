package enginetest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rivetgo/rivet/internal/enginetest"
)

type namespaceList struct {
	Namespaces []struct {
		Name string `json:"name"`
	} `json:"namespaces"`
}

type runnerConfigList struct {
	RunnerConfigs map[string]struct {
		Datacenters map[string]struct {
			Normal *struct{} `json:"normal"`
		} `json:"datacenters"`
	} `json:"runner_configs"`
}

func hasNamespace(l namespaceList, name string) bool {
	for _, n := range l.Namespaces {
		if n.Name == name {
			return true
		}
	}
	return false
}

// One node on its file store: the public API answers through guard (the
// client endpoint) and api_peer, a runner config can be created, and the
// engine comes back with its data after a kill -9.
func TestSingleNode(t *testing.T) {
	e := enginetest.Start(t, enginetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var health struct {
		Runtime, Status, Version string
	}
	if err := enginetest.Do(ctx, http.MethodGet, e.GuardURL(), "/health", nil, &health); err != nil {
		t.Fatal(err)
	}
	if health.Runtime != "engine" || health.Status != "ok" || health.Version != enginetest.Version {
		t.Fatalf("/health = %+v, want engine ok %s (is RIVET_ENGINE_BIN another version?)", health, enginetest.Version)
	}

	for _, base := range []string{e.GuardURL(), e.PeerURL()} {
		var l namespaceList
		if err := enginetest.Do(ctx, http.MethodGet, base, "/namespaces", nil, &l); err != nil {
			t.Fatal(err)
		}
		if !hasNamespace(l, "default") {
			t.Fatalf("%s/namespaces: no default namespace in %+v", base, l)
		}
	}

	e.EnsureRunnerConfig(t, "default", "default")
	var rc runnerConfigList
	if err := enginetest.Do(ctx, http.MethodGet, e.GuardURL(), "/runner-configs?namespace=default", nil, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.RunnerConfigs["default"].Datacenters["default"].Normal == nil {
		t.Fatalf("runner config default not listed as normal in datacenter default: %+v", rc)
	}

	e.CreateNamespace(t, "crash-survivor")
	e.Kill9()
	if err := enginetest.Do(ctx, http.MethodGet, e.GuardURL(), "/health", nil, nil); err == nil {
		t.Fatal("engine still answers after Kill9")
	}
	e.Restart()
	var l namespaceList
	if err := enginetest.Do(ctx, http.MethodGet, e.GuardURL(), "/namespaces?name=crash-survivor", nil, &l); err != nil {
		t.Fatal(err)
	}
	if !hasNamespace(l, "crash-survivor") {
		t.Fatalf("namespace created before kill -9 is gone after restart: %+v", l)
	}
}

// Two nodes on one PostgreSQL database and NATS are one engine: what is
// written through one node is read through the other.
func TestTwoNodes(t *testing.T) {
	nodes := enginetest.StartCluster(t, 2, enginetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	nodes[0].CreateNamespace(t, "shared")
	nodes[1].EnsureRunnerConfig(t, "shared", "default")
	for i, n := range nodes {
		var l namespaceList
		if err := enginetest.Do(ctx, http.MethodGet, n.GuardURL(), "/namespaces?name=shared", nil, &l); err != nil {
			t.Fatal(err)
		}
		if !hasNamespace(l, "shared") {
			t.Fatalf("node %d does not list the namespace created on node 0: %+v", i, l)
		}
		var rc runnerConfigList
		if err := enginetest.Do(ctx, http.MethodGet, n.GuardURL(), "/runner-configs?namespace=shared", nil, &rc); err != nil {
			t.Fatal(err)
		}
		if rc.RunnerConfigs["default"].Datacenters["default"].Normal == nil {
			t.Fatalf("node %d does not list the runner config created on node 1: %+v", i, rc)
		}
	}
}

// The engine behaviour our runner's connection loop is built on (see
// docs/engine-runner.md §3): a pool without a runner config is refused
// with a close reason "ws.no_runner_config#<ray id>", a configured one
// gets its init without sending anything first, and a second connection
// with the same envoy key evicts the first with "ws.eviction#…".
func TestRunnerEndpoint(t *testing.T) {
	e := enginetest.Start(t, enginetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(pool string) *websocket.Conn {
		t.Helper()
		u := "ws" + strings.TrimPrefix(e.GuardURL(), "http") +
			"/envoys/connect?protocol_version=8&namespace=default&envoy_key=enginetest-key&version=1&pool_name=" + pool
		c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"rivet"}})
		if err != nil {
			t.Fatalf("dial %s: %v", pool, err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	}
	closeReason := func(c *websocket.Conn) (websocket.StatusCode, string) {
		t.Helper()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("read: %v", err)
				}
				return ce.Code, ce.Reason
			}
		}
	}

	code, reason := closeReason(connect("unconfigured"))
	if code != websocket.StatusInternalError || !strings.HasPrefix(reason, "ws.no_runner_config#") {
		t.Fatalf("unconfigured pool: close %v %q, want 1011 ws.no_runner_config#…", code, reason)
	}

	e.EnsureRunnerConfig(t, "default", "default")
	first := connect("default")
	typ, msg, err := first.Read(ctx)
	// ToEnvoy union tag 0 is ToEnvoyInit.
	if err != nil || typ != websocket.MessageBinary || len(msg) == 0 || msg[0] != 0 {
		t.Fatalf("first message: %v %x %v, want a binary ToEnvoyInit (tag 0)", typ, msg, err)
	}
	connect("default")
	code, reason = closeReason(first)
	if code != websocket.StatusNormalClosure || !strings.HasPrefix(reason, "ws.eviction#") {
		t.Fatalf("older connection: close %v %q, want 1000 ws.eviction#…", code, reason)
	}
}
