package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/actorkey"
)

const actorsUsage = `Usage: rivet actors COMMAND [flags]

Inspects the actors of a running server (rivet serve, or your own program).

Commands:
  ls                     list actors (--name to filter by actor name)
  get ID                 show one actor; or get --name NAME --key K [--key K2 …]
  state ID               print its state as JSON; --set JSON (or --set - for stdin) replaces it
  destroy ID             destroy it: state, KV and alarms are deleted

Common flags:
  --server URL           the server (default $RIVET_SERVER, or http:// + the listen address)
  --token TOKEN          inspector admin token (default $RIVET_ADMIN_TOKEN); needed by state
  --namespace NS         namespace (default "default")
`

// api talks to a running server's management and inspector routes.
type api struct {
	server, token, namespace string
	http                     *http.Client
}

func actorFlags(name, synopsis string) (*flag.FlagSet, *api) {
	fs := newFlags("actors "+name, synopsis, "See \"rivet actors --help\".")
	a := &api{http: &http.Client{Timeout: 30 * time.Second}}
	fs.StringVar(&a.server, "server", defaultServer(), "server URL")
	fs.StringVar(&a.token, "token", os.Getenv("RIVET_ADMIN_TOKEN"), "inspector admin token")
	fs.StringVar(&a.namespace, "namespace", "default", "namespace")
	return fs, a
}

func defaultServer() string {
	if s := os.Getenv("RIVET_SERVER"); s != "" {
		return s
	}
	return "http://" + rivet.ListenAddr(os.Getenv("RIVET_LISTEN"))
}

// keyFlag collects repeated --key flags into a multi-part key.
type keyFlag []string

func (k *keyFlag) String() string     { return strings.Join(*k, ",") }
func (k *keyFlag) Set(v string) error { *k = append(*k, v); return nil }

func runActors(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) == 0 {
			return usagef("actors: missing command: ls, get, state or destroy (run \"rivet actors --help\")")
		}
		fmt.Fprint(out, actorsUsage)
		return nil
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ls", "list":
		fs, a := actorFlags("ls", "rivet actors ls [--name NAME] [--limit N] [--json] [--server URL]")
		name := fs.String("name", "", "only actors with this name")
		limit := fs.Int("limit", 1000, "at most this many actors")
		asJSON := fs.Bool("json", false, "print one JSON object per line")
		if err := parse(fs, args, out); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return usagef("actors ls: unexpected argument %q", fs.Arg(0))
		}
		return a.list(ctx, *name, *limit, *asJSON, out)
	case "get":
		fs, a := actorFlags("get", "rivet actors get ID | --name NAME --key K [--key K2 …]")
		name := fs.String("name", "", "actor name (with --key)")
		var key keyFlag
		fs.Var(&key, "key", "key part, repeated for a multi-part key (with --name)")
		asJSON := fs.Bool("json", false, "print the actor as JSON")
		if err := parseInterspersed(fs, args, out); err != nil {
			return err
		}
		var q url.Values
		switch {
		case fs.NArg() == 1 && *name == "":
			q = url.Values{"actor_ids": {fs.Arg(0)}}
		case fs.NArg() == 0 && *name != "":
			q = url.Values{"name": {*name}, "key": {actorkey.Serialize(key)}}
		default:
			return usagef("actors get: give an actor ID, or --name and --key (run \"rivet actors get --help\")")
		}
		return a.get(ctx, q, *asJSON, out)
	case "state":
		fs, a := actorFlags("state", "rivet actors state ID [--set JSON|-]")
		set := fs.String("set", "", "replace the state with this JSON (\"-\" reads it from standard input)")
		if err := parseInterspersed(fs, args, out); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("actors state: give one actor ID")
		}
		if *set == "" {
			return a.state(ctx, fs.Arg(0), out)
		}
		body := []byte(*set)
		if *set == "-" {
			var err error
			if body, err = io.ReadAll(os.Stdin); err != nil {
				return err
			}
		}
		return a.setState(ctx, fs.Arg(0), body, out)
	case "destroy", "rm":
		fs, a := actorFlags("destroy", "rivet actors destroy ID")
		if err := parseInterspersed(fs, args, out); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("actors destroy: give one actor ID")
		}
		if err := a.do(ctx, http.MethodDelete, "/actors/"+url.PathEscape(fs.Arg(0)), nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(out, "destroyed", fs.Arg(0))
		return nil
	}
	return usagef("actors: unknown command %q: ls, get, state or destroy", cmd)
}

