// Command workflow serves the reminders and onboarding actors on
// http://127.0.0.1:6420 ($PORT moves it; $RIVET_DATA_DIR moves the store)
// until Ctrl-C or SIGTERM. Schedule a reminder, stop the server, start it again:
// the reminder still fires.
//
//	go run ./examples/workflow/cmd
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/workflow"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reg := rivet.MustRegistry(workflow.Definitions()...)
	if err := rivet.ListenAndServe(ctx, "", reg, nil); err != nil {
		log.Fatal(err)
	}
}
