package main

import (
	"context"
	"testing"
	"time"

	"github.com/rivetgo/rivet/rivetclient"
)

// Every scenario runs end to end against both targets, loses nothing and
// measures what it ran.
func TestScenarios(t *testing.T) {
	for _, target := range []string{"baseline", "rivet"} {
		t.Run(target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			endpoint, stop, err := start(ctx, target)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			for _, enc := range []string{"json", "bare"} {
				c := rivetclient.New(endpoint, rivetclient.WithEncoding(enc))
				var r result
				if err := hot(ctx, c, 4, 50, &r); err != nil || r.OK != 50 || r.Lost != 0 || r.PerSec <= 0 {
					t.Fatalf("hot %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := wsRTT(ctx, c, 20, &r); err != nil || r.OK != 20 || r.P50us <= 0 {
					t.Fatalf("ws-rtt %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := fanout(ctx, c, 5, 10, &r); err != nil || r.Lost != 0 || r.OK != 50 {
					t.Fatalf("fanout %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := spread(ctx, c, 4, 40, &r); err != nil || r.OK != 40 {
					t.Fatalf("spread %s: %+v %v", enc, r, err)
				}
				r = result{}
				if err := cold(ctx, c, 10, &r); err != nil || r.OK != 10 {
					t.Fatalf("cold %s: %+v %v", enc, r, err)
				}
				if target == "rivet" { // the baseline has no /actors API
					r = result{}
					if err := wake(ctx, c, endpoint, 10, &r); err != nil || r.OK != 10 {
						t.Fatalf("wake %s: %+v %v", enc, r, err)
					}
				}
			}
		})
	}
}
