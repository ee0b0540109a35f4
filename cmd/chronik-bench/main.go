// Command chronik-bench measures Chronik against kfake, franz-go's in-memory fake broker,
// with real franz-go clients on loopback, and checks that every acknowledged record comes
// back: one broker each, or with -brokers N a cluster of N each.
//
// One run:
//  1. Starts the targets once: Chronik (by default the real chronik binary, built into a
//     temp dir, as a child process with its data in a fresh temp dir, fsync on; with
//     -brokers N, N child processes in cluster mode) and kfake (by default this program
//     again, as one child process serving kfake.NewCluster with N brokers). Child
//     processes make each broker's peak RSS and CPU time its own.
//  2. For each repetition, each record size and each target in turn (Chronik, kfake,
//     Chronik, kfake, ...): creates a fresh topic, produces to it from -producers kgo
//     clients (acks=all, idempotent) until -records or -duration, consumes it back from
//     the start of every partition, verifies it, and deletes it. With -half-rate-latency
//     (or -paced-fractions) it then does the same once per fraction of -paced-fractions
//     (default 0.5: half), each on a fresh topic, with the producers paced at that
//     fraction of the rate just measured.
//  3. Prints a markdown table of the medians, the Chronik/kfake throughput ratios and the
//     peak RSS, and with -out writes the same with the command line and machine info.
//
// The exit status is non-zero when a record was lost, duplicated, reordered, misplaced or
// corrupt, when a produce failed, or when a phase could not complete; never because of a
// timing figure.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits on the flags.
const (
	maxProducers = 64
	maxRuns      = 100
	maxBrokers   = 5
	// maxPacedFractions bounds -paced-fractions: each one adds a measurement per
	// saturated one.
	maxPacedFractions = 10
	// clusterReadyTimeout bounds waiting for a cluster to accept a topic (it needs a
	// metadata leader) and for every partition of a new topic to have a leader.
	clusterReadyTimeout = 20 * time.Second
	// clusterRetryEvery is the pause between those attempts.
	clusterRetryEvery = 250 * time.Millisecond
	// adminTimeout bounds creating and deleting one topic.
	adminTimeout = 30 * time.Second
	// runTimeout bounds a whole run.
	defaultRunTimeout = 30 * time.Minute
)

func main() {
	// A kfake child: see startKfakeChild; the argument is a comma-separated list of
	// addresses, one per broker.
	if len(os.Args) == 3 && os.Args[1] == "-serve-kfake" {
		if err := serveKfake(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "chronik-bench -serve-kfake:", err)
			os.Exit(1)
		}
		return
	}
	ok, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronik-bench:", err)
		os.Exit(2)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "chronik-bench: FAILED: a record was lost, duplicated, reordered, misplaced or corrupt, a produce failed, or a phase did not complete (see above)")
		os.Exit(1)
	}
}

