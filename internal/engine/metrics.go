package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivettype"
)

// Histogram buckets, in seconds (sizes for the batch histogram).
var (
	turnBuckets     = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	latencyBuckets  = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	alarmLagBuckets = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 3600}
	batchBuckets    = prometheus.ExponentialBuckets(1, 2, 13) // 1 … 4096 (maxBatch)
)

// promMetrics are the engine's Prometheus instruments. Everything labeled
// by actor name is resolved once per name (nameMetrics), so the hot path
// never builds a label string or looks up a map.
type promMetrics struct {
	turns         *prometheus.CounterVec
	turnSeconds   *prometheus.HistogramVec
	actionSeconds *prometheus.HistogramVec
	events        *prometheus.CounterVec
	alarmLag      *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram

	names map[string]*nameMetrics
	// engine holds the overload counters (Metrics.Waiting, Refused,
	// Shed).
	engine *Metrics
	// counted is set once Start has counted the actors in the store, so
	// that actors_sleeping can be exported.
	counted atomic.Bool
}

// nameMetrics are the instruments of one actor name, resolved when the
// engine is built.
type nameMetrics struct {
	name          string
	turns         prometheus.Counter
	turnSeconds   prometheus.Observer
	actionSeconds prometheus.Observer
	events        prometheus.Counter
	alarmLag      prometheus.Observer
	commitFailed  prometheus.Counter
	// awake counts activated hosts; known counts live actors in the store
	// (counted at Start, then kept by Create and Destroy).
	awake atomic.Int64
	known atomic.Int64
}

func newPromMetrics(behaviors map[string]Behavior) *promMetrics {
	p := &promMetrics{
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rivet", Name: "turns_total",
			Help: "Turns run: actions, connection and lifecycle hooks, alarms, raw requests and messages."}, []string{"actor"}),
		turnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "rivet", Name: "turn_duration_seconds",
			Help: "Time a turn holds its actor (user code, state encoding, commit submission; not the fsync).", Buckets: turnBuckets}, []string{"actor"}),
		actionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "rivet", Name: "action_duration_seconds",
			Help: "Latency of an action call, from the call to its durable result: queueing, the turn and the commit.", Buckets: latencyBuckets}, []string{"actor"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rivet", Name: "events_total",
			Help: "Events (broadcasts and sends) handed to connections by turns that succeeded; each goes out once its commit is durable."}, []string{"actor"}),
		alarmLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "rivet", Name: "alarm_lag_seconds",
			Help: "Delay between an alarm's scheduled time and the start of its turn.", Buckets: alarmLagBuckets}, []string{"actor"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rivet", Name: "actor_errors_total",
			Help: "Failed turns and failed commits of actors, by actor name and error (group.code)."}, []string{"actor", "code"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "rivet", Name: "commit_batch_size",
			Help: "Commits written together by one store write and fsync (group commit).", Buckets: batchBuckets}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "rivet", Name: "commit_batch_duration_seconds",
			Help: "Time to write one batch of commits and make it durable (the fsync).", Buckets: latencyBuckets}),
		names: make(map[string]*nameMetrics, len(behaviors)),
	}
	for name := range behaviors {
		p.names[name] = &nameMetrics{
			name:          name,
			turns:         p.turns.WithLabelValues(name),
			turnSeconds:   p.turnSeconds.WithLabelValues(name),
			actionSeconds: p.actionSeconds.WithLabelValues(name),
			events:        p.events.WithLabelValues(name),
			alarmLag:      p.alarmLag.WithLabelValues(name),
			commitFailed:  p.errors.WithLabelValues(name, rivettype.ErrCommitFailed.Group+"."+rivettype.ErrCommitFailed.Code),
		}
	}
	return p
}

var (
	waitingDesc  = prometheus.NewDesc("rivet_mailbox_jobs", "Jobs waiting in actors' mailboxes (calls, connection changes, alarms), all actors together.", nil, nil)
	refusedDesc  = prometheus.NewDesc("rivet_calls_refused_total", "Calls refused with actor.overloaded as they arrived: the actor's mailbox was full (mailbox_size) or the calls ahead would have kept them waiting longer than max_queue_time.", nil, nil)
	shedDesc     = prometheus.NewDesc("rivet_calls_shed_total", "Calls failed with actor.overloaded without running because they waited longer than max_queue_time.", nil, nil)
	awakeDesc    = prometheus.NewDesc("rivet_actors_awake", "Actors awake in memory, by actor name.", []string{"actor"}, nil)
	sleepingDesc = prometheus.NewDesc("rivet_actors_sleeping", "Actors in the store that are not awake (created and not destroyed), by actor name.", []string{"actor"}, nil)
)

