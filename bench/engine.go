package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
)

// The engine targets run a runner behind a fresh rivet-engine 2.3.19 (the
// binary `make engine` installs, or -engine-bin / RIVET_ENGINE_BIN) on a
// private file store; clients go through the engine's guard, as they do
// in production:
//
//	serve-engine  `rivet serve` with RIVET_ENGINE=<guard> (rivetgo's runner)
//	peer-engine   RivetKit 2.3.19 (node server.mjs in -peer-dir) with
//	              RIVET_ENDPOINT=<guard>, no engine of its own
//
// Both runners serve the pool "default" of the namespace "default".

// isEngineTarget reports whether the target runs behind an engine.
func isEngineTarget(target string) bool {
	return target == "serve-engine" || target == "peer-engine"
}

// engineBinary is -engine-bin, else RIVET_ENGINE_BIN, else the binary
// `make engine` installed under internal/enginetest/npm.
func engineBinary(o *options) (string, error) {
	if o.engineBin != "" {
		return o.engineBin, nil
	}
	return enginetest.Binary()
}

// engineConfig writes the engine's config file into c.dir: guard on
// c.port, api_peer and metrics on c.peerPort and c.metricsPort, telemetry
// off, a file store under c.dir, and the pegboard overrides of -engine-lost.
func (c *child) engineConfig() (string, error) {
	listen := func(port int) map[string]any { return map[string]any{"host": "127.0.0.1", "port": port} }
	guard := fmt.Sprintf("http://127.0.0.1:%d", c.port)
	cfg := map[string]any{
		"guard":     listen(c.port),
		"api_peer":  listen(c.peerPort),
		"metrics":   listen(c.metricsPort),
		"telemetry": map[string]any{"enabled": false},
		"topology": map[string]any{
			"datacenter_label": 1,
			"datacenters": map[string]any{"default": map[string]any{
				"datacenter_label": 1,
				"is_leader":        true,
				"public_url":       guard,
				"peer_url":         fmt.Sprintf("http://127.0.0.1:%d", c.peerPort),
			}},
		},
		"file_system": map[string]any{"path": filepath.Join(c.dir, "db")},
	}
	if d := c.opts.engineLost; d > 0 {
		cfg["pegboard"] = map[string]any{"envoy_ping_timeout": d.Milliseconds(), "envoy_lost_threshold": d.Milliseconds()}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.dir, "engine.json")
	return path, os.WriteFile(path, b, 0o600)
}

// waitEngineReady polls the engine until it answers /health, lists the
// default namespace and its epoxy replica is active (writes such as the
// runner config fail before that), then puts the runner config of the
// pool "default" (RivetKit's runner does not create it).
func (c *child) waitEngineReady(ctx context.Context) error {
	guard := fmt.Sprintf("http://127.0.0.1:%d", c.port)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.peerPort)
	hc := &http.Client{Timeout: 2 * time.Second}
	get := func(url string) []byte {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil
		}
		return b
	}
	ready := func() bool {
		if get(guard+"/health") == nil {
			return false
		}
		var ns struct {
			Namespaces []struct{ Name string } `json:"namespaces"`
		}
		if b := get(guard + "/namespaces?name=default"); b == nil || json.Unmarshal(b, &ns) != nil || len(ns.Namespaces) != 1 {
			return false
		}
		var st struct {
			Config struct {
				Replicas []struct{ Status string } `json:"replicas"`
			} `json:"config"`
		}
		if b := get(peer + "/epoxy/coordinator/state"); b == nil || json.Unmarshal(b, &st) != nil || len(st.Config.Replicas) == 0 {
			return false
		}
		for _, r := range st.Config.Replicas {
			if r.Status != "Active" {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		select {
		case <-c.done:
			return fmt.Errorf("rivet-engine exited during start-up (log: %s): %s", c.log.Name(), tail(c.log.Name()))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("rivet-engine not ready on %s after 60s (log: %s)", guard, c.log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	in := map[string]any{"datacenters": map[string]any{"default": map[string]any{"normal": map[string]any{}}}}
	return enginetest.Do(ctx, http.MethodPut, guard, "/runner-configs/default?namespace=default", in, nil)
}

// startEngineTarget starts a fresh engine, then the runner of the target
// (connected to the engine directly, or through a timing proxy when
// withProxy), and waits until an action answers through the guard.
func startEngineTarget(ctx context.Context, target string, o *options, withProxy bool) (*server, error) {
	dir, err := os.MkdirTemp("", "rivet-bench-"+target+"-")
	if err != nil {
		return nil, err
	}
	eng := &child{kind: "engine", dir: filepath.Join(dir, "engine"), opts: o}
	cleanup := func() { eng.kill(); _ = os.RemoveAll(dir) }
	if err := os.MkdirAll(eng.dir, 0o755); err != nil {
		return nil, err
	}
	if eng.bin, err = engineBinary(o); err != nil {
		cleanup()
		return nil, err
	}
	if err := eng.start(ctx); err != nil {
		cleanup()
		return nil, err
	}
	guard := eng.endpoint()
	connect := guard
	var px *timingProxy
	if withProxy {
		if px, err = startTimingProxy(guard); err != nil {
			cleanup()
			return nil, err
		}
		connect = px.url
	}
	run, err := newRunner(ctx, target, filepath.Join(dir, "runner-a"), o, guard, connect)
	if err == nil {
		err = run.start(ctx)
	}
	if err != nil {
		if run != nil {
			run.kill()
		}
		if px != nil {
			px.close()
		}
		cleanup()
		return nil, err
	}
	s := &server{target: target, endpoint: guard, proc: run, engine: eng, proxy: px}
	s.stop = func() {
		_ = run.stop()
		for _, x := range s.extra {
			_ = x.stop()
		}
		if px != nil {
			px.close()
		}
		_ = eng.stop()
		_ = os.RemoveAll(dir)
	}
	return s, nil
}

// newRunner prepares (does not start) a runner child of the target in dir:
// `rivet serve` (serve-engine) or RivetKit (peer-engine) connected to
// connect; clients reach it through guard.
func newRunner(ctx context.Context, target, dir string, o *options, guard, connect string) (*child, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &child{kind: strings.TrimSuffix(target, "-engine") + "-runner", dir: dir, opts: o, client: guard, connect: connect}
	switch target {
	case "serve-engine":
		var err error
		if c.bin, err = rivetBinary(ctx, o); err != nil {
			return nil, err
		}
	case "peer-engine":
		if o.peerDir == "" {
			return nil, errors.New("-target peer-engine needs -peer-dir (a directory with server.mjs and rivetkit installed: bench/peer/run.sh sets it up)")
		}
	default:
		return nil, fmt.Errorf("%s is not an engine target", target)
	}
	return c, nil
}

// envoys lists the keys of the runners the engine knows in the default
// namespace (GET /envoys), stopped ones left out.
func envoys(ctx context.Context, guard string) ([]string, error) {
	var out struct {
		Envoys []struct {
			Key    string `json:"envoy_key"`
			StopTS *int64 `json:"stop_ts"`
		} `json:"envoys"`
	}
	if err := enginetest.Do(ctx, http.MethodGet, guard, "/envoys?namespace=default", nil, &out); err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range out.Envoys {
		if e.StopTS == nil {
			keys = append(keys, e.Key)
		}
	}
	return keys, nil
}