type options struct {
	targets []string
	brokers int
	// paced turns on the paced measurements (-half-rate-latency, or -paced-fractions given).
	paced bool
	// pacedFractions are the fractions of the saturated rate to pace at, in (0, 1], distinct,
	// largest first. Invariant: not empty.
	pacedFractions  []float64
	sizes           []int
	partitions      int
	producers       int
	records         int
	duration        time.Duration
	runs            int
	linger          time.Duration
	maxBuffered     int
	batchMaxBytes   int
	idempotent      bool
	compression     string
	externalChronik bool
	externalKfake   bool
	chronikAddr     string
	chronikBin      string
	chronikArgs     string
	out             string
	cpuProfile      string
	timeout         time.Duration
	diskProbe       bool
	commandLine     string
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik-bench", flag.ContinueOnError)
	targets := fs.String("targets", "chronik,kfake", "comma-separated targets to measure, in the order they alternate")
	sizes := fs.String("sizes", "1024,256", "comma-separated record value sizes in bytes (16 to 921600)")
	fs.IntVar(&o.brokers, "brokers", 1, "brokers per target: 1, or a cluster of up to 5 (Chronik as that many processes in cluster mode, kfake as one process with NumBrokers); topics get replication factor = brokers")
	fs.BoolVar(&o.paced, "half-rate-latency", false, "after each saturated measurement, measure produce latency with the producers paced at half the rate just measured (at each of -paced-fractions of it), on a fresh topic each, for the same limits (default true with -brokers > 1 or with -paced-fractions)")
	fractions := fs.String("paced-fractions", "0.5", fmt.Sprintf("comma-separated fractions of the saturated rate, each in (0, 1], at most %d, to measure paced produce latency at (turns on -half-rate-latency), e.g. 0.5,0.25,0.1", maxPacedFractions))
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of each benchmark topic")
	fs.IntVar(&o.producers, "producers", 4, "producer clients (kgo.Client each, on its own goroutine)")
	fs.IntVar(&o.records, "records", 1_000_000, "records per measurement across all producers; 0: only -duration limits")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "stop producing after this long; 0: only -records limits")
	fs.IntVar(&o.runs, "runs", 3, "repetitions of every (target, size) measurement; medians are reported")
	fs.DurationVar(&o.linger, "linger", 0, "kgo.ProducerLinger")
	fs.IntVar(&o.maxBuffered, "max-buffered", 0, "kgo.MaxBufferedRecords per producer (records in flight; Produce blocks beyond it); 0: kgo's default (50000)")
	fs.IntVar(&o.batchMaxBytes, "batch-max-bytes", 0, "kgo.ProducerBatchMaxBytes; 0: kgo's default (1000012)")
	fs.StringVar(&o.compression, "compression", "none", "producer batch compression: none, gzip, snappy, lz4, zstd (the values are random bytes and do not compress)")
	fs.BoolVar(&o.idempotent, "idempotent", true, "idempotent producers (false: kgo.DisableIdempotentWrite)")
	fs.BoolVar(&o.externalChronik, "external-chronik", true, "run Chronik as a child process (the chronik binary); false: in this process via net.StartBroker")
	fs.BoolVar(&o.externalKfake, "external-kfake", true, "run kfake as a child process (this program with -serve-kfake); false: in this process")
	fs.StringVar(&o.chronikAddr, "chronik-addr", "", "measure an already running Chronik broker at host:port (a cluster: comma-separated, with -brokers) instead of starting one")
	fs.StringVar(&o.chronikBin, "chronik-bin", "", "chronik binary for -external-chronik; default: go build chronik/cmd/chronik into a temp dir")
	fs.StringVar(&o.chronikArgs, "chronik-args", "", "extra space-separated flags for the chronik child, e.g. \"-wal-profile low\"")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to this file (e.g. docs/benchmarks/single-node-YYYY-MM-DD.md)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process for each phase to PREFIX-<target>-<size>-r<run>-<produce|consume>.pprof; brokers run in-process (-external-chronik=false, -external-kfake=false) are in it, labelled role=broker target=chronik|kfake")
	fs.DurationVar(&o.timeout, "timeout", defaultRunTimeout, "bound on the whole run")
	fs.BoolVar(&o.diskProbe, "disk-probe", true, "first measure the temp dir's disk: sequential write bandwidth with fsync (at most 3s, 512 MiB) and 4 KiB fsync latency")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["paced-fractions"] && set["half-rate-latency"] && !o.paced:
		return nil, errors.New("-paced-fractions turns paced measurements on: drop -half-rate-latency=false")
	case set["paced-fractions"]:
		o.paced = true
	case !set["half-rate-latency"]:
		o.paced = o.brokers > 1
	}
	var err error
	if o.pacedFractions, err = parseFractions(*fractions); err != nil {
		return nil, fmt.Errorf("-paced-fractions: %w", err)
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		if t != "chronik" && t != "kfake" {
			return nil, fmt.Errorf("-targets: unknown target %q (chronik, kfake)", t)
		}
		if slices.Contains(o.targets, t) {
			return nil, fmt.Errorf("-targets: %q named twice", t)
		}
		o.targets = append(o.targets, t)
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < minPayloadBytes || n > maxPayloadBytes {
			return nil, fmt.Errorf("-sizes: %q must be an integer from %d to %d", s, minPayloadBytes, maxPayloadBytes)
		}
		o.sizes = append(o.sizes, n)
	}
	switch {
	case o.brokers < 1 || o.brokers > maxBrokers:
		return nil, fmt.Errorf("-brokers must be 1 to %d", maxBrokers)
	case o.brokers > 1 && !o.externalChronik && o.chronikAddr == "" && slices.Contains(o.targets, "chronik"):
		return nil, errors.New("-brokers > 1 runs Chronik as child processes: drop -external-chronik=false")
	case o.partitions < 1 || o.partitions > maxPartitions:
		return nil, fmt.Errorf("-partitions must be 1 to %d", maxPartitions)
	case o.producers < 1 || o.producers > maxProducers:
		return nil, fmt.Errorf("-producers must be 1 to %d", maxProducers)
	case o.runs < 1 || o.runs > maxRuns:
		return nil, fmt.Errorf("-runs must be 1 to %d", maxRuns)
	case o.records < 0 || o.records > maxRecordsPerProducer*o.producers:
		return nil, fmt.Errorf("-records must be 0 to %d", maxRecordsPerProducer*o.producers)
	case o.duration < 0 || o.timeout <= 0:
		return nil, errors.New("-duration must be >= 0 and -timeout > 0")
	case o.records == 0 && o.duration == 0:
		return nil, errors.New("set -records or -duration (or both)")
	case o.records > 0 && o.records < o.producers:
		return nil, errors.New("-records must be at least -producers")
	case o.maxBuffered < 0:
		return nil, errors.New("-max-buffered must be >= 0")
	case o.batchMaxBytes < 0:
		return nil, errors.New("-batch-max-bytes must be >= 0")
	}
	if _, ok := compressionCodecs[o.compression]; !ok {
		return nil, fmt.Errorf("-compression: unknown codec %q", o.compression)
	}
	o.commandLine = "go run ./cmd/chronik-bench"
	for _, a := range args {
		o.commandLine += " " + shellQuote(a)
	}
	return o, nil
}

