// Package ingest is the HTTP ingestor of chronik-ingest: it turns JSON batches posted
// over HTTP into Kafka produce requests with franz-go, and answers each request only
// once its records are acknowledged with the configured acks.
//
// A request goes through these steps:
//
//  1. The route and Content-Type choose the form (REST Proxy v2 json or binary embedded
//     data on POST /topics/{topic}, the simple form on POST /ingest/{topic}); the topic
//     name is checked.
//  2. The request takes its Content-Length (or MaxBodyBytes when unknown) from the
//     in-flight budget, waiting up to MaxWait in arrival order; past that it gets 429.
//  3. The body is read (at most MaxBodyBytes, else 413) and decoded whole. Any fault —
//     not JSON (400), not the form or a record of the wrong type (422), too many records
//     (413) — refuses the whole request: nothing is produced, and the answer lists every
//     record at fault by index.
//  4. Unless topics are auto-created, a topic not seen to exist in the last minute is
//     looked up with one metadata request; one that does not exist is answered 404 at
//     once (and remembered for a second). Otherwise every record is handed to one shared franz-go client, and the handler waits for
//     all their acknowledgements.
//  5. The answer lists, in request order, each record's partition and offset or its
//     error: 200 when all were written, the common status (404 unknown topic, 503 for a
//     retriable failure, ...) when none was, 207 when some were.
//
// The caller owns the Server: Handler serves it, Close flushes and closes its client.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes     = 8 << 20
	DefaultMaxInflightBytes = 256 << 20
	DefaultMaxWait          = 5 * time.Second
	DefaultMaxRecords       = 10000
	DefaultProduceTimeout   = 30 * time.Second
	// healthTimeout bounds the broker check of /healthz.
	healthTimeout = 2 * time.Second
	// maxBufferedRecordsPerByte sizes franz-go's record buffer so that the in-flight
	// budget, not the client, is what makes requests wait: the smallest record ({}) is
	// two body bytes.
	maxBufferedRecordsPerByte = 2
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Brokers are the seed brokers, host:port; any broker of a cluster will do.
	Brokers []string
	// Acks is "0", "1" or "all" (the default). "all" produces idempotently.
	Acks string
	// MaxBodyBytes is the largest request body read; larger bodies get 413.
	MaxBodyBytes int64
	// MaxInflightBytes bounds the body bytes of the requests being worked on at once.
	// Invariant: MaxInflightBytes >= MaxBodyBytes.
	MaxInflightBytes int64
	// MaxWait is how long a request waits for in-flight budget before it gets 429.
	MaxWait time.Duration
	// MaxRecords is the most records in one request; more get 413.
	MaxRecords int
	// ProduceTimeout is franz-go's record delivery timeout: how long a record may wait
	// to be sent. An idempotent record already sent is waited for until it is answered.
	ProduceTimeout time.Duration
	// Linger is how long franz-go waits for more records before sending a batch.
	Linger time.Duration
	// Compression is the batch codec: none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// AutoCreateTopics lets the broker create a topic the first time it is named (when
	// the broker allows it). Off, an unknown topic is answered 404.
	AutoCreateTopics bool
	// Logger receives request failures, at most one line per second; nil discards.
	Logger *slog.Logger
	// ClientOpts are extra franz-go options, applied last.
	ClientOpts []kgo.Opt
}

var codecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func (c *Config) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("ingest: no brokers")
	}
	if c.Acks == "" {
		c.Acks = "all"
	}
	if c.Acks != "0" && c.Acks != "1" && c.Acks != "all" {
		return fmt.Errorf("ingest: acks %q: want 0, 1 or all", c.Acks)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = max(DefaultMaxInflightBytes, c.MaxBodyBytes)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if _, ok := codecs[c.Compression]; !ok {
		return fmt.Errorf("ingest: compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	switch {
	case c.MaxBodyBytes < 0 || c.MaxInflightBytes < 0 || c.MaxWait < 0 || c.MaxRecords < 0 || c.ProduceTimeout < 0 || c.Linger < 0:
		return errors.New("ingest: negative limit")
	case c.MaxInflightBytes < c.MaxBodyBytes:
		return fmt.Errorf("ingest: max in-flight bytes %d below max body bytes %d: a full-size request could never run", c.MaxInflightBytes, c.MaxBodyBytes)
	}
	return nil
}

func (c *Config) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.RecordPartitioner(newPartitioner()),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchCompression(codecs[c.Compression]),
		kgo.RecordDeliveryTimeout(c.ProduceTimeout),
		kgo.MaxBufferedBytes(int(2 * c.MaxInflightBytes)),
		kgo.MaxBufferedRecords(int(min(maxBufferedRecordsPerByte*c.MaxInflightBytes, 1<<30))),
	}
	switch c.Acks {
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	if c.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	return append(opts, c.ClientOpts...)
}

