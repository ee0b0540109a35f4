package main

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics is the verifier's Prometheus registry. The poll loop publishes the checker's
// counts after each poll; a scrape exports the last published counts.
type metrics struct {
	reg *prometheus.Registry
	age prometheus.Histogram

	mu     sync.Mutex
	counts Counts // guarded by mu
	errors int64  // fetch errors; guarded by mu
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronik_verify_record_age_seconds",
			Help:    "Time from a record's producer timestamp to its check: end-to-end latency when producer and verifier share a clock.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. 33s
		}),
	}
	m.reg.MustRegister(m.age, countsCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// publish makes c the counts a scrape exports.
func (m *metrics) publish(c Counts, fetchErrors int64) {
	m.mu.Lock()
	m.counts, m.errors = c, fetchErrors
	m.mu.Unlock()
}

type countsCollector struct{ m *metrics }

var (
	descRecords = prometheus.NewDesc("chronik_verify_records_total",
		"Records read, by result: ok, duplicate, corrupt, foreign, out_of_order, untracked, redelivered (a consumer re-read, not a fault).",
		[]string{"result"}, nil)
	descBytes = prometheus.NewDesc("chronik_verify_bytes_total",
		"Value bytes of the records read (redeliveries excluded).", nil, nil)
	descMissing = prometheus.NewDesc("chronik_verify_missing_records",
		"Sequences in open gaps: below a producer's highest sequence read, not read yet. They count as lost if still missing at the end.", nil, nil)
	descLost = prometheus.NewDesc("chronik_verify_lost_records",
		"Sequences known lost: gaps given up at the gap limit during the run, every gap still open at the end.", nil, nil)
	descNotAcked = prometheus.NewDesc("chronik_verify_not_acked_records",
		"Missing sequences excused at the end because the writer reported that many records failed.", nil, nil)
	descProducers = prometheus.NewDesc("chronik_verify_producers",
		"Producers whose records have been read.", nil, nil)
	descOffsetGaps = prometheus.NewDesc("chronik_verify_offset_gaps_total",
		"Times a partition's next record came after skipped offsets.", nil, nil)
	descFetchErrors = prometheus.NewDesc("chronik_verify_fetch_errors_total",
		"Errors the consumer reported for a partition or the client.", nil, nil)
)

func (countsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descBytes, descMissing, descLost, descNotAcked, descProducers, descOffsetGaps, descFetchErrors} {
		ch <- d
	}
}

func (c countsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	n, errs := c.m.counts, c.m.errors
	c.m.mu.Unlock()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descRecords, n.OK, "ok")
	counter(descRecords, n.Duplicated, "duplicate")
	counter(descRecords, n.Corrupt, "corrupt")
	counter(descRecords, n.Foreign, "foreign")
	counter(descRecords, n.OutOfOrder, "out_of_order")
	counter(descRecords, n.Untracked, "untracked")
	counter(descRecords, n.Redelivered, "redelivered")
	counter(descBytes, n.Bytes)
	gauge(descMissing, n.Missing)
	gauge(descLost, n.Lost)
	gauge(descNotAcked, n.NotAcked)
	gauge(descProducers, int64(n.Producers))
	counter(descOffsetGaps, n.OffsetGaps)
	counter(descFetchErrors, errs)
}
