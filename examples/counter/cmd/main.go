// Command counter serves the counter example on http://127.0.0.1:6420
// ($PORT moves it; $RIVET_DATA_DIR moves the store) until Ctrl-C or SIGTERM.
//
//	go run ./examples/counter/cmd
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/counter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reg := rivet.MustRegistry(counter.Definitions()...)
	if err := rivet.ListenAndServe(ctx, "", reg, nil); err != nil {
		log.Fatal(err)
	}
}
