package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/rivetclient"
	"github.com/rivetgo/rivet/rivetdriver/rivetmem"
)

type meter struct {
	N int `json:"n"`
}

// metered exercises every engine metric: turns, events, errors, alarms.
var metered = rivet.NewActor("metered", rivet.Opts[meter]{}).
	Action("inc", func(c *rivet.Ctx[meter]) int {
		c.State.N++
		c.Broadcast("n", c.State.N)
		return c.State.N
	}).
	Action("refuse", func(c *rivet.Ctx[meter]) error {
		return rivet.UserError("no thanks", rivet.WithCode("refused"))
	}).
	Action("later", func(c *rivet.Ctx[meter]) error {
		_, err := c.Schedule().After(0, "inc")
		return err
	})

func startMetered(t *testing.T) string {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(metered), &rivet.Config{Driver: rivetmem.New(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Stop(ctx)
	})
	return srv.URL
}

// scrape reads /metrics and parses the text exposition.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is a series' value: a counter or gauge, or a histogram's sample
// count; -1 when the series is absent.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

func TestMetricsExposition(t *testing.T) {
	base := startMetered(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := rivetclient.New(base)
	defer cl.Close()
	h := cl.GetOrCreate("metered", rivet.Key{"m1"})
	if _, err := h.Call(ctx, "inc"); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, base)
	if v := value(before, "rivet_actors_awake", "actor", "metered"); v != 1 {
		t.Fatalf("rivet_actors_awake{actor=metered} = %v, want 1", v)
	}
	if v := value(before, "rivet_actors_sleeping", "actor", "metered"); v != 0 {
		t.Fatalf("rivet_actors_sleeping{actor=metered} = %v, want 0", v)
	}

	// A connection subscribed to "n" gets one event per inc.
	conn := h.Connect()
	defer conn.Close()
	got := make(chan int, 16)
	conn.On("n", func(args rivet.Args) {
		var n int
		_ = args.Decode(0, &n)
		got <- n
	})
	for i := 0; i < 3; i++ {
		if _, err := conn.Call(ctx, "inc"); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("events did not arrive")
		}
	}
	// Errors: a user error and an unknown action, over HTTP.
	if _, err := h.Call(ctx, "refuse"); err == nil {
		t.Fatal("refuse: no error")
	}
	if _, err := h.Call(ctx, "nope"); err == nil {
		t.Fatal("nope: no error")
	}
	// An alarm due now.
	if _, err := h.Call(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	// Its inc reaches the subscriber once the alarm's turn is durable.
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("the alarm did not fire")
	}
	after := scrape(t, base)
	if v := value(after, "rivet_alarm_lag_seconds", "actor", "metered"); v != 1 {
		t.Errorf("alarm lags observed %v times, want 1", v)
	}

	delta := func(name string, labels ...string) float64 {
		b := max(value(before, name, labels...), 0)
		return value(after, name, labels...) - b
	}
	// inc ×3, refuse, later, the alarm's inc: 6 turns at least (the
	// connection's connect hooks and the stateless calls' add more).
	if d := delta("rivet_turns_total", "actor", "metered"); d < 6 {
		t.Errorf("turns grew by %v, want ≥ 6", d)
	}
	if d := delta("rivet_turn_duration_seconds", "actor", "metered"); d < 6 {
		t.Errorf("turn durations observed %v times, want ≥ 6", d)
	}
	// inc ×3 over the connection, refuse, nope, later.
	if d := delta("rivet_action_duration_seconds", "actor", "metered"); d != 6 {
		t.Errorf("action latencies observed %v times, want 6", d)
	}
	// Three incs and the alarm's inc, each to the one subscriber.
	if d := delta("rivet_events_total", "actor", "metered"); d != 4 {
		t.Errorf("events grew by %v, want 4", d)
	}
	if v := value(after, "rivet_connections"); v != 1 {
		t.Errorf("rivet_connections = %v, want 1", v)
	}
	for _, c := range []struct {
		metric string
		labels []string
	}{
		{"rivet_errors_total", []string{"code", "user.refused"}},
		{"rivet_errors_total", []string{"code", "actor.action_not_found"}},
		{"rivet_actor_errors_total", []string{"actor", "metered", "code", "user.refused"}},
		{"rivet_actor_errors_total", []string{"actor", "metered", "code", "actor.action_not_found"}},
	} {
		if v := value(after, c.metric, c.labels...); v != 1 {
			t.Errorf("%s%v = %v, want 1", c.metric, c.labels, v)
		}
	}
	if d := delta("rivet_commits_total"); d < 4 {
		t.Errorf("commits grew by %v, want ≥ 4", d)
	}
	if v := value(after, "rivet_commit_batch_size"); v < 1 {
		t.Errorf("commit batch sizes observed %v times", v)
	}
	if v := value(after, "rivet_commit_batch_duration_seconds"); v < 1 {
		t.Errorf("commit latencies observed %v times", v)
	}

	// Asleep after an explicit sleep: awake 0, sleeping 1.
	conn.Close()
	id, err := h.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, m := do(t, "POST", base+"/actors/"+id+"/sleep", "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("sleep: %d %v", resp.StatusCode, m)
		}
		f := scrape(t, base)
		if value(f, "rivet_actors_awake", "actor", "metered") == 0 && value(f, "rivet_actors_sleeping", "actor", "metered") == 1 && value(f, "rivet_connections") == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after sleep: awake %v sleeping %v connections %v", value(f, "rivet_actors_awake", "actor", "metered"), value(f, "rivet_actors_sleeping", "actor", "metered"), value(f, "rivet_connections"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}
