package ratelimiter_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/ratelimiter"
	"github.com/rivetgo/rivet/internal/readmecurl"
	"github.com/rivetgo/rivet/rivettest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*rivettest.Kit, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return rivettest.New(t, rivet.MustRegistry(ratelimiter.Definitions()...), rivettest.WithStart(t0)), ctx
}

func allow(t *testing.T, ctx context.Context, k *rivettest.Kit, user string) ratelimiter.Decision {
	t.Helper()
	d, err := rivet.Call[ratelimiter.Decision](ctx, k.Client.GetOrCreate(ratelimiter.ActorName, rivet.Key{user}), "allow")
	if err != nil {
		t.Fatalf("allow(%s): %v", user, err)
	}
	return d
}

// TestFixedWindow: a user gets Limit requests per window, refused ones do
// not count, and the window starts again when it ends.
func TestFixedWindow(t *testing.T) {
	k, ctx := setup(t)
	reset := t0.Add(ratelimiter.DefaultWindow).UnixMilli()
	for i := 1; i <= ratelimiter.DefaultLimit; i++ {
		d := allow(t, ctx, k, "alice")
		want := ratelimiter.Decision{Allowed: true, Remaining: ratelimiter.DefaultLimit - i, ResetAt: reset, Limit: ratelimiter.DefaultLimit}
		if d != want {
			t.Fatalf("request %d: %+v, want %+v", i, d, want)
		}
		k.Advance(time.Second)
	}
	// Over the limit: refused until the window ends, however often asked.
	for range 3 {
		d := allow(t, ctx, k, "alice")
		now := k.Clock.Now().UnixMilli()
		want := ratelimiter.Decision{Allowed: false, Remaining: 0, ResetAt: reset, Limit: ratelimiter.DefaultLimit, RetryAfterMs: reset - now}
		if d != want {
			t.Fatalf("over the limit: %+v, want %+v", d, want)
		}
		k.Advance(10 * time.Second)
	}
	// 5 s + 30 s have passed; at reset the window starts again.
	k.Advance(time.UnixMilli(reset).Sub(k.Clock.Now()))
	if now := k.Clock.Now().UnixMilli(); now != reset {
		t.Fatalf("clock at %d, want %d", now, reset)
	}
	d := allow(t, ctx, k, "alice")
	want := ratelimiter.Decision{Allowed: true, Remaining: ratelimiter.DefaultLimit - 1, ResetAt: reset + ratelimiter.DefaultWindow.Milliseconds(), Limit: ratelimiter.DefaultLimit}
	if d != want {
		t.Fatalf("new window: %+v, want %+v", d, want)
	}
}

// TestUsersAreIndependent: one actor per user, so one user's burst
// leaves another's budget alone.
func TestUsersAreIndependent(t *testing.T) {
	k, ctx := setup(t)
	for range ratelimiter.DefaultLimit + 2 {
		allow(t, ctx, k, "alice")
	}
	if d := allow(t, ctx, k, "alice"); d.Allowed {
		t.Fatalf("alice over her limit was allowed: %+v", d)
	}
	if d := allow(t, ctx, k, "bob"); !d.Allowed || d.Remaining != ratelimiter.DefaultLimit-1 {
		t.Fatalf("bob: %+v, want allowed with %d remaining", d, ratelimiter.DefaultLimit-1)
	}
	ida, _ := k.Client.Get(ratelimiter.ActorName, rivet.Key{"alice"}).ID(ctx)
	idb, _ := k.Client.Get(ratelimiter.ActorName, rivet.Key{"bob"}).ID(ctx)
	if ida == "" || ida == idb {
		t.Fatalf("alice and bob share an actor: %q %q", ida, idb)
	}
}

