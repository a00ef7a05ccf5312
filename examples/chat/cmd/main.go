// Command chat serves the chat page and its chatRoom actors on
// http://127.0.0.1:6420 ($PORT moves it; $RIVET_DATA_DIR moves the store)
// until Ctrl-C or SIGTERM. Open the URL in two tabs.
//
//	go run ./examples/chat/cmd
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
	"github.com/rivetgo/rivet/examples"
	"github.com/rivetgo/rivet/examples/chat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) (err error) {
	rt, err := rivet.Start(ctx, rivet.MustRegistry(chat.Definitions()...), nil)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, rt.Stop(sctx))
	}()
	// The page at "/", the actor gateway everywhere else: one origin.
	site := examples.Example{Web: chat.Web()}.Handler(rt.Handler())
	l, err := net.Listen("tcp", rivet.ListenAddr(""))
	if err != nil {
		return err
	}
	log.Printf("chat: open http://%s in two tabs (store in %s)", l.Addr(), rt.DataDir())
	return rt.ServeHandler(ctx, l, site)
}
