package gateway

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rivetgo/rivet/internal/engine"
)

// metrics are the gateway's Prometheus metrics. The engine's counters are
// read at scrape time, so they cost the hot path nothing.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	handler  http.Handler
}

func newMetrics(e *engine.Engine) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	em := e.Metrics()
	counter := func(name, help string, f func() uint64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "rivet", Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	counter("turns_total", "Turns run (actions, hooks, alarms, raw requests and messages).", em.Turns.Load)
	counter("commits_total", "Turn commits written to the store.", em.Commits.Load)
	counter("commit_batches_total", "Store writes (fsyncs); commits_total / commit_batches_total is the group-commit batch size.", em.Batches.Load)
	counter("events_total", "Events delivered to connections.", em.Events.Load)
	counter("activations_total", "Actor activations (creations and wake-ups).", em.Activations.Load)
	counter("sleeps_total", "Actors put to sleep.", em.Sleeps.Load)
	counter("alarms_total", "Scheduled actions fired.", em.Alarms.Load)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "rivet", Name: "actors_awake", Help: "Actors awake in memory."}, func() float64 { return float64(e.AwakeCount()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "rivet", Name: "connections", Help: "Open connections (RivetKit connections and raw WebSockets)."}, func() float64 { return float64(em.Connections.Load()) }))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rivet", Name: "gateway_requests_total", Help: "Gateway requests by kind and HTTP status (101 for WebSocket upgrades)."}, []string{"kind", "status"})
	m.reg.MustRegister(m.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// statusRecorder notes the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and WebSocket hijacking) reach the
// underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *metrics) observe(kind string, status int) {
	if status == 0 {
		status = http.StatusSwitchingProtocols
	}
	m.requests.WithLabelValues(kind, strconv.Itoa(status)).Inc()
}
