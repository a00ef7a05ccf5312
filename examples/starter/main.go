package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/rivetgo/rivet"
)

// Counter is the state of one counter actor. It is saved after every
// action that changes it, encoded like JSON (field tags apply).
type Counter struct {
	Count int `json:"count"`
}

var counter = rivet.NewActor("counter", rivet.Opts[Counter]{}).
	Action("increment", func(c *rivet.Ctx[Counter], n int) int {
		c.State.Count += n // plain Go: an actor runs one action at a time
		c.Log.Info("incremented", "by", n, "count", c.State.Count)
		c.Broadcast("newCount", c.State.Count)
		return c.State.Count
	}).
	Action("getCount", func(c *rivet.Ctx[Counter]) int {
		return c.State.Count
	})

// registry checks every action's signature when the program starts.
var registry = rivet.MustRegistry(counter)

func main() {
	// Stop on Ctrl-C (SIGINT) and on SIGTERM, which service managers and
	// container runtimes send.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The embedded store in the default data directory, served on
	// 127.0.0.1:6420 until stopped, then a graceful stop.
	if err := rivet.ListenAndServe(ctx, "", registry, nil); err != nil {
		log.Fatal(err)
	}
}
