// Package proccpu measures a process's CPU use and decides when it has gone back to idle:
// the check behind the seed report's claim that "CPU returns to idle within seconds of
// load completion" (a closed socket spinning its handler would keep it busy forever).
//
// To check a process after load:
//  1. Stop the load.
//  2. Call WaitIdle with a Source for the process (Proc for another process, Rusage for
//     this one) and an IdleConfig: idle means at most MaxCores of CPU over a whole Window.
//  3. Recovery.Idle says whether a window that idle began before Timeout; Recovery.After
//     says when it began; Recovery.Samples hold the curve for a chart.
//
// /proc counts CPU in ticks of 10 ms, so a 1 s window measures to ±1% of a core; use
// windows of a second or more with Proc.
package proccpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const userHZ = 100

// MaxSamples bounds the samples one WaitIdle keeps (and so its Timeout/Interval).
const MaxSamples = 100000

// Source reads the CPU time (user plus system) a process has used so far.
type Source func() (time.Duration, error)

// Proc is the CPU time of process pid, read from /proc/<pid>/stat.
func Proc(pid int) Source {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	return func() (time.Duration, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		return parseStat(b)
	}
}

// parseStat reads utime plus stime from the contents of a /proc/<pid>/stat file.
func parseStat(b []byte) (time.Duration, error) {
	// Field 2, the command name, is parenthesised and may hold spaces and parentheses:
	// count fields after the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proccpu: malformed stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	const utime, stime = 14 - 3, 15 - 3 // f[0] is field 3
	if len(f) <= stime {
		return 0, fmt.Errorf("proccpu: malformed stat: %d fields", len(f)+2)
	}
	var ticks int64
	for _, s := range [][]byte{f[utime], f[stime]} {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("proccpu: malformed stat: cpu field %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// Rusage is this process's CPU time from getrusage(RUSAGE_SELF), to the microsecond.
func Rusage() Source {
	return func() (time.Duration, error) {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, fmt.Errorf("proccpu: getrusage: %w", err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
	}
}

// IdleConfig says what idle is and how long to wait for it.
type IdleConfig struct {
	// MaxCores is the most CPU, in cores, that counts as idle: 0.02 is 2% of one core.
	MaxCores float64
	// Window is how long the use must stay at most MaxCores; default 1s.
	Window time.Duration
	// Interval is the sampling period; default Window/10.
	Interval time.Duration
	// Timeout is how long after the call an idle window may begin; default 5s, the
	// seed report's "within seconds". WaitIdle returns by Timeout+Window.
	Timeout time.Duration
}

func (c *IdleConfig) setDefaults() error {
	if c.Window <= 0 {
		c.Window = time.Second
	}
	if c.Interval <= 0 {
		c.Interval = c.Window / 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxCores < 0 || c.Interval > c.Window || (c.Timeout+c.Window)/c.Interval > MaxSamples {
		return fmt.Errorf("proccpu: bad idle config %+v", *c)
	}
	return nil
}

// Sample is the CPU time used by At, since WaitIdle began.
type Sample struct {
	At  time.Duration
	CPU time.Duration
}

// Recovery is what WaitIdle saw.
type Recovery struct {
	// Idle: a window of at most MaxCores began before Timeout.
	Idle bool
	// After is when the first idle window began, since the call (valid when Idle).
	After time.Duration
	// Cores is the use over the last window measured: the idle one when Idle, else the
	// window that ended last.
	Cores float64
	// Samples are every sample taken, the first at 0.
	Samples []Sample
}

func (r Recovery) String() string {
	if r.Idle {
		return fmt.Sprintf("idle after %v (%.2f%% of a core over the window)", r.After.Round(time.Millisecond), 100*r.Cores)
	}
	return fmt.Sprintf("not idle: %.2f%% of a core over the last window", 100*r.Cores)
}

// WaitIdle samples src every Interval until a Window of at most MaxCores has passed
// whose start is before Timeout, or until no such window can begin in time, or ctx ends.
func WaitIdle(ctx context.Context, src Source, cfg IdleConfig) (Recovery, error) {
	if err := cfg.setDefaults(); err != nil {
		return Recovery{}, err
	}
	start := time.Now()
	cpu, err := src()
	if err != nil {
		return Recovery{}, err
	}
	r := Recovery{Samples: []Sample{{0, 0}}}
	base := cpu
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		cpu, err := src()
		if err != nil {
			return r, err
		}
		now := Sample{At: time.Since(start), CPU: cpu - base}
		r.Samples = append(r.Samples, now)
		from, ok := windowStart(r.Samples, cfg.Window)
		if !ok {
			continue
		}
		r.Cores = float64(now.CPU-from.CPU) / float64(now.At-from.At)
		if r.Cores <= cfg.MaxCores {
			r.Idle, r.After = true, from.At
			return r, nil
		}
		if now.At-cfg.Window >= cfg.Timeout {
			return r, nil // the next window would begin after the timeout
		}
	}
}

// windowStart is the latest sample at least window before the last one.
func windowStart(s []Sample, window time.Duration) (Sample, bool) {
	last := s[len(s)-1]
	for i := len(s) - 2; i >= 0; i-- {
		if last.At-s[i].At >= window {
			return s[i], true
		}
	}
	return Sample{}, false
}
