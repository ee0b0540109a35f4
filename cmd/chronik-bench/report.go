package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// measurement is one (target, size, repetition).
type measurement struct {
	target string
	size   int // record value bytes
	run    int // from 1
	// paceRate is the producers' total pace in records per second; 0: saturating.
	paceRate float64
	// fraction is paceRate over the saturated measurement's produce rate; 0: saturating.
	fraction float64
	// paced are the paced measurements that followed this saturated one, one per
	// -paced-fractions in that order (largest first), up to the first that failed; empty
	// when none ran.
	paced []*measurement

	records             int           // acknowledged
	produceRate         float64       // acknowledged records per second
	p50, p90, p99, p999 time.Duration // produce latency
	consumeRate         float64       // records per second
	brokerCPU           time.Duration // broker CPU per acknowledged record while producing; -1 unknown
	clientCPU           time.Duration // this process's CPU per acknowledged record while producing; -1 unknown
	verify              verifyStats
	consumed            bool // the consume phase ran
	err                 error
}

func newMeasurement(target string, size, run int) *measurement {
	return &measurement{target: target, size: size, run: run, brokerCPU: -1, clientCPU: -1}
}

// firstErr is the error of this measurement or else of the first of its paced ones that
// has one.
func (m *measurement) firstErr() error {
	if m.err != nil {
		return m.err
	}
	for _, p := range m.paced {
		if p.err != nil {
			return p.err
		}
	}
	return nil
}

// pacedAt is the paced measurement at fraction f of this one's rate; nil when none ran.
func (m *measurement) pacedAt(f float64) *measurement {
	for _, p := range m.paced {
		if p.fraction == f {
			return p
		}
	}
	return nil
}

// half is the paced measurement at half of this one's rate; nil when none ran.
func (m *measurement) half() *measurement { return m.pacedAt(0.5) }

