package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mana-how/mana-auth/password"
)

// metrics is the server's own registry (never the global one).
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(pool *pgxpool.Pool) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mana_auth_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mana_auth_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	m.registry.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		currentBuild().collector(),
	)
	if pool != nil {
		m.registry.MustRegister(newPoolCollector(pool))
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observe records one finished request. route is the mux pattern that
// matched ("" or the catch-all "/" for none, recorded as "unmatched" so
// that scanners cannot blow up the label set).
func (m *metrics) observe(route, method string, code int, d time.Duration) {
	if route == "" || route == "/" { // "/" is the catch-all 404
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// poolCollector exports pgxpool statistics at scrape time.
type poolCollector struct {
	pool                                         *pgxpool.Pool
	total, idle, acquired, maxConns              *prometheus.Desc
	acquireCount, emptyAcquire, canceledAcquire  *prometheus.Desc
	acquireDuration, newConns, lifetimeDestroyed *prometheus.Desc
	idleDestroyed                                *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("mana_auth_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:              pool,
		total:             d("connections", "Connections open in the runtime pool."),
		idle:              d("idle_connections", "Idle connections in the runtime pool."),
		acquired:          d("acquired_connections", "Connections in use."),
		maxConns:          d("max_connections", "Configured pool size."),
		acquireCount:      d("acquires_total", "Successful acquires."),
		emptyAcquire:      d("empty_acquires_total", "Acquires that had to wait for a connection."),
		canceledAcquire:   d("canceled_acquires_total", "Acquires canceled by their context."),
		acquireDuration:   d("acquire_duration_seconds_total", "Time spent acquiring connections."),
		newConns:          d("new_connections_total", "Connections opened."),
		lifetimeDestroyed: d("max_lifetime_destroyed_total", "Connections closed for reaching their maximum lifetime."),
		idleDestroyed:     d("max_idle_destroyed_total", "Connections closed for idling too long."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.maxConns, c.acquireCount, c.emptyAcquire,
		c.canceledAcquire, c.acquireDuration, c.newConns, c.lifetimeDestroyed, c.idleDestroyed} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.total, float64(s.TotalConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.maxConns, float64(s.MaxConns()))
	k(c.acquireCount, float64(s.AcquireCount()))
	k(c.emptyAcquire, float64(s.EmptyAcquireCount()))
	k(c.canceledAcquire, float64(s.CanceledAcquireCount()))
	k(c.acquireDuration, s.AcquireDuration().Seconds())
	k(c.newConns, float64(s.NewConnsCount()))
	k(c.lifetimeDestroyed, float64(s.MaxLifetimeDestroyCount()))
	k(c.idleDestroyed, float64(s.MaxIdleDestroyCount()))
}

// hasherCollector exports the password hasher's bounds and counters at
// scrape time: a rising shed or timed-out count means sign-ins are being
// refused with 503 for want of CPU.
type hasherCollector struct{ h *password.Hasher }

var (
	hasherSlotsDesc = prometheus.NewDesc("mana_auth_password_hash_slots",
		"Password hash computations that may run at once (one per core).", nil, nil)
	hasherQueueDesc = prometheus.NewDesc("mana_auth_password_hash_queue_limit",
		"Calls that may wait for a free hash slot; beyond it calls are shed with 503.", nil, nil)
	hasherRunningDesc = prometheus.NewDesc("mana_auth_password_hashes_running",
		"Password hash computations running now.", nil, nil)
	hasherWaitingDesc = prometheus.NewDesc("mana_auth_password_hashes_waiting",
		"Calls waiting for a free hash slot now.", nil, nil)
	hasherShedDesc = prometheus.NewDesc("mana_auth_password_hashes_shed_total",
		"Calls refused with 503 at once because every slot was busy and the queue full.", nil, nil)
	hasherTimedOutDesc = prometheus.NewDesc("mana_auth_password_hashes_timed_out_total",
		"Calls refused with 503 after waiting the longest allowed for a slot.", nil, nil)
	hasherComputedDesc = prometheus.NewDesc("mana_auth_password_hashes_total",
		"Password hash computations done (hashing, verifying, and the dummy verification of unknown accounts).", nil, nil)
	hasherDroppedDesc = prometheus.NewDesc("mana_auth_password_hash_memory_dropped_total",
		"Hash slots' working memory blocks dropped after a minute without computations (allocated again by the next one).", nil, nil)
)

func (c hasherCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hasherSlotsDesc, hasherQueueDesc, hasherRunningDesc, hasherWaitingDesc,
		hasherShedDesc, hasherTimedOutDesc, hasherComputedDesc, hasherDroppedDesc} {
		ch <- d
	}
}

func (c hasherCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.h.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(hasherSlotsDesc, float64(s.MaxConcurrent))
	g(hasherQueueDesc, float64(s.MaxQueue))
	g(hasherRunningDesc, float64(s.Running))
	g(hasherWaitingDesc, float64(s.Waiting))
	ch <- prometheus.MustNewConstMetric(hasherShedDesc, prometheus.CounterValue, float64(s.Shed))
	ch <- prometheus.MustNewConstMetric(hasherTimedOutDesc, prometheus.CounterValue, float64(s.TimedOut))
	ch <- prometheus.MustNewConstMetric(hasherComputedDesc, prometheus.CounterValue, float64(s.Computed))
	ch <- prometheus.MustNewConstMetric(hasherDroppedDesc, prometheus.CounterValue, float64(s.Dropped))
}