// parseFractions parses a comma-separated list of distinct fractions in (0, 1], at most
// maxPacedFractions of them, and returns them largest first.
func parseFractions(s string) ([]float64, error) {
	var fs []float64
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("empty entry in %q", s)
		}
		f, err := strconv.ParseFloat(e, 64)
		if err != nil || !(f > 0 && f <= 1) {
			return nil, fmt.Errorf("%q is not a fraction in (0, 1]", e)
		}
		if slices.Contains(fs, f) {
			return nil, fmt.Errorf("%q named twice", e)
		}
		fs = append(fs, f)
	}
	if len(fs) > maxPacedFractions {
		return nil, fmt.Errorf("%d fractions, at most %d", len(fs), maxPacedFractions)
	}
	slices.SortFunc(fs, func(a, b float64) int { return cmp.Compare(b, a) })
	return fs, nil
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.,/:+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var compressionCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func (o *options) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(compressionCodecs[o.compression]),
		kgo.ProducerLinger(o.linger),
	}
	if o.maxBuffered > 0 {
		opts = append(opts, kgo.MaxBufferedRecords(o.maxBuffered))
	}
	if !o.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if o.batchMaxBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(o.batchMaxBytes)))
	}
	return opts
}

// run does one benchmark run and reports whether every measurement verified.
func run(args []string) (bool, error) {
	o, err := parse(args)
	if err != nil {
		return false, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	tmp, err := os.MkdirTemp("", "chronik-bench-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	mach := describeMachine(ctx, tmp)
	if o.diskProbe {
		p, err := probeDisk(tmp)
		if err != nil {
			return false, fmt.Errorf("disk probe: %w", err)
		}
		mach.Disk = p.String()
		fmt.Fprintln(os.Stderr, "chronik-bench: disk:", mach.Disk)
	}

	if o.cpuProfile != "" && o.externalChronik && o.chronikAddr == "" {
		fmt.Fprintln(os.Stderr, "chronik-bench: note: Chronik runs as a child process, so -cpuprofile will not see it; add -external-chronik=false to profile the broker")
	}

	targets, err := startTargets(ctx, o, tmp)
	defer func() {
		for _, t := range targets {
			if err := t.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "chronik-bench: stop %s: %v\n", t.name, err)
			}
		}
	}()
	if err != nil {
		return false, err
	}

	rep := &report{opts: o, machine: mach, started: time.Now()}
	for _, t := range targets {
		rep.targets = append(rep.targets, targetInfo{name: t.name, mode: t.mode, addrs: t.addrs, own: len(t.procs) > 0})
	}
	failed := map[string]error{} // targets skipped after an error, by name
	for r := range o.runs {
		for _, size := range o.sizes {
			for _, t := range targets {
				if ferr := failed[t.name]; ferr != nil {
					continue
				}
				m := measure(ctx, o, t, size, r)
				rep.measurements = append(rep.measurements, m)
				fmt.Fprintln(os.Stderr, m.progressLine())
				for _, p := range m.paced {
					fmt.Fprintln(os.Stderr, p.progressLine())
				}
				if err := m.firstErr(); err != nil {
					failed[t.name] = err
				}
				if ctx.Err() != nil {
					return false, fmt.Errorf("run interrupted: %w", ctx.Err())
				}
			}
		}
	}

	for i, t := range targets {
		rss, err := t.peakRSS()
		if err != nil && len(rss) > 0 {
			fmt.Fprintf(os.Stderr, "chronik-bench: peak RSS of %s: %v\n", t.name, err)
		}
		rep.targets[i].peakRSS = rss
	}
	rep.machine.LoadEnd, rep.machine.PressureEnd = loadAverage(), cpuPressure()
	rep.took = time.Since(rep.started)
	if rep.selfPeakRSS, err = peakRSSBytes("self"); err != nil {
		return false, err
	}
	md := rep.markdown()
	fmt.Print(rep.document(md))
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(o.out, []byte(rep.document(md)), 0o644); err != nil {
			return false, err
		}
		fmt.Fprintln(os.Stderr, "chronik-bench: wrote", o.out)
	}
	return rep.ok(), nil
}

