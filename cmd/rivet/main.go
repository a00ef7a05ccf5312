// Command rivet runs and operates rivetgo servers.
//
//	rivet                      serve the demo registry (counter, chatRoom) on 127.0.0.1:6420
//	rivet serve [flags]        serve a registry: --example, --listen, --data, --postgres, --config, --log-level …
//	rivet actors ls|get|state|destroy [flags]   inspect a running server
//	rivet migrate --postgres URL                 apply the PostgreSQL schema's migrations
//	rivet demo                 drive the demo actors in-process and show that state persists
//	rivet version
//
// The server speaks RivetKit's protocol: point the official rivetkit client
// (createClient("http://127.0.0.1:6420")) or @rivetkit/react at it.
// Settings come from flags, then RIVET_* / LOG_* environment variables,
// then a config file (--config or RIVET_CONFIG); see docs/configuration.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rivetgo/rivet"
)

var version = rivet.Version

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if code := report(os.Stderr, run(ctx, os.Args[1:], os.Stdout)); code != 0 {
		os.Exit(code)
	}
}

// report prints a command's error as one line on w, prefixed "rivet: "
// once, and returns the exit status: 0 without an error, 2 for a usage
// mistake, 1 for a failure.
func report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(w, "rivet:", oneLine(err))
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// oneLine keeps an error to one line: its lines (joined errors, a
// driver's per-host attempts) are trimmed, repeats dropped, and separated
// by "; ". The "rivet: " that the library's errors start with is dropped:
// report prints it once.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "rivet: ")
		if l != "" && (len(parts) == 0 || parts[len(parts)-1] != l) {
			parts = append(parts, l)
		}
	}
	return strings.ReplaceAll(strings.Join(parts, "; "), ":; ", ": ")
}

const usage = `rivet runs Rivet actors written in Go, speaking RivetKit's protocol.

Usage:
  rivet [serve] [flags]          serve a registry (default: the demo, on 127.0.0.1:6420)
  rivet actors ls [flags]        list a running server's actors
  rivet actors get ID            show one actor (or --name N --key K)
  rivet actors state ID          print an actor's state as JSON (--set JSON to replace it)
  rivet actors destroy ID        destroy an actor and its data
  rivet migrate --postgres URL   apply the PostgreSQL schema's pending migrations
  rivet demo                     call the demo actors in-process and show persistence
  rivet version                  print the version
  rivet help [COMMAND]           this list, or a command's flags

Run "rivet COMMAND --help" for a command's flags. Settings also come from
RIVET_* and LOG_* environment variables and a config file (--config);
see docs/configuration.md.
`

func run(ctx context.Context, args []string, out io.Writer) error {
	err := dispatch(ctx, args, out)
	if errors.Is(err, errHelped) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, out io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && (isHelpFlag(args[0]) || args[0] != "" && args[0][0] != '-') {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, out)
	case "actors":
		return runActors(ctx, args, out)
	case "migrate":
		return runMigrate(ctx, args, out)
	case "demo":
		fs := newFlags("demo", "rivet demo [--data DIR]", "Calls the demo actors in-process, restarts the runtime and shows their state survived.")
		data := fs.String("data", "", "data directory (default $RIVET_DATA_DIR or a per-project folder)")
		if err := parse(fs, args, out); err != nil {
			return err
		}
		return runDemo(ctx, *data, out)
	case "version":
		fmt.Fprintln(out, "rivet", version)
		return nil
	case "help", "-h", "-help", "--help":
		if cmd == "help" && len(args) > 0 && args[0] != "help" && !isHelpFlag(args[0]) {
			return dispatch(ctx, []string{args[0], "--help"}, out) // rivet help serve
		}
		fmt.Fprint(out, usage)
		return nil
	}
	return usagef("unknown command %q (run \"rivet help\")", cmd)
}

// isHelpFlag reports whether arg asks for help, as the flag package
// understands it.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

// newFlags makes a command's flag set; its usage is the synopsis, a
// description and the flags.
func newFlags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", synopsis, about)
		fs.VisitAll(func(f *flag.Flag) {
			name, help := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			fmt.Fprintf(w, "  --%s%s\n        %s", f.Name, name, help)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
	return fs
}

// parse parses flags; --help prints the usage to out and ends the
// command successfully, a bad flag is one line of usage error.
func parse(fs *flag.FlagSet, args []string, out io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(out)
		fs.Usage()
		return errHelped
	}
	if err != nil {
		return usagef("%s: %v (run \"rivet %s --help\")", fs.Name(), err, fs.Name())
	}
	return nil
}

// errHelped ends a command whose --help was printed.
var errHelped = errors.New("help printed")
