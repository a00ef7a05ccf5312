// Command ratelimiter serves a rate-limited API on http://127.0.0.1:6420
// ($PORT moves it; $RIVET_DATA_DIR moves the store) until Ctrl-C or SIGTERM:
// GET /api/hello answers 5 times per minute per X-User, then 429; the
// rateLimiter actors are reachable at the same address like any other.
//
//	go run ./examples/ratelimiter/cmd
//	curl -i -H 'X-User: alice' http://127.0.0.1:6420/api/hello
package main

import (
	"context"
	"errors"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/ratelimiter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	rt, err := rivet.Start(ctx, rivet.MustRegistry(ratelimiter.Definitions()...), nil)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, rt.Stop(sctx))
	}()

	// The in-process client shares the default namespace with HTTP
	// callers: the middleware's limiters are the ones curl sees.
	actors := rt.Client()
	site := ratelimiter.ExampleServer(actors, rt.Handler())

	l, err := net.Listen("tcp", rivet.ListenAddr(""))
	if err != nil {
		return err
	}
	log.Printf("ratelimiter: try curl -i -H 'X-User: alice' http://%s/api/hello (store in %s)", l.Addr(), rt.DataDir())
	return rt.ServeHandler(ctx, l, site)
}
