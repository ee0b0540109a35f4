package net

import (
	"context"
	"errors"
	gonet "net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
)

// Limits of the metrics.
const (
	// MaxPartitionSeries bounds the partitions a scrape exports one series each for; the
	// rest are counted in chronik_partitions but get no series of their own.
	MaxPartitionSeries = 10000
	// StatsTimeout bounds how long a scrape or /healthz waits for the loop.
	StatsTimeout = 2 * time.Second
	// maxUnflushed bounds the answered requests a connection's writer holds for timing
	// until its next flush; past it they are timed at once.
	maxUnflushed = 2 * MaxInflightPerConn
	// apiSlots covers every int16 API key Kafka has assigned so far; a larger key is timed
	// under api="other".
	apiSlots = 128
)

// Metrics is a broker's Prometheus instruments and the registry that holds them, with
// the Go runtime and process collectors (RSS, CPU, open files). Hand one to StartBroker in
// ServerConfig.Metrics and serve Handler: the request, byte and connection metrics are
// measured at the edge; the partition gauges are read from kafka.Node.Stats through the
// loop when scraped, so they cost nothing between scrapes and a deleted partition's series
// simply stop being exported.
//
// A Metrics follows one broker at a time: the last one started with it. Its methods are
// safe for concurrent use, and a nil *Metrics measures nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	bytesIn      *prometheus.CounterVec
	bytesOut     *prometheus.CounterVec
	decodeErrors prometheus.Counter
	connsOpen    prometheus.Gauge
	connsTotal   prometheus.Counter
	fsync        prometheus.Histogram
	fsyncErrors  prometheus.Counter
	groupCommit  prometheus.Histogram

	// apis caches each API key's instruments: a request resolves no labels.
	apis [apiSlots + 1]atomic.Pointer[apiInstruments]

	loop atomic.Pointer[Loop] // the broker the partition gauges and /healthz read
}

type apiInstruments struct {
	requests prometheus.Counter
	latency  prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

// NewMetrics creates a broker's instruments in a registry of their own.
func NewMetrics() *Metrics {
	apiLabel := []string{"api"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_requests_total", Help: "Requests decoded, by API.",
		}, apiLabel),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chronik_request_duration_seconds",
			Help:    "Time from a request's decode to its response written to the socket, by API (long polls and fsync waits included).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100µs .. 13s
		}, apiLabel),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_request_bytes_total", Help: "Bytes of request frames received (length prefix included), by API.",
		}, apiLabel),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_response_bytes_total", Help: "Bytes of response frames written (length prefix included), by API.",
		}, apiLabel),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_request_decode_errors_total", Help: "Request frames that failed to decode (each closes its connection).",
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronik_connections_open", Help: "Client connections open now.",
		}),
		connsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_connections_accepted_total", Help: "Client connections accepted.",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronik_fsync_duration_seconds",
			Help:    "Duration of a sync job (a partition's fsyncs, and its directory's when needed), from start to completion.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18), // 50µs .. 6.5s
		}),
		fsyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_fsync_errors_total", Help: "Sync jobs that failed (each fails its partition).",
		}),
		groupCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronik_group_commit_records",
			Help:    "Records (offsets) made durable by one sync job: how many appended records share an fsync. Jobs that only seal segments are not observed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 17), // 1 .. 65536
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.decodeErrors,
		m.connsOpen, m.connsTotal, m.fsync, m.fsyncErrors, m.groupCommit,
		nodeCollector{m}, peerCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics live, for a caller that adds its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics (Prometheus text or protobuf) and /healthz (200 "ok" while the
// broker's loop answers within StatsTimeout, else 503).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", m.healthz)
	return mux
}

