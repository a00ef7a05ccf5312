package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
)

func runServe(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("serve", "rivet serve [flags]",
		"Serves an example registry over HTTP and WebSocket with RivetKit's protocol,\n"+
			"the inspector at /ui/ and Prometheus metrics at /metrics.\n"+
			"Flags override RIVET_* / LOG_* environment variables, which override the config file.")
	names := []string{}
	for _, x := range examples.All() {
		names = append(names, x.Name)
	}
	example := fs.String("example", "demo", "registry to serve: "+strings.Join(names, ", "))
	configFile := fs.String("config", "", "config file, JSON or YAML (default $RIVET_CONFIG)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof, with mutex and block profiles on) at this loopback address, e.g. 127.0.0.1:6060")
	// Each flag below is a setting of docs/configuration.md.
	flagged := map[string]*string{}
	for _, s := range []struct{ flag, setting, help string }{
		{"listen", "listen", "listen address host:port (default 127.0.0.1:6420, or 127.0.0.1:$PORT)"},
		{"data", "data_dir", "embedded store directory (default $RIVET_DATA_DIR or a per-project folder)"},
		{"postgres", "postgres_url", "store actors in PostgreSQL at this URL instead of the embedded store"},
		{"engine", "engine", "run as a runner of the Rivet Engine at this URL (e.g. http://127.0.0.1:6420) instead of serving clients"},
		{"allow-origins", "allowed_origins", "comma-separated browser origins allowed by CORS with credentials, or * (default: this server's pages and localhost)"},
		{"log-level", "log_level", "trace, debug, info, warn, error, fatal or silent (default info)"},
		{"log-format", "log_format", "text or json (default text)"},
	} {
		flagged[s.setting] = fs.String(s.flag, "", s.help)
	}
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve: unexpected argument %q (run \"rivet serve --help\")", fs.Arg(0))
	}
	x, err := examples.Lookup(*example)
	if err != nil {
		return usagef("serve: %v", err)
	}
	cfg, err := rivet.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	for setting, v := range flagged {
		if *v != "" {
			if err := cfg.Set(setting, *v); err != nil {
				return usageError{strings.TrimPrefix(err.Error(), "rivet: ")}
			}
		}
	}
	if *pprofAddr != "" {
		stop, err := startPprof(*pprofAddr, out)
		if err != nil {
			return err
		}
		defer stop()
	}
	return serve(ctx, x, cfg, out)
}

// startPprof serves net/http/pprof on its own listener, which must be on
// loopback: profiles expose memory contents.
func startPprof(addr string, out io.Writer) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usagef("serve --pprof %q: want host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, usagef("serve --pprof %q: the profiler may only listen on loopback (127.0.0.1, [::1] or localhost)", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for --pprof: %w", addr, err)
	}
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(10_000) // one sample per 10 µs blocked
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	fmt.Fprintf(out, "rivet: profiler at http://%s/debug/pprof/\n", l.Addr())
	return func() { _ = srv.Close() }, nil
}

// serve runs x until ctx is canceled (Ctrl-C, SIGTERM), then stops
// gracefully: open requests finish, actors sleep, the store closes.
func serve(ctx context.Context, x examples.Example, cfg *rivet.Config, out io.Writer) error {
	reg, err := rivet.NewRegistry(x.Definitions()...)
	if err != nil {
		return err
	}
	if cfg.Engine.URL != "" {
		return serveRunner(ctx, x, reg, cfg, out)
	}
	if cfg.PostgresURL == "" && cfg.DataDir == "" {
		if cfg.DataDir, err = rivet.DefaultDataDir(); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", rivet.ListenAddr(cfg.Listen))
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", rivet.ListenAddr(cfg.Listen), err)
	}
	rt, err := rivet.Start(ctx, reg, cfg)
	if err != nil {
		l.Close()
		return err
	}
	app := ""
	if x.Web != nil {
		app = "/"
	}
	_ = rt.WriteBanner(out, l.Addr(), x.Name, app)

	var h http.Handler = rt.Handler()
	if x.Web != nil {
		h = x.Handler(h)
	}
	serr := rt.ServeHandler(ctx, l, h)
	if errors.Is(serr, http.ErrServerClosed) {
		serr = nil
	}
	fmt.Fprintln(out, "rivet: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(serr, rt.Stop(sctx))
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
