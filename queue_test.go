package rivet_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
	"github.com/rivetgo/rivet/rivetdriver"
)

type qJob struct {
	N int `json:"n"`
}

type qState struct {
	Done []int `json:"done"`
}

var (
	qJobs  = rivet.Queue[qJob]("jobs")
	qOther = rivet.Queue[rivet.Value]("other")
)

// queueDef takes messages in actions and, once started, in a background
// worker that completes each job with twice its number.
var queueDef = rivet.NewActor("queued", rivet.Opts[qState]{
	MaxQueueSize:        4,
	MaxQueueMessageSize: 100,
	CanPublish: func(c *rivet.Ctx[qState], queue string) (bool, error) {
		var p string
		_ = c.Conn.Params().Decode(&p)
		return p != "deny", nil
	},
}).Queues(qJobs, qOther).
	Action("take", func(c *rivet.Ctx[qState]) (*qJob, error) {
		m, err := qJobs.Next(c)
		if m == nil {
			return nil, err
		}
		c.State.Done = append(c.State.Done, m.Body.N)
		return &m.Body, nil
	}).
	Action("takeAny", func(c *rivet.Ctx[qState], count int, names []string) ([]string, error) {
		ms, err := c.Queue().NextBatch(count, names...)
		out := []string{}
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out, err
	}).
	Action("takeThenFail", func(c *rivet.Ctx[qState]) error {
		if m, err := qJobs.Next(c); m == nil {
			return errors.Join(err, errors.New("no message"))
		}
		return rivet.UserError("failed after taking")
	}).
	Action("completeTwice", func(c *rivet.Ctx[qState]) (string, error) {
		m, err := qJobs.Next(c)
		if m == nil {
			return "", err
		}
		if err := m.Complete(c, "first"); err != nil {
			return "", err
		}
		err = m.Complete(c, "second")
		var re *rivet.Error
		if errors.As(err, &re) {
			return re.Group + "." + re.Code, nil
		}
		return "", errors.New("second Complete succeeded")
	}).
	Action("sendSelf", func(c *rivet.Ctx[qState], n int) error { return qJobs.Send(c, qJob{N: n}) }).
	Action("len", func(c *rivet.Ctx[qState]) (int, error) { return c.Queue().Len() }).
	Action("kv", func(c *rivet.Ctx[qState], clear bool) (int, error) {
		if clear {
			if err := c.KV().DeleteAll(); err != nil {
				return 0, err
			}
		}
		if err := c.KV().Put(rivet.K("user"), 1); err != nil {
			return 0, err
		}
		es, err := c.KV().List(rivet.KVListOptions{})
		return len(es), err
	}).
	Action("startWorker", func(c *rivet.Ctx[qState]) {
		c.RunInBackground(func(bg *rivet.Background[qState, rivet.None, rivet.None]) {
			for {
				if ok, err := bg.WaitQueue(0, "jobs"); err != nil || !ok {
					return
				}
				_ = bg.Enter(func(c *rivet.Ctx[qState]) error {
					m, err := qJobs.Next(c)
					if m == nil {
						return err
					}
					c.State.Done = append(c.State.Done, m.Body.N)
					if m.Body.N < 0 {
						return nil // received, not completed
					}
					return m.Complete(c, m.Body.N*2)
				})
			}
		})
	}).
	Action("done", func(c *rivet.Ctx[qState]) []int { return c.State.Done })

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var re *rivet.Error
	if !errors.As(err, &re) || re.Group+"."+re.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// TestQueueWire: handle.send over real HTTP in every encoding, received