func (m *Metrics) healthz(w http.ResponseWriter, r *http.Request) {
	l := m.loop.Load()
	if l == nil {
		http.Error(w, "no broker", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), StatsTimeout)
	defer cancel()
	if err := l.Do(ctx, func(*kafka.Node) {}); err != nil {
		http.Error(w, "loop not answering: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// ServeMetrics serves h over HTTP on ln until ctx ends.
func ServeMetrics(ctx context.Context, ln gonet.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	defer close(done)
	go func() { // ends with ctx or when Serve returns
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		case <-done:
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// watch points the partition gauges and /healthz at l.
func (m *Metrics) watch(l *Loop) {
	if m != nil {
		m.loop.Store(l)
	}
}

func (m *Metrics) api(key int16) *apiInstruments {
	slot := apiSlots
	if key >= 0 && int(key) < apiSlots {
		slot = int(key)
	}
	if a := m.apis[slot].Load(); a != nil {
		return a
	}
	name := "other"
	if slot < apiSlots {
		if name = kmsg.NameForKey(key); name == "" || name == "Unknown" {
			name = "key" + strconv.Itoa(int(key))
		}
	}
	a := &apiInstruments{
		requests: m.requests.WithLabelValues(name),
		latency:  m.latency.WithLabelValues(name),
		bytesIn:  m.bytesIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
	}
	m.apis[slot].CompareAndSwap(nil, a) // a racing twin resolved the same children
	return a
}

// now is the time for a measurement, zero when m is nil (nothing is measured).
func (m *Metrics) now() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

func (m *Metrics) connOpened() {
	if m != nil {
		m.connsTotal.Inc()
		m.connsOpen.Inc()
	}
}

func (m *Metrics) connClosed() {
	if m != nil {
		m.connsOpen.Dec()
	}
}

func (m *Metrics) decodeFailed() {
	if m != nil {
		m.decodeErrors.Inc()
	}
}

// syncStarted observes t's group-commit size. It runs on the loop goroutine, where
// t.Offsets may read the partition.
func (m *Metrics) syncStarted(t kafka.SyncTask) {
	if m == nil {
		return
	}
	if n := t.Offsets(); n > 0 {
		m.groupCommit.Observe(float64(n))
	}
}

// synced observes a sync job that started at start.
func (m *Metrics) synced(start time.Time, err error) {
	if m == nil {
		return
	}
	m.fsync.Observe(time.Since(start).Seconds())
	if err != nil {
		m.fsyncErrors.Inc()
	}
}

// newReqTimer is a connection's request timer, nil when m is.
func (m *Metrics) newReqTimer() *reqTimer {
	if m == nil {
		return nil
	}
	return &reqTimer{m: m}
}

// reqTimer times one connection's requests from decode to response written, in slots by
// Seq modulo MaxInflightPerConn. The reader fills a request's slot after taking its
// inflight token; the writer reads the slot before giving the token back. Tokens come back
// in Seq order, so the request that next reuses a slot waits for that token: a slot is
// never shared, and the inflight channel orders the accesses.
type reqTimer struct {
	m     *Metrics
	start [MaxInflightPerConn]time.Time
	api   [MaxInflightPerConn]*apiInstruments
	// unflushed are answered requests whose responses sit in the writer's buffer; the
	// writer owns it. Invariant: len(unflushed) < maxUnflushed between calls.
	unflushed []timedRequest
}

type timedRequest struct {
	api   *apiInstruments
	start time.Time
}

// now is the time a request's decode starts, zero when t is nil.
func (t *reqTimer) now() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Now()
}

// begin counts a decoded request of frameBytes and starts its clock. The reader calls it
// holding seq's inflight token.
func (t *reqTimer) begin(seq uint64, key int16, start time.Time, frameBytes int) {
	if t == nil {
		return
	}
	a := t.m.api(key)
	a.requests.Inc()
	a.bytesIn.Add(float64(frameBytes))
	i := seq % MaxInflightPerConn
	t.start[i], t.api[i] = start, a
}

// answered takes seq's response for timing. The writer calls it before giving seq's
// inflight token back.
func (t *reqTimer) answered(seq uint64) {
	if t == nil {
		return
	}
	i := seq % MaxInflightPerConn
	t.unflushed = append(t.unflushed, timedRequest{api: t.api[i], start: t.start[i]})
	t.api[i] = nil
	if len(t.unflushed) >= maxUnflushed {
		t.flushed()
	}
}

// sent counts a response frame of n bytes for API key.
func (t *reqTimer) sent(key int16, n int) {
	if t != nil {
		t.m.api(key).bytesOut.Add(float64(n))
	}
}

// flushed observes every answered request: their responses have reached the socket.
func (t *reqTimer) flushed() {
	if t == nil {
		return
	}
	now := time.Now()
	for _, r := range t.unflushed {
		if r.api != nil {
			r.api.latency.Observe(now.Sub(r.start).Seconds())
		}
	}
	clear(t.unflushed)
	t.unflushed = t.unflushed[:0]
}

// nodeCollector exports kafka.Node.Stats at scrape time.
type nodeCollector struct{ m *Metrics }

var (
	partLabels  = []string{"topic", "partition"}
	descStatsUp = prometheus.NewDesc("chronik_node_stats_up",
		"1 when the scrape read the node's stats from its loop, 0 when the loop did not answer within the timeout (the node's other gauges are then missing).", nil, nil)
	descTopics = prometheus.NewDesc("chronik_topics",
		"Topics, the internal __consumer_offsets included.", nil, nil)
	descPartitions = prometheus.NewDesc("chronik_partitions",
		"Partitions this node hosts (all of them, even past the per-partition series limit).", nil, nil)
	descLeaders         = prometheus.NewDesc("chronik_leader_partitions", "Partitions this node leads (cluster mode).", nil, nil)
	descUnderReplicated = prometheus.NewDesc("chronik_under_replicated_partitions",
		"Partitions this node leads with fewer in-sync replicas than replicas (always 0 on a single node).", nil, nil)
	descLeadershipChanges = prometheus.NewDesc("chronik_leadership_changes_total",
		"Times this node gained or lost a partition's leadership (always 0 on a single node).", nil, nil)
	descParkedFetches = prometheus.NewDesc("chronik_parked_fetches",
		"Long-polling fetch requests waiting for data.", nil, nil)
	descAwaitingSync = prometheus.NewDesc("chronik_partitions_awaiting_sync",
		"Partitions with appends not yet handed to a sync job (waiting for a group-commit window or for the running job).", nil, nil)
	descFailed = prometheus.NewDesc("chronik_partitions_failed",
		"Partitions whose storage failed; they answer KAFKA_STORAGE_ERROR.", nil, nil)
	descLogStart = prometheus.NewDesc("chronik_partition_log_start_offset",
		"First offset still in the partition's log.", partLabels, nil)
	descLogEnd = prometheus.NewDesc("chronik_partition_log_end_offset",
		"Offset the partition's next record gets.", partLabels, nil)
	descHW = prometheus.NewDesc("chronik_partition_high_watermark",
		"End of what consumers may read: the fsynced end on a single node.", partLabels, nil)
	descLogBytes = prometheus.NewDesc("chronik_partition_log_bytes",
		"Size of the partition's .log files.", partLabels, nil)
)

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStatsUp, descTopics, descPartitions, descLeaders, descUnderReplicated,
		descLeadershipChanges, descParkedFetches, descAwaitingSync, descFailed,
		descLogStart, descLogEnd, descHW, descLogBytes} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.stats()
	if !ok {
		ch <- prometheus.MustNewConstMetric(descStatsUp, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descStatsUp, 1)
	gauge(descTopics, float64(st.Topics))
	gauge(descPartitions, float64(len(st.Partitions)))
	gauge(descUnderReplicated, float64(st.UnderReplicated))
	gauge(descLeaders, float64(st.Leaders))
	ch <- prometheus.MustNewConstMetric(descLeadershipChanges, prometheus.CounterValue, float64(st.LeadershipChanges))
	gauge(descParkedFetches, float64(st.ParkedFetches))
	gauge(descAwaitingSync, float64(st.AwaitingSync))
	failed := 0
	for i, p := range st.Partitions {
		if p.Failed {
			failed++
		}
		if i >= MaxPartitionSeries {
			continue
		}
		idx := strconv.Itoa(int(p.Partition))
		gauge(descLogStart, float64(p.LogStartOffset), p.Topic, idx)
		gauge(descLogEnd, float64(p.LogEndOffset), p.Topic, idx)
		gauge(descHW, float64(p.HighWatermark), p.Topic, idx)
		gauge(descLogBytes, float64(p.Bytes), p.Topic, idx)
	}
	gauge(descFailed, float64(failed))
}

// stats reads the node's stats on its loop, waiting at most StatsTimeout.
func (c nodeCollector) stats() (kafka.NodeStats, bool) {
	l := c.m.loop.Load()
	if l == nil {
		return kafka.NodeStats{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), StatsTimeout)
	defer cancel()
	var st kafka.NodeStats
	// On a timeout fn may still run later; st is then written but never read.
	if err := l.Do(ctx, func(n *kafka.Node) { st = n.Stats() }); err != nil {
		return kafka.NodeStats{}, false
	}
	return st, true
}
