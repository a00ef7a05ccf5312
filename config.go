package rivet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A Setting is one configuration option. It has the same name in a config
// file (Name), in the environment (Env) and, for rivet serve, on the
// command line (--Name with dashes); Field is the Config field it sets.
type Setting struct {
	Name    string
	Env     string
	Field   string
	Default string
	Help    string
	set     func(c *Config, v string) error
	// alias is another environment variable read when Env is unset
	// (RivetKit's name for the same thing).
	alias string
	// secret: the value may hold a password or token, so errors do not
	// repeat it (they reach logs and terminals).
	secret bool
}

// shown is how an error repeats a setting's value.
func (s Setting) shown(v string) string {
	if s.secret {
		return "(value hidden: it may hold a secret)"
	}
	return strconv.Quote(v)
}

// Settings lists every setting LoadConfig reads, in documentation order.
func Settings() []Setting { return append([]Setting(nil), settings...) }

var settings = []Setting{
	{Name: "listen", Env: "RIVET_LISTEN", Field: "Listen", Default: "127.0.0.1:6420",
		Help: "HTTP listen address (host:port). With no setting, $PORT gives 127.0.0.1:$PORT. In runner mode it serves only /metrics, /health and the inspector (actors are reached through the engine); unset there, a busy default falls back to a free loopback port.",
		set: func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("want host:port, e.g. 127.0.0.1:6420 or :6420")
			}
			c.Listen = v
			return nil
		}},
	{Name: "data_dir", Env: "RIVET_DATA_DIR", Field: "DataDir", Default: "per-project directory",
		Help: "Directory of the embedded store. Default: $XDG_DATA_HOME/rivetgo/<working dir>-<hash> (see DefaultDataDir).",
		set:  func(c *Config, v string) error { c.DataDir = v; return nil }},
	{Name: "postgres_url", Env: "RIVET_POSTGRES_URL", Field: "PostgresURL", Default: "none (embedded store)", secret: true,
		Help: "Store actors in PostgreSQL instead (postgres://user:pass@host:5432/db). The schema is migrated at start.",
		set: func(c *Config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return fmt.Errorf("want a postgres:// or postgresql:// URL")
			}
			c.PostgresURL = v
			return nil
		}},
	{Name: "store_timeout", Env: "RIVET_STORE_TIMEOUT", Field: "StoreTimeout", Default: "30s",
		Help: "Longest wait for the store to write a batch of turns (their callers then get actor.commit_failed and the actors restart from durable state) or to load a waking actor (actor.storage_error).",
		set:  func(c *Config, v string) error { return setDuration(&c.StoreTimeout, v) }},
	{Name: "engine", Env: "RIVET_ENGINE", alias: "RIVET_ENDPOINT", Field: "Engine.URL", Default: "none (serve clients directly)", secret: true,
		Help: "Run as a runner of the Rivet Engine at this URL (its guard, http://host:6420) instead of serving clients; actor data is stored in the engine. Also read from RIVET_ENDPOINT. https://namespace:token@host sets namespace and token too.",
		set:  setEngineURL},
	{Name: "namespace", Env: "RIVET_NAMESPACE", Field: "Engine.Namespace", Default: "default",
		Help: "Engine namespace of the runner.",
		set:  func(c *Config, v string) error { c.Engine.Namespace = v; return nil }},
	{Name: "runner", Env: "RIVET_RUNNER", alias: "RIVET_POOL", Field: "Engine.Runner", Default: "default",
		Help: "Runner pool the engine places this runner's actors from (also read from RIVET_POOL).",
		set:  func(c *Config, v string) error { c.Engine.Runner = v; return nil }},
	{Name: "runner_key", Env: "RIVET_RUNNER_KEY", Field: "Engine.RunnerKey", Default: "random per process",
		Help: "Key identifying this runner process to the engine. Two processes must never share one: the engine evicts the older.",
		set: func(c *Config, v string) error {
			if err := checkRunnerKey(v); err != nil {
				return err
			}
			c.Engine.RunnerKey = v
			return nil
		}},
	{Name: "token", Env: "RIVET_TOKEN", Field: "Engine.Token", Default: "none", secret: true,
		Help: "Token the runner presents to the engine.",
		set:  func(c *Config, v string) error { c.Engine.Token = v; return nil }},
	{Name: "region", Env: "RIVET_REGION", Field: "Region", Default: "none",
		Help: "Region reported to actors (c.Region()) and as the datacenter of /actors.",
		set:  func(c *Config, v string) error { c.Region = v; return nil }},
	{Name: "mailbox_size", Env: "RIVET_MAILBOX_SIZE", Field: "MailboxSize", Default: "10000",
		Help: "Calls waiting for one actor before further calls fail with actor.overloaded.",
		set:  func(c *Config, v string) error { return setSize(&c.MailboxSize, v, false) }},
	{Name: "max_connections_per_actor", Env: "RIVET_MAX_CONNECTIONS_PER_ACTOR", Field: "MaxConnectionsPerActor", Default: "0 (no bound)",
		Help: "Connections one actor holds open; a new connection past it is refused with actor.too_many_connections. The server-wide bound is max_connections.",
		set:  func(c *Config, v string) error { return setSize(&c.MaxConnectionsPerActor, v, false) }},
	{Name: "max_awake_actors", Env: "RIVET_MAX_AWAKE_ACTORS", Field: "MaxAwakeActors", Default: "100000",
		Help: "Actors awake in memory at once. Past it the actors idle the longest go to sleep before their sleep timeout (busy actors stay awake, so the bound is soft); a sleeping actor costs no memory. 0 turns the bound off.",
		set: func(c *Config, v string) error {
			if v == "0" {
				c.MaxAwakeActors = -1
				return nil
			}
			return setSize(&c.MaxAwakeActors, v, false)
		}},
	{Name: "max_queue_time", Env: "RIVET_MAX_QUEUE_TIME", Field: "MaxQueueTime", Default: "30s",
		Help: "Longest a call may wait for the calls ahead of it on one actor. A call that would wait longer (calls waiting × the actor's recent time per call) is refused at once with actor.overloaded, one that waited longer fails the same way when its turn comes; either way it did not run. 0 turns the bound off.",
		set: func(c *Config, v string) error {
			if d, err := time.ParseDuration(v); err == nil && d == 0 {
				c.MaxQueueTime = -1
				return nil
			}
			return setDuration(&c.MaxQueueTime, v)
		}},
	{Name: "allowed_origins", Env: "RIVET_ALLOWED_ORIGINS", Field: "Gateway.AllowedOrigins", Default: "none: see help",
		Help: "Comma-separated browser origins allowed by CORS with credentials (https://app.example.com), or * for any; other origins are refused. " +
			"Unset: this server's own pages and localhost get credentials, any other origin may call without them (its cookies are ignored).",
		set: func(c *Config, v string) error {
			c.Gateway.AllowedOrigins = nil
			for _, o := range strings.Split(v, ",") {
				if o = strings.TrimSpace(o); o == "" {
					continue
				}
				if o == "*" {
					c.Gateway.AllowedOrigins = append(c.Gateway.AllowedOrigins, o)
					continue
				}
				if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
					return fmt.Errorf("%q is not an origin (scheme://host[:port]) or *", o)
				}
				c.Gateway.AllowedOrigins = append(c.Gateway.AllowedOrigins, strings.TrimSuffix(o, "/"))
			}
			return nil
		}},
	{Name: "cors_allow_methods", Env: "RIVET_CORS_ALLOW_METHODS", Field: "Gateway.CORSOptions.AllowMethods", Default: "GET, POST, PUT, DELETE, OPTIONS, PATCH",
		Help: "Comma-separated methods a CORS preflight is answered with (RivetKit's allowMethods).",
		set:  func(c *Config, v string) error { c.Gateway.CORSOptions.AllowMethods = splitList(v); return nil }},
	{Name: "cors_allow_headers", Env: "RIVET_CORS_ALLOW_HEADERS", Field: "Gateway.CORSOptions.AllowHeaders", Default: "the headers the preflight asks for",
		Help: "Comma-separated request headers a CORS preflight allows (RivetKit's allowHeaders); include Content-Type and the x-rivet-* headers the official client sends.",
		set:  func(c *Config, v string) error { c.Gateway.CORSOptions.AllowHeaders = splitList(v); return nil }},
	{Name: "cors_expose_headers", Env: "RIVET_CORS_EXPOSE_HEADERS", Field: "Gateway.CORSOptions.ExposeHeaders", Default: "all of the response's headers",
		Help: "Comma-separated response headers browser pages may read (RivetKit's exposeHeaders).",
		set:  func(c *Config, v string) error { c.Gateway.CORSOptions.ExposeHeaders = splitList(v); return nil }},
	{Name: "cors_max_age", Env: "RIVET_CORS_MAX_AGE", Field: "Gateway.CORSOptions.MaxAge", Default: "24h",
		Help: "How long browsers may cache a CORS preflight's answer (RivetKit's maxAge, here a duration: 10m).",
		set:  func(c *Config, v string) error { return setDuration(&c.Gateway.CORSOptions.MaxAge, v) }},
	{Name: "cors_no_credentials", Env: "RIVET_CORS_NO_CREDENTIALS", Field: "Gateway.CORSOptions.NoCredentials", Default: "false",
		Help: "Answer allowed origins without Access-Control-Allow-Credentials and ignore their cookies (RivetKit's credentials: false); this server's own pages keep them.",
		set: func(c *Config, v string) error {
			b, err := parseBool(v)
			c.Gateway.CORSOptions.NoCredentials = b
			return err
		}},
	{Name: "namespaces", Env: "RIVET_NAMESPACES", Field: "Gateway.Namespaces", Default: "default only",
		Help: "Comma-separated namespaces clients may use besides \"default\" (which always exists), or * for any. Others are refused with namespace.not_found.",
		set: func(c *Config, v string) error {
			c.Gateway.Namespaces = nil
			for _, ns := range strings.Split(v, ",") {
				if ns = strings.TrimSpace(ns); ns == "" {
					continue
				}
				if len(ns) > 64 {
					return fmt.Errorf("namespace %q is longer than 64 bytes", ns)
				}
				c.Gateway.Namespaces = append(c.Gateway.Namespaces, ns)
			}
			return nil
		}},
	{Name: "max_incoming_message_size", Env: "RIVET_MAX_INCOMING_MESSAGE_SIZE", Field: "Gateway.MaxIncomingMessageSize", Default: "64KiB",
		Help: "Largest action request or WebSocket message accepted (bytes; KiB/MiB suffixes allowed).",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.MaxIncomingMessageSize, v, true) }},
	{Name: "max_outgoing_message_size", Env: "RIVET_MAX_OUTGOING_MESSAGE_SIZE", Field: "Gateway.MaxOutgoingMessageSize", Default: "1MiB",
		Help: "Largest response or message sent to a client.",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.MaxOutgoingMessageSize, v, true) }},
	{Name: "max_input_size", Env: "RIVET_MAX_INPUT_SIZE", Field: "Gateway.MaxInputSize", Default: "4MiB",
		Help: "Largest create-time input of an actor.",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.MaxInputSize, v, true) }},
	{Name: "send_queue", Env: "RIVET_SEND_QUEUE", Field: "Gateway.SendQueue", Default: "1024",
		Help: "Messages queued for one WebSocket client; a client that falls further behind is disconnected.",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.SendQueue, v, false) }},
	{Name: "send_queue_bytes", Env: "RIVET_SEND_QUEUE_BYTES", Field: "Gateway.SendQueueBytes", Default: "4MiB",
		Help: "Bytes queued for one WebSocket client; a client that falls further behind is disconnected (1011 message.outgoing_queue_full).",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.SendQueueBytes, v, true) }},
	{Name: "max_subscriptions", Env: "RIVET_MAX_SUBSCRIPTIONS", Field: "Gateway.MaxSubscriptions", Default: "1000",
		Help: "Event subscriptions of one connection; past it the connection is closed (connection.too_many_subscriptions).",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.MaxSubscriptions, v, false) }},
	{Name: "body_timeout", Env: "RIVET_BODY_TIMEOUT", Field: "Gateway.BodyTimeout", Default: "30s",
		Help: "Time a request body may take to arrive (message.incoming_timeout past it).",
		set:  func(c *Config, v string) error { return setDuration(&c.Gateway.BodyTimeout, v) }},
	{Name: "write_timeout", Env: "RIVET_WRITE_TIMEOUT", Field: "Gateway.WriteTimeout", Default: "30s",
		Help: "Time to write one response (from its first byte) or one batch of WebSocket messages; a client slower than that is disconnected.",
		set:  func(c *Config, v string) error { return setDuration(&c.Gateway.WriteTimeout, v) }},
	{Name: "ping_interval", Env: "RIVET_PING_INTERVAL", Field: "Gateway.PingInterval", Default: "30s",
		Help: "Time between two pings the server sends each WebSocket. A dead or half-open client is disconnected within ping_interval + ping_timeout.",
		set:  func(c *Config, v string) error { return setDuration(&c.Gateway.PingInterval, v) }},
	{Name: "ping_timeout", Env: "RIVET_PING_TIMEOUT", Field: "Gateway.PingTimeout", Default: "30s",
		Help: "Time a WebSocket client has to answer a ping (its pong queued behind the messages sent to it); past it the client is disconnected.",
		set:  func(c *Config, v string) error { return setDuration(&c.Gateway.PingTimeout, v) }},
	{Name: "idle_timeout", Env: "RIVET_IDLE_TIMEOUT", Field: "Gateway.IdleTimeout", Default: "60s",
		Help: "Time a keep-alive connection may wait for its next request before it is closed.",
		set:  func(c *Config, v string) error { return setDuration(&c.Gateway.IdleTimeout, v) }},
	{Name: "max_connections", Env: "RIVET_MAX_CONNECTIONS", Field: "Gateway.MaxConnections", Default: "3/4 of the open-file limit",
		Help: "Connections held open at once, WebSockets and idle keep-alives included. At the bound the longest-idle keep-alive is closed, else the new connection gets 503.",
		set:  func(c *Config, v string) error { return setSize(&c.Gateway.MaxConnections, v, false) }},
	{Name: "admin_token", Env: "RIVET_ADMIN_TOKEN", Field: "Inspector.Token", Default: "none", secret: true,
		Help: "Bearer token of the inspector (/ui/, /inspector/). Without one the inspector answers loopback clients only.",
		set:  func(c *Config, v string) error { c.Inspector.Token = v; return nil }},
	{Name: "inspector", Env: "RIVET_INSPECTOR", Field: "Inspector.Disabled", Default: "true",
		Help: "Serve the inspector UI (/ui/) and its JSON API (/inspector/); false turns both off. The Go field is the opposite: inspector: false is Inspector.Disabled = true.",
		set: func(c *Config, v string) error {
			on, err := parseBool(v)
			c.Inspector.Disabled = !on
			return err
		}},
	{Name: "log_level", Env: "LOG_LEVEL", Field: "Log.Level", Default: "info",
		Help: "Minimum level logged: trace, debug, info, warn, error, fatal or silent.",
		set: func(c *Config, v string) error {
			v = strings.ToLower(v)
			if _, ok := levelNames[v]; !ok && v != "silent" {
				return fmt.Errorf("want one of trace, debug, info, warn, error, fatal, silent")
			}
			c.Log.Level = v
			return nil
		}},
	{Name: "log_format", Env: "LOG_FORMAT", Field: "Log.Format", Default: "text",
		Help: "text (key=value) or json (one object per line).",
		set: func(c *Config, v string) error {
			if v = strings.ToLower(v); v != "text" && v != "json" {
				return fmt.Errorf("want text or json")
			}
			c.Log.Format = v
			return nil
		}},
	{Name: "log_timestamp", Env: "LOG_TIMESTAMP", Field: "Log.Timestamp", Default: "false",
		Help: "Include each record's time (1/true or 0/false).",
		set: func(c *Config, v string) (err error) {
			c.Log.Timestamp, err = parseBool(v)
			return err
		}},
	{Name: "log_target", Env: "LOG_TARGET", Field: "Log.Target", Default: "false",
		Help: "Include the source file and line that logged each record.",
		set: func(c *Config, v string) (err error) {
			c.Log.Target, err = parseBool(v)
			return err
		}},
}

