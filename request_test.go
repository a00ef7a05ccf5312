package rivet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/internal/enginetest"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type streamState struct{ Count int }

// streamHooks lets a test drive a streaming actor: each value sent on
// step makes the stream write one event; closing it ends the stream.
type streamHooks struct {
	step     chan int
	canceled chan error // the stream's context ended (bg.Context().Err())
}

func streamDef(h *streamHooks) *rivet.Actor[streamState, rivet.None, rivet.None] {
	return rivet.NewActor("streamer", rivet.Opts[streamState]{
		OnRequest: func(c *rivet.Ctx[streamState], w http.ResponseWriter, r *http.Request) error {
			switch r.URL.Path {
			case "/sse":
				c.State.Count++ // committed before the head is sent
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "event: start\ndata: %d\n\n", c.State.Count)
				return c.StreamResponse(w, func(bg *rivet.Background[streamState, rivet.None, rivet.None], w io.Writer) error {
					for {
						select {
						case n, ok := <-h.step:
							if !ok {
								return nil
							}
							var count int
							if err := bg.Enter(func(c *rivet.Ctx[streamState]) error {
								c.State.Count += n
								count = c.State.Count
								return nil
							}); err != nil {
								return err
							}
							if _, err := fmt.Fprintf(w, "data: %d\n\n", count); err != nil {
								return err
							}
						case <-bg.Context().Done():
							h.canceled <- bg.Context().Err()
							return bg.Context().Err()
						}
					}
				})
			case "/broken":
				return c.StreamResponse(w, func(_ *rivet.Background[streamState, rivet.None, rivet.None], w io.Writer) error {
					_, _ = io.WriteString(w, "partial")
					<-h.step
					return errors.New("the upstream went away")
				})
			case "/failing":
				c.State.Count = 1000
				_ = c.StreamResponse(w, func(*rivet.Background[streamState, rivet.None, rivet.None], io.Writer) error {
					panic("a stream of a failed turn ran")
				})
				return rivet.Forbidden("no stream for you")
			}
			w.WriteHeader(http.StatusNotFound)
			return nil
		},
	}).
		Action("count", func(c *rivet.Ctx[streamState]) int { return c.State.Count }).
		Action("sleep", func(c *rivet.Ctx[streamState]) { c.Sleep() })
}

func startStreamer(t *testing.T, gw rivet.GatewayConfig) (*rivet.Runtime, *httptest.Server, *streamHooks) {
	t.Helper()
	h := &streamHooks{step: make(chan int), canceled: make(chan error, 1)}
	rt, err := rivet.Start(context.Background(), mustRegistry(t, streamDef(h)), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler), Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = rt.Stop(context.Background())
	})
	return rt, srv, h
}

func streamURL(srv *httptest.Server, key, path string) string {
	return srv.URL + "/gateway/streamer/request" + path + "?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=" + key
}

// readEvent reads one Server-Sent Event's lines (up to the blank line).
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (after %q)", err, lines)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			return strings.Join(lines, "\n")
		}
		lines = append(lines, line)
	}
}

