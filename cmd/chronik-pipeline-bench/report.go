package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func (b *bench) markdown(failures []string) string {
	o := b.o
	var w strings.Builder
	fmt.Fprintf(&w, "# Pipeline benchmark: 3-node cluster, HTTP ingestors and direct, %s\n\n", b.started.UTC().Format("2006-01-02"))
	if len(failures) > 0 {
		w.WriteString("## **FAILED**\n\n")
		for _, f := range failures {
			fmt.Fprintf(&w, "- **%s**\n", oneLine(f))
		}
		w.WriteString("\n")
		for _, f := range failures {
			if strings.Contains(f, "\n") {
				fmt.Fprintf(&w, "```\n%s\n```\n\n", strings.TrimSpace(f))
			}
		}
	} else {
		fmt.Fprintf(&w, "**PASS**: the verifier read every acknowledged record back once, intact and in order; every node's CPU was back under %g%% of a core within %v of each load stopping.\n\n", 100*o.idleCores, o.idleWithin)
	}
	fmt.Fprintf(&w, "Command (from the repository root; `make bench` runs it with `-out docs/benchmarks/pipeline-$(date -u +%%F).md`):\n\n```\n%s\n```\n\n", o.commandLine)
	m := b.machine
	fmt.Fprintf(&w, "Machine: %d CPUs (%s), Linux %s, %s, chronik at `%s`. Load average (1/5/15 min) at start: **%s**; at end: **%s**. "+
		"The three brokers, the ingestors, the verifier and the load generator all share these CPUs (and the machine with whatever else runs on it), "+
		"so these are one machine's figures, not a cluster's.\n\n", m.CPUs, m.CPUModel, m.Kernel, m.GoVersion, m.Git, m.LoadStart, m.LoadEnd)
	b.writeSetup(&w)
	runs := b.finishedRuns()
	if len(runs) > 0 {
		b.writeResults(&w, runs)
	}
	b.writeVerification(&w)
	if len(runs) > 0 {
		b.writeResources(&w, runs)
		b.writeRecovery(&w, runs)
	}
	if p := b.chartPath(); p != "" {
		name := p[strings.LastIndexByte(p, '/')+1:]
		fmt.Fprintf(&w, "## Over time\n\n![msg/s, batch latency and broker CPU over time, HTTP and direct](%s)\n\n", name)
		w.WriteString("Top: acknowledged records per second. Middle: batch latency per second, p99 solid, p50 dashed. " +
			"Bottom: CPU of the three brokers together, in % of one core, every second through the load and the recovery check after it. " +
			"x: seconds since each load run began (the runs were one after the other).\n\n")
	}
	return w.String()
}

func (b *bench) writeSetup(w *strings.Builder) {
	o := b.o
	w.WriteString("## Set-up\n\n| parameter | value |\n|---|---|\n")
	extra := ""
	if o.chronikArgs != "" {
		extra = ", plus `" + o.chronikArgs + "`"
	}
	rows := [][2]string{
		{"brokers", fmt.Sprintf("%d `chronik` processes in cluster mode on 127.0.0.1, fresh data dirs under %s, `-metrics-listen` on each", nodes, tempFS(b.workDir))},
		{"replication factor", strconv.Itoa(rf)},
		{"min.insync.replicas", strconv.Itoa(minISR)},
		{"acks", "all (idempotent): an answer means a quorum has fsynced the batch"},
		{"broker flags", "defaults (WAL profile `immediate`: fsync before the answer, group commit while one runs)" + extra},
		{"topics", fmt.Sprintf("`%s` and `%s`, %d partitions each, created through kadm", topicHTTP, topicDirect, o.partitions)},
		{"ingestors", fmt.Sprintf("%d `chronik-ingest -acks all`; VU *i* posts to ingestor *i* mod %d (simple form)", o.ingestors, o.ingestors)},
		{"load", fmt.Sprintf("`chronik-load`, stages `%s`, %d records of %d B per batch; then the same with `-direct` (%d franz-go clients)", o.stages, o.batch, o.size, o.clients)},
		{"verifier", fmt.Sprintf("one `chronik-verify` in group `%s` reading both topics while the load runs, `-load-report` of both runs", group)},
	}
	if !o.direct {
		rows[7][1] = fmt.Sprintf("`chronik-load`, stages `%s`, %d records of %d B per batch (no direct run)", o.stages, o.batch, o.size)
	}
	if o.loadArgsExtra != "" {
		rows[7][1] += ", plus `" + o.loadArgsExtra + "`"
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", r[0], r[1])
	}
	if b.ready > 0 {
		fmt.Fprintf(w, "\nEvery partition of both topics had a leader %v after the first CreateTopics.\n", b.ready.Round(time.Millisecond))
	}
	w.WriteString("\n")
}

