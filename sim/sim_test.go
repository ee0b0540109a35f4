package sim

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	sweepSeeds = flag.Int("sim.seeds", 100, "seeds TestSweep runs")
	sweepStart = flag.Uint64("sim.start", 1, "first seed of TestSweep")
	sweepMs    = flag.Int64("sim.duration", 3000, "fault window of each TestSweep run, simulated ms")
	// clusterSeeds is small: cluster runs take a process-wide lock (crypto/rand.Reader),
	// so they run one at a time.
	clusterSeeds = flag.Int("sim.cluster-seeds", 20, "seeds TestClusterSweep runs")
)

// runSeeds runs cfg for seeds [start, start+n) on every core and returns the results in
// seed order.
func runSeeds(t testing.TB, cfg Config, start uint64, n int) []*Result {
	t.Helper()
	results := make([]*Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := cfg
				c.Seed = start + uint64(i)
				results[i], errs[i] = Run(c)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return results
}

// TestSweep is the short sweep `make test` runs: every check must pass on every seed.
func TestSweep(t *testing.T) {
	n := *sweepSeeds
	if testing.Short() {
		n = min(n, 10)
	}
	cfg := Config{DurationMs: *sweepMs, OutDir: "out"}
	began := time.Now()
	results := runSeeds(t, cfg, *sweepStart, n)
	var simUs, writes, crashes int64
	for _, r := range results {
		simUs += r.SimUs
		writes += int64(r.Writes)
		crashes += int64(r.Crashes)
		if r.Failed() {
			c := cfg
			c.Seed = r.Seed
			t.Errorf("seed %d failed %d checks, first: %s\n  replay: %s", r.Seed, r.ViolationCount, r.Violations[0], ReplayCommand(c))
		}
	}
	t.Logf("%d seeds, %d writes, %d crashes, %.0fs simulated in %s", n, writes, crashes, float64(simUs)/1e6, time.Since(began).Round(time.Millisecond))
}

// TestDeterminism runs 20 seeds twice: the traces must be byte-identical.
func TestDeterminism(t *testing.T) {
	const n = 20
	cfg := Config{DurationMs: 2000, Faults: "all"}
	a := runSeeds(t, cfg, 1000, n)
	b := runSeeds(t, cfg, 1000, n)
	for i := range a {
		if a[i].TraceHash != b[i].TraceHash || a[i].TraceLines != b[i].TraceLines {
			t.Errorf("seed %d: trace %s (%d lines) then %s (%d lines)", a[i].Seed, a[i].TraceHash, a[i].TraceLines, b[i].TraceHash, b[i].TraceLines)
		}
	}
	seen := map[string]uint64{}
	for _, r := range a {
		if s, dup := seen[r.TraceHash]; dup {
			t.Errorf("seeds %d and %d have the same trace", s, r.Seed)
		}
		seen[r.TraceHash] = r.Seed
	}
}

// TestClusterSweep is the short sample of cluster runs `make test` runs: three nodes in
// cluster mode, every check on every seed (the long sweep is `make sim-cluster`).
func TestClusterSweep(t *testing.T) {
	n := *clusterSeeds
	if testing.Short() {
		n = min(n, 4)
	}
	cfg := Config{Nodes: 3, DurationMs: *sweepMs, OutDir: "out"}
	began := time.Now()
	results := runSeeds(t, cfg, *sweepStart, n)
	var simUs, writes, crashes int64
	for _, r := range results {
		simUs += r.SimUs
		writes += int64(r.Writes)
		crashes += int64(r.Crashes)
		if r.Failed() {
			c := cfg
			c.Seed = r.Seed
			t.Errorf("seed %d failed %d checks, first: %s\n  replay: %s", r.Seed, r.ViolationCount, r.Violations[0], ReplayCommand(c))
		}
	}
	t.Logf("%d seeds of 3 nodes, %d writes, %d crashes, %.0fs simulated in %s", n, writes, crashes, float64(simUs)/1e6, time.Since(began).Round(time.Millisecond))
}

// TestClusterDeterminism runs 3-node seeds twice: the traces must be byte-identical,
// Raft's election jitter included (crypto/rand.Reader pinned per run).
func TestClusterDeterminism(t *testing.T) {
	const n = 4
	cfg := Config{Nodes: 3, DurationMs: 2000, Faults: "all"}
	a := runSeeds(t, cfg, 2000, n)
	b := runSeeds(t, cfg, 2000, n)
	seen := map[string]uint64{}
	for i := range a {
		if a[i].TraceHash != b[i].TraceHash || a[i].TraceLines != b[i].TraceLines {
			t.Errorf("seed %d: trace %s (%d lines) then %s (%d lines)", a[i].Seed, a[i].TraceHash, a[i].TraceLines, b[i].TraceHash, b[i].TraceLines)
		}
		if s, dup := seen[a[i].TraceHash]; dup {
			t.Errorf("seeds %d and %d have the same trace", s, a[i].Seed)
		}
		seen[a[i].TraceHash] = a[i].Seed
	}
}

// BenchmarkSim reports simulated seconds per wall second (sim-s/s) of one node under the
// default workload and fault mix, and per second of the process's CPU time (sim-s/cpu-s),
// which neighbours on a shared machine do not skew.
func BenchmarkSim(b *testing.B) {
	var simUs int64
	b.ReportAllocs()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		r, err := Run(Config{Seed: uint64(i + 1), DurationMs: 5000})
		if err != nil {
			b.Fatal(err)
		}
		simUs += r.SimUs
	}
	b.ReportMetric(float64(simUs)/1e6/b.Elapsed().Seconds(), "sim-s/s")
	b.ReportMetric(float64(simUs)/1e6/(cpuSeconds()-cpu0), "sim-s/cpu-s")
}

// cpuSeconds is the CPU time (user and system) the process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func ExampleReplayCommand() {
	fmt.Println(ReplayCommand(Config{Seed: 7, Faults: "disk", Bug: "torn-tail"}))
	// Output: go run -tags chronikbugs ./cmd/chronik-sim -seed 7 -faults disk -bug torn-tail
}