// fractionName is how the report names a fraction of the saturated rate: "half" for 0.5,
// else its decimal ("0.25").
func fractionName(f float64) string {
	if f == 0.5 {
		return "half"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// pacedSuffix is what a paced measurement at fraction f adds to its topic and profile
// names: "half" for 0.5 (as before there were other fractions), else "paced0.25".
func pacedSuffix(f float64) string {
	if f == 0.5 {
		return "half"
	}
	return "paced" + strconv.FormatFloat(f, 'f', -1, 64)
}

func (m *measurement) setProduce(p *produceResult) {
	m.records = p.acked
	if p.elapsed > 0 {
		m.produceRate = float64(p.acked) / p.elapsed.Seconds()
	}
	m.p50 = percentile(p.latencies, 0.50)
	m.p90 = percentile(p.latencies, 0.90)
	m.p99 = percentile(p.latencies, 0.99)
	m.p999 = percentile(p.latencies, 0.999)
}

func (m *measurement) setConsume(c *consumeResult) {
	m.consumed = true
	m.verify = c.stats
	if c.elapsed > 0 {
		m.consumeRate = float64(c.records) / c.elapsed.Seconds()
	}
}

// ok reports whether this measurement and its paced ones (if any) verified.
func (m *measurement) ok() bool {
	for _, p := range m.paced {
		if !p.phaseOK() {
			return false
		}
	}
	return m.phaseOK()
}

func (m *measurement) phaseOK() bool { return m.err == nil && m.consumed && m.verify.ok() }

// verdict is the outcome of this measurement and of its paced ones (if any), each failed
// paced one named by its fraction ("half-rate ERROR", "0.1-rate ERROR").
func (m *measurement) verdict() string {
	v := m.phaseVerdict()
	var bad []string
	for _, p := range m.paced {
		if !p.phaseOK() {
			bad = append(bad, fractionName(p.fraction)+"-rate "+p.phaseVerdict())
		}
	}
	switch {
	case len(bad) == 0:
		return v
	case m.phaseOK():
		return strings.Join(bad, "; ")
	default:
		return v + "; " + strings.Join(bad, "; ")
	}
}

func (m *measurement) phaseVerdict() string {
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
		m.run, m.target, sizeName(m.size), m.records, m.produceRate, m.produceMBps(), ms(m.p50), ms(m.p99), m.consumeRate, m.phaseVerdict())
	if m.paceRate > 0 {
		s = fmt.Sprintf("  %s rate (paced at %.0f msg/s): %9d records  produce %9.0f msg/s  p50 %7.2f ms  p99 %7.2f ms  %s",
			fractionName(m.fraction), m.paceRate, m.records, m.produceRate, ms(m.p50), ms(m.p99), m.phaseVerdict())
	}
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

// ratioTargets are the Chronik/kfake produce throughput goals, by record size, for one
// broker and for a cluster (3 nodes, RF 3, acks=all).
var (
	ratioTargets        = map[int]float64{1024: 1.5, 256: 1.0}
	clusterRatioTargets = map[int]float64{1024: 0.5}
)

// clusterHalfRateP99Ms is the goal for a cluster's p99 produce latency at half its
// saturated rate, in milliseconds.
const clusterHalfRateP99Ms = 10

type targetInfo struct {
	name, mode string
	addrs      []string
	own        bool    // runs in processes of its own (children)
	peakRSS    []int64 // VmHWM of each of those processes; -1 when unknown
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
	// Of the half-rate measurements: the medians of their achieved rates and latencies
	// (ms); NaN when none ran.
	halfRate, halfP50, halfP99 float64
}

func (r *report) summarize(target string, size int) summary {
	s := summary{target: target, size: size}
	var prod, mbps, p50, p99, cons, cpu, ccpu, recs, hRate, hP50, hP99 []float64
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
		if h := m.half(); h != nil && h.err == nil {
			hRate = append(hRate, h.produceRate)
			hP50 = append(hP50, ms(h.p50))
			hP99 = append(hP99, ms(h.p99))
		}
	}
	s.halfRate, s.halfP50, s.halfP99 = median(hRate), median(hP50), median(hP99)
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
	fmt.Fprintf(&b, "Each measurement: a fresh topic with %d partitions (RF %d); %d producers (one kgo client each) with acks=all, idempotent=%v, linger=%v, max buffered records=%s, batch max bytes=%s, unkeyed records, compression=%s, producing until %s (whichever first); then one kgo consumer reads every partition from the start and verifies every record.",
		o.partitions, o.brokers, o.producers, o.idempotent, o.linger, maxBufferedName(o.maxBuffered), batchBytesName(o.batchMaxBytes), o.compression, strings.Join(limit, " or "))
	switch {
	case o.paced && slices.Equal(o.pacedFractions, []float64{0.5}):
		b.WriteString(" Then the same on a second fresh topic with the producers paced at half the produce rate just measured (\"half rate\"), for the same limits.")
	case o.paced:
		half := ""
		if r.showHalf() {
			half = ` (0.5: "half rate")`
		}
		fmt.Fprintf(&b, " Then the same on a fresh topic for each fraction %s of the produce rate just measured, with the producers paced at that fraction of it%s, for the same limits.", fractionList(o.pacedFractions), half)
	}
	b.WriteString("\n\n")
	if o.brokers > 1 {
		fmt.Fprintf(&b, "Each target is a cluster of %d brokers on 127.0.0.1 and every client is seeded with all %d addresses. "+
			"Chronik: %d processes in cluster mode, each partition a Raft group over %d replicas, min.insync.replicas 2 (the default), so acks=all is answered once a quorum of replicas has fsynced the batch. "+
			"kfake: %d brokers in one process; it accepts RF %d but keeps one copy of each partition, in memory, and never fsyncs, so its figures are a ceiling set by the clients and loopback, not a replicated broker.\n\n",
			o.brokers, o.brokers, o.brokers, o.brokers, o.brokers, o.brokers)
	}
	b.WriteString("| target | size | records | msg/s | msg/s min–max | MB/s | p50 ms | p99 ms |")
	sep := "|---|---|---:|---:|---:|---:|---:|---:|"
	if r.showHalf() {
		b.WriteString(" half rate: msg/s | p50 ms | p99 ms |")
		sep += "---:|---:|---:|"
	}
	b.WriteString(" consume msg/s | CPU µs/msg broker / clients | verified |\n")
	b.WriteString(sep + "---:|---:|---|\n")
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
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s–%s | %s | %s | %s |", s.target, sizeName(size), s.records,
				fmtFloat(s.produceRate, 0), fmtFloat(s.minRate, 0), fmtFloat(s.maxRate, 0), fmtFloat(s.mbps, 1), fmtFloat(s.p50, 2), fmtFloat(s.p99, 2))
			if r.showHalf() {
				fmt.Fprintf(&b, " %s | %s | %s |", fmtFloat(s.halfRate, 0), fmtFloat(s.halfP50, 2), fmtFloat(s.halfP99, 2))
			}
			fmt.Fprintf(&b, " %s | %s | %s |\n", fmtFloat(s.consumeRate, 0), cpuPair(s.brokerCPUUs, s.clientCPUUs), verified)
		}
	}
	b.WriteString("\n")
	goals := ratioTargets
	if o.brokers > 1 {
		goals = clusterRatioTargets
	}
	for _, size := range o.sizes {
		c, k := r.summarize("chronik", size), r.summarize("kfake", size)
		if c.n == 0 || k.n == 0 {
			continue
		}
		goal := ""
		if g, ok := goals[size]; ok {
			goal = fmt.Sprintf(" (target ≥ %.1f×)", g)
		}
		fmt.Fprintf(&b, "- Chronik/kfake produce throughput at %s: %s×%s; median of the per-run ratios (each Chronik run over the kfake run next to it): %s×\n",
			sizeName(size), fmtFloat(c.produceRate/k.produceRate, 2), goal, fmtFloat(r.pairedRatio(size), 2))
		fmt.Fprintf(&b, "- Chronik/kfake consume throughput at %s: %s×; p99 produce latency: %s×\n", sizeName(size), fmtFloat(c.consumeRate/k.consumeRate, 2), fmtFloat(c.p99/k.p99, 2))
	}
	if r.showHalf() {
		for _, size := range o.sizes {
			c, k := r.summarize("chronik", size), r.summarize("kfake", size)
			if c.n == 0 {
				continue
			}
			goal := ""
			if o.brokers > 1 && size == 1024 {
				goal = fmt.Sprintf(" (target ≤ %d ms)", clusterHalfRateP99Ms)
			}
			fmt.Fprintf(&b, "- Chronik p99 produce latency at half its saturated rate, %s: %s ms%s; p50 %s ms", sizeName(size), fmtFloat(c.halfP99, 2), goal, fmtFloat(c.halfP50, 2))
			if k.n > 0 {
				fmt.Fprintf(&b, " (kfake at half its rate: p99 %s ms, p50 %s ms)", fmtFloat(k.halfP99, 2), fmtFloat(k.halfP50, 2))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nPeak RSS (VmHWM):\n")
	inProc := []string{"the producer and consumer clients"}
	for _, t := range r.targets {
		switch {
		case t.own:
			b.WriteString(rssLine(t))
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
		"Latency: from the Produce call to its promise, per record, under this saturating load, so it includes the time a record waits in the client's buffer (bounded by max buffered records). ")
	if r.showHalf() {
		b.WriteString("Half rate: each producer sends its share of half the saturated rate on a fixed schedule, and a record's latency runs from the time it was due to its promise (so a producer that falls behind does not hide the wait); its msg/s is the rate achieved. ")
	}
	b.WriteString("CPU µs/msg: user+system time during the produce phase per acknowledged record, of the broker's own processes (child processes only; summed over a cluster's processes) / of this process, which holds the clients (when the broker is not in it). " +
		"Verified: every acknowledged record read back exactly once, at the partition and offset it was acknowledged at, in producer order within its partition, with a good CRC-32C; no produce errors.\n")

	if o.paced {
		r.writeLatencyByLoad(&b)
	}

	b.WriteString("\n### All runs\n\n")
	b.WriteString("| run | target | size | records | msg/s | MB/s | p50 ms | p99 ms |")
	sep = "|---:|---|---|---:|---:|---:|---:|---:|"
	if r.showHalf() {
		b.WriteString(" half rate: paced at msg/s | msg/s | p50 ms | p99 ms |")
		sep += "---:|---:|---:|---:|"
	}
	b.WriteString(" consume msg/s | CPU µs/msg broker / clients | verified |\n")
	b.WriteString(sep + "---:|---:|---|\n")
	for _, m := range r.measurements {
		verdict := m.verdict()
		if err := m.firstErr(); err != nil {
			verdict += ": " + strings.ReplaceAll(err.Error(), "|", "/")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %.0f | %.1f | %.2f | %.2f |", m.run, m.target, sizeName(m.size), m.records,
			m.produceRate, m.produceMBps(), ms(m.p50), ms(m.p99))
		if r.showHalf() {
			if h := m.half(); h != nil {
				fmt.Fprintf(&b, " %.0f | %.0f | %.2f | %.2f |", h.paceRate, h.produceRate, ms(h.p50), ms(h.p99))
			} else {
				b.WriteString(" – | – | – | – |")
			}
		}
		fmt.Fprintf(&b, " %.0f | %s | %s |\n", m.consumeRate, cpuPair(us(m.brokerCPU), us(m.clientCPU)), verdict)
	}
	return b.String()
}

// showHalf reports whether the report has the half-rate columns and lines: paced
// measurements are on and 0.5 is among their fractions.
func (r *report) showHalf() bool {
	return r.opts.paced && slices.Contains(r.opts.pacedFractions, 0.5)
}

func fractionList(fs []float64) string {
	var names []string
	for _, f := range fs {
		names = append(names, strconv.FormatFloat(f, 'f', -1, 64))
	}
	return strings.Join(names, ", ")
}

// pacedSummary is the medians of one (target, size, fraction)'s paced measurements.
type pacedSummary struct {
	// n is the saturated measurements of the (target, size), each of which should have been
	// followed by one at this fraction; verified is those whose one ran and verified.
	n, verified         int
	firstFailure        string
	paceRate, rate      float64 // msg/s; NaN when none ran
	p50, p90, p99, p999 float64 // ms; NaN when none ran
}

func (r *report) summarizePaced(target string, size int, fraction float64) pacedSummary {
	var s pacedSummary
	var pace, rate, p50, p90, p99, p999 []float64
	for _, m := range r.measurements {
		if m.target != target || m.size != size {
			continue
		}
		s.n++
		p := m.pacedAt(fraction)
		switch {
		case p == nil:
			if s.firstFailure == "" {
				s.firstFailure = "not run"
			}
			continue
		case p.phaseOK():
			s.verified++
		case s.firstFailure == "":
			s.firstFailure = p.phaseVerdict()
		}
		if p.err != nil {
			continue
		}
		pace = append(pace, p.paceRate)
		rate = append(rate, p.produceRate)
		p50 = append(p50, ms(p.p50))
		p90 = append(p90, ms(p.p90))
		p99 = append(p99, ms(p.p99))
		p999 = append(p999, ms(p.p999))
	}
	s.paceRate, s.rate = median(pace), median(rate)
	s.p50, s.p90, s.p99, s.p999 = median(p50), median(p90), median(p99), median(p999)
	return s
}

// writeLatencyByLoad writes the "Latency by load" table: one row per target, size and
// paced fraction, largest fraction first.
func (r *report) writeLatencyByLoad(b *strings.Builder) {
	b.WriteString("\n### Latency by load\n\n")
	b.WriteString("| target | size | fraction | paced at msg/s | msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms | verified |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, size := range r.opts.sizes {
		for _, t := range r.targets {
			for _, f := range r.opts.pacedFractions {
				s := r.summarizePaced(t.name, size, f)
				if s.n == 0 {
					continue
				}
				verified := fmt.Sprintf("ok %d/%d", s.verified, s.n)
				if s.verified < s.n {
					verified = fmt.Sprintf("**%d/%d: %s**", s.verified, s.n, s.firstFailure)
				}
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t.name, sizeName(size),
					strconv.FormatFloat(f, 'f', -1, 64), fmtFloat(s.paceRate, 0), fmtFloat(s.rate, 0),
					fmtFloat(s.p50, 2), fmtFloat(s.p90, 2), fmtFloat(s.p99, 2), fmtFloat(s.p999, 2), verified)
			}
		}
	}
	b.WriteString("\nLatency by load: medians over the runs of the paced measurements, each on a fresh topic with the producers paced at that fraction of the saturated rate just measured (\"paced at\"; msg/s is the rate achieved). " +
		"Each producer sends its share on a fixed schedule, and a record's latency runs from the time it was due to its promise, so a producer that falls behind does not hide the wait. " +
		"Verified: every acknowledged record of those measurements read back as above; \"not run\" where the saturated measurement before it or an earlier paced one failed.\n")
}

// rssLine is a target's peak RSS: one process's, or the largest of several and each.
func rssLine(t targetInfo) string {
	name := func(b int64) string {
		if b < 0 {
			return "unknown"
		}
		return mib(b)
	}
	if len(t.peakRSS) == 1 {
		return fmt.Sprintf("- %s, own process: %s\n", t.name, name(t.peakRSS[0]))
	}
	var each []string
	for i, b := range t.peakRSS {
		each = append(each, fmt.Sprintf("node %d %s", i+1, name(b)))
	}
	return fmt.Sprintf("- %s, %d processes: max %s (%s)\n", t.name, len(t.peakRSS), name(slices.Max(t.peakRSS)), strings.Join(each, ", "))
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
	if r.opts.brokers > 1 {
		fmt.Fprintf(&b, "# %d-node cluster benchmark: Chronik vs kfake, RF %d, acks=all, %s\n\n", r.opts.brokers, r.opts.brokers, time.Now().Format("2006-01-02"))
	} else {
		fmt.Fprintf(&b, "# Single-node benchmark: Chronik vs kfake, %s\n\n", time.Now().Format("2006-01-02"))
	}
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