func modeName(mode string, ingestors int) string {
	if mode == "direct" {
		return "direct (franz-go)"
	}
	return fmt.Sprintf("HTTP (%d ingestors)", ingestors)
}

func (b *bench) writeResults(w *strings.Builder, runs []*modeRun) {
	w.WriteString("## Results\n\n")
	w.WriteString("| pipeline | messages/s | MB/s | wire MB/s | errors | p50 | p90 | p95 | p99 | acknowledged |\n")
	w.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		t := r.report.Total
		fmt.Fprintf(w, "| %s | **%s** | %.1f | %.1f | %.2f%% | %s | %s | %s | %s | %s |\n", modeName(r.mode, b.o.ingestors),
			thousands(int64(t.MsgsPerSec+0.5)), t.PayloadMBPerSec, t.WireMBPerSec, t.ErrorPct,
			fmtMs(t.LatencyMs.P50), fmtMs(t.LatencyMs.P90), fmtMs(t.LatencyMs.P95), fmtMs(t.LatencyMs.P99), thousands(t.RecordsOK))
	}
	w.WriteString("\nmsg/s and MB/s (record values, the report's payload rate) are acknowledged records over the whole run, drain included; " +
		"wire MB/s is HTTP body bytes (direct: key + value bytes); errors are failed records over records sent; " +
		"latencies are of whole batches, sent to answered, all acks included.")
	if len(runs) == 2 && runs[0].report.Total.MsgsPerSec > 0 {
		ratio := runs[1].report.Total.MsgsPerSec / runs[0].report.Total.MsgsPerSec
		fmt.Fprintf(w, " Direct mode carried **%.2f×** the HTTP pipeline's rate (%+.0f%%); the seed report projected +200-300%% for \"direct Kafka\".", ratio, 100*(ratio-1))
	}
	w.WriteString("\n\n")
	for _, r := range runs {
		fmt.Fprintf(w, "### %s by stage\n\n", modeName(r.mode, b.o.ingestors))
		w.WriteString("| stage | duration | VUs | batches | messages | msg/s | MB/s | wire MB/s | errors | p50 | p90 | p95 | p99 |\n")
		w.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.report.Stages {
			w.WriteString(stageLine(strconv.Itoa(s.Stage), fmt.Sprintf("%d→%d", s.FromVUs, s.ToVUs), s))
		}
		w.WriteString(stageLine("**total**", fmt.Sprintf("peak %d", r.report.Total.ToVUs), r.report.Total))
		if len(r.report.Errors) > 0 {
			w.WriteString("\nFailed records by kind:\n\n")
			for _, e := range r.report.Errors {
				fmt.Fprintf(w, "- %s: %s\n", e.Kind, thousands(e.Records))
			}
			for _, f := range r.report.First {
				fmt.Fprintf(w, "- e.g. `%s`\n", oneLine(f))
			}
		}
		w.WriteString("\n")
	}
	if len(runs) == 2 && len(runs[0].report.Stages) == len(runs[1].report.Stages) {
		h, d := runs[0].report, runs[1].report
		w.WriteString("### Side by side\n\n")
		w.WriteString("| stage | VUs | msg/s HTTP | msg/s direct | direct/HTTP | MB/s HTTP | MB/s direct | errors HTTP | errors direct | p99 HTTP | p99 direct |\n")
		w.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		side := func(name, vus string, x, y stageRow) {
			ratio := "–"
			if x.MsgsPerSec > 0 {
				ratio = fmt.Sprintf("%.2f×", y.MsgsPerSec/x.MsgsPerSec)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.1f | %.1f | %.2f%% | %.2f%% | %s | %s |\n", name, vus,
				thousands(int64(x.MsgsPerSec+0.5)), thousands(int64(y.MsgsPerSec+0.5)), ratio,
				x.PayloadMBPerSec, y.PayloadMBPerSec, x.ErrorPct, y.ErrorPct, fmtMs(x.LatencyMs.P99), fmtMs(y.LatencyMs.P99))
		}
		for i := range h.Stages {
			side(strconv.Itoa(i+1), fmt.Sprintf("%d→%d", h.Stages[i].FromVUs, h.Stages[i].ToVUs), h.Stages[i], d.Stages[i])
		}
		side("**total**", fmt.Sprintf("peak %d", h.Total.ToVUs), h.Total, d.Total)
		w.WriteString("\n")
	}
}

