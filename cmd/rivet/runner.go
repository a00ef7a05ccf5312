package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
)

// serveRunner runs the registry as a runner of the Rivet Engine at
// cfg.Engine.URL: the engine routes clients to it. The local listener
// (the listen setting) serves only metrics, health and the inspector.
func serveRunner(ctx context.Context, x examples.Example, reg *rivet.Registry, cfg *rivet.Config, out io.Writer) error {
	l, err := rivet.RunnerListener(cfg.Listen)
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
	go func() {
		if er.Ready(ctx) == nil {
			fmt.Fprintf(out, "  connected to the engine\n")
		}
	}()
	return er.Serve(ctx, l)
}
