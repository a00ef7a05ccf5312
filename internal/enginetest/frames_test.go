package enginetest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rivetgo/rivet/internal/envoy"
)

// TestRecordedFramesDecode checks the envoy codec against the traffic
// recorded between RivetKit's own runner and rivet-engine 2.3.19: every
// runner frame decodes to the message kind the npm package's decoder named
// and encodes back to the same bytes (or, where the engine wrote a map's
// keys unordered, to the same value).
func TestRecordedFramesDecode(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "frames", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded frames: %v", err)
	}
	seen := 0
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var rec struct {
				Seq     int    `json:"seq"`
				Kind    string `json:"kind"`
				Dir     string `json:"dir"`
				Hex     string `json:"hex"`
				Omitted bool   `json:"omitted"`
				Decoded struct {
					Tag string `json:"tag"`
				} `json:"decoded"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if rec.Kind != "frame" || rec.Omitted || rec.Hex == "" {
				continue
			}
			where := fmt.Sprintf("%s seq %d (%s)", filepath.Base(file), rec.Seq, rec.Decoded.Tag)
			b, err := hex.DecodeString(rec.Hex)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var msg any
			var again []byte
			switch rec.Dir {
			case "to_rivet":
				m, err := envoy.DecodeToRivet(b)
				if err != nil {
					t.Fatalf("%s: decode: %v", where, err)
				}
				msg = m
				again, err = envoy.EncodeToRivet(m)
				if err != nil {
					t.Fatalf("%s: encode: %v", where, err)
				}
			case "to_envoy":
				m, err := envoy.DecodeToEnvoy(b)
				if err != nil {
					t.Fatalf("%s: decode: %v", where, err)
				}
				msg = m
				again, err = envoy.EncodeToEnvoy(m)
				if err != nil {
					t.Fatalf("%s: encode: %v", where, err)
				}
			default:
				t.Fatalf("%s: unknown direction %q", where, rec.Dir)
			}
			// The npm decoder's tag (ToRivetMetadata) names the Go variant
			// (envoy.ToRivetMetadata).
			if got := fmt.Sprintf("%T", msg); !strings.HasSuffix(strings.ToLower(got), "."+strings.ToLower(rec.Decoded.Tag)) {
				t.Errorf("%s: decoded as %s", where, got)
			}
			// Our encoder writes map keys in order; the engine does not, so
			// a message with a map of two or more entries re-encodes to
			// other bytes of the same length and the same value.
			if !bytes.Equal(again, b) {
				var back any
				if rec.Dir == "to_rivet" {
					back, err = envoy.DecodeToRivet(again)
				} else {
					back, err = envoy.DecodeToEnvoy(again)
				}
				if err != nil || len(again) != len(b) || !reflect.DeepEqual(back, msg) {
					t.Errorf("%s: re-encoded to %x, recorded %x (%v)", where, again, b, err)
				}
			}
			seen++
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if seen < 100 {
		t.Fatalf("only %d recorded frames checked", seen)
	}
	t.Logf("%d recorded frames decode and re-encode", seen)
}
