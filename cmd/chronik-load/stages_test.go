package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestParseStages(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []stage
		ok   bool
	}{
		{"30s:200,1m:1000,30s:0", []stage{{30 * time.Second, 200}, {time.Minute, 1000}, {30 * time.Second, 0}}, true},
		{" 1s:4 , 2s:8 ", []stage{{time.Second, 4}, {2 * time.Second, 8}}, true},
		{"30s", nil, false},
		{"0s:10", nil, false},
		{"10s:-1", nil, false},
		{"10s:20001", nil, false},
		{"x:1", nil, false},
		{"59m:1,2m:1", nil, false},
		{"", nil, false},
	} {
		got, err := parseStages(tc.in)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("parseStages(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestTargetAt(t *testing.T) {
	st := []stage{{10 * time.Second, 100}, {10 * time.Second, 100}, {5 * time.Second, 0}}
	for _, tc := range []struct {
		at          time.Duration
		want, stage int
	}{
		{0, 0, 0},
		{5 * time.Second, 50, 0},
		{9999 * time.Millisecond, 99, 0},
		{10 * time.Second, 100, 1},
		{19 * time.Second, 100, 1},
		{20 * time.Second, 100, 2},
		{22500 * time.Millisecond, 50, 2},
		{25 * time.Second, 0, 2},
		{time.Hour, 0, 2},
	} {
		if got := targetAt(st, tc.at); got != tc.want {
			t.Errorf("targetAt(%v) = %d, want %d", tc.at, got, tc.want)
		}
		if got := stageAt(st, tc.at); got != tc.stage {
			t.Errorf("stageAt(%v) = %d, want %d", tc.at, got, tc.stage)
		}
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if h.quantile(0.5) != 0 {
		t.Fatal("empty hist")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var ds []time.Duration
	for range 20000 {
		d := time.Duration(r.ExpFloat64() * float64(20*time.Millisecond))
		ds = append(ds, d)
		h.add(d)
	}
	slices.Sort(ds)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 1} {
		exact := ds[max(int(q*float64(len(ds)))-1, 0)]
		got := h.quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/50+float64(time.Microsecond) {
			t.Errorf("q%v = %v, exact %v: off by more than 2%%", q, got, exact)
		}
	}
	for _, us := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<20 + 12345} {
		i := bucketOf(us)
		if bucketHigh(i) < us || (i > 0 && bucketHigh(i-1) >= us) {
			t.Errorf("value %d in bucket %d, which ends at %d (previous at %d)", us, i, bucketHigh(i), bucketHigh(i-1))
		}
	}
}
