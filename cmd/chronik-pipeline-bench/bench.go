package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench is one run: what was started and what was measured. Steps fill it in order; a
// failed step leaves the rest empty, and the report shows what there is.
type bench struct {
	o       *options
	workDir string
	started time.Time
	machine machine
	err     error // the step that failed, if one did

	cluster   *cluster
	ingestors []*child
	ingestURL []string
	verifier  *child
	verifyURL string // host:port of its /metrics
	ready     time.Duration
	runs      []*modeRun

	// verifyWait is from the last load stopping to the verifier having read every
	// acknowledged record (or giving up at -verify-timeout).
	verifyWait     time.Duration
	verifyCaughtUp bool
	verify         *verifyResult
	verifyExit     int
	verifySummary  string

	// peakRSS and stopErrs are filled by finish, by process name.
	peakRSS  map[string]int64
	stopErrs []string
}

// machine describes where the run happened.
type machine struct {
	CPUs               int
	CPUModel, Kernel   string
	GoVersion, Git     string
	LoadStart, LoadEnd string
}

// procs are the long-running processes, nodes first.
func (b *bench) procs() []*child {
	var out []*child
	if b.cluster != nil {
		out = append(out, b.cluster.nodes...)
	}
	out = append(out, b.ingestors...)
	if b.verifier != nil {
		out = append(out, b.verifier)
	}
	return out
}

func (b *bench) run(ctx context.Context) error {
	o := b.o
	logf("building the pipeline's binaries")
	bins, err := build(ctx, filepath.Join(b.workDir, "bin"))
	if err != nil {
		return err
	}
	addrs, err := freeLoopbackAddrs(3*nodes + o.ingestors + 1)
	if err != nil {
		return err
	}
	b.cluster, err = startCluster(ctx, bins.chronik, b.workDir, nodes, addrs[:3*nodes], o.chronikArgs)
	if err != nil {
		return err
	}
	c := b.cluster
	logf("%d nodes on %s; creating topics", nodes, strings.Join(c.kafka, ","))
	topics := []string{topicHTTP}
	if o.direct {
		topics = append(topics, topicDirect)
	}
	if b.ready, err = createTopics(ctx, c.kafka, topics, o.partitions, rf, minISR); err != nil {
		return c.explain(err)
	}
	brokers := strings.Join(c.kafka, ",")
	for i := range o.ingestors {
		addr := addrs[3*nodes+i]
		args := append([]string{"-brokers", brokers, "-listen", addr, "-acks", "all", "-quiet"}, strings.Fields(o.ingestExtra)...)
		ch, err := start(b.workDir, "ingest"+strconv.Itoa(i+1), bins.ingest, args...)
		if err != nil {
			return err
		}
		b.ingestors = append(b.ingestors, ch)
		b.ingestURL = append(b.ingestURL, "http://"+addr)
		if err := ch.waitHealthy(ctx, "http://"+addr+"/healthz"); err != nil {
			return c.explain(err)
		}
	}
	var reports []string
	for _, m := range b.modes() {
		reports = append(reports, jsonPath(b.workDir, m))
	}
	b.verifyURL = addrs[len(addrs)-1]
	b.verifier, err = start(b.workDir, "verify", bins.verify, "-brokers", brokers, "-topics", strings.Join(topics, ","),
		"-group", group, "-metrics-listen", b.verifyURL, "-duration", o.timeout.String(), "-progress", "10s",
		"-json", filepath.Join(b.workDir, "verify.json"), "-load-report", strings.Join(reports, ","))
	if err != nil {
		return err
	}
	if err := b.verifier.waitHealthy(ctx, "http://"+b.verifyURL+"/healthz"); err != nil {
		return err
	}
	for i, m := range b.modes() {
		topic := topicHTTP
		if m == "direct" {
			topic = topicDirect
		}
		args := loadArgs(o, m, topic, jsonPath(b.workDir, m), i+1, c.kafka, b.ingestURL)
		args = append(args, strings.Fields(o.loadArgsExtra)...)
		logf("%s load: chronik-load %s", m, strings.Join(args, " "))
		r, err := b.runMode(ctx, bins.load, m, topic, args)
		b.runs = append(b.runs, r)
		if err != nil {
			return c.explain(err)
		}
		logf("%s load: %.0f msg/s, %d failed; recovery: %s", m, r.report.Total.MsgsPerSec, r.report.Total.RecordsFailed, recoverySummary(r, o.recovery))
	}
	return b.awaitVerifier(ctx)
}

func (b *bench) modes() []string {
	if b.o.direct {
		return []string{"http", "direct"}
	}
	return []string{"http"}
}

