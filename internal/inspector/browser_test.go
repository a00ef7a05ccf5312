package inspector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/browsertest"
)

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitText waits until the text of the element sel contains want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && e.offsetParent !== null && e.textContent.includes(%s); })()`,
		jsString(sel), jsString(want))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%s) || {}).textContent || "(missing)"`, jsString(sel))))
		t.Fatalf("%s never showed %q (it shows %q): %v", sel, want, text, err)
	}
}

// count returns how many elements match sel.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(sel))))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// screenshot saves a full-page PNG as a test artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	browsertest.SaveArtifact(t, name, png)
}

func TestBrowserInspector(t *testing.T) {
	ctx := browsertest.Start(t, 1400, 1000)
	b := setup(t, "letmein")
	bg := context.Background()
	_, lobby := b.actor(t, "lobby")
	call(t, lobby, "increment", 1)
	id, room := b.actor(t, "room-42")
	call(t, room, "increment", 5)
	call(t, room, "putKV", "apple", "red")
	call(t, room, "putKV", "banana", "yellow")
	call(t, room, "putRaw", "blob", []byte{1, 2, 3})
	call(t, room, "remind", 3600)
	b.actor(t, "room-7")
	// The same name and key in another namespace: a row of its own.
	if _, err := b.rt.Client().Namespace("staging").GetOrCreate("counter", rivet.Key{"lobby"}).ID(bg); err != nil {
		t.Fatal(err)
	}
	conn, err := b.rt.Client().GetOrCreate("counter", rivet.Key{"room-42"}, rivet.WithParams(map[string]string{"user": "grace"})).Connect(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(bg)
	unsub := conn.On("newCount", func(rivet.Args) {})
	defer unsub()
	if _, err := conn.Call(bg, "getCount"); err != nil {
		t.Fatal(err)
	}

	// The page asks for the admin token first.
	do(t, ctx, chromedp.Navigate(b.srv.URL+"/ui/"))
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#token-input")))
	do(t, ctx, browsertest.Type("#token-input", "wrong"), chromedp.Click(chromedp.CSS("#token-submit")))
	waitText(t, ctx, "#token-error", "wrong")
	do(t, ctx, browsertest.Type("#token-input", "letmein"), chromedp.Click(chromedp.CSS("#token-submit")))
	waitText(t, ctx, "#actor-list", "lobby")
	waitText(t, ctx, "#actor-list", "room-7")
	waitText(t, ctx, "#actor-list .ns", "staging")

	// Search by key.
	do(t, ctx, browsertest.Type("#search", "room-4"))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll("#actor-list li").length === 1`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("search for room-4 left %d actors listed", count(t, ctx, "#actor-list li"))
	}
	waitText(t, ctx, "#actor-list", "room-42")

	// Select it: summary, state, connections, alarms, KV, events, logs.
	do(t, ctx, chromedp.Click(chromedp.CSS("#actor-list li")))
	waitText(t, ctx, "#actor-title", "counter · room-42")
	waitText(t, ctx, "#summary", id)
	waitText(t, ctx, "#actor-status", "awake")
	waitText(t, ctx, "#state-view", `"count": 5`)
	waitText(t, ctx, "#connections", `{"user":"grace"}`)
	waitText(t, ctx, "#connections", "newCount")
	waitText(t, ctx, "#alarms", "increment")
	waitText(t, ctx, "#events", "newCount")
	waitText(t, ctx, "#logs", "incremented")
	waitText(t, ctx, "#kv-table", `["items","apple"]`)
	waitText(t, ctx, "#live", "live")

	// A change made elsewhere shows up live.
	call(t, room, "increment", 2)
	waitText(t, ctx, "#state-view", `"count": 7`)
	waitText(t, ctx, "#events", "[7]")

	// Edit the state: invalid JSON and a type mismatch change nothing.
	do(t, ctx, chromedp.Click(chromedp.CSS("#state-edit summary")))
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#state-editor"), `{"count": 100,`), chromedp.Click(chromedp.CSS("#save-state")))
	waitText(t, ctx, "#state-error", "Invalid JSON")
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#state-editor"), `{"count": "lots", "tags": []}`), chromedp.Click(chromedp.CSS("#save-state")))
	waitText(t, ctx, "#state-error", "does not fit the actor's state type")
	if n, err := rivet.Call[int](bg, room, "getCount"); err != nil || n != 7 {
		t.Fatalf("count after rejected edits = %d, %v; want 7", n, err)
	}
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#state-editor"), `{"count": 100, "label": "from the editor", "tags": ["ui"]}`), chromedp.Click(chromedp.CSS("#save-state")))
	waitText(t, ctx, "#state-ok", "State saved.")
	waitText(t, ctx, "#state-view", `"label": "from the editor"`)
	if n, err := rivet.Call[int](bg, room, "getCount"); err != nil || n != 100 {
		t.Fatalf("count after the edit = %d, %v; want 100", n, err)
	}

	// Call an action from the form.
	do(t, ctx,
		chromedp.SetValue(chromedp.CSS("#action-name"), "increment"),
		chromedp.SetValue(chromedp.CSS("#action-args"), "[5]"),
		chromedp.Click(chromedp.CSS("#call-action")))
	waitText(t, ctx, "#action-result", "105")
	waitText(t, ctx, "#state-view", `"count": 105`)
	do(t, ctx, chromedp.SetValue(chromedp.CSS("#action-name"), "boom"), chromedp.SetValue(chromedp.CSS("#action-args"), "[]"), chromedp.Click(chromedp.CSS("#call-action")))
	waitText(t, ctx, "#action-error", "boom happened")

	// Browse KV by prefix.
	do(t, ctx, browsertest.Type("#kv-prefix", "items"), chromedp.Click(chromedp.CSS("#kv-search")))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll("#kv-table tbody tr").length === 2`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("KV prefix items shows %d rows, want 2", count(t, ctx, "#kv-table tbody tr"))
	}
	waitText(t, ctx, "#kv-table", `["items","banana"]`)
	waitText(t, ctx, "#kv-table", "yellow")

	screenshot(t, ctx, "inspector.png")
}
