package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// measurement is one (target, size, repetition).
type measurement struct {
	target string
	size   int // record value bytes
	run    int // from 1

	records     int           // acknowledged
	produceRate float64       // acknowledged records per second
	p50, p99    time.Duration // produce latency
	consumeRate float64       // records per second
	brokerCPU   time.Duration // broker CPU per acknowledged record while producing; -1 unknown
	clientCPU   time.Duration // this process's CPU per acknowledged record while producing; -1 unknown
	verify      verifyStats
	consumed    bool // the consume phase ran
	err         error
}

func (m *measurement) setProduce(p *produceResult) {
	m.records = p.acked
	if p.elapsed > 0 {
		m.produceRate = float64(p.acked) / p.elapsed.Seconds()
	}
	m.p50 = percentile(p.latencies, 0.50)
	m.p99 = percentile(p.latencies, 0.99)
}

func (m *measurement) setConsume(c *consumeResult) {
	m.consumed = true
	m.verify = c.stats
	if c.elapsed > 0 {
		m.consumeRate = float64(c.records) / c.elapsed.Seconds()
	}
}

func (m *measurement) ok() bool { return m.err == nil && m.consumed && m.verify.ok() }

func (m *measurement) verdict() string {
	switch {
	case m.err != nil:
		return "ERROR"
	case !m.consumed:
		return "not consumed"
	default:
		return m.verify.summary()
	}
}

func (m *measurement) produceMBps() float64 { return m.produceRate * float64(m.size) / 1e6 }

func (m *measurement) progressLine() string {
	s := fmt.Sprintf("run %d %-7s %-6s %9d records  produce %9.0f msg/s %7.1f MB/s  p50 %7.2f ms  p99 %7.2f ms  consume %9.0f msg/s  %s",
		m.run, m.target, sizeName(m.size), m.records, m.produceRate, m.produceMBps(), ms(m.p50), ms(m.p99), m.consumeRate, m.verdict())
	if m.err != nil {
		s += ": " + m.err.Error()
	}
	for _, e := range m.verify.examples {
		s += "\n    " + e
	}
	return s
}

// percentile is the nearest-rank q-quantile of ds, which it sorts; 0 when ds is empty.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// median of xs; NaN when xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// us is d in microseconds, NaN when d is negative (unknown).
func us(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return float64(d) / float64(time.Microsecond)
}

func cpuPair(broker, clients float64) string {
	return fmtFloat(broker, 1) + " / " + fmtFloat(clients, 1)
}

func sizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// ratioTargets are the Chronik/kfake produce throughput goals, by record size.
var ratioTargets = map[int]float64{1024: 1.5, 256: 1.0}

type targetInfo struct {
	name, mode, addr string
	own              bool  // runs in a process of its own (a child)
	peakRSS          int64 // VmHWM of that process; -1 when unknown
}

type report struct {
	opts         *options
	machine      machine
	targets      []targetInfo
	measurements []*measurement
	selfPeakRSS  int64
	started      time.Time     // when the first measurement began
	took         time.Duration // from started to the last measurement's end
}

func (r *report) ok() bool {
	for _, m := range r.measurements {
		if !m.ok() {
			return false
		}
	}
	return true
}

// summary is the medians of one (target, size).
type summary struct {
	target                string
	size                  int
	n, verified           int
	produceRate, mbps     float64
	minRate, maxRate      float64 // produce msg/s over the runs
	p50, p99              float64 // ms
	consumeRate           float64
	brokerCPUUs           float64 // µs per record; NaN unknown
	clientCPUUs           float64 // µs per record; NaN unknown
	firstFailure, records string
}

