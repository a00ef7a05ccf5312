package soak

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

// Environment of the server process (RunChild).
const (
	EnvMode      = "RIVET_SOAK_MODE" // embedded, postgres, engine (or memory)
	envDir       = "RIVET_SOAK_DIR"
	envPostgres  = "RIVET_SOAK_POSTGRES_URL"
	envEngine    = "RIVET_SOAK_ENGINE_URL"
	envRunnerKey = "RIVET_SOAK_RUNNER_KEY"
)

// RunChild is the server process the soak kills: the soak registry served
// over HTTP on a loopback port, like rivet serve (embedded store in
// $RIVET_SOAK_DIR, or PostgreSQL), or connected as a runner to the engine
// at $RIVET_SOAK_ENGINE_URL. It prints "ready <endpoint>" once clients can
// call it, then serves until killed. It never returns.
func RunChild() {
	ctx := context.Background()
	fail := func(what string, err error) {
		fmt.Printf("error %s: %v\n", what, err)
		os.Exit(2)
	}
	logf, err := os.OpenFile(os.Getenv(envDir)+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fail("log", err)
	}
	cfg := &rivet.Config{Logger: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	reg := rivet.MustRegistry(Def)
	switch mode := os.Getenv(EnvMode); mode {
	case "engine":
		cfg.Engine = rivet.EngineConfig{URL: os.Getenv(envEngine), RunnerKey: os.Getenv(envRunnerKey)}
		er, err := rivet.StartEngineRunner(ctx, reg, cfg)
		if err != nil {
			fail("start", err)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = er.Ready(rctx)
		cancel()
		if err != nil {
			fail("connect", err)
		}
		fmt.Println("ready", os.Getenv(envEngine))
		<-er.Done()
		fail("runner", er.Err())
	case "embedded", "postgres", "memory":
		cfg.DataDir = os.Getenv(envDir)
		cfg.PostgresURL = os.Getenv(envPostgres)
		if mode == "memory" {
			// Keeps nothing across a kill: the soak's own check that its
			// audit sees lost writes.
			cfg.Driver = rivetmem.New()
		}
		rt, err := rivet.Start(ctx, reg, cfg)
		if err != nil {
			fail("start", err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail("listen", err)
		}
		fmt.Println("ready", "http://"+l.Addr().String())
		fail("serve", rt.Serve(ctx, l))
	default:
		fail("mode", fmt.Errorf("unknown %s=%q", EnvMode, mode))
	}
}
