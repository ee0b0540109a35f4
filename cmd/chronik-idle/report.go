package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// nodeFigures is what one node used while idle.
type nodeFigures struct {
	pct      float64       // CPU time over the window's wall time, in % of one core
	cpu      time.Duration // CPU time (user+system) in the window
	rss, hwm int64         // VmRSS at the end of the window and VmHWM, bytes
	// timeline is pct over each of timelineSteps equal parts of the window.
	timeline []float64
}

type report struct {
	opts               *options
	bin                string
	started            time.Time
	ready              time.Duration // from CreateTopic to a leader for every partition
	before             leadership    // when every partition first had a leader
	after              leadership    // after the window; byNode nil if unknown
	nodes              []nodeFigures // node i+1 at i
	wall               time.Duration // the measurement window
	loadStart, loadEnd string        // /proc/loadavg
}

func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	fmt.Fprintf(&b, "# Idle cluster: %d nodes × %d partitions (RF %d), %s\n\n", o.nodes, o.partitions, o.rf, r.started.UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Command (from the repository root):\n\n```\n%s\n```\n\n", o.commandLine)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s; Linux %s; %s; chronik built from %s.\n", runtime.NumCPU(), cpuModel(), kernel(), runtime.Version(), vcsOf(r.bin))
	fmt.Fprintf(&b, "Load average (1/5/15 min) at start: %s; at end: %s.\n\n", r.loadStart, r.loadEnd)
	fmt.Fprintf(&b, "%d chronik processes in cluster mode on 127.0.0.1 (default flags: raft tick 100 ms, election timeout 1 s)%s, "+
		"one topic of %d partitions with replication factor %d created through kadm; every partition had a leader %v after CreateTopics was sent (leaders by node: %s). "+
		"After %v more, with no client connected, each process's CPU time (utime+stime from /proc/<pid>/stat) was read at the start and end of a %v window.\n\n",
		o.nodes, extraArgsNote(o.chronikArgs), o.partitions, o.rf, r.ready.Round(time.Millisecond), leaderNote(r.before, o.nodes), o.settle, r.wall.Round(time.Millisecond))
	fmt.Fprintf(&b, "| node | CPU in window | %% of one core | each %v of the window, %% | RSS now | peak RSS |\n|---:|---:|---:|---|---:|---:|\n", (r.wall / timelineSteps).Round(time.Second))
	var pcts []float64
	for i, n := range r.nodes {
		pcts = append(pcts, n.pct)
		var steps []string
		for _, p := range n.timeline {
			steps = append(steps, fmt.Sprintf("%.1f", p))
		}
		fmt.Fprintf(&b, "| %d | %v | %.2f%% | %s | %s | %s |\n", i+1, n.cpu, n.pct, strings.Join(steps, " "), mib(n.rss), mib(n.hwm))
	}
	verdict := "meets"
	if slices.Max(pcts) >= o.goalPct {
		verdict = "misses"
	}
	fmt.Fprintf(&b, "\nHighest: %.2f%% of one core per node: %s the goal of under %.0f%%. CPU time is counted in 10 ms ticks, so each figure is ±%.2f%%.\n",
		slices.Max(pcts), verdict, o.goalPct, 100*float64(time.Second/userHZ)/float64(r.wall))
	if r.after.byNode != nil {
		fmt.Fprintf(&b, "Leaders by node after the window: %s.\n", leaderNote(r.after, o.nodes))
	}
	return b.String()
}

func extraArgsNote(args string) string {
	if args == "" {
		return ""
	}
	return " with `" + args + "`"
}

// leaderNote lists the partitions each node leads, every node included, and the
// metadata leader (Metadata's ControllerID).
func leaderNote(l leadership, nodes int) string {
	var ids []int32
	for id := range l.byNode {
		ids = append(ids, id)
	}
	for id := range int32(nodes) {
		ids = append(ids, id+1)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range slices.Compact(ids) {
		parts = append(parts, fmt.Sprintf("node %d: %d", id, l.byNode[id]))
	}
	return fmt.Sprintf("%s; metadata leader node %d", strings.Join(parts, ", "), l.controller)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// vcsOf says which commit a Go binary was built from, as the go command stamped it, or
// else which commit the checkout is at.
func vcsOf(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err == nil {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			rev = rev[:min(len(rev), 12)]
			if modified == "true" {
				return "commit " + rev + " plus uncommitted changes"
			}
			return "commit " + rev
		}
	}
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "an unknown revision"
	}
	return "the checkout at " + strings.TrimSpace(string(out))
}
