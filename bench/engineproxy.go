package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/envoy"
)

// timingProxy sits between a runner and the engine (the runner's
// RIVET_ENGINE / RIVET_ENDPOINT points at it) and times the runner's side
// of each tunnelled call from the frames it relays: from a ToEnvoy
// RequestStart (or WebSocketMessage) leaving for the runner to the
// runner's ResponseStart (or WebSocketMessage) coming back, and, inside
// that, the runner's storage round trips to the engine (KV and SQLite
// requests to their responses). It relays HTTP API calls unchanged.
// What it reports as the runner's share includes the two loopback hops
// between proxy and runner.
type timingProxy struct {
	url    string
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// open: tunnel request (gateway id + request id) → when its start or
	// last client message went to the runner, and the storage time spent
	// since.
	open map[[8]byte]*pending
	// storage: "KV"/"Sqlite" + request id → when the runner sent it.
	storage map[string]time.Time
	spans   []runnerSpan
}

type pending struct {
	t0       time.Time
	storage  time.Duration
	requests int
}

// runnerSpan is one call as the runner saw it.
type runnerSpan struct {
	runner   time.Duration // request (or message) out to the runner → response back
	storage  time.Duration // of which waiting on the engine's storage
	requests int           // storage round trips
}

func startTimingProxy(upstream string) (*timingProxy, error) {
	up, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &timingProxy{url: "http://" + l.Addr().String(), cancel: cancel, open: map[[8]byte]*pending{}, storage: map[string]time.Time{}}
	rp := httputil.NewSingleHostReverseProxy(up)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			rp.ServeHTTP(w, r)
			return
		}
		p.wg.Add(1)
		defer p.wg.Done()
		p.relay(ctx, w, r, upstream)
	})}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *timingProxy) close() {
	p.cancel()
	_ = p.srv.Close()
	p.wg.Wait()
}

// take returns the spans recorded since the last call and forgets them.
func (p *timingProxy) take() []runnerSpan {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.spans
	p.spans = nil
	return s
}

func (p *timingProxy) relay(ctx context.Context, w http.ResponseWriter, r *http.Request, upstream string) {
	var protocols []string
	for _, s := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			protocols = append(protocols, s)
		}
	}
	engine, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(upstream, "http")+r.URL.RequestURI(), &websocket.DialOptions{Subprotocols: protocols})
	if err != nil {
		status := http.StatusBadGateway
		if resp != nil {
			status = resp.StatusCode
		}
		http.Error(w, err.Error(), status)
		return
	}
	runner, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{engine.Subprotocol()}})
	if err != nil {
		_ = engine.CloseNow()
		return
	}
	engine.SetReadLimit(256 << 20)
	runner.SetReadLimit(256 << 20)
	envoySocket := strings.HasPrefix(r.URL.Path, "/envoys/")
	var wg sync.WaitGroup
	pump := func(from, to *websocket.Conn, toRunner bool) {
		defer wg.Done()
		for {
			typ, data, err := from.Read(ctx)
			if err != nil {
				if code := websocket.CloseStatus(err); code > 0 {
					_ = to.Close(code, "")
				} else {
					_ = to.CloseNow()
				}
				return
			}
			if envoySocket && typ == websocket.MessageBinary {
				p.observe(data, toRunner, time.Now())
			}
			if err := to.Write(ctx, typ, data); err != nil {
				_ = from.CloseNow()
				return
			}
		}
	}
	wg.Add(2)
	go pump(runner, engine, false)
	go pump(engine, runner, true)
	wg.Wait()
}

// observe times one frame of the runner's socket.
func (p *timingProxy) observe(data []byte, toRunner bool, now time.Time) {
	if toRunner {
		m, err := envoy.DecodeToEnvoy(data)
		if err != nil {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		switch m := m.(type) {
		case envoy.ToEnvoyTunnelMessage:
			switch m.MessageKind.(type) {
			case envoy.ToEnvoyRequestStart, envoy.ToEnvoyWebSocketMessage:
				p.open[tunnelKey(m.MessageID)] = &pending{t0: now}
			}
		default:
			if k, ok := storageKey(m, "ToEnvoy", "Response"); ok {
				if t0, ok := p.storage[k]; ok {
					delete(p.storage, k)
					for _, o := range p.open {
						o.storage += now.Sub(t0)
						o.requests++
					}
				}
			}
		}
		return
	}
	m, err := envoy.DecodeToRivet(data)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch m := m.(type) {
	case envoy.ToRivetTunnelMessage:
		switch m.MessageKind.(type) {
		case envoy.ToRivetResponseStart, envoy.ToRivetWebSocketMessage:
			k := tunnelKey(m.MessageID)
			if o, ok := p.open[k]; ok {
				delete(p.open, k)
				p.spans = append(p.spans, runnerSpan{runner: now.Sub(o.t0), storage: o.storage, requests: o.requests})
			}
		}
	default:
		if k, ok := storageKey(m, "ToRivet", "Request"); ok {
			p.storage[k] = now
		}
	}
}

func tunnelKey(id envoy.MessageID) [8]byte {
	var k [8]byte
	copy(k[:4], id.GatewayID[:])
	copy(k[4:], id.RequestID[:])
	return k
}

// storageKey names a KV or SQLite request or response by its family and
// request id: ToRivetKVRequest{RequestID: 7} and ToEnvoyKVResponse{RequestID:
// 7} are both "KV/7"; likewise the Sqlite… pairs.
func storageKey(m any, prefix, suffix string) (string, bool) {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Struct {
		return "", false
	}
	name := strings.TrimPrefix(v.Type().Name(), prefix)
	if !strings.HasPrefix(name, "KV") && !strings.HasPrefix(name, "Sqlite") || !strings.HasSuffix(name, suffix) {
		return "", false
	}
	f := v.FieldByName("RequestID")
	if !f.IsValid() || f.Kind() != reflect.Uint32 {
		return "", false
	}
	fam := "KV"
	if strings.HasPrefix(name, "Sqlite") {
		fam = "Sqlite"
	}
	return fam + "/" + strconv.FormatUint(f.Uint(), 10), true
}
