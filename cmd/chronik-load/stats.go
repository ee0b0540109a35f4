package main

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// batchResult is the outcome of one batch a virtual user sent.
type batchResult struct {
	// end is when the answer came (or the batch failed).
	end     time.Time
	latency time.Duration
	// ok and failed count the batch's records by outcome.
	ok, failed int
	// payloadBytes is the record value bytes acknowledged; wireBytes the request body
	// bytes sent (HTTP) or the key and value bytes sent (direct).
	payloadBytes, wireBytes int64
	// failedRanges are the failed records' indexes in the batch, as ascending inclusive
	// [first, last] ranges.
	failedRanges [][2]int
	// errKind names the failure when failed > 0, like "http 503 (50003)".
	errKind string
}

// addFailed adds index i, above every index added before, to r.failedRanges.
func (r *batchResult) addFailed(i int) {
	if k := len(r.failedRanges); k > 0 && r.failedRanges[k-1][1]+1 == i {
		r.failedRanges[k-1][1] = i
		return
	}
	r.failedRanges = append(r.failedRanges, [2]int{i, i})
}

// counts is one window's totals.
type counts struct {
	batches, batchesFailed  int64
	recordsOK, recordsFail  int64
	payloadBytes, wireBytes int64
	latency                 hist
}

func (c *counts) add(r *batchResult) {
	c.batches++
	if r.failed > 0 {
		c.batchesFailed++
	}
	c.recordsOK += int64(r.ok)
	c.recordsFail += int64(r.failed)
	c.payloadBytes += r.payloadBytes
	c.wireBytes += r.wireBytes
	c.latency.add(r.latency)
}

func (c *counts) merge(o *counts) {
	c.batches += o.batches
	c.batchesFailed += o.batchesFailed
	c.recordsOK += o.recordsOK
	c.recordsFail += o.recordsFail
	c.payloadBytes += o.payloadBytes
	c.wireBytes += o.wireBytes
	c.latency.merge(&o.latency)
}

// errorPct is the failed records as a percentage of the records sent.
func (c *counts) errorPct() float64 {
	if n := c.recordsOK + c.recordsFail; n > 0 {
		return 100 * float64(c.recordsFail) / float64(n)
	}
	return 0
}

// maxErrorKinds bounds the distinct error kinds kept; further kinds count as "other".
const maxErrorKinds = 32

// stats gathers batch results from the virtual users.
type stats struct {
	started time.Time
	stages  []stage

	mu sync.Mutex
	// perStage are the totals of the batches that ended in each stage (the drain after
	// the last stage counts in the last).
	perStage []counts
	// second is the current progress window, swapped out by tick.
	second counts
	// errors counts failed records by kind. Invariant: len(errors) <= maxErrorKinds+1.
	errors map[string]int64
	// firstErrors keeps the first few error messages, to print.
	firstErrors []string
}

func newStats(started time.Time, stages []stage) *stats {
	return &stats{started: started, stages: stages, perStage: make([]counts, len(stages)), errors: map[string]int64{}}
}

// maxFirstErrors bounds the error messages kept.
const maxFirstErrors = 5

func (s *stats) record(r *batchResult, msg string) {
	i := stageAt(s.stages, r.end.Sub(s.started))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perStage[i].add(r)
	s.second.add(r)
	if r.failed == 0 {
		return
	}
	kind := r.errKind
	if _, ok := s.errors[kind]; !ok && len(s.errors) >= maxErrorKinds {
		kind = "other"
	}
	s.errors[kind] += int64(r.failed)
	if len(s.firstErrors) < maxFirstErrors {
		s.firstErrors = append(s.firstErrors, msg)
	}
}

// tick takes the current window's totals and starts a new one.
func (s *stats) tick() counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.second
	s.second = counts{}
	return c
}

// sample is one second of the timeline.
type sample struct {
	T          float64 `json:"t_s"`
	VUs        int     `json:"vus"`
	Target     int     `json:"target_vus"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	MBPerSec   float64 `json:"payload_mb_per_s"`
	ErrorPct   float64 `json:"error_pct"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	AckedTotal int64   `json:"acked_total"`
}

func newSample(t time.Duration, window time.Duration, vus, target int, c *counts, acked int64) sample {
	sec := window.Seconds()
	return sample{
		T: t.Seconds(), VUs: vus, Target: target,
		MsgsPerSec: float64(c.recordsOK) / sec,
		MBPerSec:   float64(c.payloadBytes) / 1e6 / sec,
		ErrorPct:   c.errorPct(),
		P50Ms:      ms(c.latency.quantile(0.5)),
		P99Ms:      ms(c.latency.quantile(0.99)),
		AckedTotal: acked,
	}
}

// progressLine is the one-line live view of a sample.
func (p sample) progressLine(stage, stages int) string {
	return fmt.Sprintf("%5.0fs  stage %d/%d  vus %5d/%-5d  %9.0f msg/s  %7.2f MB/s  err %6.2f%%  p50 %8.1f ms  p99 %8.1f ms  acked %d",
		p.T, stage+1, stages, p.VUs, p.Target, p.MsgsPerSec, p.MBPerSec, p.ErrorPct, p.P50Ms, p.P99Ms, p.AckedTotal)
}

// errorKinds are the error kinds by count, most first.
func (s *stats) errorKinds() []errorKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]errorKind, 0, len(s.errors))
	for k, n := range s.errors {
		out = append(out, errorKind{Kind: k, Records: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Records != out[j].Records {
			return out[i].Records > out[j].Records
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

type errorKind struct {
	Kind    string `json:"kind"`
	Records int64  `json:"records"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
