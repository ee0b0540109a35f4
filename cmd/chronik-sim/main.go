// Command chronik-sim runs the deterministic simulator: one seed, or a sweep of seeds,
// of the real broker node under faults, with linearizability and queue checks.
//
//	go run ./cmd/chronik-sim -seed 42             # one run; the last line is the trace hash
//	go run ./cmd/chronik-sim -seed 42 -v          # with the trace
//	go run ./cmd/chronik-sim -sweep 200 -start 1  # seeds 1..200, a summary, failing seeds
//	go run ./cmd/chronik-sim -nodes 3 -seed 42    # three nodes in cluster mode
//
// It exits non-zero when a check fails.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"chronik/sim"
)

func main() {
	seed := flag.Uint64("seed", 1, "the seed of a single run")
	nodes := flag.Int("nodes", 1, "broker nodes, 1 to 3; more than one run in cluster mode (Raft)")
	duration := flag.Duration("duration", 5*time.Second, "simulated fault window; the run then heals, checks progress, quiesces and verifies")
	faults := flag.String("faults", "default", "fault mix: a profile (default, all, disk, net, crash, clock, none) or a list of crash,torn,eio,close,reset,delay,partition,oneway,pause,skew,skewback")
	verbose := flag.Bool("v", false, "print the trace")
	bug := flag.String("bug", "", "planted bug to switch on (needs -tags chronikbugs): "+strings.Join(sim.PlantedBugs(), ", "))
	sweep := flag.Int("sweep", 0, "run this many seeds from -start instead of one")
	start := flag.Uint64("start", 1, "first seed of a sweep")
	parallel := flag.Int("parallel", runtime.GOMAXPROCS(0), "runs at once in a sweep")
	out := flag.String("out", "sim/out", "directory for porcupine visualizations of failing partitions")
	bench := flag.Bool("bench", false, "report simulated seconds per wall second")
	jsonOut := flag.Bool("json", false, "print the result of the run as JSON (how a sweep of cluster runs collects its worker processes' results)")
	flag.Parse()

	if *sweep > 100000 {
		fmt.Fprintln(os.Stderr, "chronik-sim: -sweep is at most 100000")
		os.Exit(2)
	}
	cfg := sim.Config{
		Nodes:      *nodes,
		DurationMs: duration.Milliseconds(),
		Faults:     *faults,
		Bug:        *bug,
		OutDir:     *out,
	}
	if *sweep > 0 {
		os.Exit(runSweep(cfg, *start, *sweep, max(*parallel, 1)))
	}
	cfg.Seed = *seed
	var w *bufio.Writer
	if *verbose {
		w = bufio.NewWriterSize(os.Stdout, 1<<16)
		cfg.Trace = w
	}
	began := time.Now()
	res, err := sim.Run(cfg)
	if w != nil {
		w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chronik-sim:", err)
		os.Exit(2)
	}
	if *jsonOut {
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, "chronik-sim:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	wall := time.Since(began)
	fmt.Printf("seed %d: %d faults, %d crashes, %d writes (%d acked, %d unknown, %d resolved), %d records read, %d events, %s simulated in %s\n",
		res.Seed, len(res.Faults), res.Crashes, res.Writes, res.Acked, res.Unknown, res.Resolved, res.Reads, res.Events,
		time.Duration(res.SimUs)*time.Microsecond, wall.Round(time.Millisecond))
	if *bench {
		fmt.Printf("speed: %.0f simulated seconds per wall second, %.0f per CPU second\n",
			float64(res.SimUs)/1e6/wall.Seconds(), float64(res.SimUs)/1e6/cpuSeconds())
	}
	code := 0
	if res.Failed() {
		code = 1
		fmt.Printf("FAIL: %d violations\n", res.ViolationCount)
		for _, v := range res.Violations {
			fmt.Println("  " + v.String())
		}
		for _, p := range res.Visualizations {
			fmt.Println("  porcupine visualization:", p)
		}
		fmt.Println("replay:", sim.ReplayCommand(cfg))
	}
	for _, n := range res.Notes {
		fmt.Printf("known issue %s: %d times, first %s\n  cause: %s\n", n.Check, n.Count, n.First, sim.KnownIssues[n.Check])
	}
	if res.LinearizabilityUnknown {
		fmt.Println("note: the linearizability check timed out on a partition")
	}
	fmt.Println("trace", res.TraceHash)
	os.Exit(code)
}

// cpuSeconds is the CPU time (user and system) the process and its finished worker
// processes have used; on a shared machine it measures the simulator where wall time
// measures the neighbours too.
func cpuSeconds() float64 {
	total := 0.0
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			continue
		}
		tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
		total += tv(ru.Utime) + tv(ru.Stime)
	}
	return total
}

// runWorker runs one seed of a cluster in a child process. Cluster runs hold a
// process-wide lock (they pin crypto/rand.Reader, which Raft's election jitter reads),
// so a sweep spreads them over processes to use more than one core.
func runWorker(cfg sim.Config) (*sim.Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-json", "-seed", strconv.FormatUint(cfg.Seed, 10), "-nodes", strconv.Itoa(cfg.Nodes),
		"-duration", (time.Duration(cfg.DurationMs) * time.Millisecond).String(), "-faults", cfg.Faults, "-out", cfg.OutDir}
	if cfg.Bug != "" {
		args = append(args, "-bug", cfg.Bug)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("worker for seed %d: %v: %s", cfg.Seed, err, strings.TrimSpace(stderr.String()))
	}
	var res sim.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("worker for seed %d: %w", cfg.Seed, err)
	}
	return &res, nil
}

type outcome struct {
	cfg sim.Config
	res *sim.Result
	err error
}

func runSweep(base sim.Config, start uint64, n, parallel int) int {
	began := time.Now()
	results := make([]outcome, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cfg := base
				cfg.Seed = start + uint64(i)
				var res *sim.Result
				var err error
				if base.Nodes > 1 && parallel > 1 {
					res, err = runWorker(cfg)
				} else {
					res, err = sim.Run(cfg)
				}
				results[i] = outcome{cfg, res, err}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	failed := 0
	var simUs int64
	notes := map[string]int{}
	for _, o := range results {
		if o.err != nil {
			fmt.Fprintf(os.Stderr, "seed %d: %v\n", o.cfg.Seed, o.err)
			return 2
		}
		simUs += o.res.SimUs
		for _, n := range o.res.Notes {
			notes[n.Check]++
		}
		if o.res.Failed() {
			failed++
			fmt.Printf("FAIL seed %d: %s (%d violations)\n  %s\n  replay: %s\n", o.cfg.Seed, o.res.FirstCheck(),
				o.res.ViolationCount, o.res.Violations[0], sim.ReplayCommand(o.cfg))
		}
	}
	for _, check := range slices.Sorted(maps.Keys(notes)) {
		fmt.Printf("known issue %s in %d seeds: %s\n", check, notes[check], sim.KnownIssues[check])
	}
	wall := time.Since(began)
	fmt.Printf("sweep: %d seeds from %d, %d failed, %s simulated in %s wall, %.1fs CPU (%.0f sim-s per wall-s over %d workers, %.0f per CPU-s)\n",
		n, start, failed, time.Duration(simUs)*time.Microsecond, wall.Round(time.Millisecond), cpuSeconds(),
		float64(simUs)/1e6/wall.Seconds(), parallel, float64(simUs)/1e6/cpuSeconds())
	if failed > 0 {
		return 1
	}
	return 0
}