// Server is the ingestor. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	cl     *kgo.Client
	budget *budget
	m      *metrics
	reg    *prometheus.Registry
	mux    *http.ServeMux
	// topics remembers which topics exist.
	topics topics
	// lastLog is the unix nano time of the last failure logged.
	lastLog atomic.Int64
}

// New starts a Server with its own franz-go client and Prometheus registry (with Go
// runtime and process collectors). The client's goroutines live until Close.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	s := &Server{cfg: cfg, cl: cl, budget: newBudget(cfg.MaxInflightBytes), m: m, reg: reg, mux: http.NewServeMux()}
	s.mux.HandleFunc("/topics/{topic}", func(w http.ResponseWriter, r *http.Request) { s.produce(w, r, false) })
	s.mux.HandleFunc("/ingest/{topic}", func(w http.ResponseWriter, r *http.Request) { s.produce(w, r, true) })
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	return s, nil
}

// Handler serves the ingestor's routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Close waits up to ctx's deadline for buffered records to be acknowledged, then closes
// the client. Requests still running get their records failed.
func (s *Server) Close(ctx context.Context) error {
	err := s.cl.Flush(ctx)
	s.cl.Close()
	return err
}

// healthz answers 200 when a seed broker answers, else 503.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	status, body := http.StatusOK, map[string]string{"status": "ok"}
	if err := s.cl.Ping(ctx); err != nil {
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()}
	}
	if err := writeJSON(w, status, "application/json", body); err != nil {
		s.maybeLog("writing /healthz answer", "err", err)
	}
}

// request is one produce request being answered.
type request struct {
	form    Form
	ctype   string // Content-Type of the answer
	started time.Time
}

func (s *Server) produce(w http.ResponseWriter, r *http.Request, simple bool) {
	q := request{started: time.Now(), form: FormSimple, ctype: "application/json"}
	if !simple {
		q.ctype = "application/vnd.kafka.v2+json"
		q.form = FormJSON // for the labels of an early refusal
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, q, &httpError{status: http.StatusMethodNotAllowed, code: codeMethod, msg: "method " + r.Method + " not allowed; use POST"})
		return
	}
	ct := r.Header.Get("Content-Type")
	if simple && !simpleContentType(ct) {
		s.refuse(w, q, &httpError{status: http.StatusUnsupportedMediaType, code: codeMediaType, msg: "Content-Type " + ct + " not served; use application/json"})
		return
	}
	if !simple {
		f, ok := restForm(ct)
		if !ok {
			s.refuse(w, q, &httpError{status: http.StatusUnsupportedMediaType, code: codeMediaType,
				msg: "Content-Type " + ct + " not served; use application/vnd.kafka.json.v2+json, application/vnd.kafka.binary.v2+json or application/json"})
			return
		}
		q.form = f
	}
	topic := r.PathValue("topic")
	if err := checkTopic(topic); err != nil {
		s.refuse(w, q, &httpError{status: http.StatusBadRequest, code: codeTopicName, msg: err.Error()})
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.refuse(w, q, tooLarge(s.cfg.MaxBodyBytes))
		return
	}

	hold := s.cfg.MaxBodyBytes
	if r.ContentLength > 0 {
		hold = r.ContentLength
	}
	if err := s.admit(r.Context(), hold); err != nil {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, q, &httpError{status: http.StatusTooManyRequests, code: codeBusy,
			msg: fmt.Sprintf("busy: %v; waited %v for in-flight budget; retry later", err, s.cfg.MaxWait)})
		return
	}
	defer s.leave(&hold)

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	s.m.bodyBytes.Add(float64(len(body)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.refuse(w, q, tooLarge(s.cfg.MaxBodyBytes))
			return
		}
		s.refuse(w, q, &httpError{status: http.StatusBadRequest, code: codeMalformed, msg: "reading body: " + err.Error()})
		return
	}
	if keep := max(int64(len(body)), 1); keep < hold {
		s.budget.release(hold - keep)
		s.m.inflightBytes.Sub(float64(hold - keep))
		hold = keep
	}

	recs, err := decode(q.form, body, s.cfg.MaxRecords)
	if err != nil {
		s.refuse(w, q, decodeError(err))
		return
	}
	results := s.sendOrSkip(r.Context(), topic, recs)
	status, resp := answer(results, s.cfg.Acks == "0")
	s.count(results)
	s.finish(w, q, status, resp)
}

