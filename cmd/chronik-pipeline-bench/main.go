// Command chronik-pipeline-bench runs the seed report's benchmark pipeline end to end on
// one machine and writes a report: a 3-node Chronik cluster, HTTP ingestors, a verifying
// consumer and the staged load generator, all on 127.0.0.1 (`make bench`).
//
// One run:
//  1. Builds cmd/chronik, chronik-ingest, chronik-load and chronik-verify once into a
//     temp dir.
//  2. Starts 3 chronik nodes in cluster mode on free ports, each with -metrics-listen and
//     its own data dir; creates two topics (one per mode) with RF 3 and
//     min.insync.replicas 2 through kadm, retrying retriable errors, and waits for a
//     leader of every partition.
//  3. Starts -ingestors chronik-ingest processes (acks=all) and one chronik-verify
//     reading both topics as a consumer group, with /metrics.
//  4. Runs chronik-load through the ingestors (HTTP), then the same stages with -direct
//     (franz-go, acks=all). After each, samples every node's CPU from /proc every 250 ms
//     until it stays under -idle-cores over a 1 s window: the report's claim is that this
//     happens within 5 s of the load stopping.
//  5. Waits until the verifier has read every acknowledged record, stops it, and reads
//     its verdict (lost, duplicated, corrupt, out of order must all be 0).
//  6. Writes the markdown report (-out) and a PNG chart beside it.
//
// The exit status is 1 when verification or the CPU-recovery check failed, or a step
// failed; the report then opens with FAILED. Failed (unacknowledged) records are
// reported, not failures: the verifier excuses them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Profiles and fixed shape.
const (
	// defaultStages is 75 s per mode, the report's ramp up and down at one machine's
	// scale: with both modes about 2.5 minutes of load.
	defaultStages = "10s:20,20s:100,20s:200,15s:100,10s:0"
	// quickStages is the -quick profile for CI: 12 s per mode.
	quickStages = "3s:10,6s:40,3s:0"
	nodes       = 3
	rf          = 3
	minISR      = 2
	topicHTTP   = "pipeline-http"
	topicDirect = "pipeline-direct"
	group       = "pipeline-bench"
	maxIngest   = 16
	// verifyPoll is how often the verifier's /metrics are read while waiting for it.
	verifyPoll = 250 * time.Millisecond
	// chartInterval is the CPU sampling period of the chart.
	chartInterval = time.Second
)