// by an action, with the limits and errors of the wire.
func TestQueueWire(t *testing.T) {
	rt := startOn(t, newMem(), queueDef)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	for _, enc := range []string{"json", "cbor", "bare"} {
		t.Run(enc, func(t *testing.T) {
			ctx := ctxT(t)
			cl := rivetclient.New(srv.URL, rivetclient.WithEncoding(enc))
			defer cl.Close()
			h := cl.GetOrCreate("queued", rivet.Key{"wire-" + enc})
			res := must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: 7}))
			if res.TimedOut {
				t.Fatal("a send without wait timed out")
			}
			if got := must[*qJob](t)(rivetclient.Call[*qJob](ctx, h, "take")); got == nil || got.N != 7 {
				t.Fatalf("took %+v, want {N:7}", got)
			}
			if got := must[*qJob](t)(rivetclient.Call[*qJob](ctx, h, "take")); got != nil {
				t.Fatalf("took %+v from an empty queue", got)
			}

			// Names select messages, in queue order.
			must[rivetclient.SendResult](t)(h.Send(ctx, "other", "a"))
			must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: 1}))
			must[rivetclient.SendResult](t)(h.Send(ctx, "other", map[string]any{"b": true}))
			if got := must[[]string](t)(rivetclient.Call[[]string](ctx, h, "takeAny", 5, []string{"other"})); strings.Join(got, ",") != "other,other" {
				t.Fatalf("took %v, want other,other", got)
			}
			if got := must[[]string](t)(rivetclient.Call[[]string](ctx, h, "takeAny", 5, nil)); strings.Join(got, ",") != "jobs" {
				t.Fatalf("took %v, want jobs", got)
			}

			_, err := h.Send(ctx, "nope", 1)
			wantCode(t, err, "queue.not_declared")
			id := must[string](t)(h.ID(ctx))
			resp := must[*http.Response](t)(http.Get(srv.URL + "/gateway/" + id + "/queue/jobs"))
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("GET /queue/jobs: %d, want 405", resp.StatusCode)
			}
			_, err = h.Send(ctx, "jobs", "not a job")
			wantCode(t, err, "queue.invalid_body")
			_, err = h.Send(ctx, "other", strings.Repeat("x", 200))
			wantCode(t, err, "queue.message_too_large")
			_, err = cl.GetOrCreate("queued", rivet.Key{"wire-" + enc}, rivetclient.WithParams("deny")).Send(ctx, "jobs", qJob{N: 1})
			wantCode(t, err, "auth.forbidden")
			for i := range 4 {
				must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: i}))
			}
			_, err = h.Send(ctx, "jobs", qJob{N: 5})
			wantCode(t, err, "queue.full")
			if err == nil || !strings.Contains(err.Error(), "Queue is full. Limit is 4") {
				t.Fatalf("queue.full message: %v", err)
			}
			if n := must[int](t)(rivetclient.Call[int](ctx, h, "len")); n != 4 {
				t.Fatalf("len %d after refused sends, want 4", n)
			}
		})
	}
}

// TestQueueWaitForCompletion: a send with wait returns the response a
// background worker completed the message with; a message nobody takes
// times out and stays queued.
func TestQueueWaitForCompletion(t *testing.T) {
	ctx := ctxT(t)
	rt := startOn(t, newMem(), queueDef)
	cl := rivetclient.InProcess(rt.Handler(), rivetclient.WithEncoding("cbor"))
	defer cl.Close()
	h := cl.GetOrCreate("queued", rivet.Key{"wait"})

	res := must[rivetclient.SendResult](t)(h.Send(ctx, "other", 1, rivetclient.SendOptions{Wait: true, Timeout: 50 * time.Millisecond}))
	if !res.TimedOut {
		t.Fatalf("nobody receives 'other', got %+v", res)
	}
	if n := must[int](t)(rivetclient.Call[int](ctx, h, "len")); n != 1 {
		t.Fatalf("len %d after a timed-out send, want 1 (the message stays)", n)
	}

	must[rivet.Value](t)(h.Call(ctx, "startWorker"))
	for _, n := range []int{21, 4} {
		res = must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: n}, rivetclient.SendOptions{Wait: true, Timeout: 10 * time.Second}))
		var got int
		if err := res.Response.Decode(&got); err != nil || res.TimedOut || got != 2*n {
			t.Fatalf("send %d: %+v (%v), want response %d", n, res, err, 2*n)
		}
	}
	// Received but not completed: the sender gets completed, no response.
	res = must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: -1}, rivetclient.SendOptions{Wait: true, Timeout: 10 * time.Second}))
	if res.TimedOut || res.Response.Present() {
		t.Fatalf("uncompleted receive: %+v, want completed without response", res)
	}
	if got := must[[]int](t)(rivetclient.Call[[]int](ctx, h, "done")); len(got) != 3 {
		t.Fatalf("done %v", got)
	}
	// conn.send: over HTTP with the connection's params.
	conn := h.Connect()
	defer conn.Close()
	res = must[rivetclient.SendResult](t)(conn.Send(ctx, "jobs", qJob{N: 8}, rivetclient.SendOptions{Wait: true, Timeout: 10 * time.Second}))
	if got := 0; res.Response.Decode(&got) != nil || got != 16 {
		t.Fatalf("conn.Send: %+v, want response 16", res)
	}
}

