// Command rivet runs rivetgo:
//
//	go run ./cmd/rivet                 # serve the demo registry on 127.0.0.1:6420
//	go run ./cmd/rivet serve --example fixtures --listen 127.0.0.1:6420 --data DIR
//	go run ./cmd/rivet demo            # drive actors in-process, show persistence
//	go run ./cmd/rivet version
//
// The server speaks RivetKit's protocol: point the official rivetkit client
// (createClient("http://127.0.0.1:6420")) or @rivetkit/react at it. The
// store lives in the default data directory (printed at start);
// RIVET_DATA_DIR or --data overrides it, $PORT the port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
	"github.com/rivetgo/rivet/examples/fixtures"
)

var version = rivet.Version

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rivet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(out)
		example := fs.String("example", "demo", "registry to serve: demo (counter, chatRoom) or fixtures (RivetKit's driver-test actors)")
		listen := fs.String("listen", "", "listen address (default 127.0.0.1:$PORT, or 127.0.0.1:6420)")
		data := fs.String("data", "", "data directory (default $RIVET_DATA_DIR or a per-directory folder under the user's data dir)")
		origins := fs.String("allow-origins", "", "comma-separated browser origins allowed by CORS (default: any)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return serve(ctx, *example, *listen, *data, *origins, out)
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		fs.SetOutput(out)
		data := fs.String("data", "", "data directory (default $RIVET_DATA_DIR or a per-directory folder under the user's data dir)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return runDemo(ctx, *data, out)
	case "version":
		fmt.Fprintln(out, "rivet", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(out, "usage: rivet [serve [--example demo|fixtures] [--listen ADDR] [--data DIR] [--allow-origins LIST] | demo [--data DIR] | version]")
		return nil
	}
	return fmt.Errorf("unknown command %q (try: rivet help)", cmd)
}

type message = demo.Message

func registry() (*rivet.Registry, error) { return rivet.NewRegistry(demo.Definitions()...) }

func runDemo(ctx context.Context, dataDir string, out io.Writer) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	cfg := &rivet.Config{DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if cfg.DataDir == "" {
		if cfg.DataDir, err = rivet.DefaultDataDir(); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "rivet demo: embedded store in", cfg.DataDir)

	rt, err := rivet.Start(ctx, reg, cfg)
	if err != nil {
		return err
	}
	client := rt.Client()
	room := client.GetOrCreate("chatRoom", rivet.Key{"lobby"})
	conn, err := room.Connect(ctx)
	if err != nil {
		return errors.Join(err, rt.Stop(ctx))
	}
	got := make(chan message, 1)
	rivet.OnEvent(conn, "newMessage", func(m message) { got <- m })

	n, err := rivet.Call[int](ctx, client.GetOrCreate("counter", rivet.Key{"demo"}), "increment", 1)
	if err != nil {
		return errors.Join(err, rt.Stop(ctx))
	}
	fmt.Fprintf(out, "counter[demo] incremented: count is now %d (it grows by one every run)\n", n)
	if _, err := room.Call(ctx, "sendMessage", "demo", fmt.Sprintf("run #%d says hi", n)); err != nil {
		return errors.Join(err, rt.Stop(ctx))
	}
	select {
	case m := <-got:
		fmt.Fprintf(out, "chatRoom[lobby] event newMessage: %s: %s\n", m.User, m.Text)
	case <-time.After(5 * time.Second):
		return errors.Join(errors.New("no newMessage event within 5s"), rt.Stop(ctx))
	}
	_ = conn.Close(ctx)
	if err := rt.Stop(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "runtime stopped; restarting on the same store...")

	rt, err = rivet.Start(ctx, reg, cfg)
	if err != nil {
		return err
	}
	defer rt.Stop(context.WithoutCancel(ctx))
	n2, err := rivet.Call[int](ctx, rt.Client().Get("counter", rivet.Key{"demo"}), "getCount")
	if err != nil {
		return err
	}
	hist, err := rivet.Call[[]message](ctx, rt.Client().Get("chatRoom", rivet.Key{"lobby"}), "getHistory")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "after restart: counter[demo] = %d, chatRoom[lobby] has %d message(s)\n", n2, len(hist))
	if n2 != n {
		return fmt.Errorf("state lost across restart: %d != %d", n2, n)
	}
	return nil
}

// registryFor returns the registry an example name stands for.
func registryFor(example string) (*rivet.Registry, error) {
	switch example {
	case "demo", "":
		return registry()
	case "fixtures":
		return rivet.NewRegistry(fixtures.Definitions()...)
	}
	return nil, fmt.Errorf("unknown example %q (demo or fixtures)", example)
}

// serve runs a server until ctx is canceled (Ctrl-C).
func serve(ctx context.Context, example, listen, dataDir, origins string, out io.Writer) error {
	reg, err := registryFor(example)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := &rivet.Config{DataDir: dataDir, Logger: log}
	if cfg.DataDir == "" {
		if cfg.DataDir, err = rivet.DefaultDataDir(); err != nil {
			return err
		}
	}
	if origins != "" {
		cfg.Gateway.AllowedOrigins = strings.Split(origins, ",")
	}
	rt, err := rivet.Start(ctx, reg, cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", rivet.ListenAddr(listen))
	if err != nil {
		return errors.Join(err, rt.Stop(context.Background()))
	}
	fmt.Fprintf(out, "rivet %s: serving %s (%s) on http://%s, store in %s\n", version, example, strings.Join(reg.Names(), ", "), l.Addr(), cfg.DataDir)
	serr := rt.Serve(ctx, l)
	if errors.Is(serr, http.ErrServerClosed) {
		serr = nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(serr, rt.Stop(sctx))
}
