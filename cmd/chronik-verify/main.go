// Command chronik-verify reads topics written by chronik-load as a consumer group member
// and verifies every record, not just counts: each value is a self-checking load record
// (internal/loadrec: producer id, sequence, length, CRC-32C), keyed by producer, so each
// producer's records sit in one partition in sequence order. It reports records
//
//   - lost: a producer's sequence missing below its highest sequence read (or below the
//     count chronik-load's -load-report says it sent), still missing at the end, less the
//     records the writer reported failed;
//   - duplicated: a sequence read a second time, at another offset;
//   - corrupt: failing the record's length, checksum or syntax;
//   - out of order: read after a higher sequence of its producer in the same partition;
//
// exposes the tallies on /metrics while it runs, prints a summary, and exits 1 when
// anything is wrong (2 on a usage or connection error).
//
// Memory is bounded: per producer it keeps the contiguous high-water sequence and at most
// MaxGapsPerProducer missing ranges; per partition the next offset.
//
// Usage:
//
//	chronik-verify -brokers 127.0.0.1:9092 -topics load -idle-exit 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	gonet "net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	config
	metricsListen string
	jsonPath      string
	minRecords    int64
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	topics := fs.String("topics", "", "comma-separated topics to read (required)")
	fs.StringVar(&o.group, "group", "chronik-verify", "consumer group; a new group reads from the start of each partition")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics and /healthz on this address, e.g. 127.0.0.1:9645 (default: off)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: no limit)")
	fs.DurationVar(&o.idleExit, "idle-exit", 0, "stop once no record has arrived for this long after the group assigned partitions (0: never)")
	fs.BoolVar(&o.fromZero, "from-zero", true, "expect every producer's sequences from 0; false when the group resumes mid-stream")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "print a progress line this often on stderr (0: never)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the summary as JSON to this file")
	fs.StringVar(&o.loadReport, "load-report", "", "chronik-load's JSON report, read at the end: a producer's missing tail counts as lost, and records it reports failed are excused; several comma-separated, one per load run (each with its own -run-id)")
	fs.Int64Var(&o.minRecords, "min-records", 1, "fail unless at least this many records were read")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.brokers = splitList(*brokers)
	o.topics = splitList(*topics)
	if len(o.topics) == 0 {
		return nil, errors.New("-topics is required")
	}
	if len(o.brokers) == 0 {
		return nil, errors.New("-brokers is empty")
	}
	if o.duration == 0 && o.idleExit == 0 {
		fmt.Fprintln(stderr, "chronik-verify: no -duration or -idle-exit: running until interrupted")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// run verifies as args say and returns the exit code: 0 all good, 1 faults found, 2 the
// run itself failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chronik-verify:", err)
		return 2
	}
	m := newMetrics()
	if o.metricsListen != "" {
		ln, err := gonet.Listen("tcp", o.metricsListen)
		if err != nil {
			fmt.Fprintln(stderr, "chronik-verify: metrics:", err)
			return 2
		}
		mctx, stopMetrics := context.WithCancel(ctx)
		served := make(chan struct{})
		defer func() { stopMetrics(); <-served }()
		go func() { // ends when run returns
			defer close(served)
			if err := serveHTTP(mctx, ln, m); err != nil {
				fmt.Fprintln(stderr, "chronik-verify: metrics:", err)
			}
		}()
	}
	r, err := verify(ctx, o.config, m, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "chronik-verify:", err)
		return 2
	}
	printSummary(stdout, o.config, r, o.minRecords)
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, r, o.minRecords); err != nil {
			fmt.Fprintln(stderr, "chronik-verify: json:", err)
			return 2
		}
	}
	if verdict(r, o.minRecords) != "" {
		return 1
	}
	return 0
}

// serveHTTP serves /metrics and /healthz on ln until ctx ends.
func serveHTTP(ctx context.Context, ln gonet.Listener, m *metrics) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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