// TestQueueTurnSemantics: a message leaves the queue only when the
// receiving turn commits; Complete works once; the queue is not part of
// the user's KV space.
func TestQueueTurnSemantics(t *testing.T) {
	ctx := ctxT(t)
	rt := startOn(t, newMem(), queueDef)
	cl := rivetclient.InProcess(rt.Handler())
	defer cl.Close()
	h := cl.GetOrCreate("queued", rivet.Key{"turns"})
	must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: 3}))
	_, err := h.Call(ctx, "takeThenFail")
	wantCode(t, err, "user.user_error")
	if n := must[int](t)(rivetclient.Call[int](ctx, h, "len")); n != 1 {
		t.Fatalf("len %d after a failed receiving turn, want 1", n)
	}
	if got := must[string](t)(rivetclient.Call[string](ctx, h, "completeTwice")); got != "queue.already_completed" {
		t.Fatalf("second Complete: %s", got)
	}
	must[rivet.Value](t)(h.Call(ctx, "sendSelf", 1))
	if n := must[int](t)(rivetclient.Call[int](ctx, h, "kv", false)); n != 1 {
		t.Fatalf("user KV lists %d keys, want 1 (queue rows hidden)", n)
	}
	if n := must[int](t)(rivetclient.Call[int](ctx, h, "kv", true)); n != 1 {
		t.Fatalf("user KV lists %d keys after DeleteAll, want 1", n)
	}
	if n := must[int](t)(rivetclient.Call[int](ctx, h, "len")); n != 1 {
		t.Fatalf("len %d after KV DeleteAll, want 1 (the queue is kept)", n)
	}
}

// TestQueueDurable: acknowledged sends survive a restart of the runtime
// on the same store and are received in order.
func TestQueueDurable(t *testing.T) {
	drivers(t, func(t *testing.T, open func(t *testing.T) rivetdriver.Driver) {
		ctx := ctxT(t)
		rt, err := rivet.Start(ctx, mustRegistry(t, queueDef), &rivet.Config{Driver: open(t), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		cl := rivetclient.InProcess(rt.Handler())
		h := cl.GetOrCreate("queued", rivet.Key{"durable"})
		for _, n := range []int{1, 2} {
			must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: n}))
		}
		_ = cl.Close()
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		rt = startOn(t, open(t), queueDef)
		cl = rivetclient.InProcess(rt.Handler())
		defer cl.Close()
		h = cl.GetOrCreate("queued", rivet.Key{"durable"})
		for _, n := range []int{1, 2} {
			if got := must[*qJob](t)(rivetclient.Call[*qJob](ctx, h, "take")); got == nil || got.N != n {
				t.Fatalf("after restart took %+v, want %d", got, n)
			}
		}
	})
}

