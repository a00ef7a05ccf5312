// Package readmecurl checks the curl commands of a Markdown page (an
// example's README.md, the repository's README and quickstart): it runs
// each one against a real handler and compares the answer with the one
// the page shows, so the page cannot drift from the code.
//
// A command is a line starting with "curl " inside a ```sh block
// (continued with a trailing backslash), followed by the line
// "# ANSWER" with the exact response body, except that a Unix time in
// milliseconds (13 digits, a message's "ts") matches any other. Words
// are split as a shell would with single quotes only; the flags
// understood are -s, -X, -H and -d.
package readmecurl

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Origin is the server address the README's commands use; Run replaces
// it with the test server's.
const Origin = "http://127.0.0.1:6420"

// Command is one curl command of a README and the answer it shows.
type Command struct {
	Line   int // where it starts in the README
	Args   []string
	Method string
	URL    string
	Header http.Header
	Body   string
	Answer string
}

// Run runs every command of the README at path, in order, against h and
// fails the test if one answers differently than shown. It returns the
// commands, so that a test can check it ran what it expects.
func Run(t *testing.T, path string, h http.Handler) []Command {
	t.Helper()
	cmds := Parse(t, path)
	Exec(t, path, cmds, h)
	return cmds
}

// Exec runs cmds, read from the README at path, in order against h: a
// test that must do something between commands (restart a server) runs
// them in parts.
func Exec(t *testing.T, path string, cmds []Command, h http.Handler) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range cmds {
		u := strings.Replace(c.URL, Origin, srv.URL, 1)
		if u == c.URL {
			t.Fatalf("%s:%d: the URL does not start with %s: %s", path, c.Line, Origin, c.URL)
		}
		req, err := http.NewRequest(c.Method, u, strings.NewReader(c.Body))
		if err != nil {
			t.Fatalf("%s:%d: %v", path, c.Line, err)
		}
		req.Header = c.Header.Clone()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, c.Line, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(b)); millis.ReplaceAllString(got, "ms") != millis.ReplaceAllString(c.Answer, "ms") {
			t.Errorf("%s:%d: curl %s\n got: %s\nwant: %s", path, c.Line, strings.Join(c.Args, " "), got, c.Answer)
		}
	}
}

// millis matches a Unix time in milliseconds.
var millis = regexp.MustCompile(`\b\d{13}\b`)

// Parse reads the curl commands of the README at path.
func Parse(t *testing.T, path string) []Command {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out     []Command
		inSh    bool
		pending string
		startAt int
		last    = -1
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inSh = line == "```sh"
			last = -1
			continue
		}
		if !inSh {
			continue
		}
		if pending != "" || strings.HasPrefix(line, "curl ") {
			if pending == "" {
				startAt = n
			}
			if s, ok := strings.CutSuffix(line, `\`); ok {
				pending += s + " "
				continue
			}
			out = append(out, parseCommand(t, path, startAt, pending+line))
			last = len(out) - 1
			pending = ""
			continue
		}
		if last >= 0 && strings.HasPrefix(line, "# ") {
			out[last].Answer = strings.TrimPrefix(line, "# ")
		}
		last = -1
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range out {
		if c.Answer == "" {
			t.Fatalf("%s:%d: the curl command has no \"# answer\" line after it", path, c.Line)
		}
	}
	return out
}

func parseCommand(t *testing.T, path string, line int, cmd string) Command {
	t.Helper()
	words := shellWords(t, path, line, cmd)
	c := Command{Line: line, Args: words[1:], Method: http.MethodGet, Header: http.Header{}}
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() string {
			if i+1 >= len(words) {
				t.Fatalf("%s:%d: %s needs a value", path, line, w)
			}
			i++
			return words[i]
		}
		switch w {
		case "-s":
		case "-X":
			c.Method = next()
		case "-H":
			k, v, ok := strings.Cut(next(), ":")
			if !ok {
				t.Fatalf("%s:%d: bad header %q", path, line, words[i])
			}
			c.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d":
			c.Body = next()
			if c.Method == http.MethodGet {
				c.Method = http.MethodPost
			}
		default:
			if strings.HasPrefix(w, "-") || c.URL != "" {
				t.Fatalf("%s:%d: curl argument %q is not understood by readmecurl", path, line, w)
			}
			c.URL = w
		}
	}
	if c.URL == "" {
		t.Fatalf("%s:%d: curl without a URL", path, line)
	}
	return c
}

// shellWords splits a command into words: blanks separate words, single
// quotes keep everything literally. Double quotes, backslashes and $ are
// refused, so that what the test runs is what a shell would.
func shellWords(t *testing.T, path string, line int, s string) []string {
	t.Helper()
	var words []string
	var b strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			b.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		case r == '"' || r == '\\' || r == '$':
			t.Fatalf("%s:%d: use single quotes in curl commands (found %q)", path, line, r)
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("%s:%d: unterminated quote", path, line)
	}
	if inWord {
		words = append(words, b.String())
	}
	return words
}
