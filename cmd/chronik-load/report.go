package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// report is a run's results, as printed and as written with -json.
type report struct {
	Command      string          `json:"command"`
	RunID        string          `json:"run_id"`
	Mode         string          `json:"mode"` // "ingest" or "direct"
	Targets      []string        `json:"targets,omitempty"`
	Brokers      []string        `json:"brokers,omitempty"`
	Form         string          `json:"form,omitempty"`
	Acks         string          `json:"acks,omitempty"`
	Topic        string          `json:"topic"`
	BatchRecords int             `json:"batch_records"`
	RecordBytes  int             `json:"record_bytes"`
	Started      time.Time       `json:"started"`
	ElapsedS     float64         `json:"elapsed_s"`
	Stages       []stageReport   `json:"stages"`
	Total        stageReport     `json:"total"`
	Errors       []errorKind     `json:"errors"`
	FirstErrors  []string        `json:"first_errors,omitempty"`
	Timeline     []sample        `json:"timeline"`
	Producers    []producerCount `json:"producers"`
}

// stageReport is one row of the table. Rates are over the stage's duration (the total
// row: over the whole run, drain included); latencies are of every batch that ended in
// the stage, failed ones included, as k6 counts http_req_duration.
type stageReport struct {
	Stage           int           `json:"stage"` // from 1; 0 for the total
	DurationS       float64       `json:"duration_s"`
	FromVUs         int           `json:"from_vus"`
	ToVUs           int           `json:"to_vus"`
	Batches         int64         `json:"batches"`
	BatchesFailed   int64         `json:"batches_failed"`
	RecordsOK       int64         `json:"records_ok"`
	RecordsFailed   int64         `json:"records_failed"`
	MsgsPerSec      float64       `json:"msgs_per_s"`
	PayloadMBPerSec float64       `json:"payload_mb_per_s"`
	WireMBPerSec    float64       `json:"wire_mb_per_s"`
	ErrorPct        float64       `json:"error_pct"`
	LatencyMs       latencyReport `json:"batch_latency_ms"`
}

type latencyReport struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// producerCount is what one VU's producer sent: sequences 0 .. sent-1, of which acked
// were acknowledged and failed were not (those may be gaps in the topic, or be there:
// a timed-out batch may have been written).
type producerCount struct {
	ID     string `json:"id"` // hex, as in the record header and key
	Sent   uint64 `json:"sent"`
	Acked  uint64 `json:"acked"`
	Failed uint64 `json:"failed"`
	// FailedRanges are the failed sequences as inclusive [first, last] pairs, at most
	// 1000 of them; FailedTruncated says some were left out.
	FailedRanges    [][2]uint64 `json:"failed_ranges,omitempty"`
	FailedTruncated bool        `json:"failed_truncated,omitempty"`
}

func newReport(o *options, r *runResult) *report {
	rep := &report{
		Command: o.command, RunID: fmt.Sprintf("%08x", o.runID), Mode: "ingest", Topic: o.topic,
		BatchRecords: o.batch, RecordBytes: o.size, Started: r.started, ElapsedS: r.elapsed.Seconds(),
		Errors: r.stats.errorKinds(), FirstErrors: r.stats.firstErrors, Timeline: r.timeline,
	}
	if o.direct {
		rep.Mode, rep.Brokers, rep.Acks = "direct", o.brokers, o.acks
	} else {
		rep.Targets, rep.Form = o.targets, o.form
	}
	var all counts
	for i := range o.stages {
		c := &r.stats.perStage[i]
		all.merge(c)
		rep.Stages = append(rep.Stages, row(i+1, o.stages[i].duration, startVUs(o.stages, i), o.stages[i].target, c))
	}
	rep.Total = row(0, r.elapsed, 0, peakVUs(o.stages), &all)
	for _, s := range r.slots {
		p := s.v.p
		rep.Producers = append(rep.Producers, producerCount{ID: string(p.key), Sent: p.nextSeq, Acked: p.acked, Failed: p.failed,
			FailedRanges: p.failedRanges, FailedTruncated: p.failedTruncated})
	}
	return rep
}

func row(stage int, d time.Duration, from, to int, c *counts) stageReport {
	sec := d.Seconds()
	return stageReport{
		Stage: stage, DurationS: sec, FromVUs: from, ToVUs: to,
		Batches: c.batches, BatchesFailed: c.batchesFailed, RecordsOK: c.recordsOK, RecordsFailed: c.recordsFail,
		MsgsPerSec:      float64(c.recordsOK) / sec,
		PayloadMBPerSec: float64(c.payloadBytes) / 1e6 / sec,
		WireMBPerSec:    float64(c.wireBytes) / 1e6 / sec,
		ErrorPct:        c.errorPct(),
		LatencyMs: latencyReport{
			P50: ms(c.latency.quantile(0.50)), P90: ms(c.latency.quantile(0.90)),
			P95: ms(c.latency.quantile(0.95)), P99: ms(c.latency.quantile(0.99)), Max: ms(c.latency.max),
		},
	}
}

// markdown is the report's table, like the seed report's.
func (r *report) markdown() string {
	var b strings.Builder
	target := strings.Join(r.Targets, ", ")
	if r.Mode == "direct" {
		target = "franz-go acks=" + r.Acks + " to " + strings.Join(r.Brokers, ", ")
	} else {
		target = r.Form + " form to " + target
	}
	fmt.Fprintf(&b, "\nchronik-load: %s, topic %s, %d records x %d B per batch, run %s\n\n", target, r.Topic, r.BatchRecords, r.RecordBytes, r.RunID)
	b.WriteString("| stage | duration | VUs | batches | messages | msg/s | MB/s | wire MB/s | errors | p50 | p90 | p95 | p99 |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Stages {
		b.WriteString(s.markdownRow(strconv.Itoa(s.Stage), fmt.Sprintf("%d→%d", s.FromVUs, s.ToVUs)))
	}
	b.WriteString(r.Total.markdownRow("**total**", fmt.Sprintf("peak %d", r.Total.ToVUs)))
	if len(r.Errors) > 0 {
		b.WriteString("\nfailed records by kind:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  %-40s %d\n", e.Kind, e.Records)
		}
		for _, m := range r.FirstErrors {
			fmt.Fprintf(&b, "  e.g. %s\n", m)
		}
	}
	return b.String()
}

func (s stageReport) markdownRow(name, vus string) string {
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.2f%% | %s | %s | %s | %s |\n",
		name, time.Duration(s.DurationS*float64(time.Second)).Round(100*time.Millisecond), vus,
		thousands(s.Batches), thousands(s.RecordsOK+s.RecordsFailed), thousands(int64(s.MsgsPerSec+0.5)),
		s.PayloadMBPerSec, s.WireMBPerSec, s.ErrorPct,
		fmtMs(s.LatencyMs.P50), fmtMs(s.LatencyMs.P90), fmtMs(s.LatencyMs.P95), fmtMs(s.LatencyMs.P99))
}

// fmtMs prints a latency in ms, or in s from a second up.
func fmtMs(x float64) string {
	if x >= 1000 {
		return fmt.Sprintf("%.2f s", x/1000)
	}
	return fmt.Sprintf("%.1f ms", x)
}

// thousands prints n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (r *report) writeJSON(path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}