// Describe implements prometheus.Collector.
func (p *promMetrics) Describe(ch chan<- *prometheus.Desc) {
	p.turns.Describe(ch)
	p.turnSeconds.Describe(ch)
	p.actionSeconds.Describe(ch)
	p.events.Describe(ch)
	p.alarmLag.Describe(ch)
	p.errors.Describe(ch)
	p.batchSize.Describe(ch)
	p.commitSeconds.Describe(ch)
	ch <- awakeDesc
	ch <- sleepingDesc
	ch <- waitingDesc
	ch <- refusedDesc
	ch <- shedDesc
}

// Collect implements prometheus.Collector.
func (p *promMetrics) Collect(ch chan<- prometheus.Metric) {
	p.turns.Collect(ch)
	p.turnSeconds.Collect(ch)
	p.actionSeconds.Collect(ch)
	p.events.Collect(ch)
	p.alarmLag.Collect(ch)
	p.errors.Collect(ch)
	p.batchSize.Collect(ch)
	p.commitSeconds.Collect(ch)
	if m := p.engine; m != nil {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(m.Waiting.Load()))
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(m.Refused.Load()))
		ch <- prometheus.MustNewConstMetric(shedDesc, prometheus.CounterValue, float64(m.Shed.Load()))
	}
	counted := p.counted.Load()
	for name, nm := range p.names {
		awake := nm.awake.Load()
		ch <- prometheus.MustNewConstMetric(awakeDesc, prometheus.GaugeValue, float64(awake), name)
		if counted {
			ch <- prometheus.MustNewConstMetric(sleepingDesc, prometheus.GaugeValue, float64(max(nm.known.Load()-awake, 0)), name)
		}
	}
}

// Collector returns the engine's Prometheus collector: per actor name,
// turns, turn and action latency, events, alarm lag, errors, awake and
// sleeping actors; and the committer's batch size and fsync latency. The
// gateway registers it at /metrics.
func (e *Engine) Collector() prometheus.Collector { return e.prom }

// errorCode is the "group.code" of an error as metrics label it.
func errorCode(err error) string {
	if e, ok := rivettype.As(err); ok {
		return e.Group + "." + e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return rivettype.ErrActionTimedOut.Group + "." + rivettype.ErrActionTimedOut.Code
	}
	return "core.internal_error"
}

// countError counts a failed turn of the host's actor. Errors are the
// slow path: the label lookup is paid only here.
func (h *host) countError(err error) {
	if err == nil || h.nm == nil {
		return
	}
	h.e.prom.errors.WithLabelValues(h.nm.name, errorCode(err)).Inc()
}

// observeTurn counts a finished turn and its duration.
func (nm *nameMetrics) observeTurn(start time.Time) {
	if nm == nil {
		return
	}
	nm.turns.Inc()
	nm.turnSeconds.Observe(time.Since(start).Seconds())
}

// liveActorCounter is implemented by drivers that count live actors per
// name without listing their records (rivetembed walks its key index:
// about 0.1 µs per actor, against ~1 µs to list one).
type liveActorCounter interface {
	CountLiveActors(ctx context.Context, fn func(name string, n int64)) error
}

// countStoredActors counts the live actors of each registered name in
// the store, once at Start, so that actors_sleeping (known − awake) can be
// exported. Create and Destroy keep the counts afterwards. In cluster mode
// the counts cover only the actors this node created or saw at start.
func (e *Engine) countStoredActors(ctx context.Context) error {
	if c, ok := e.driver.(liveActorCounter); ok {
		err := c.CountLiveActors(ctx, func(name string, n int64) {
			if nm := e.prom.names[name]; nm != nil {
				nm.known.Add(n)
			}
		})
		if err != nil {
			return err
		}
		e.prom.counted.Store(true)
		return nil
	}
	after := ""
	for {
		recs, err := e.driver.ListActors(ctx, rivetdriver.ListActorsOptions{After: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if nm := e.prom.names[rec.Name]; nm != nil {
				nm.known.Add(1)
			}
		}
		if len(recs) < 1000 {
			break
		}
		after = recs[len(recs)-1].ID
	}
	e.prom.counted.Store(true)
	return nil
}

// ActorLog returns a logger carrying an actor's name, key and id: the
// logger of its host when it is awake, else one built from its record
// (empty name and key when the record cannot be read). It is meant for
// rare paths (errors), not per turn.
func (e *Engine) ActorLog(id string) *slog.Logger {
	e.mu.Lock()
	h := e.mu.hosts[id]
	e.mu.Unlock()
	if h != nil {
		if l := h.infoLog.Load(); l != nil {
			return l
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Second)
	defer cancel()
	rec, err := e.driver.GetActor(ctx, id)
	if err != nil {
		return e.log.With("actor", "", "key", "", "actor_id", id)
	}
	return e.log.With("actor", rec.Name, "key", keyString(rec.Key), "actor_id", id)
}
