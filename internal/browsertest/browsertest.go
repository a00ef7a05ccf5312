// Package browsertest starts headless Chromium for the repository's
// browser tests (chromedp) and keeps their screenshots.
//
// Start skips the test when /usr/bin/chromium is missing, unless CI is set,
// in which case the test fails: CI must run the browser tests (make test
// installs Debian's chromium when it is absent).
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium.
const ChromiumPath = "/usr/bin/chromium"

// Start launches a fresh headless Chromium (its own profile directory, no
// background networking: this machine's network is closed) with a window
// of width×height and returns its context, valid for two minutes. The
// browser stops when the test ends. opts add Chromium flags.
func Start(t testing.TB, width, height int, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("chromium not installed (%v)", err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}, opts...)...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(func() {
		cancel()
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// SaveArtifact writes a test artifact (a screenshot) into
// $RIVET_TEST_ARTIFACTS, default <tmp>/rivet-artifacts, and logs its path.
func SaveArtifact(t testing.TB, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("RIVET_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "rivet-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", path)
}

// Type focuses the element sel selects (a CSS selector) and types text
// into it as key events. Use it instead of chromedp.SendKeys, which reads
// the node's attributes without the lock that chromedp's DOM event
// handler takes to change them: a page that updates the field's
// attributes meanwhile (React enabling a button, say) is a data race
// under -race.
func Type(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
			`(() => { const el = document.querySelector(%q); if (!el) return false; el.focus(); return document.activeElement === el; })()`, sel)))
		if err != nil {
			return err
		}
		if !focused {
			return fmt.Errorf("browsertest: no focusable element %s", sel)
		}
		_, err = chromedp.Run(ctx, chromedp.KeyEvent(text))
		return err
	})
}
