// Command gen writes the Go types and BARE codec of a BARE schema for
// package envoy: go generate in internal/envoy runs
//
//	go run ./gen -schema schema/v8.bare -out envoy_gen.go
//
// It handles the BARE subset the envoy schema uses and a little more:
// every primitive, data[n], optional, list, map, struct, union and enum;
// not fixed-length lists, anonymous structs or recursive types. The
// generated code calls the hand-written decoder and encoder in
// internal/envoy/bare.go.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	schemaPath := flag.String("schema", "schema/v8.bare", "BARE schema to read")
	out := flag.String("out", "envoy_gen.go", "Go file to write")
	pkg := flag.String("package", "envoy", "Go package name")
	flag.Parse()
	src, err := os.ReadFile(*schemaPath)
	if err != nil {
		fatal(err)
	}
	code, err := generate(string(src), *pkg, *schemaPath)
	if err != nil {
		fatal(fmt.Errorf("%s: %w", *schemaPath, err))
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
