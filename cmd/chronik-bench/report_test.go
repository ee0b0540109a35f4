package main

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
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

// TestLatencyByLoad renders the "Latency by load" table from synthetic measurements: the
// medians over runs per target, size and fraction, a paced run that failed verification,
// and a run whose saturated measurement failed, so its paced ones never ran.
func TestLatencyByLoad(t *testing.T) {
	o, err := parse([]string{"-brokers", "3", "-sizes", "1024", "-runs", "3", "-paced-fractions", "0.1,0.5"})
	if err != nil {
		t.Fatal(err)
	}
	sat := func(target string, run int, rate float64) *measurement {
		m := newMeasurement(target, 1024, run)
		m.produceRate, m.consumed = rate, true
		return m
	}
	// pace adds to m a paced measurement at fraction f that achieved rate, with p50 latMs
	// and p90, p99, p99.9 of 2, 3 and 4 times it.
	pace := func(m *measurement, f, rate, latMs float64) *measurement {
		p := sat(m.target, m.run, rate)
		p.fraction, p.paceRate = f, m.produceRate*f
		lat := time.Duration(latMs * float64(time.Millisecond))
		p.p50, p.p90, p.p99, p.p999 = lat, 2*lat, 3*lat, 4*lat
		m.paced = append(m.paced, p)
		return p
	}
	c1, c2, c3 := sat("chronik", 1, 1000), sat("chronik", 2, 2000), sat("chronik", 3, 3000)
	pace(c1, 0.5, 500, 1)
	pace(c1, 0.1, 100, 0.5)
	pace(c2, 0.5, 990, 2)
	pace(c2, 0.1, 200, 0.25)
	pace(c3, 0.5, 1400, 4)
	pace(c3, 0.1, 290, 1).verify.lost = 2
	k1, k2 := sat("kfake", 1, 4000), sat("kfake", 2, 0)
	pace(k1, 0.5, 2000, 0.1)
	pace(k1, 0.1, 400, 0.1)
	k2.err = errors.New("boom")
	r := &report{opts: o, measurements: []*measurement{c1, k1, c2, k2, c3}, targets: []targetInfo{{name: "chronik"}, {name: "kfake"}}}
	md := r.markdown()

	want := `### Latency by load

| target | size | fraction | paced at msg/s | msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms | verified |
|---|---|---:|---:|---:|---:|---:|---:|---:|---|
| chronik | 1 KiB | 0.5 | 1000 | 990 | 2.00 | 4.00 | 6.00 | 8.00 | ok 3/3 |
| chronik | 1 KiB | 0.1 | 200 | 200 | 0.50 | 1.00 | 1.50 | 2.00 | **2/3: FAIL lost=2** |
| kfake | 1 KiB | 0.5 | 2000 | 2000 | 0.10 | 0.20 | 0.30 | 0.40 | **1/2: not run** |
| kfake | 1 KiB | 0.1 | 400 | 400 | 0.10 | 0.20 | 0.30 | 0.40 | **1/2: not run** |

Latency by load: medians over the runs`
	if !strings.Contains(md, want) {
		t.Errorf("report lacks\n%s\n\nreport:\n%s", want, md)
	}
	for _, s := range []string{
		" half rate: msg/s | p50 ms | p99 ms |",
		"- Chronik p99 produce latency at half its saturated rate, 1 KiB: 6.00 ms (target ≤ 10 ms); p50 2.00 ms (kfake at half its rate: p99 0.30 ms, p50 0.10 ms)\n",
		"| 3 | chronik | 1 KiB | 0 | 3000 | 3.1 | 0.00 | 0.00 | 1500 | 1400 | 4.00 | 12.00 |",
		"0.1-rate FAIL lost=2 |\n",
		"for each fraction 0.5, 0.1 of the produce rate just measured",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q:\n%s", s, md)
		}
	}

	// Without 0.5 among the fractions the half-rate columns and lines go.
	o.pacedFractions = []float64{0.25}
	md = r.markdown()
	for _, s := range []string{"half rate", "half its saturated rate", "Half rate:"} {
		if strings.Contains(md, s) {
			t.Errorf("fractions 0.25: report has %q:\n%s", s, md)
		}
	}
	if !strings.Contains(md, "| chronik | 1 KiB | 0.25 | – | – | – | – | – | – | **0/3: not run** |") {
		t.Errorf("fractions 0.25: report lacks the not-run row:\n%s", md)
	}
}
