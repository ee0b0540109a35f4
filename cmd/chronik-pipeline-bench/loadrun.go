package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxLoadReportBytes bounds the chronik-load JSON report read.
const maxLoadReportBytes = 256 << 20

// loadReport is the part of chronik-load's -json report this tool reads.
type loadReport struct {
	Command  string      `json:"command"`
	RunID    string      `json:"run_id"`
	Mode     string      `json:"mode"`
	Topic    string      `json:"topic"`
	Started  time.Time   `json:"started"`
	ElapsedS float64     `json:"elapsed_s"`
	Stages   []stageRow  `json:"stages"`
	Total    stageRow    `json:"total"`
	Errors   []errorKind `json:"errors"`
	First    []string    `json:"first_errors"`
	Timeline []struct {
		T          float64 `json:"t_s"`
		VUs        int     `json:"vus"`
		MsgsPerSec float64 `json:"msgs_per_s"`
		MBPerSec   float64 `json:"payload_mb_per_s"`
		ErrorPct   float64 `json:"error_pct"`
		P50Ms      float64 `json:"p50_ms"`
		P99Ms      float64 `json:"p99_ms"`
	} `json:"timeline"`
}

type stageRow struct {
	Stage           int     `json:"stage"`
	DurationS       float64 `json:"duration_s"`
	FromVUs         int     `json:"from_vus"`
	ToVUs           int     `json:"to_vus"`
	Batches         int64   `json:"batches"`
	RecordsOK       int64   `json:"records_ok"`
	RecordsFailed   int64   `json:"records_failed"`
	MsgsPerSec      float64 `json:"msgs_per_s"`
	PayloadMBPerSec float64 `json:"payload_mb_per_s"`
	WireMBPerSec    float64 `json:"wire_mb_per_s"`
	ErrorPct        float64 `json:"error_pct"`
	LatencyMs       struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P95 float64 `json:"p95"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"batch_latency_ms"`
}

type errorKind struct {
	Kind    string `json:"kind"`
	Records int64  `json:"records"`
}

func readLoadReport(path string) (*loadReport, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxLoadReportBytes {
		return nil, fmt.Errorf("%s: %d bytes, over %d", path, st.Size(), maxLoadReportBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &loadReport{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// modeRun is one load run (HTTP through the ingestors, or direct) and what was measured
// around it.
type modeRun struct {
	mode     string // "http" or "direct"
	topic    string
	args     []string // chronik-load's arguments
	report   *loadReport
	exitCode int // chronik-load's: 0 all acknowledged, 1 some records failed
	// started and stopped bracket the chronik-load process; stopped is "load stops" for
	// the recovery check.
	started, stopped time.Time
	// cpu is each watched process's CPU time over the run, by name; loadCPU is the load
	// generator's own.
	cpu     map[string]time.Duration
	loadCPU time.Duration
	// machineCores is the CPU every process on the machine used over the run, in
	// cores (-1: unknown): with the pipeline's own, it shows what else ran.
	machineCores float64
	// series is the broker CPU every second from the run's start to the recovery
	// check's end.
	series []cpuSample
	// lagAtStop is how many acknowledged records of this run the verifier had not read
	// when the load stopped (-1: unknown).
	lagAtStop int64
	recovery  []nodeRecovery
	// recoveryOffset is from the load stopping to the recovery check's first sample.
	recoveryOffset time.Duration
}

// loadArgs are chronik-load's arguments for a run of mode on topic.
func loadArgs(o *options, mode, topic, jsonPath string, runID int, brokers, targets []string) []string {
	args := []string{"-topic", topic, "-stages", o.stages, "-batch", strconv.Itoa(o.batch), "-size", strconv.Itoa(o.size),
		"-brokers", strings.Join(brokers, ","), "-create-topic=false", "-json", jsonPath, "-run-id", strconv.Itoa(runID)}
	if mode == "direct" {
		return append(args, "-direct", "-acks", "all", "-clients", strconv.Itoa(o.clients))
	}
	return append(args, "-target", strings.Join(targets, ","))
}

// runLoad runs chronik-load with args and waits for it, bounded by ctx. It returns the
// process's exit code: 0 or 1 are results (1: some records failed), anything else an
// error.
func runLoad(ctx context.Context, ch *child) (int, error) {
	err := ch.wait(ctx)
	if ctx.Err() != nil {
		ch.stop()
		return -1, fmt.Errorf("load generator: %w", ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return 1, nil
	default:
		return -1, fmt.Errorf("load generator %s: %v%s", ch.name, err, ch.logTail())
	}
}

// readOut is a child's stdout, "" when unreadable.
func readOut(ch *child) string {
	b, err := os.ReadFile(ch.outPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// jsonPath is where the run of mode writes its chronik-load report.
func jsonPath(dir, mode string) string { return filepath.Join(dir, "load-"+mode+".json") }
