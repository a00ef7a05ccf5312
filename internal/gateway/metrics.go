package gateway

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/rivettype"
)

// metrics are the gateway's Prometheus metrics. The engine's counters are
// read at scrape time and its per-actor-name instruments are resolved once
// per name, so the hot path pays an atomic add or a histogram observation,
// never a label lookup.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	handler  http.Handler
	// byStatus caches the requests counter of each kind and status below
	// 600: a request then pays one atomic load and add, no label lookup.
	byStatus [numKinds][600]atomic.Pointer[prometheus.Counter]
}

func newMetrics(e *engine.Engine) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	em := e.Metrics()
	counter := func(name, help string, f func() uint64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rivet", Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	counter("commits_total", "Turn commits written to the store.", em.Commits.Load)
	counter("commit_batches_total", "Store writes (fsyncs); commits_total / commit_batches_total is the group-commit batch size.", em.Batches.Load)
	counter("activations_total", "Actor activations (creations and wake-ups).", em.Activations.Load)
	counter("sleeps_total", "Actors put to sleep.", em.Sleeps.Load)
	counter("alarms_total", "Scheduled actions fired.", em.Alarms.Load)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "rivet", Name: "connections", Help: "Open connections (RivetKit connections and raw WebSockets)."}, func() float64 { return float64(em.Connections.Load()) }))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rivet", Name: "gateway_requests_total", Help: "Gateway requests by kind and HTTP status (101 for WebSocket upgrades)."}, []string{"kind", "status"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rivet", Name: "errors_total", Help: "Errors the gateway answered with (HTTP error responses, WebSocket error messages and refusals), by group.code as the client sees it."}, []string{"code"})
	m.reg.MustRegister(e.Collector(), m.requests, m.errors, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// countError counts an error answered to a client, by its public
// group.code.
func (m *metrics) countError(e *rivettype.Error) {
	m.errors.WithLabelValues(e.Group + "." + e.Code).Inc()
}

// actorLog is the gateway's logger for lines about one actor: it carries
// the actor's name, key and id, as the engine's actor loggers do.
func (g *Gateway) actorLog(ref actorRef) *slog.Logger {
	return g.log.With("actor", ref.Name, "key", strings.Join(ref.Key, "/"), "actor_id", ref.ID)
}

// statusRecorder notes the status a handler wrote.
// The first write arms the write deadline, if any; once the response is
// flushed (a streamed response), every write arms it afresh, so that a
// stream may run for as long as its client keeps reading.
type statusRecorder struct {
	http.ResponseWriter
	status int
	// rc controls the connection's deadlines; writeTimeout (0: none) is
	// set where the connection has them (deadlines).
	rc           http.ResponseController
	writeTimeout time.Duration
	body         deadlineBody
	armed        bool
	streaming    bool
	// exposeAll: name the response's headers in
	// Access-Control-Expose-Headers when the head is written (cors).
	exposeAll bool
	wrote     bool
}

func (s *statusRecorder) started() {
	if !s.wrote {
		s.wrote = true
		if s.exposeAll {
			exposeHeaders(s.ResponseWriter.Header())
		}
	}
	if s.writeTimeout > 0 && (!s.armed || s.streaming) {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		s.armed = true
	}
}

func (s *statusRecorder) WriteHeader(code int) {
	s.started()
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.started()
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// FlushError sends what was written so far (http.ResponseController's
// Flush): the response is a stream from now on.
func (s *statusRecorder) FlushError() error {
	s.streaming = true
	s.started()
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController (and WebSocket hijacking) reach the
// underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *metrics) observe(kind, status int) {
	if status == 0 {
		status = http.StatusSwitchingProtocols
	}
	if status < 0 || status >= len(m.byStatus[kind]) {
		m.requests.WithLabelValues(kindNames[kind], strconv.Itoa(status)).Inc()
		return
	}
	p := m.byStatus[kind][status].Load()
	if p == nil {
		c := m.requests.WithLabelValues(kindNames[kind], strconv.Itoa(status))
		p = &c
		m.byStatus[kind][status].Store(p)
	}
	(*p).Inc()
}
