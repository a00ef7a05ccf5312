package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples"
	"github.com/rivetgo/rivet/examples/demo"
	"github.com/rivetgo/rivet/internal/browsertest"
	"github.com/rivetgo/rivet/internal/readmecurl"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
	"github.com/rivetgo/rivet/rivettest"
)

// serve starts the chat example in-process, as `rivet serve --example
// chat` does: the embedded page at "/" and the gateway behind it.
func serve(t *testing.T) (*httptest.Server, *rivet.Runtime) {
	t.Helper()
	x, err := examples.Lookup("chat")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(x.Definitions()...),
		&rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(x.Handler(rt.Handler()))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv, rt
}

// page is one browser tab and what its console printed.
type page struct {
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []string
}

// tab opens a new tab of the browser. Tabs share the browser's storage,
// as two tabs of one person's browser do.
func tab(t *testing.T, browser context.Context, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	p := &page{name: name, ctx: ctx}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, fmt.Sprintf("%s: %s", m.Type, m.Text))
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Logf("console of %s's tab:\n%s", name, strings.Join(p.console, "\n"))
		}
	})
	return p
}

func (p *page) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		t.Fatalf("%s's tab: %v", p.name, err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// shownMessages returns the messages the page lists, as "user: text".
func (p *page) shownMessages(t *testing.T) []string {
	t.Helper()
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#messages li.message')].map(li => li.querySelector('.user').textContent + ': ' + li.querySelector('.text').textContent)`))
	if err != nil {
		t.Fatalf("%s's tab: %v", p.name, err)
	}
	return got
}

// waitMessages waits until the page lists exactly want, in order.
func (p *page) waitMessages(t *testing.T, want ...string) {
	t.Helper()
	w, _ := json.Marshal(append([]string{}, want...))
	expr := fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('#messages li.message')].map(li => li.querySelector('.user').textContent + ': ' + li.querySelector('.text').textContent)) === %s`, jsString(string(w)))
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("%s's tab never showed %q (it shows %q): %v", p.name, want, p.shownMessages(t), err)
	}
}

// join opens the page, enters a name (and a room, if not ""), joins and
// waits until the room's history is shown.
func (p *page) join(t *testing.T, url, name, room string) {
	t.Helper()
	p.do(t,
		chromedp.Navigate(url),
		chromedp.WaitVisible("#name"),
		// A name typed before in another tab is prefilled.
		clearInput("#name"),
		browsertest.Type("#name", name),
	)
	if room != "" {
		p.do(t, clearInput("#room"), browsertest.Type("#room", room))
	}
	p.do(t,
		chromedp.Click("#join"),
		chromedp.WaitVisible(`#status[data-status="connected"]`),
		chromedp.WaitReady(`#messages[data-loaded="true"]`),
	)
}

// clearInput empties a React-controlled input the way typing would, so
// that React's state follows (setting the DOM value alone does not).
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
			const el = document.querySelector(%s);
			Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(el, "");
			el.dispatchEvent(new Event("input", { bubbles: true }));
			return true;
		})()`, jsString(sel))))
		return err
	})
}

func (p *page) send(t *testing.T, text string) {
	t.Helper()
	p.do(t,
		browsertest.Type("#message", text),
		chromedp.WaitEnabled("#send"),
		chromedp.Click("#send"),
	)
}

// screenshot saves the tab as a PNG test artifact.
func (p *page) screenshot(t *testing.T, file string) {
	t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG")
	}
	browsertest.SaveArtifact(t, file, png)
}

// TestChatInTwoTabs: what a newcomer does with the chat example. Two
// tabs join the lobby; a message sent in one appears in the other in
// realtime, both ways; a tab that joins later gets the history; another
// room is another actor with its own history.
func TestChatInTwoTabs(t *testing.T) {
	srv, rt := serve(t)
	browser := browsertest.Start(t, 900, 700)
	alice := tab(t, browser, "alice")
	bob := tab(t, browser, "bob")

	alice.join(t, srv.URL, "alice", "")
	bob.join(t, srv.URL, "bob", "")
	alice.waitMessages(t) // an empty lobby
	alice.do(t, chromedp.WaitVisible("#messages li.empty"))

	alice.send(t, "hello from alice")
	bob.waitMessages(t, "alice: hello from alice")
	bob.send(t, "hi alice, ¿qué tal?")
	alice.waitMessages(t, "alice: hello from alice", "bob: hi alice, ¿qué tal?")
	bob.waitMessages(t, "alice: hello from alice", "bob: hi alice, ¿qué tal?")
	// One's own messages are marked as such.
	mine, err := chromedp.Run(bob.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#messages li.mine .text')].map(e => e.textContent)`))
	if err != nil || !slices.Equal(mine, []string{"hi alice, ¿qué tal?"}) {
		t.Fatalf("bob's own messages: %q, %v", mine, err)
	}
	bob.screenshot(t, "chat-bob.png")
	alice.screenshot(t, "chat-alice.png")

	// A late joiner gets the history, then live messages.
	carol := tab(t, browser, "carol")
	carol.join(t, srv.URL, "carol", "")
	carol.waitMessages(t, "alice: hello from alice", "bob: hi alice, ¿qué tal?")
	alice.send(t, "welcome carol")
	carol.waitMessages(t, "alice: hello from alice", "bob: hi alice, ¿qué tal?", "alice: welcome carol")
	bob.waitMessages(t, "alice: hello from alice", "bob: hi alice, ¿qué tal?", "alice: welcome carol")

	// The history is the chatRoom actor's durable state.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The browser's client works in the namespace "default".
	hist, err := rivet.Call[[]demo.Message](ctx, rt.Client().Get("chatRoom", rivet.Key{"lobby"}), "getHistory")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range hist {
		got = append(got, m.User+": "+m.Text)
	}
	if want := []string{"alice: hello from alice", "bob: hi alice, ¿qué tal?", "alice: welcome carol"}; !slices.Equal(got, want) {
		t.Fatalf("lobby history %q, want %q", got, want)
	}

	// Another room is another actor: empty, and its messages stay there.
	carol.do(t, chromedp.Click("button.link"))
	carol.join(t, srv.URL, "carol", "side room")
	carol.do(t, chromedp.WaitVisible("#messages li.empty"))
	carol.send(t, "anyone here?")
	carol.waitMessages(t, "carol: anyone here?")
	if n := len(alice.shownMessages(t)); n != 3 {
		t.Fatalf("alice's lobby shows %d messages, want 3", n)
	}
	if title, err := chromedp.Run(carol.ctx, chromedp.Text("#room-name")); err != nil || title != "side room" {
		t.Fatalf("room name %q, %v", title, err)
	}
}

// TestReadmeCurl runs the curl commands of README.md against the
// example's handler and checks every answer shown.
func TestReadmeCurl(t *testing.T) {
	x, err := examples.Lookup("chat")
	if err != nil {
		t.Fatal(err)
	}
	k := rivettest.New(t, rivet.MustRegistry(x.Definitions()...), rivettest.WithStart(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)))
	if cmds := readmecurl.Run(t, "README.md", x.Handler(k.Runtime.Handler())); len(cmds) != 2 {
		t.Fatalf("README.md has %d curl commands, want 2", len(cmds))
	}
}