// startTargets starts the brokers -targets names. The caller stops the returned targets,
// also when err is set.
func startTargets(ctx context.Context, o *options, tmp string) ([]*target, error) {
	var ts []*target
	for _, name := range o.targets {
		var t *target
		var err error
		switch {
		case name == "chronik" && o.chronikAddr != "":
			addrs := strings.Split(o.chronikAddr, ",")
			t = &target{name: "chronik", mode: "external broker at " + o.chronikAddr, addrs: addrs, stop: func() error { return nil }}
		case name == "chronik" && o.externalChronik:
			bin := o.chronikBin
			if bin == "" {
				fmt.Fprintln(os.Stderr, "chronik-bench: building chronik/cmd/chronik")
				if bin, err = buildChronik(ctx, tmp); err != nil {
					return ts, err
				}
			}
			if o.brokers == 1 {
				t, err = startChronikChild(ctx, bin, filepath.Join(tmp, "chronik-data"), o.chronikArgs, filepath.Join(tmp, "chronik.log"))
			} else {
				t, err = startChronikCluster(ctx, bin, filepath.Join(tmp, "chronik-cluster"), o.brokers, o.chronikArgs)
			}
		case name == "chronik":
			t, err = startChronikInProcess(ctx, filepath.Join(tmp, "chronik-data"))
		case name == "kfake" && o.externalKfake:
			t, err = startKfakeChild(ctx, o.brokers, filepath.Join(tmp, "kfake.log"))
		default:
			t, err = startKfakeInProcess(ctx, o.brokers)
		}
		if err != nil {
			return ts, fmt.Errorf("start %s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "chronik-bench: %s on %s (%s)\n", t.name, strings.Join(t.addrs, ","), t.mode)
		ts = append(ts, t)
	}
	return ts, nil
}

// measure produces to, consumes from and verifies a fresh topic on t; with paced
// measurements on it then does the same once per -paced-fractions, each on a fresh topic,
// with the producers paced at that fraction of the rate the first measured. It stops at
// the first paced measurement that fails.
func measure(ctx context.Context, o *options, t *target, size, runIdx int) *measurement {
	m := newMeasurement(t.name, size, runIdx+1)
	topic := fmt.Sprintf("bench-%s-%d-r%d", t.name, size, runIdx+1)
	pprof.Do(ctx, pprof.Labels("target", t.name, "role", "client"), func(ctx context.Context) {
		m.err = measureTopic(ctx, o, t, topic, m)
		if m.err != nil || !o.paced || m.produceRate <= 0 {
			return
		}
		for _, f := range o.pacedFractions {
			p := newMeasurement(t.name, size, runIdx+1)
			p.fraction, p.paceRate = f, m.produceRate*f
			m.paced = append(m.paced, p)
			if p.err = measureTopic(ctx, o, t, topic+"-"+pacedSuffix(f), p); p.err != nil || ctx.Err() != nil {
				return
			}
		}
	})
	for _, p := range append([]*measurement{m}, m.paced...) {
		if p.err != nil {
			p.err = explainExit(t, p.err)
		}
	}
	// Keep one measurement's garbage out of the next.
	runtime.GC()
	return m
}

// explainExit adds to err the exit and log tail of a broker process that has exited, the
// likeliest cause, giving its exit a moment to land.
func explainExit(t *target, err error) error {
	if len(t.procs) == 0 {
		return err
	}
	deadline := time.Now().Add(time.Second)
	for {
		if c := t.exited(); c != nil {
			return fmt.Errorf("%w; the broker process %d exited: %v%s", err, c.cmd.Process.Pid, c.err, c.logTail())
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// measureTopic creates topic on t, produces to it (paced at m.paceRate records per second
// when that is set), consumes it back and verifies it into m, and deletes it.
func measureTopic(ctx context.Context, o *options, t *target, topic string, m *measurement) error {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(t.addrs...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := createTopic(ctx, adm, int32(o.partitions), int16(o.brokers), topic); err != nil {
		return err
	}
	defer func() {
		actx, cancel := context.WithTimeout(ctx, adminTimeout)
		defer cancel()
		if _, err := adm.DeleteTopic(actx, topic); err != nil {
			fmt.Fprintf(os.Stderr, "chronik-bench: warning: delete topic %s on %s: %v\n", topic, t.name, err)
		}
	}()
	if o.brokers > 1 {
		if err := waitLeaders(ctx, adm, topic, o.partitions); err != nil {
			return err
		}
	}

	phase := fmt.Sprintf("%s-%d-r%d", t.name, m.size, m.run)
	if m.paceRate > 0 {
		phase += "-" + pacedSuffix(m.fraction)
	}
	brokerCPU0, selfCPU0 := t.cpu(), selfCPU()
	stopProfile := o.startProfile(phase + "-produce")
	prod, err := produce(ctx, produceSpec{
		seeds: t.addrs, topic: topic, size: m.size, producers: o.producers,
		records: o.records, duration: o.duration, rate: m.paceRate, clientOpt: o.producerOpts(),
	})
	stopProfile()
	if err != nil {
		return err
	}
	if prod.acked > 0 {
		if cpu1 := t.cpu(); brokerCPU0 >= 0 && cpu1 >= 0 {
			m.brokerCPU = (cpu1 - brokerCPU0) / time.Duration(prod.acked)
		}
		// This process holds only the clients unless the broker runs in it.
		if cpu1 := selfCPU(); !t.inProcess && selfCPU0 >= 0 && cpu1 >= 0 {
			m.clientCPU = (cpu1 - selfCPU0) / time.Duration(prod.acked)
		}
	}
	m.setProduce(prod)
	stopProfile = o.startProfile(phase + "-consume")
	cons, err := consumeAndVerify(ctx, t.addrs, topic, m.size, prod)
	stopProfile()
	if cons != nil {
		m.setConsume(cons)
	}
	return err
}

// createTopic creates topic with replication factor rf, retrying retriable errors (a
// cluster answers NOT_CONTROLLER until its metadata group has a leader, and
// REQUEST_TIMED_OUT when a command does not apply in time) for up to
// clusterReadyTimeout.
func createTopic(ctx context.Context, adm *kadm.Client, partitions int32, rf int16, topic string) error {
	deadline := time.Now().Add(clusterReadyTimeout)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, adminTimeout)
		_, err := adm.CreateTopic(actx, partitions, rf, nil, topic)
		cancel()
		switch {
		case err == nil:
			return nil
		case attempt > 1 && errors.Is(err, kerr.TopicAlreadyExists):
			// An earlier attempt that timed out created it after all.
			return nil
		case !kerr.IsRetriable(err) || ctx.Err() != nil || time.Now().After(deadline):
			return fmt.Errorf("create topic %s (attempt %d): %w", topic, attempt, err)
		}
		time.Sleep(clusterRetryEvery)
	}
}

// waitLeaders waits up to clusterReadyTimeout until metadata shows a leader for each of
// the topic's partitions.
func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		missing, err := leaderless(ctx, adm, topic, partitions)
		if err == nil && missing == 0 {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("bench: topic %s: %d of %d partitions without a leader after %v (last error: %v)", topic, missing, partitions, clusterReadyTimeout, err)
		}
		time.Sleep(clusterRetryEvery)
	}
}

// leaderless counts the topic's partitions that metadata shows without a leader.
func leaderless(ctx context.Context, adm *kadm.Client, topic string, partitions int) (int, error) {
	mctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	md, err := adm.Metadata(mctx, topic)
	if err != nil {
		return partitions, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return partitions, errors.New("not in metadata")
	}
	if td.Err != nil {
		return partitions, td.Err
	}
	missing := partitions - len(td.Partitions)
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			missing++
		}
	}
	return missing, nil
}

// startProfile starts a CPU profile of one phase into -cpuprofile's PREFIX-name.pprof and
// returns the function that ends it. It does nothing without -cpuprofile; a profile that
// cannot be written is a warning, not a failure.
func (o *options) startProfile(name string) (stop func()) {
	if o.cpuProfile == "" {
		return func() {}
	}
	path := o.cpuProfile + "-" + name + ".pprof"
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chronik-bench: warning: cpu profile %s: %v\n", path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "chronik-bench: warning: cpu profile %s: %v\n", path, err)
		}
	}
}