type options struct {
	stages                     string
	batch, size                int
	partitions, ingestors      int
	clients                    int
	out                        string
	idleCores                  float64
	idleWithin, idlePatience   time.Duration
	verifyTimeout, timeout     time.Duration
	chronikArgs                string
	keep                       bool
	quick                      bool
	commandLine                string
	recovery                   recoveryConfig
	direct                     bool
	loadArgsExtra, ingestExtra string
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik-pipeline-bench", flag.ContinueOnError)
	fs.StringVar(&o.stages, "stages", defaultStages, "chronik-load stages (duration:VUs,...), run once through HTTP and once direct")
	fs.BoolVar(&o.quick, "quick", false, "the short CI profile "+quickStages+" (unless -stages is given)")
	fs.IntVar(&o.batch, "batch", 100, "records per batch")
	fs.IntVar(&o.size, "size", 256, "bytes per record value")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of each topic (RF 3, min.insync.replicas 2)")
	fs.IntVar(&o.ingestors, "ingestors", 2, "chronik-ingest processes the HTTP load is spread over")
	fs.IntVar(&o.clients, "clients", 4, "franz-go clients of the direct run")
	fs.BoolVar(&o.direct, "direct", true, "also run the load with -direct (the report's \"direct Kafka\" projection)")
	fs.StringVar(&o.out, "out", "", "write the markdown report here and the PNG chart beside it (.png); default: report on stdout, no chart")
	fs.Float64Var(&o.idleCores, "idle-cores", 0.05, "CPU-recovery check: idle is at most this many cores over 1 s")
	fs.DurationVar(&o.idleWithin, "idle-within", 5*time.Second, "CPU-recovery check: pass when every node is idle within this long of the load stopping")
	fs.DurationVar(&o.idlePatience, "idle-patience", 20*time.Second, "CPU-recovery check: keep sampling up to this long, to measure a slow recovery")
	fs.DurationVar(&o.verifyTimeout, "verify-timeout", 2*time.Minute, "longest wait, after the last load, for the verifier to read every acknowledged record")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "bound on the whole run")
	fs.StringVar(&o.chronikArgs, "chronik-args", "", "extra space-separated flags for every node, e.g. \"-wal-profile high\"")
	fs.StringVar(&o.loadArgsExtra, "load-args", "", "extra space-separated flags for both chronik-load runs")
	fs.StringVar(&o.ingestExtra, "ingest-args", "", "extra space-separated flags for every chronik-ingest")
	fs.BoolVar(&o.keep, "keep", false, "keep the work dir (logs, data, JSON) even when the run passes")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if o.quick && !given["stages"] {
		o.stages = quickStages
	}
	if o.quick && !given["verify-timeout"] {
		o.verifyTimeout = time.Minute
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.ingestors < 1 || o.ingestors > maxIngest:
		return nil, fmt.Errorf("-ingestors %d: want 1 to %d", o.ingestors, maxIngest)
	case o.partitions < 1:
		return nil, errors.New("-partitions: want at least 1")
	case o.idleCores <= 0 || o.idleWithin <= 0 || o.idlePatience < o.idleWithin:
		return nil, errors.New("-idle-cores and -idle-within must be positive, -idle-patience at least -idle-within")
	case o.verifyTimeout <= 0 || o.timeout <= 0:
		return nil, errors.New("-verify-timeout and -timeout must be positive")
	}
	o.recovery = recoveryConfig{maxCores: o.idleCores, window: time.Second, interval: 250 * time.Millisecond, within: o.idleWithin, patience: o.idlePatience}
	o.commandLine = "go run ./cmd/chronik-pipeline-bench"
	for _, a := range args {
		if strings.ContainsAny(a, " \"'") {
			a = strconv.Quote(a)
		}
		o.commandLine += " " + a
	}
	return o, nil
}

func main() {
	o, err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	code := runAndReport(ctx, o)
	cancel()
	stop()
	os.Exit(code)
}

// runAndReport does the run, writes the report whatever happened, and returns the exit
// status.
func runAndReport(ctx context.Context, o *options) int {
	dir, err := os.MkdirTemp("", "chronik-pipeline-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench:", err)
		return 2
	}
	b := &bench{o: o, workDir: dir, started: time.Now(), machine: describeMachine(ctx)}
	b.err = b.run(ctx)
	b.finish()
	b.machine.LoadEnd = loadAverage()
	failures := b.failures()

	doc := b.markdown(failures)
	if o.out == "" {
		fmt.Print(doc)
	} else if err := b.write(doc); err != nil {
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench:", err)
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 || o.keep {
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench: logs, data and JSON kept in", dir)
	} else if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench:", err)
	}
	if len(failures) > 0 {
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench: FAILED:")
		for _, f := range failures {
			fmt.Fprintln(os.Stderr, "  -", f)
		}
		return 1
	}
	fmt.Fprintln(os.Stderr, "chronik-pipeline-bench: PASS")
	return 0
}

// write writes the report to o.out and the chart beside it.
func (b *bench) write(doc string) error {
	if err := os.MkdirAll(filepath.Dir(b.o.out), 0o755); err != nil {
		return err
	}
	if png := b.chartPath(); png != "" {
		f, err := os.Create(png)
		if err != nil {
			return err
		}
		err = b.chart().WritePNG(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Fprintln(os.Stderr, "chronik-pipeline-bench: wrote", png)
	}
	if err := os.WriteFile(b.o.out, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "chronik-pipeline-bench: wrote", b.o.out)
	return nil
}

// chartPath is the PNG beside -out, "" without -out or without a finished load run.
func (b *bench) chartPath() string {
	if b.o.out == "" || len(b.finishedRuns()) == 0 {
		return ""
	}
	return strings.TrimSuffix(b.o.out, filepath.Ext(b.o.out)) + ".png"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chronik-pipeline-bench: "+format+"\n", args...)
}
