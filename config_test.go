package rivet_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetgo/rivet"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clearEnv unsets every variable LoadConfig reads, for the test.
func clearEnv(t *testing.T) {
	for _, s := range rivet.Settings() {
		t.Setenv(s.Env, "")
	}
	t.Setenv(rivet.ConfigFileEnv, "")
}

func TestLoadConfigFileAndEnvironment(t *testing.T) {
	clearEnv(t)
	yamlFile := writeFile(t, "rivet.yaml", `
listen: 0.0.0.0:7000
data_dir: /var/lib/rivet
allowed_origins: [https://a.example.com, "https://b.example.com"]
max_incoming_message_size: 128KiB
mailbox_size: 500
log_level: debug
log_timestamp: true
inspector: false
`)
	jsonFile := writeFile(t, "rivet.json", `{"listen": "0.0.0.0:7000", "data_dir": "/var/lib/rivet",
  "allowed_origins": "https://a.example.com,https://b.example.com", "max_incoming_message_size": 131072,
  "mailbox_size": 500, "log_level": "debug", "log_timestamp": "1", "inspector": false}`)
	for _, path := range []string{yamlFile, jsonFile} {
		c, err := rivet.LoadConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if c.Listen != "0.0.0.0:7000" || c.DataDir != "/var/lib/rivet" || c.MailboxSize != 500 ||
			c.Gateway.MaxIncomingMessageSize != 128<<10 || !c.Log.Timestamp || c.Log.Level != "debug" || !c.Inspector.Disabled ||
			strings.Join(c.Gateway.AllowedOrigins, " ") != "https://a.example.com https://b.example.com" {
			t.Fatalf("%s: loaded %+v", path, c)
		}
	}

	// The environment overrides the file, and RIVET_CONFIG names it.
	t.Setenv(rivet.ConfigFileEnv, yamlFile)
	t.Setenv("RIVET_LISTEN", "127.0.0.1:7001")
	t.Setenv("LOG_LEVEL", "error")
	t.Setenv("RIVET_ADMIN_TOKEN", "s3cret")
	c, err := rivet.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7001" || c.Log.Level != "error" || c.Inspector.Token != "s3cret" || c.MailboxSize != 500 {
		t.Fatalf("env over file: %+v", c)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct{ file, body, want string }{
		{"a.yaml", "listn: :6420\n", `key "listn": unknown setting "listn" (did you mean "listen"?)`},
		{"b.yaml", "mailbox_size: lots\n", `key "mailbox_size"`},
		{"c.json", `{"log_level": "loud"}`, `key "log_level"`},
		{"d.yaml", "listen: 6420\n", `key "listen"`},
		{"e.yaml", "allowed_origins: [example.com]\n", `key "allowed_origins"`},
		{"f.yaml", "postgres_url: mysql://x\n", `key "postgres_url"`},
		{"g.yaml", "listen: [1, 2]\n", `key "listen"`},
		{"h.toml", "listen = 1\n", "want a .json, .yaml or .yml file"},
		{"i.json", `{"listen": `, "i.json"},
		// A .json file is strict JSON, although YAML would take these.
		{"j.json", "{\"listen\": \":7000\",\n}", "j.json: not valid JSON: line 2, column 1"},
		{"k.json", "{\"listen\": \":7000\"} # port\n", "k.json: not valid JSON: line 1, column 21"},
		{"l.json", `["listen"]`, "l.json: not a JSON object"},
	} {
		_, err := rivet.LoadConfig(writeFile(t, tc.file, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.file, err, tc.want)
		}
	}
	_, err := rivet.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	t.Setenv("RIVET_MAILBOX_SIZE", "-3")
	if _, err := rivet.LoadConfig(""); err == nil || !strings.Contains(err.Error(), "RIVET_MAILBOX_SIZE") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := rivet.NewLogger(&buf, rivet.LogConfig{Level: "trace", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(t.Context(), rivet.LevelTrace, "deep", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %q", buf.String())
	}
	if rec["level"] != "TRACE" || rec["msg"] != "deep" || rec["time"] != nil || rec["source"] != nil {
		t.Fatalf("record %v", rec)
	}

	buf.Reset()
	l, _ = rivet.NewLogger(&buf, rivet.LogConfig{Timestamp: true, Target: true})
	l.Debug("hidden at the default level (info)")
	l.Info("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "time=") ||
		!strings.Contains(out, "source=") || !strings.Contains(out, `msg=shown`) {
		t.Fatalf("text output %q", out)
	}

	buf.Reset()
	l, _ = rivet.NewLogger(&buf, rivet.LogConfig{Level: "silent"})
	l.Error("nothing")
	if buf.Len() != 0 {
		t.Fatalf("silent logged %q", buf.String())
	}
	if _, err := rivet.NewLogger(&buf, rivet.LogConfig{Level: "loud"}); err == nil {
		t.Fatal("bad level accepted")
	}
	if _, err := rivet.NewLogger(&buf, rivet.LogConfig{Format: "xml"}); err == nil {
		t.Fatal("bad format accepted")
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite the settings table of docs/configuration.md")

// The settings table of docs/configuration.md is generated from
// rivet.Settings(); this test keeps it in step.
func TestSettingsTableInDocs(t *testing.T) {
	var b strings.Builder
	b.WriteString("| Setting (file key) | Environment | `rivet serve` flag | Go field (`rivet.Config`) | Default | Meaning |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	flags := map[string]string{"listen": "--listen", "data_dir": "--data", "postgres_url": "--postgres",
		"allowed_origins": "--allow-origins", "log_level": "--log-level", "log_format": "--log-format", "engine": "--engine"}
	for _, s := range rivet.Settings() {
		f := flags[s.Name]
		if f == "" {
			f = "—"
		} else {
			f = "`" + f + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | `%s` | %s | %s |\n", s.Name, s.Env, f, s.Field, s.Default, s.Help)
	}
	table := b.String()
	const path, begin, end = "docs/configuration.md", "<!-- settings:begin -->\n", "<!-- settings:end -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q … %q markers", path, begin, end)
	}
	if got := doc[i+len(begin) : j]; got != table {
		if *updateDocs {
			if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+table+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("%s is out of date with rivet.Settings(); run go test -run TestSettingsTableInDocs -update-docs .\nwant:\n%s", path, table)
	}
}

// namespaces and allowed_origins take lists, and "*".
func TestNamespacesAndOriginsSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("RIVET_NAMESPACES", "staging, tenant-a")
	t.Setenv("RIVET_ALLOWED_ORIGINS", "*")
	c, err := rivet.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Gateway.Namespaces, " ") != "staging tenant-a" || strings.Join(c.Gateway.AllowedOrigins, " ") != "*" {
		t.Fatalf("loaded %+v", c.Gateway)
	}
	if err := c.Set("namespaces", strings.Repeat("n", 65)); err == nil {
		t.Fatal("a 65-byte namespace was accepted")
	}
	if err := c.Set("allowed-origins", "*.example.com"); err == nil {
		t.Fatal("a wildcard host was accepted as an origin")
	}
}