// TestStreamResponseSSE: an onRequest stream reaches the client event by
// event while the handler is still running, its writes re-enter the
// actor, and the actor serves actions meanwhile.
func TestStreamResponseSSE(t *testing.T) {
	ctx := ctxT(t)
	rt, srv, h := startStreamer(t, rivet.GatewayConfig{})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamURL(srv, "sse", "/sse"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	// The head and the turn's part of the body arrive before the stream
	// has written anything: the stream waits for h.step.
	if got := readEvent(t, br); got != "event: start\ndata: 1" {
		t.Fatalf("first event %q", got)
	}
	hd := rt.Client().GetOrCreate("streamer", rivet.Key{"sse"})
	for i, want := range []int{3, 6} {
		h.step <- i + 2
		if got := readEvent(t, br); got != fmt.Sprintf("data: %d", want) {
			t.Fatalf("event %d: %q, want data: %d", i, got, want)
		}
		// The stream does not hold the actor: an action runs while it
		// is open, and sees what the stream's turns committed.
		if n := must[int](t)(rivet.Call[int](ctx, hd, "count")); n != want {
			t.Fatalf("count %d during the stream, want %d", n, want)
		}
	}
	close(h.step)
	rest, err := io.ReadAll(br)
	if err != nil || len(rest) != 0 {
		t.Fatalf("end of stream: %q, %v; want a clean end", rest, err)
	}
}

// TestStreamResponseClientGone: a client that hangs up cancels the
// stream's context.
func TestStreamResponseClientGone(t *testing.T) {
	ctx := ctxT(t)
	_, srv, h := startStreamer(t, rivet.GatewayConfig{})
	rctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, streamURL(srv, "gone", "/sse"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readEvent(t, bufio.NewReader(resp.Body))
	cancel()
	resp.Body.Close()
	select {
	case err := <-h.canceled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stream context ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the stream's context was not canceled when the client went away")
	}
}

// TestStreamResponseActorSleeps: an actor told to sleep cancels its open
// streams; the client sees the response cut short.
func TestStreamResponseActorSleeps(t *testing.T) {
	ctx := ctxT(t)
	rt, srv, h := startStreamer(t, rivet.GatewayConfig{})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamURL(srv, "sleepy", "/sse"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)
	must[rivet.Value](t)(rt.Client().GetOrCreate("streamer", rivet.Key{"sleepy"}).Call(ctx, "sleep"))
	select {
	case <-h.canceled:
	case <-ctx.Done():
		t.Fatal("sleep did not cancel the stream")
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Fatal("a stream ended by its actor's stop looked complete to the client")
	}
}

// TestStreamResponseError: a stream that fails is cut short, so that the
// client cannot take it for a complete body; a turn that fails never
// starts its stream and answers with its error.
func TestStreamResponseError(t *testing.T) {
	ctx := ctxT(t)
	rt, srv, h := startStreamer(t, rivet.GatewayConfig{})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamURL(srv, "broken", "/broken"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("partial"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "partial" {
		t.Fatalf("read %q, %v", buf, err)
	}
	h.step <- 0
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a failed stream looked complete to the client")
	}

	resp2, err := http.Get(streamURL(srv, "failing", "/failing"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !strings.Contains(string(body), `"code":"forbidden"`) {
		t.Fatalf("failed turn: %d %s", resp2.StatusCode, body)
	}
	if n := must[int](t)(rivet.Call[int](ctx, rt.Client().GetOrCreate("streamer", rivet.Key{"failing"}), "count")); n != 0 {
		t.Fatalf("the failed turn's change was kept: count %d", n)
	}
}

// TestStreamResponseOutlivesWriteTimeout: the gateway's WriteTimeout
// bounds each write of a stream, not the whole stream.
func TestStreamResponseOutlivesWriteTimeout(t *testing.T) {
	ctx := ctxT(t)
	const wt = 100 * time.Millisecond
	_, srv, h := startStreamer(t, rivet.GatewayConfig{WriteTimeout: wt})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streamURL(srv, "slow", "/sse"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)
	for i := range 2 {
		time.Sleep(3 * wt) // idle for longer than the write timeout
		h.step <- 1
		if got := readEvent(t, br); got != fmt.Sprintf("data: %d", i+2) {
			t.Fatalf("event %q", got)
		}
	}
	close(h.step)
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("end of stream: %v", err)
	}
}

// TestEngineRunnerStreamResponse: in runner mode a streamed response
// goes through the engine's gateway. The engine 2.3.19 asks every request
// for a whole response (responseStream=false; a ResponseStart{stream}
// reaches its client as an empty body), so the runner sends the stream
// whole when it ends: the client gets every event, late. With an engine
// that accepts streams, the same test sees them as they are written.
func TestEngineRunnerStreamResponse(t *testing.T) {
	eng := enginetest.Start(t, enginetest.Options{})
	h := &streamHooks{step: make(chan int), canceled: make(chan error, 1)}
	er, err := rivet.StartEngineRunner(context.Background(), rivet.MustRegistry(streamDef(h)), &rivet.Config{
		Logger: slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Engine: rivet.EngineConfig{URL: eng.GuardURL()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = er.Stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := er.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, n := range []int{2, 3} {
			select {
			case h.step <- n:
			case <-ctx.Done():
				return
			}
		}
		close(h.step)
	}()
	url := eng.GuardURL() + "/gateway/streamer/request/sse?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=eng&rvt-crash-policy=sleep"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if want := "event: start\ndata: 1\n\ndata: 3\n\ndata: 6\n\n"; string(body) != want {
		t.Fatalf("body %q, want %q", body, want)
	}
}