func (r *report) summarize(target string, size int) summary {
	s := summary{target: target, size: size}
	var prod, mbps, p50, p99, cons, cpu, ccpu, recs []float64
	for _, m := range r.measurements {
		if m.target != target || m.size != size {
			continue
		}
		s.n++
		if m.ok() {
			s.verified++
		} else if s.firstFailure == "" {
			s.firstFailure = m.verdict()
		}
		if m.err != nil {
			continue
		}
		prod = append(prod, m.produceRate)
		mbps = append(mbps, m.produceMBps())
		p50 = append(p50, ms(m.p50))
		p99 = append(p99, ms(m.p99))
		cons = append(cons, m.consumeRate)
		recs = append(recs, float64(m.records))
		if m.brokerCPU >= 0 {
			cpu = append(cpu, us(m.brokerCPU))
		}
		if m.clientCPU >= 0 {
			ccpu = append(ccpu, us(m.clientCPU))
		}
	}
	s.clientCPUUs = median(ccpu)
	s.produceRate, s.mbps, s.p50, s.p99, s.consumeRate, s.brokerCPUUs = median(prod), median(mbps), median(p50), median(p99), median(cons), median(cpu)
	s.minRate, s.maxRate = math.NaN(), math.NaN()
	if len(prod) > 0 {
		s.minRate, s.maxRate = slices.Min(prod), slices.Max(prod)
	}
	s.records = fmtCount(median(recs))
	return s
}

// pairedRatio is the median over repetitions of Chronik's produce rate over kfake's in the
// same repetition and size. Adjacent in time, the pair shares the machine's load, so the
// ratio is steadier than the ratio of medians when neighbours come and go.
func (r *report) pairedRatio(size int) float64 {
	rates := map[int]map[string]float64{} // by run, by target
	for _, m := range r.measurements {
		if m.size != size || m.err != nil || m.produceRate == 0 {
			continue
		}
		if rates[m.run] == nil {
			rates[m.run] = map[string]float64{}
		}
		rates[m.run][m.target] = m.produceRate
	}
	var ratios []float64
	for _, byTarget := range rates {
		c, okc := byTarget["chronik"]
		k, okk := byTarget["kfake"]
		if okc && okk {
			ratios = append(ratios, c/k)
		}
	}
	return median(ratios)
}

func fmtCount(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.0f", x)
}

func fmtFloat(x float64, prec int) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