// ConfigFileEnv names the config file LoadConfig("") reads.
const ConfigFileEnv = "RIVET_CONFIG"

// LoadConfig builds a Config from a config file and the environment. The
// file (path, or $RIVET_CONFIG when path is empty; none if both are empty)
// is JSON or YAML with the settings' names as keys; environment variables
// override it. An unknown key or a bad value is an error naming it.
// Options set in code on the result override both.
func LoadConfig(path string) (*Config, error) {
	c := &Config{}
	if path == "" {
		path = os.Getenv(ConfigFileEnv)
	}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return nil, err
		}
	}
	for _, s := range settings {
		env := s.Env
		v, ok := os.LookupEnv(env)
		if (!ok || v == "") && s.alias != "" {
			env = s.alias
			v, ok = os.LookupEnv(env)
		}
		if !ok || v == "" {
			continue
		}
		if err := s.set(c, strings.TrimSpace(v)); err != nil {
			return nil, fmt.Errorf("rivet: environment %s=%s: %v", env, s.shown(v), err)
		}
	}
	return c, nil
}

// Set applies one setting by its name (or its name with dashes, as on the
// command line).
func (c *Config) Set(name, value string) error {
	key := strings.ReplaceAll(name, "-", "_")
	for _, s := range settings {
		if s.Name == key {
			if err := s.set(c, strings.TrimSpace(value)); err != nil {
				return fmt.Errorf("rivet: %s=%s: %v", name, s.shown(value), err)
			}
			return nil
		}
	}
	return fmt.Errorf("rivet: unknown setting %q%s", name, suggest(key))
}