// sleepyQueueDef starts a worker on every start (OnStart), RivetKit's
// run handler consuming its queue.
var sleepyQueueDef = rivet.NewActor("sleepyq", rivet.Opts[qState]{
	SleepTimeout: time.Second,
	OnStart: func(c *rivet.Ctx[qState]) error {
		c.RunInBackground(func(bg *rivet.Background[qState, rivet.None, rivet.None]) {
			for {
				if ok, err := bg.WaitQueue(0); err != nil || !ok {
					return
				}
				_ = bg.Enter(func(c *rivet.Ctx[qState]) error {
					m, err := qJobs.Next(c)
					if m == nil {
						return err
					}
					c.State.Done = append(c.State.Done, m.Body.N)
					return m.Complete(c, m.Body.N*2)
				})
			}
		})
		return nil
	},
}).Queues(qJobs)

// TestQueueWorkerLetsActorSleep: a worker waiting for messages does not
// keep its actor awake; a send wakes the actor, whose restarted worker
// receives it.
func TestQueueWorkerLetsActorSleep(t *testing.T) {
	ctx := ctxT(t)
	k := kit(t, newMem(), sleepyQueueDef)
	cl := rivetclient.InProcess(k.Runtime.Handler())
	defer cl.Close()
	h := cl.GetOrCreate("sleepyq", rivet.Key{"s"})
	for round, n := range []int{5, 6} {
		res := must[rivetclient.SendResult](t)(h.Send(ctx, "jobs", qJob{N: n}, rivetclient.SendOptions{Wait: true, Timeout: 10 * time.Second}))
		var got int
		if err := res.Response.Decode(&got); err != nil || res.TimedOut || got != 2*n {
			t.Fatalf("round %d: %+v (%v), want response %d", round, res, err, 2*n)
		}
		id := must[string](t)(h.ID(ctx))
		waitFor(t, func() bool {
			k.Advance(2 * time.Second)
			return !k.Awake(id)
		}, func() string { return "the actor stayed awake while its worker waited" })
	}
}

// TestQueueNamesChecked: a queue name that cannot be routed is refused
// when the registry is built.
func TestQueueNamesChecked(t *testing.T) {
	for _, name := range []string{"", "a/b", "\xff"} {
		_, err := rivet.NewRegistry(rivet.NewActor("q", rivet.Opts[qState]{}).Queues(rivet.Queue[int](name)))
		if err == nil || !strings.Contains(err.Error(), "queue") {
			t.Fatalf("queue name %q: %v, want a refusal", name, err)
		}
	}
}

// pagedDef fills its queue with many "a" messages before one "b".
var pagedDef = rivet.NewActor("paged", rivet.Opts[qState]{}).
	Queues(rivet.Queue[int]("a"), rivet.Queue[int]("b")).
	Action("fill", func(c *rivet.Ctx[qState], n int) error {
		for i := range n {
			if err := c.Queue().Send("a", i); err != nil {
				return err
			}
		}
		return c.Queue().Send("b", n)
	}).
	Action("takeB", func(c *rivet.Ctx[qState]) (int, error) {
		m, err := c.Queue().Next("b")
		if m == nil {
			return -1, err
		}
		var n int
		return n, m.Body.Decode(&n)
	}).
	Action("len", func(c *rivet.Ctx[qState]) (int, error) { return c.Queue().Len() })

// TestQueueFindsMessageBehindOthers: a receive by name finds a message
// queued behind hundreds of others (the queue is read in pages), both
// from the store and from the turn's own writes.
func TestQueueFindsMessageBehindOthers(t *testing.T) {
	ctx := ctxT(t)
	rt := startOn(t, newMem(), pagedDef)
	h := rt.Client().GetOrCreate("paged", rivet.Key{"p"})
	must[rivet.Value](t)(h.Call(ctx, "fill", 300))
	if n := must[int](t)(rivet.Call[int](ctx, h, "takeB")); n != 300 {
		t.Fatalf("takeB: %d, want 300", n)
	}
	if n := must[int](t)(rivet.Call[int](ctx, h, "len")); n != 300 {
		t.Fatalf("len: %d, want 300", n)
	}
}
