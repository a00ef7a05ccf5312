package runner_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/internal/runner"
)

// stallProxy relays TCP connections to target; while stalled it stops
// relaying what the target sends (the engine's pings stop arriving, the
// socket stays open).
type stallProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	stall  bool
	closed bool
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed, p.stall = true, false
		p.cond.Broadcast()
		p.mu.Unlock()
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.relay(c) })
		}
	})
	return p
}

func (p *stallProxy) relay(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stall && !p.closed {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) setStall(on bool) {
	p.mu.Lock()
	p.stall = on
	p.cond.Broadcast()
	p.mu.Unlock()
}

// TestWriteFenceStalledEngine: when the engine's messages stop arriving
// (a stalled connection: no close, no pings), the runner refuses KV
// writes once the last ping is older than the lost threshold minus the
// margin (3 s - 1 s here), at once and without sending; reads are still
// sent. When the engine's messages flow again, writes are allowed again.
func TestWriteFenceStalledEngine(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{Pegboard: map[string]any{"envoy_lost_threshold": 3000}})
	proxy := newStallProxy(t, strings.TrimPrefix(eng.GuardURL(), "http://"))
	r := runner.New(runner.Config{Endpoint: "http://" + proxy.ln.Addr().String(), Names: []string{"t"}, Actors: noActors{}, Handler: http.NotFoundHandler()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { proxy.setStall(false); cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := r.WaitReady(wctx); err != nil {
		t.Fatalf("runner not ready: %v", err)
	}
	var out struct {
		Actor struct {
			ID string `json:"actor_id"`
		} `json:"actor"`
	}
	in := map[string]any{"name": "t", "key": "fence", "runner_name_selector": "default", "crash_policy": "sleep"}
	if err := enginetest.Do(wctx, http.MethodPost, eng.GuardURL(), "/actors?namespace=default", in, &out); err != nil {
		t.Fatal(err)
	}
	put := envoy.KVPutRequest{Keys: [][]byte{{1}}, Values: [][]byte{{1}}}
	if _, err := r.KV(wctx, out.Actor.ID, put); err != nil {
		t.Fatalf("put while healthy: %v", err)
	}
	proxy.setStall(true)
	for {
		err := r.Writable()
		if errors.Is(err, runner.ErrWriteFenced) {
			break
		}
		if err != nil {
			t.Fatalf("while stalled: %v, want nil then ErrWriteFenced", err)
		}
		if wctx.Err() != nil {
			t.Fatal("writes never fenced while the engine's pings were stalled")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.KV(wctx, out.Actor.ID, put); !errors.Is(err, runner.ErrWriteFenced) {
		t.Fatalf("put while fenced: %v, want ErrWriteFenced", err)
	}
	proxy.setStall(false)
	for r.Writable() != nil {
		if wctx.Err() != nil {
			t.Fatalf("writes still fenced after the engine's messages flow again: %v", r.Writable())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := r.KV(wctx, out.Actor.ID, put); err != nil {
		t.Fatalf("put after the stall: %v", err)
	}
}
