package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
)

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