func (c *Config) loadFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rivet: config file: %w", err)
	}
	return c.loadBytes(path, raw)
}

// loadBytes applies the settings of a config file's contents; path names
// the file in errors and its extension chooses JSON or YAML.
func (c *Config) loadBytes(path string, raw []byte) error {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json", ".yaml", ".yml":
	default:
		return fmt.Errorf("rivet: config file %s: want a .json, .yaml or .yml file", path)
	}
	// A .json file must be JSON: YAML, which reads the values below, would
	// let a trailing comma or a comment through.
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if err := checkJSON(raw); err != nil {
			return fmt.Errorf("rivet: config file %s: %v", path, err)
		}
	}
	// YAML is a superset of JSON: one parser reads both, with line
	// numbers in its errors.
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("rivet: config file %s: %v", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := settingValue(doc[k])
		if err == nil {
			err = c.Set(k, v)
		}
		if err != nil {
			return fmt.Errorf("rivet: config file %s: key %q: %v", path, k, strings.TrimPrefix(err.Error(), "rivet: "))
		}
	}
	return nil
}

// checkJSON reports where raw is not one JSON object.
func checkJSON(raw []byte) error {
	var doc map[string]any
	err := json.Unmarshal(raw, &doc)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := 1, 1
		for _, c := range raw[:min(max(int(se.Offset)-1, 0), len(raw))] { // Offset is just past the bad byte
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Errorf("not valid JSON: line %d, column %d: %v", line, col, se)
	}
	if err != nil {
		return fmt.Errorf("not a JSON object: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// settingValue turns a parsed config-file value into the setting's text.
func settingValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		if v != float64(int64(v)) {
			return "", fmt.Errorf("want a whole number, got %v", v)
		}
		return strconv.FormatInt(int64(v), 10), nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("want a list of strings")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or list of strings, got %T", v)
}

func setSize(dst *int, v string, units bool) error {
	mult := 1
	if units {
		for suffix, m := range map[string]int{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
			if strings.HasSuffix(v, suffix) {
				v, mult = strings.TrimSpace(strings.TrimSuffix(v, suffix)), m
				break
			}
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > (1<<31)/mult {
		if units {
			return fmt.Errorf("want a positive size in bytes (KiB, MiB and GiB suffixes allowed)")
		}
		return fmt.Errorf("want a positive integer")
	}
	*dst = n * mult
	return nil
}

func setDuration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration (30s, 2m)")
	}
	*dst = d
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("want 1/true or 0/false")
}

// suggest names the setting closest to an unknown key, if one is close.
func suggest(key string) string {
	best, bestD := "", 4
	for _, s := range settings {
		if d := editDistance(key, s.Name); d < bestD {
			best, bestD = s.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