func stageLine(name, vus string, s stageRow) string {
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.2f%% | %s | %s | %s | %s |\n",
		name, time.Duration(s.DurationS*float64(time.Second)).Round(100*time.Millisecond), vus,
		thousands(s.Batches), thousands(s.RecordsOK+s.RecordsFailed), thousands(int64(s.MsgsPerSec+0.5)),
		s.PayloadMBPerSec, s.WireMBPerSec, s.ErrorPct,
		fmtMs(s.LatencyMs.P50), fmtMs(s.LatencyMs.P90), fmtMs(s.LatencyMs.P95), fmtMs(s.LatencyMs.P99))
}

func (b *bench) writeVerification(w *strings.Builder) {
	w.WriteString("## Verification\n\n")
	v := b.verify
	if v == nil {
		w.WriteString("**No verifier result** (see FAILED above).\n\n")
		return
	}
	c := v.Counts
	verdict := "**PASS**"
	if v.Verdict != "" {
		verdict = "**FAIL: " + v.Verdict + "**"
	}
	w.WriteString("| records read | ok | lost | duplicated | corrupt | out of order | not acked (excused) | redelivered | fetch errors | verdict |\n")
	w.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %s | %s | %d | %s |\n\n", thousands(c.Records), thousands(c.OK),
		c.Lost, c.Duplicated, c.Corrupt, c.OutOfOrder, thousands(c.NotAcked), thousands(c.Redelivered), v.FetchErrors, verdict)
	fmt.Fprintf(w, "The verifier (%d producers, %d partitions, %.1f MB) read both topics as a consumer group while the load ran. ", c.Producers, c.Partitions, float64(c.Bytes)/1e6)
	var lags []string
	for _, r := range b.finishedRuns() {
		if r.lagAtStop >= 0 {
			lags = append(lags, fmt.Sprintf("%s records behind when the %s load stopped", thousands(r.lagAtStop), r.mode))
		}
	}
	if len(lags) > 0 {
		w.WriteString("It was " + strings.Join(lags, ", and ") + "; ")
	}
	if b.verifyCaughtUp {
		fmt.Fprintf(w, "after the recovery check its /metrics showed every acknowledged record read with no sequence missing (%v after the last load stopped), and it was stopped and checked against `-load-report` of both runs: every sequence each producer sent is accounted for.\n\n", b.verifyWait.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(w, "it had **not** read every acknowledged record %v after the last load stopped (`-verify-timeout`), and was stopped.\n\n", b.verifyWait.Round(100*time.Millisecond))
	}
	if s := strings.TrimSpace(b.verifySummary); s != "" {
		fmt.Fprintf(w, "```\n%s\n```\n\n", s)
	}
}

func (b *bench) writeResources(w *strings.Builder, runs []*modeRun) {
	w.WriteString("## CPU and memory\n\nCPU is each process's utime+stime (`/proc/<pid>/stat`) over the load run's wall time, in cores (1.00 = one core busy); peak RSS is VmHWM at the end (the load generator's: its rusage maxrss over both runs).\n\n")
	w.WriteString("| process |")
	for _, r := range runs {
		fmt.Fprintf(w, " CPU, %s run |", r.mode)
	}
	w.WriteString(" peak RSS |\n|---|")
	for range runs {
		w.WriteString("---:|")
	}
	w.WriteString("---:|\n")
	row := func(name, label string, cpuOf func(*modeRun) (time.Duration, bool)) {
		fmt.Fprintf(w, "| %s |", label)
		for _, r := range runs {
			d, ok := cpuOf(r)
			wall := r.stopped.Sub(r.started)
			if !ok || wall <= 0 {
				w.WriteString(" – |")
				continue
			}
			fmt.Fprintf(w, " %.2f |", float64(d)/float64(wall))
		}
		if n, ok := b.peakRSS[name]; ok {
			fmt.Fprintf(w, " %s |\n", mib(n))
		} else {
			w.WriteString(" – |\n")
		}
	}
	var names []string
	for _, p := range b.procs() {
		names = append(names, p.name)
	}
	for _, n := range names {
		label := n
		if strings.HasPrefix(n, "node") {
			label = "broker " + strings.TrimPrefix(n, "node")
		}
		row(n, label, func(r *modeRun) (time.Duration, bool) { d, ok := r.cpu[n]; return d, ok })
	}
	row("", "**brokers together**", func(r *modeRun) (time.Duration, bool) {
		var sum time.Duration
		for i := range nodes {
			d, ok := r.cpu["node"+strconv.Itoa(i+1)]
			if !ok {
				return 0, false
			}
			sum += d
		}
		return sum, true
	})
	row("load", "load generator", func(r *modeRun) (time.Duration, bool) { return r.loadCPU, r.loadCPU > 0 })
	row("", "**the pipeline together**", func(r *modeRun) (time.Duration, bool) {
		sum := r.loadCPU
		for _, d := range r.cpu {
			sum += d
		}
		return sum, true
	})
	row("", "whole machine, every process", func(r *modeRun) (time.Duration, bool) {
		if r.machineCores < 0 {
			return 0, false
		}
		return time.Duration(r.machineCores * float64(r.stopped.Sub(r.started))), true
	})
	fmt.Fprintf(w, "\nThe machine has %d CPUs; what the whole machine used beyond the pipeline ran alongside it (`/proc/stat`).\n\n", b.machine.CPUs)
}

