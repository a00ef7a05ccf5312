package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoPersistsAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 2; i++ {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"demo", "-data", dir}, &out); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		want := []string{"count is now " + string(rune('0'+i)), "after restart: counter[demo] = " + string(rune('0'+i)), "chatRoom[lobby] has " + string(rune('0'+i)) + " message"}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Fatalf("run %d output lacks %q:\n%s", i, w, out.String())
			}
		}
	}
}

func TestBadCommand(t *testing.T) {
	if err := run(context.Background(), []string{"nope"}, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown command accepted")
	}
}