// runMode runs one chronik-load process and the CPU-recovery check after it.
func (b *bench) runMode(ctx context.Context, loadBin, mode, topic string, args []string) (*modeRun, error) {
	r := &modeRun{mode: mode, topic: topic, args: args, lagAtStop: -1, cpu: map[string]time.Duration{}}
	watched := b.procs()
	before := cpuOf(watched)
	busy0, total0, merr := machineCPU()
	sampler := startSampler(b.cluster.nodes, chartInterval)
	r.started = time.Now()
	ch, err := start(b.workDir, "load-"+mode, loadBin, args...)
	if err != nil {
		sampler.stop()
		return r, err
	}
	r.exitCode, err = runLoad(ctx, ch)
	r.stopped = time.Now()
	if err != nil {
		r.series = sampler.stop()
		return r, err
	}
	// The recovery check starts now; everything else waits for it.
	recovered := make(chan []nodeRecovery, 1)
	r.recoveryOffset = time.Since(r.stopped)
	go func() { recovered <- checkRecovery(ctx, b.cluster.nodes, b.o.recovery) }()
	after := cpuOf(watched)
	r.machineCores = -1
	if busy1, total1, err := machineCPU(); err == nil && merr == nil && total1 > total0 {
		r.machineCores = float64(busy1-busy0) / float64(total1-total0) * float64(runtime.NumCPU())
	}
	for i, p := range watched {
		if before[i] >= 0 && after[i] >= 0 {
			r.cpu[p.name] = after[i] - before[i]
		}
	}
	r.loadCPU, _ = ch.cpu()
	if st := ch.cmd.ProcessState; st != nil {
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			b.loadRSS(ru.Maxrss << 10)
		}
	}
	r.report, err = readLoadReport(jsonPath(b.workDir, mode))
	if err == nil {
		if p, serr := scrapeVerifier(ctx, b.verifyURL); serr == nil {
			r.lagAtStop = b.ackedSoFar(r) - p.ok
		}
	}
	r.recovery = <-recovered
	// Sample on for the chart until -idle-within has passed, so it shows the idle tail.
	if tail := time.Until(r.stopped.Add(b.o.idleWithin)); tail > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(tail):
		}
	}
	r.series = sampler.stop()
	return r, err
}

// loadRSS keeps the largest peak RSS of the load generator's runs.
func (b *bench) loadRSS(n int64) {
	if b.peakRSS == nil {
		b.peakRSS = map[string]int64{}
	}
	b.peakRSS["load"] = max(b.peakRSS["load"], n)
}

// ackedSoFar is the records acknowledged in the runs up to and including r.
func (b *bench) ackedSoFar(r *modeRun) int64 {
	var n int64
	for _, x := range b.runs {
		if x.report != nil {
			n += x.report.Total.RecordsOK
		}
	}
	return n + r.report.Total.RecordsOK
}

// awaitVerifier waits until the verifier has read every acknowledged record, stops it,
// and reads its summary.
func (b *bench) awaitVerifier(ctx context.Context) error {
	var acked int64
	for _, r := range b.runs {
		acked += r.report.Total.RecordsOK
	}
	last := b.runs[len(b.runs)-1].stopped
	deadline := time.Now().Add(b.o.verifyTimeout)
	logf("waiting for the verifier to read %d acknowledged records", acked)
	for {
		p, err := scrapeVerifier(ctx, b.verifyURL)
		if err == nil && p.ok >= acked && p.missing == 0 {
			b.verifyCaughtUp = true
			break
		}
		if b.verifier.exited() {
			return fmt.Errorf("verifier exited early: %v%s", b.verifier.err, b.verifier.logTail())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			logf("verifier: not every acknowledged record read after %v (last: %+v, %v); stopping it", b.o.verifyTimeout, p, err)
			break
		}
		time.Sleep(verifyPoll)
	}
	b.verifyWait = time.Since(last)
	if err := b.verifier.stop(); err != nil {
		return err
	}
	b.verifyExit = b.verifier.cmd.ProcessState.ExitCode()
	b.verifySummary = readOut(b.verifier)
	v, err := readVerifyResult(filepath.Join(b.workDir, "verify.json"))
	if err != nil {
		return fmt.Errorf("verifier (exit %d): %w%s", b.verifyExit, err, b.verifier.logTail())
	}
	b.verify = &v
	return nil
}

// finish reads every process's peak RSS and stops them all: the verifier and the
// ingestors first, then the nodes.
func (b *bench) finish() {
	if b.peakRSS == nil {
		b.peakRSS = map[string]int64{}
	}
	procs := b.procs()
	for _, p := range procs {
		if !p.exited() {
			if n, err := peakRSS(p.pid()); err == nil {
				b.peakRSS[p.name] = n
			}
		} else if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			b.peakRSS[p.name] = ru.Maxrss << 10 // kB
		}
	}
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p == b.verifier && p.exited() && b.verify != nil {
			continue // stopped by awaitVerifier
		}
		if err := p.stop(); err != nil {
			b.stopErrs = append(b.stopErrs, err.Error())
		}
	}
}

// failures are the reasons the run failed, none when it passed.
func (b *bench) failures() []string {
	var out []string
	if b.err != nil {
		out = append(out, "run: "+b.err.Error())
	}
	for _, e := range b.stopErrs {
		out = append(out, "stop: "+e)
	}
	if b.verify != nil {
		if b.verify.Verdict != "" {
			out = append(out, "verification: "+b.verify.Verdict)
		} else if b.verifyExit != 0 {
			out = append(out, fmt.Sprintf("verification: chronik-verify exited %d", b.verifyExit))
		}
	} else if b.err == nil {
		out = append(out, "verification: no verifier result")
	}
	for _, r := range b.runs {
		for i, n := range r.recovery {
			if !n.passed(b.o.recovery) {
				out = append(out, fmt.Sprintf("CPU recovery after the %s load: node %d %s", r.mode, i+1, recoveryText(n, r, b.o.recovery)))
			}
		}
	}
	return out
}

// cpuOf is each process's CPU time so far, -1 where unknown.
func cpuOf(procs []*child) []time.Duration {
	out := make([]time.Duration, len(procs))
	for i, p := range procs {
		d, err := p.cpu()
		if err != nil {
			d = -1
		}
		out[i] = d
	}
	return out
}

func describeMachine(ctx context.Context) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown", LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(gctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Git = strings.TrimSpace(string(out))
	}
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// finishedRuns are the runs with a load report.
func (b *bench) finishedRuns() []*modeRun {
	var out []*modeRun
	for _, r := range b.runs {
		if r.report != nil {
			out = append(out, r)
		}
	}
	return out
}
