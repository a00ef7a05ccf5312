package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/rivetgo/rivet/rivetdriver/rivetpg"
)

func runMigrate(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("migrate", "rivet migrate [--postgres URL]",
		"Applies the PostgreSQL schema's pending migrations and lists them. It is safe to run\n"+
			"while servers are up and from several machines at once; rivet serve also migrates at start.")
	pg := fs.String("postgres", os.Getenv("RIVET_POSTGRES_URL"), "PostgreSQL URL (default $RIVET_POSTGRES_URL)")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *pg == "" {
		return usagef("migrate: no database: give --postgres URL or set RIVET_POSTGRES_URL (the embedded store needs no migrations)")
	}
	applied, err := rivetpg.Migrate(ctx, *pg, nil)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(out, "schema is up to date:", redact(*pg))
		return nil
	}
	for _, m := range applied {
		fmt.Fprintln(out, "applied", m)
	}
	return nil
}
