package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
)

// serveRunner runs the registry as a runner of the Rivet Engine at
// cfg.Engine.URL: no local listener, the engine routes clients to it.
func serveRunner(ctx context.Context, x examples.Example, reg *rivet.Registry, cfg *rivet.Config, out io.Writer) error {
	er, err := rivet.StartEngineRunner(ctx, reg, cfg)
	if err != nil {
		return err
	}
	ns, pool := cfg.Engine.Namespace, cfg.Engine.Runner
	if ns == "" {
		ns = "default"
	}
	if pool == "" {
		pool = "default"
	}
	fmt.Fprintf(out, "rivet %s running %q (%s) as a Rivet Engine runner\n", version, x.Name, strings.Join(reg.Names(), ", "))
	fmt.Fprintf(out, "  engine     %s\n", redact(cfg.Engine.URL))
	fmt.Fprintf(out, "  namespace  %s\n", ns)
	fmt.Fprintf(out, "  runner     %s (key %s)\n", pool, er.RunnerKey())
	fmt.Fprintf(out, "  store      the engine's actor KV\n")
	go func() {
		if er.Ready(ctx) == nil {
			fmt.Fprintf(out, "  connected to the engine\n")
		}
	}()
	select {
	case <-ctx.Done():
	case <-er.Done():
	}
	fmt.Fprintln(out, "rivet: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(er.Err(), er.Stop(sctx))
}
