package proccpu

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want time.Duration
		ok   bool
	}{
		{"1234 (chronik) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0", 3 * time.Second, true},
		{"1 (a b) c)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0", 100 * time.Millisecond, true},
		{"1 (x) R 1 1 1 0 -1 0 0 0 0 0 7", 0, false},
		{"no parens at all", 0, false},
		{"1 (x) R 1 1 1 0 -1 0 0 0 0 0 7 -3 0", 0, false},
	} {
		got, err := parseStat([]byte(tc.stat))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStat(%q) = %v, %v; want %v, ok %v", tc.stat, got, err, tc.want, tc.ok)
		}
	}
}

// spin burns CPU on this goroutine for d of wall time.
func spin(d time.Duration) {
	x := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 10000 {
			x += i
		}
	}
	_ = x
}

func TestSourcesSeeThisProcessWork(t *testing.T) {
	proc, self := Proc(os.Getpid()), Rusage()
	p0, err1 := proc()
	s0, err2 := self()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// Spin until getrusage counts 300ms of CPU (wall time depends on the machine's load).
	var s1 time.Duration
	for end := time.Now().Add(20 * time.Second); s1-s0 < 300*time.Millisecond; {
		if time.Now().After(end) {
			t.Fatal("no 300ms of CPU in 20s of spinning")
		}
		spin(10 * time.Millisecond)
		if s1, err2 = self(); err2 != nil {
			t.Fatal(err2)
		}
	}
	p1, err := proc()
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts 10ms ticks; both count every thread of the process.
	if dp, ds := p1-p0, s1-s0; dp < ds-50*time.Millisecond || dp > ds+100*time.Millisecond {
		t.Errorf("/proc saw %v of CPU, getrusage %v", dp, ds)
	}
}

// fake is a Source that uses one core until busyFor has passed since its first read,
// then nothing.
func fake(busyFor time.Duration) Source {
	var start time.Time
	return func() (time.Duration, error) {
		if start.IsZero() {
			start = time.Now()
		}
		return min(time.Since(start), busyFor), nil
	}
}

func TestWaitIdle(t *testing.T) {
	cfg := IdleConfig{MaxCores: 0.02, Window: 200 * time.Millisecond, Interval: 20 * time.Millisecond, Timeout: time.Second}
	ctx := context.Background()

	r, err := WaitIdle(ctx, fake(0), cfg)
	if err != nil || !r.Idle || r.After != 0 {
		t.Errorf("already idle: %v, %v", r, err)
	}

	r, err = WaitIdle(ctx, fake(400*time.Millisecond), cfg)
	if err != nil || !r.Idle || r.After < 380*time.Millisecond || r.After > 800*time.Millisecond {
		t.Errorf("busy 400ms: %v, %v", r, err)
	}

	start := time.Now()
	r, err = WaitIdle(ctx, fake(time.Hour), cfg)
	if err != nil || r.Idle || r.Cores < 0.9 {
		t.Errorf("always busy: %v, %v", r, err)
	}
	if took := time.Since(start); took < cfg.Timeout || took > cfg.Timeout+cfg.Window+time.Second {
		t.Errorf("always busy: gave up after %v, want about %v", took, cfg.Timeout+cfg.Window)
	}
}
