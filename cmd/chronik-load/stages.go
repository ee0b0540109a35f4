package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits on the stages flag.
const (
	maxStages = 50
	maxVUs    = 20000
	// maxRunDuration bounds the sum of the stages.
	maxRunDuration = time.Hour
)

// stage ramps the virtual users linearly from the previous stage's target (0 before the
// first) to target over duration, as a k6 stage does.
type stage struct {
	duration time.Duration
	target   int
}

// parseStages reads "30s:200,1m:1000,30s:0": comma-separated duration:target pairs.
func parseStages(s string) ([]stage, error) {
	var out []stage
	var total time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		d, n, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("stage %q: want duration:target, like 30s:200", part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("stage %q: duration %q: want a positive Go duration like 30s or 1m", part, d)
		}
		target, err := strconv.Atoi(n)
		if err != nil || target < 0 || target > maxVUs {
			return nil, fmt.Errorf("stage %q: target %q: want 0 to %d virtual users", part, n, maxVUs)
		}
		out = append(out, stage{duration: dur, target: target})
		total += dur
	}
	switch {
	case len(out) > maxStages:
		return nil, fmt.Errorf("%d stages, more than %d", len(out), maxStages)
	case total > maxRunDuration:
		return nil, fmt.Errorf("stages last %v, more than %v", total, maxRunDuration)
	}
	return out, nil
}

// totalDuration is the sum of the stages' durations.
func totalDuration(stages []stage) time.Duration {
	var d time.Duration
	for _, s := range stages {
		d += s.duration
	}
	return d
}

// stageAt is the index of the stage running at elapsed; past the end, the last stage.
func stageAt(stages []stage, elapsed time.Duration) int {
	for i, s := range stages {
		if elapsed < s.duration {
			return i
		}
		elapsed -= s.duration
	}
	return len(stages) - 1
}

// targetAt is the number of virtual users the stages ask for at elapsed: the linear
// ramp of the current stage, rounded down; 0 past the end.
func targetAt(stages []stage, elapsed time.Duration) int {
	from := 0
	for _, s := range stages {
		if elapsed < s.duration {
			return from + int(int64(s.target-from)*int64(elapsed)/int64(s.duration))
		}
		elapsed -= s.duration
		from = s.target
	}
	return 0
}

// startVUs is the target each stage ramps from.
func startVUs(stages []stage, i int) int {
	if i == 0 {
		return 0
	}
	return stages[i-1].target
}

// peakVUs is the largest target of the stages.
func peakVUs(stages []stage) int {
	p := 0
	for _, s := range stages {
		p = max(p, s.target)
	}
	return p
}

func formatStages(stages []stage) string {
	parts := make([]string, len(stages))
	for i, s := range stages {
		parts[i] = fmt.Sprintf("%v:%d", s.duration, s.target)
	}
	return strings.Join(parts, ",")
}
