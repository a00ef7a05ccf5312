// Package ratelimiter limits requests per user with one actor per user
// key: a fixed window of Limit requests per Window, counted durably, so
// a limit holds across restarts and across every server that shares the
// store.
//
//	rateLimiter[user]: allow() → {allowed, remaining, resetAt}
//	                   status() → the same, without counting a request
//	                   reset()  → forgets the window
//
// Because each user is a separate actor, users never contend with each
// other, and one user's requests are counted one at a time with no lock.
// Middleware puts it in front of any http.Handler.
package ratelimiter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rivetgo/rivet"
)

// Defaults of a user's limit.
const (
	DefaultLimit  = 5
	DefaultWindow = time.Minute
)

// Config is a user's limit, given as the actor's create-time input
// (rivet.WithInput); a zero field takes its default.
type Config struct {
	Limit    int   `json:"limit"`
	WindowMs int64 `json:"windowMs"`
}

// Window is the state of one user's limiter.
type Window struct {
	Limit    int   `json:"limit"`
	WindowMs int64 `json:"windowMs"`
	// Start is when the current window began (Unix ms); 0 before the
	// first request.
	Start int64 `json:"start"`
	// Count is the requests allowed in the current window.
	Count int `json:"count"`
}

// Decision is the answer to allow and status.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Remaining is how many more requests the window allows.
	Remaining int `json:"remaining"`
	// ResetAt is when the window ends and the count starts again (Unix
	// ms); for a user with no request in the current window, it is now.
	ResetAt int64 `json:"resetAt"`
	// Limit is the requests a window allows.
	Limit int `json:"limit"`
	// RetryAfterMs is how long a refused caller should wait; 0 when
	// allowed.
	RetryAfterMs int64 `json:"retryAfterMs"`
}

// ActorName is the limiter's actor name.
const ActorName = "rateLimiter"

// Definitions returns the rateLimiter actor.
func Definitions() []rivet.Definition {
	limiter := rivet.NewActor(ActorName, rivet.Opts[Window]{
		CreateState: func(c *rivet.Ctx[Window], input rivet.Value) (Window, error) {
			cfg := Config{}
			if input.Present() {
				if err := input.Decode(&cfg); err != nil {
					return Window{}, rivet.UserError("the input must be {limit, windowMs}", rivet.WithCode("invalid_config"))
				}
			}
			if cfg.Limit < 0 || cfg.WindowMs < 0 {
				return Window{}, rivet.UserError("limit and windowMs must not be negative", rivet.WithCode("invalid_config"))
			}
			if cfg.Limit == 0 {
				cfg.Limit = DefaultLimit
			}
			if cfg.WindowMs == 0 {
				cfg.WindowMs = DefaultWindow.Milliseconds()
			}
			return Window{Limit: cfg.Limit, WindowMs: cfg.WindowMs}, nil
		},
	}).
		Action("allow", func(c *rivet.Ctx[Window]) Decision {
			w := c.State
			now := c.Now().UnixMilli()
			if now >= w.Start+w.WindowMs {
				// A new window starts with this request.
				w.Start, w.Count = now, 0
			}
			end := w.Start + w.WindowMs
			if w.Count >= w.Limit {
				return Decision{Allowed: false, Remaining: 0, ResetAt: end, Limit: w.Limit, RetryAfterMs: end - now}
			}
			w.Count++
			return Decision{Allowed: true, Remaining: w.Limit - w.Count, ResetAt: end, Limit: w.Limit}
		}).
		Action("status", func(c *rivet.Ctx[Window]) Decision {
			w := *c.State
			now := c.Now().UnixMilli()
			end := w.Start + w.WindowMs
			switch {
			case now >= end:
				return Decision{Allowed: w.Limit > 0, Remaining: w.Limit, ResetAt: now, Limit: w.Limit}
			case w.Count >= w.Limit:
				return Decision{Allowed: false, Remaining: 0, ResetAt: end, Limit: w.Limit, RetryAfterMs: end - now}
			}
			return Decision{Allowed: true, Remaining: w.Limit - w.Count, ResetAt: end, Limit: w.Limit}
		}).
		Action("reset", func(c *rivet.Ctx[Window]) {
			c.State.Start, c.State.Count = 0, 0
		})
	return []rivet.Definition{limiter}
}

// Middleware limits next per user: user names the caller of a request
// (an API key, a session's user id, the client address); a request whose
// user is over the limit gets 429 Too Many Requests with Retry-After.
// Every answer carries X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (Unix seconds). A request with no user (user returns
// "") is refused with 401. If the limiter cannot be reached, the request
// fails with 503 rather than going through unlimited.
func Middleware(client *rivet.Client, user func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := user(r)
		if id == "" {
			http.Error(w, "who are you? (no user for rate limiting)", http.StatusUnauthorized)
			return
		}
		h := client.GetOrCreate(ActorName, rivet.Key{id})
		d, err := rivet.Call[Decision](r.Context(), h, "allow")
		if err != nil {
			if errors.Is(r.Context().Err(), context.Canceled) {
				return
			}
			http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
			return
		}
		hd := w.Header()
		hd.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
		hd.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
		hd.Set("X-RateLimit-Reset", strconv.FormatInt((d.ResetAt+999)/1000, 10))
		if !d.Allowed {
			// Whole seconds, rounded up: retrying earlier would be refused.
			hd.Set("Retry-After", strconv.FormatInt((d.RetryAfterMs+999)/1000, 10))
			http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ExampleServer is the example's HTTP server: GET /api/hello, limited per
// caller named by the X-User header, and gateway (the runtime's handler)
// for everything else, so the limiters can be inspected and reset with
// any RivetKit client or curl.
func ExampleServer(actors *rivet.Client, gateway http.Handler) http.Handler {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello, "+r.Header.Get("X-User")+"\n")
	})
	mux := http.NewServeMux()
	mux.Handle("GET /api/hello", Middleware(actors, func(r *http.Request) string { return r.Header.Get("X-User") }, hello))
	mux.Handle("/", gateway)
	return mux
}