// parseInterspersed lets flags follow the positional ID
// ("rivet actors state ID --set …").
func parseInterspersed(fs *flag.FlagSet, args []string, out io.Writer) error {
	var pos []string
	for {
		if err := parse(fs, args, out); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(pos)
}

// actorRecord is the actor object of /actors (RivetKit's engine API).
type actorRecord struct {
	ID        string `json:"actor_id"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	Namespace string `json:"namespace_id"`
	CreateTS  int64  `json:"create_ts"`
}

func (a *api) list(ctx context.Context, name string, limit int, asJSON bool, out io.Writer) error {
	var all []actorRecord
	cursor := ""
	for len(all) < limit {
		q := url.Values{}
		if name != "" {
			q.Set("name", name)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Actors     []actorRecord `json:"actors"`
			Pagination struct {
				Cursor *string `json:"cursor"`
			} `json:"pagination"`
		}
		if err := a.do(ctx, http.MethodGet, "/actors?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		all = append(all, page.Actors...)
		if page.Pagination.Cursor == nil || *page.Pagination.Cursor == "" || len(page.Actors) == 0 {
			break
		}
		cursor = *page.Pagination.Cursor
	}
	if len(all) > limit {
		all = all[:limit]
	}
	if asJSON {
		enc := json.NewEncoder(out)
		for _, r := range all {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(all) == 0 {
		fmt.Fprintln(out, "no actors")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKEY\tCREATED")
	for _, r := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, showKey(r.Key), time.UnixMilli(r.CreateTS).UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// showKey prints a serialized key as its parts joined by "/".
func showKey(s string) string {
	parts, err := actorkey.Deserialize(s)
	if err != nil {
		return s
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, "/")
}

func (a *api) get(ctx context.Context, q url.Values, asJSON bool, out io.Writer) error {
	var page struct {
		Actors []json.RawMessage `json:"actors"`
	}
	if err := a.do(ctx, http.MethodGet, "/actors?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	if len(page.Actors) == 0 {
		if id := q.Get("actor_ids"); id != "" {
			return fmt.Errorf("actor %s not found", id)
		}
		return fmt.Errorf("no %s actor with key %s", q.Get("name"), showKey(q.Get("key")))
	}
	if asJSON {
		_, err := fmt.Fprintf(out, "%s\n", page.Actors[0])
		return err
	}
	var r actorRecord
	if err := json.Unmarshal(page.Actors[0], &r); err != nil {
		return fmt.Errorf("server sent a malformed actor: %v", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\nname\t%s\nkey\t%s\nnamespace\t%s\ncreated\t%s\n", r.ID, r.Name, showKey(r.Key), r.Namespace,
		time.UnixMilli(r.CreateTS).UTC().Format(time.RFC3339))
	return tw.Flush()
}

func (a *api) state(ctx context.Context, id string, out io.Writer) error {
	var resp struct {
		State json.RawMessage `json:"state"`
	}
	if err := a.do(ctx, http.MethodGet, "/inspector/actors/"+url.PathEscape(id)+"/state", nil, &resp); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, resp.State, "", "  "); err != nil {
		buf.Reset()
		buf.Write(resp.State)
	}
	_, err := fmt.Fprintf(out, "%s\n", buf.Bytes())
	return err
}

func (a *api) setState(ctx context.Context, id string, state []byte, out io.Writer) error {
	if !json.Valid(state) {
		return usagef("actors state --set: not valid JSON")
	}
	body, _ := json.Marshal(map[string]json.RawMessage{"state": state})
	if err := a.do(ctx, http.MethodPut, "/inspector/actors/"+url.PathEscape(id)+"/state", body, nil); err != nil {
		return err
	}
	fmt.Fprintln(out, "state of", id, "replaced")
	return nil
}

// do sends one request and decodes a JSON answer into dst (if non-nil).
// Failures are one line: the server's error code and message, or why the
// server could not be reached.
func (a *api) do(ctx context.Context, method, path string, body []byte, dst any) error {
	u, err := url.Parse(strings.TrimSuffix(a.server, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("bad server URL %q (want http://host:port)", a.server)
	}
	if a.namespace != "" && a.namespace != "default" {
		q := u.Query()
		q.Set("namespace", a.namespace)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("cannot reach the server at %s (is it running? set --server or RIVET_SERVER): %v", a.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the answer from %s: %v", a.server, err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Group, Code, Message string }
		if json.Unmarshal(raw, &e) == nil && e.Code != "" {
			return fmt.Errorf("%s.%s: %s", e.Group, e.Code, e.Message)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if dst == nil {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s %s: the server's answer is not the expected JSON: %v", method, path, err)
	}
	return nil
}