func (b *bench) writeRecovery(w *strings.Builder, runs []*modeRun) {
	cfg := b.o.recovery
	fmt.Fprintf(w, "## CPU recovery\n\nThe seed report's claim: broker CPU returns to idle within seconds of the load completing. "+
		"After each load stopped (the chronik-load process exited; its connections closed), every node's CPU time was read from `/proc/<pid>/stat` every %v. "+
		"A node is idle once its CPU over a %v window is at most %g%% of a core; the figure is when its first such window began, after the load stopped. "+
		"The check passes when that is within %v for every node. The ingestors and the verifier stay connected (the verifier long-polls). "+
		"/proc counts CPU in 10 ms ticks, so a 1 s window is ±1%% of a core.\n\n", cfg.interval, cfg.window, 100*cfg.maxCores, cfg.within)
	w.WriteString("| after | ")
	for i := range nodes {
		fmt.Fprintf(w, "node %d | ", i+1)
	}
	w.WriteString("result |\n|---|")
	for range nodes {
		w.WriteString("---|")
	}
	w.WriteString("---|\n")
	for _, r := range runs {
		fmt.Fprintf(w, "| %s load |", r.mode)
		pass := len(r.recovery) == nodes
		for _, n := range r.recovery {
			fmt.Fprintf(w, " %s |", recoveryText(n, r, cfg))
			pass = pass && n.passed(cfg)
		}
		if pass {
			w.WriteString(" **PASS** |\n")
		} else {
			w.WriteString(" **FAIL** |\n")
		}
	}
	w.WriteString("\n")
}

// recoveryText is one node's recovery, e.g. "idle after 0.50 s (1.0%)".
func recoveryText(n nodeRecovery, r *modeRun, cfg recoveryConfig) string {
	switch {
	case n.err != nil:
		return "error: " + n.err.Error()
	case n.Idle:
		return fmt.Sprintf("idle after %.2f s (%.1f%%)", (n.After + r.recoveryOffset).Seconds(), 100*n.Cores)
	default:
		return fmt.Sprintf("not idle within %v (%.1f%% over the last window)", cfg.patience, 100*n.Cores)
	}
}

// recoverySummary is the recovery of every node of r, for the progress log.
func recoverySummary(r *modeRun, cfg recoveryConfig) string {
	var parts []string
	for i, n := range r.recovery {
		parts = append(parts, fmt.Sprintf("node %d %s", i+1, recoveryText(n, r, cfg)))
	}
	return strings.Join(parts, "; ")
}

// tempFS names the filesystem holding dir, from /proc/mounts.
func tempFS(dir string) string {
	best, bestLen := "`"+dir+"`", -1
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return best
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt, typ := f[1], f[2]
		under := dir == mnt || strings.HasPrefix(dir, strings.TrimSuffix(mnt, "/")+"/")
		if under && len(mnt) > bestLen {
			best, bestLen = fmt.Sprintf("%s (%s)", mnt, typ), len(mnt)
		}
	}
	return best
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
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// oneLine keeps the first line of s, for a markdown list item.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", "\\|")
}
