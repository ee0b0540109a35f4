package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. It is 100 on every Linux
// architecture Go supports.
const userHZ = 100

// peakRSSBytes reads VmHWM, the peak resident set size, of pid ("self" for this process)
// from /proc/<pid>/status.
func peakRSSBytes(pid string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: unexpected VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("bench: no VmHWM in /proc/%s/status", pid)
}

// cpuTime reads the user plus system CPU time pid has used from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is parenthesised and may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const utimeField, stimeField = 14 - 3, 15 - 3 // f[0] is field 3
	if len(f) <= stimeField {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range []string{f[utimeField], f[stimeField]} {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// selfCPU is this process's CPU time so far, or -1 if unknown.
func selfCPU() time.Duration {
	d, err := cpuTime(os.Getpid())
	if err != nil {
		return -1
	}
	return d
}

// machine describes where a run happened, for the report.
type machine struct {
	CPUs       int
	CPUModel   string
	GoVersion  string
	Kernel     string
	TempFS     string // filesystem type and device of the temp dir
	Disk       string // what the disk probe found, if it ran
	GitVersion string
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages when the run began
	// and ended: other processes on the machine skew every figure.
	LoadStart, LoadEnd string
	// PressureStart and PressureEnd are /proc/pressure/cpu's "some" averages: the share of
	// time some runnable task waited for a CPU.
	PressureStart, PressureEnd string
}

// cpuPressure is the "some" line of /proc/pressure/cpu without its total.
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "some "); ok {
			f := strings.Fields(rest)
			if len(f) >= 3 {
				return strings.Join(f[:3], " ")
			}
		}
	}
	return "unknown"
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

func describeMachine(ctx context.Context, tempDir string) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown", Kernel: "unknown", TempFS: "unknown"}
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
	m.TempFS = mountOf(tempDir)
	m.GitVersion = gitVersion(ctx)
	m.LoadStart, m.PressureStart = loadAverage(), cpuPressure()
	return m
}

// mountOf finds the mount holding dir in /proc/mounts: the longest mount point that is a
// prefix of it.
func mountOf(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	best, bestLen := "unknown", -1
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		dev, mnt, typ := f[0], f[1], f[2]
		under := dir == mnt || strings.HasPrefix(dir, strings.TrimSuffix(mnt, "/")+"/")
		if under && len(mnt) > bestLen {
			best, bestLen = fmt.Sprintf("%s on %s (%s)", typ, dev, mnt), len(mnt)
		}
	}
	return best
}

// gitVersion describes the checkout the tool runs from, or "" outside one.
func gitVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