// TestLimitSurvivesSleep: the count is durable state, so an actor that
// went to sleep between requests still refuses.
func TestLimitSurvivesSleep(t *testing.T) {
	k, ctx := setup(t)
	cfg := ratelimiter.Config{Limit: 2, WindowMs: time.Hour.Milliseconds()}
	h := k.Client.GetOrCreate(ratelimiter.ActorName, rivet.Key{"carol"}, rivet.WithInput(cfg))
	for range 2 {
		if d, err := rivet.Call[ratelimiter.Decision](ctx, h, "allow"); err != nil || !d.Allowed {
			t.Fatalf("allow: %+v, %v", d, err)
		}
	}
	id, err := h.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k.Advance(rivet.DefaultSleepTimeout + time.Second)
	if k.Awake(id) {
		t.Fatal("the idle limiter did not go to sleep")
	}
	d, err := rivet.Call[ratelimiter.Decision](ctx, h, "allow")
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Limit != 2 {
		t.Fatalf("after sleep: %+v, want refused with limit 2", d)
	}
	// status reports without counting; reset starts over.
	st, err := rivet.Call[ratelimiter.Decision](ctx, h, "status")
	if err != nil || st.Allowed || st.Remaining != 0 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if _, err := h.Call(ctx, "reset"); err != nil {
		t.Fatal(err)
	}
	st, err = rivet.Call[ratelimiter.Decision](ctx, h, "status")
	if err != nil || !st.Allowed || st.Remaining != 2 {
		t.Fatalf("status after reset: %+v, %v", st, err)
	}
}

func TestInvalidConfig(t *testing.T) {
	k, ctx := setup(t)
	h := k.Client.GetOrCreate(ratelimiter.ActorName, rivet.Key{"dave"}, rivet.WithInput(ratelimiter.Config{Limit: -1}))
	_, err := h.Call(ctx, "allow")
	if err == nil || !strings.Contains(err.Error(), "invalid_config") {
		t.Fatalf("negative limit: %v, want user.invalid_config", err)
	}
}

// TestMiddleware: the HTTP middleware answers 429 with Retry-After once a
// user is over the limit, and sets the X-RateLimit-* headers.
func TestMiddleware(t *testing.T) {
	k, _ := setup(t)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewServer(ratelimiter.Middleware(k.Client, func(r *http.Request) string { return r.Header.Get("X-User") }, hello))
	t.Cleanup(srv.Close)
	get := func(user string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/hello", nil)
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resetSec := t0.Add(ratelimiter.DefaultWindow).Unix()
	for i := 1; i <= ratelimiter.DefaultLimit; i++ {
		resp := get("alice")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %s", i, resp.Status)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), itoa(ratelimiter.DefaultLimit-i); got != want {
			t.Fatalf("request %d: X-RateLimit-Remaining %s, want %s", i, got, want)
		}
		if got := resp.Header.Get("X-RateLimit-Limit"); got != itoa(ratelimiter.DefaultLimit) {
			t.Fatalf("X-RateLimit-Limit %s", got)
		}
		if got := resp.Header.Get("X-RateLimit-Reset"); got != itoa(int(resetSec)) {
			t.Fatalf("X-RateLimit-Reset %s, want %d", got, resetSec)
		}
	}
	k.Advance(20*time.Second + 500*time.Millisecond)
	resp := get("alice")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %s, want 429", resp.Status)
	}
	if got := resp.Header.Get("Retry-After"); got != "40" { // 39.5 s left, rounded up
		t.Fatalf("Retry-After %q, want 40", got)
	}
	if resp := get("bob"); resp.StatusCode != 200 {
		t.Fatalf("bob: %s", resp.Status)
	}
	if resp := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no user: %s, want 401", resp.Status)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestReadmeCurl runs the curl commands of README.md against the
// example's server (the loop excepted) and checks every answer shown.
func TestReadmeCurl(t *testing.T) {
	k, _ := setup(t)
	srv := ratelimiter.ExampleServer(k.Client, k.Runtime.Handler())
	if cmds := readmecurl.Run(t, "README.md", srv); len(cmds) != 5 {
		t.Fatalf("README.md has %d curl commands, want 5", len(cmds))
	}
}