// admit takes n bytes of budget for a request, waiting at most MaxWait.
func (s *Server) admit(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MaxWait)
	defer cancel()
	s.m.queued.Inc()
	err := s.budget.acquire(ctx, n)
	s.m.queued.Dec()
	if err != nil {
		return err
	}
	s.m.inflightBytes.Add(float64(n))
	s.m.inflightRequests.Inc()
	return nil
}

// leave returns the budget a request holds.
func (s *Server) leave(hold *int64) {
	s.budget.release(*hold)
	s.m.inflightBytes.Sub(float64(*hold))
	s.m.inflightRequests.Dec()
}

// sendOrSkip is send, unless topic does not exist: then every record fails with
// errTopicMissing at once. With AutoCreateTopics the brokers decide.
func (s *Server) sendOrSkip(ctx context.Context, topic string, recs []record) []result {
	if !s.cfg.AutoCreateTopics {
		st := s.topics.state(topic, time.Now())
		if st == topicUnknown {
			st = s.lookupTopic(ctx, topic)
			s.topics.set(topic, st, time.Now())
		}
		if st == topicMissing {
			results := make([]result, len(recs))
			for i := range results {
				results[i] = result{err: errTopicMissing, bytes: len(recs[i].key) + len(recs[i].value)}
			}
			return results
		}
	}
	results := s.send(topic, recs)
	for _, r := range results {
		if errors.Is(r.err, kerr.UnknownTopicOrPartition) {
			s.topics.set(topic, topicUnknown, time.Now()) // deleted since: ask again next time
			break
		}
	}
	return results
}

// result is the fate of one record.
type result struct {
	partition int32
	offset    int64
	err       error
	bytes     int
}

// send produces recs to topic and waits for every promise. The records' context is not
// the request's: franz-go fails a whole buffered batch when its first record's context
// ends, and that batch may hold other requests' records.
func (s *Server) send(topic string, recs []record) []result {
	results := make([]result, len(recs))
	var wg sync.WaitGroup
	wg.Add(len(recs))
	for i := range recs {
		ctx := context.Background()
		var ep *explicitPartition
		if p := recs[i].partition; p >= 0 {
			ep = &explicitPartition{partition: p}
			ctx = withPartition(ctx, ep)
		}
		kr := &kgo.Record{Topic: topic, Key: recs[i].key, Value: recs[i].value}
		results[i].bytes = len(kr.Key) + len(kr.Value)
		s.cl.Produce(ctx, kr, func(kr *kgo.Record, err error) {
			if err != nil && ep != nil && ep.missing.Load() {
				err = &partitionError{partition: ep.partition, count: ep.partitions.Load()}
			}
			results[i].partition, results[i].offset, results[i].err = kr.Partition, kr.Offset, err
			wg.Done()
		})
	}
	wg.Wait()
	return results
}

// count adds results to the record metrics.
func (s *Server) count(results []result) {
	var ok, failed, okBytes int
	for _, r := range results {
		if r.err == nil {
			ok++
			okBytes += r.bytes
			continue
		}
		failed++
		code, _ := classify(r.err)
		s.m.recordErrors.WithLabelValues(strconv.Itoa(code)).Inc()
	}
	s.m.records.WithLabelValues("ok").Add(float64(ok))
	s.m.records.WithLabelValues("failed").Add(float64(failed))
	s.m.recordBytes.Add(float64(okBytes))
}

// refuse answers a request refused before producing anything.
func (s *Server) refuse(w http.ResponseWriter, q request, e *httpError) {
	if e.rejected > 0 {
		s.m.records.WithLabelValues("rejected").Add(float64(e.rejected))
	}
	s.finish(w, q, e.status, e.body())
}

func (s *Server) finish(w http.ResponseWriter, q request, status int, body any) {
	if err := writeJSON(w, status, q.ctype, body); err != nil {
		s.maybeLog("writing answer", "err", err) // the client hung up
	}
	s.m.requests.WithLabelValues(q.form.String(), strconv.Itoa(status)).Inc()
	s.m.latency.WithLabelValues(q.form.String(), strconv.Itoa(status/100)+"xx").Observe(time.Since(q.started).Seconds())
	if status >= 500 {
		s.maybeLog("request failed", "status", status, "answer", body)
	}
}

// maybeLog logs at most one line per second, so a broker outage does not flood the log.
func (s *Server) maybeLog(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.cfg.Logger.Warn(msg, args...)
}

func writeJSON(w http.ResponseWriter, status int, ctype string, body any) error {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(body)
}

// checkTopic applies Kafka's topic name rules.
func checkTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("invalid topic name %q: want 1 to 249 of [a-zA-Z0-9._-], not . or ..", t)
	}
	for _, c := range []byte(t) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid topic name %q: byte %q is not one of [a-zA-Z0-9._-]", t, c)
		}
	}
	return nil
}