// markdown is the report printed to stdout.
func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	limit := []string{}
	if o.records > 0 {
		limit = append(limit, fmt.Sprintf("%d records", o.records))
	}
	if o.duration > 0 {
		limit = append(limit, fmt.Sprintf("%v", o.duration))
	}
	fmt.Fprintf(&b, "## Results: medians of %d runs\n\n", o.runs)
	fmt.Fprintf(&b, "Measured %s, %d measurements in %v.\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"), len(r.measurements), r.took.Round(time.Second))
	fmt.Fprintf(&b, "Each measurement: a fresh topic with %d partitions (RF 1); %d producers (one kgo client each) with acks=all, idempotent=%v, linger=%v, max buffered records=%s, batch max bytes=%s, unkeyed records, compression=%s, producing until %s (whichever first); then one kgo consumer reads every partition from the start and verifies every record.\n\n",
		o.partitions, o.producers, o.idempotent, o.linger, maxBufferedName(o.maxBuffered), batchBytesName(o.batchMaxBytes), o.compression, strings.Join(limit, " or "))
	b.WriteString("| target | size | records | msg/s | msg/s min–max | MB/s | p50 ms | p99 ms | consume msg/s | CPU µs/msg broker / clients | verified |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, size := range o.sizes {
		for _, t := range r.targets {
			s := r.summarize(t.name, size)
			if s.n == 0 {
				continue
			}
			verified := fmt.Sprintf("ok %d/%d", s.verified, s.n)
			if s.verified < s.n {
				verified = fmt.Sprintf("**%d/%d: %s**", s.verified, s.n, s.firstFailure)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s | %s |\n", s.target, sizeName(size), s.records,
				fmtFloat(s.produceRate, 0), fmtFloat(s.minRate, 0), fmtFloat(s.maxRate, 0), fmtFloat(s.mbps, 1), fmtFloat(s.p50, 2), fmtFloat(s.p99, 2),
				fmtFloat(s.consumeRate, 0), cpuPair(s.brokerCPUUs, s.clientCPUUs), verified)
		}
	}
	b.WriteString("\n")
	for _, size := range o.sizes {
		c, k := r.summarize("chronik", size), r.summarize("kfake", size)
		if c.n == 0 || k.n == 0 {
			continue
		}
		goal := ""
		if g, ok := ratioTargets[size]; ok {
			goal = fmt.Sprintf(" (target ≥ %.1f×)", g)
		}
		fmt.Fprintf(&b, "- Chronik/kfake produce throughput at %s: %s×%s; median of the per-run ratios (each Chronik run over the kfake run next to it): %s×\n",
			sizeName(size), fmtFloat(c.produceRate/k.produceRate, 2), goal, fmtFloat(r.pairedRatio(size), 2))
		fmt.Fprintf(&b, "- Chronik/kfake consume throughput at %s: %s×; p99 produce latency: %s×\n", sizeName(size), fmtFloat(c.consumeRate/k.consumeRate, 2), fmtFloat(c.p99/k.p99, 2))
	}
	b.WriteString("\nPeak RSS (VmHWM):\n")
	inProc := []string{"the producer and consumer clients"}
	for _, t := range r.targets {
		switch {
		case t.own && t.peakRSS >= 0:
			fmt.Fprintf(&b, "- %s, own process: %s\n", t.name, mib(t.peakRSS))
		case t.own:
			fmt.Fprintf(&b, "- %s, own process: unknown\n", t.name)
		case !strings.HasPrefix(t.mode, "external"):
			inProc = append(inProc, "the "+t.name+" broker")
		}
	}
	fmt.Fprintf(&b, "- chronik-bench process: %s (holds %s)\n", mib(r.selfPeakRSS), strings.Join(inProc, " and "))

	b.WriteString("\nBrokers:\n")
	for _, t := range r.targets {
		fmt.Fprintf(&b, "- %s: %s\n", t.name, t.mode)
	}
	b.WriteString("\nmsg/s and MB/s: acknowledged records, and their value bytes (MB = 10^6 B), from the first Produce call to the last acknowledgement. " +
		"Latency: from the Produce call to its promise, per record, under this saturating load, so it includes the time a record waits in the client's buffer (bounded by max buffered records). " +
		"CPU µs/msg: user+system time during the produce phase per acknowledged record, of the broker's own process (child processes only) / of this process, which holds the clients (when the broker is not in it). " +
		"Verified: every acknowledged record read back exactly once, at the partition and offset it was acknowledged at, in producer order within its partition, with a good CRC-32C; no produce errors.\n")

	b.WriteString("\n### All runs\n\n")
	b.WriteString("| run | target | size | records | msg/s | MB/s | p50 ms | p99 ms | consume msg/s | CPU µs/msg broker / clients | verified |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, m := range r.measurements {
		verdict := m.verdict()
		if m.err != nil {
			verdict += ": " + strings.ReplaceAll(m.err.Error(), "|", "/")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %.0f | %.1f | %.2f | %.2f | %.0f | %s | %s |\n", m.run, m.target, sizeName(m.size), m.records,
			m.produceRate, m.produceMBps(), ms(m.p50), ms(m.p99), m.consumeRate, cpuPair(us(m.brokerCPU), us(m.clientCPU)), verdict)
	}
	return b.String()
}

func maxBufferedName(n int) string {
	if n == 0 {
		return "kgo default (50000)"
	}
	return fmt.Sprint(n)
}

func batchBytesName(n int) string {
	if n == 0 {
		return "kgo default (1000012)"
	}
	return fmt.Sprint(n)
}

// document is the -out file: the report with a title, the command line and the machine.
func (r *report) document(md string) string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "# Single-node benchmark: Chronik vs kfake, %s\n\n", time.Now().Format("2006-01-02"))
	fmt.Fprintf(&b, "Command (from the repository root):\n\n```\n%s\n```\n\n", r.opts.commandLine)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s; Linux %s; %s; temp dir on %s", m.CPUs, m.CPUModel, m.Kernel, m.GoVersion, m.TempFS)
	if m.GitVersion != "" {
		fmt.Fprintf(&b, "; tree %s", m.GitVersion)
	}
	b.WriteString(".\n")
	if m.Disk != "" {
		fmt.Fprintf(&b, "Disk under the temp dir: %s.\n", m.Disk)
	}
	fmt.Fprintf(&b, "Load average (1/5/15 min) at start: %s; at end: %s. CPU pressure (some, /proc/pressure/cpu) at start: %s; at end: %s.\n\n",
		m.LoadStart, m.LoadEnd, m.PressureStart, m.PressureEnd)
	b.WriteString(md)
	return b.String()
}
