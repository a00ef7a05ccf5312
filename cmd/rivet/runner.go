package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
)

// serveRunner runs the registry as a runner of the Rivet Engine at
// cfg.Engine.URL: the engine routes clients to it. The local listener
// (the listen setting) serves only metrics, health and the inspector.
func serveRunner(ctx context.Context, x examples.Example, reg *rivet.Registry, cfg *rivet.Config, out io.Writer) error {
	l, err := runnerListener(cfg)
	if err != nil {
		return err
	}
	er, err := rivet.StartEngineRunner(ctx, reg, cfg)
	if err != nil {
		l.Close()
		return err
	}
	ns, pool := cfg.Engine.Namespace, cfg.Engine.Runner
	if ns == "" {
		ns = "default"
	}
	if pool == "" {
		pool = "default"
	}
	local := "http://" + l.Addr().String()
	fmt.Fprintf(out, "rivet %s running %q (%s) as a Rivet Engine runner\n", version, x.Name, strings.Join(reg.Names(), ", "))
	fmt.Fprintf(out, "  engine     %s\n", redact(cfg.Engine.URL))
	fmt.Fprintf(out, "  namespace  %s\n", ns)
	fmt.Fprintf(out, "  runner     %s (key %s)\n", pool, er.RunnerKey())
	fmt.Fprintf(out, "  store      the engine's actor KV\n")
	fmt.Fprintf(out, "  local      %s (metrics %s/metrics, health, inspector %s/ui/; actors only through the engine)\n", local, local, local)
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer lcancel()
	lerr := make(chan error, 1)
	go func() { lerr <- er.Runtime().ServeHandler(lctx, l, er.Handler()) }()
	go func() {
		if er.Ready(ctx) == nil {
			fmt.Fprintf(out, "  connected to the engine\n")
		}
	}()
	var serr error
	select {
	case <-ctx.Done():
	case <-er.Done():
	case serr = <-lerr:
		serr = fmt.Errorf("local listener: %w", serr)
	}
	fmt.Fprintln(out, "rivet: stopping (the engine moves this runner's actors)")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(serr, er.Err(), er.Stop(sctx))
	lcancel()
	if serr == nil {
		if e := <-lerr; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// runnerListener listens on the listen setting (or $PORT). Without
// either, it tries the default address, which a Rivet Engine on the same
// machine usually holds (its guard's port is the same), and falls back
// to a free loopback port.
func runnerListener(cfg *rivet.Config) (net.Listener, error) {
	addr := rivet.ListenAddr(cfg.Listen)
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	if cfg.Listen != "" || os.Getenv("PORT") != "" {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	l, err2 := net.Listen("tcp", "127.0.0.1:0")
	if err2 != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return l, nil
}
