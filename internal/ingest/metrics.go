package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the ingestor's Prometheus series, all prefixed chronik_ingest_.
type metrics struct {
	// requests counts answered requests by form and HTTP status.
	requests *prometheus.CounterVec
	// latency is the time from a request's arrival to its answer, by form and status
	// class (2xx, 4xx, 5xx).
	latency *prometheus.HistogramVec
	// records counts records by outcome: ok (acknowledged), failed (refused by the
	// broker or the client) and rejected (in a request refused before producing).
	records *prometheus.CounterVec
	// recordErrors counts failed records by the error_code in their answer.
	recordErrors *prometheus.CounterVec
	// bodyBytes counts request body bytes read; recordBytes counts key+value bytes
	// acknowledged.
	bodyBytes, recordBytes prometheus.Counter
	// inflightBytes and inflightRequests are the work admitted and not yet answered;
	// queued is the requests waiting for budget.
	inflightBytes, inflightRequests, queued prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_ingest_requests_total",
			Help: "Produce requests answered, by form and HTTP status code.",
		}, []string{"form", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chronik_ingest_request_duration_seconds",
			Help:    "Time from a produce request's arrival to its answer (after the acks), by form and status class.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"form", "class"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_ingest_records_total",
			Help: "Records by outcome: ok (acknowledged), failed (error in the answer), rejected (in a request refused before producing, when its records could be counted).",
		}, []string{"result"}),
		recordErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronik_ingest_record_errors_total",
			Help: "Failed records by the error_code in their answer.",
		}, []string{"error_code"}),
		bodyBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_ingest_body_bytes_total",
			Help: "Request body bytes read.",
		}),
		recordBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_ingest_record_bytes_total",
			Help: "Key and value bytes of acknowledged records.",
		}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronik_ingest_inflight_bytes",
			Help: "In-flight budget taken by requests being worked on.",
		}),
		inflightRequests: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronik_ingest_inflight_requests",
			Help: "Requests admitted and not yet answered.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronik_ingest_queued_requests",
			Help: "Requests waiting for in-flight budget.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.latency, m.records, m.recordErrors, m.bodyBytes, m.recordBytes,
		m.inflightBytes, m.inflightRequests, m.queued,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
