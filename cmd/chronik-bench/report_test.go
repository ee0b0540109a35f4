package main

import (
	"errors"
	"math"
	"testing"
)

func TestPairedRatio(t *testing.T) {
	m := func(run int, target string, size int, rate float64) *measurement {
		return &measurement{run: run, target: target, size: size, produceRate: rate}
	}
	failed := m(4, "chronik", 256, 1)
	failed.err = errors.New("boom")
	r := &report{measurements: []*measurement{
		m(1, "chronik", 256, 100), m(1, "kfake", 256, 50), // 2
		m(2, "chronik", 256, 100), m(2, "kfake", 256, 200), // 0.5
		m(3, "chronik", 256, 300), m(3, "kfake", 256, 100), // 3
		failed, m(4, "kfake", 256, 100), // no pair
		m(1, "chronik", 1024, 10), // no pair
	}}
	if got := r.pairedRatio(256); got != 2 {
		t.Errorf("pairedRatio(256) = %v, want 2", got)
	}
	if got := r.pairedRatio(1024); !math.IsNaN(got) {
		t.Errorf("pairedRatio(1024) = %v, want NaN", got)
	}
}
