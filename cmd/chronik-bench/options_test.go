package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseHalfRateDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-brokers", "3"}, true},
		{[]string{"-brokers", "3", "-half-rate-latency=false"}, false},
		{[]string{"-half-rate-latency"}, true},
	} {
		o, err := parse(tc.args)
		if err != nil {
			t.Fatalf("parse(%q): %v", tc.args, err)
		}
		if o.halfRate != tc.want {
			t.Errorf("parse(%q).halfRate = %v, want %v", tc.args, o.halfRate, tc.want)
		}
	}
	for _, bad := range [][]string{{"-brokers", "0"}, {"-brokers", "6"}, {"-brokers", "3", "-external-chronik=false"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

// TestMarkdownTables checks that every row of the report's tables has as many cells as
// its header, with and without the half-rate columns and with a failed measurement.
func TestMarkdownTables(t *testing.T) {
	for _, brokers := range []string{"1", "3"} {
		o, err := parse([]string{"-brokers", brokers, "-sizes", "1024"})
		if err != nil {
			t.Fatal(err)
		}
		m := func(target string, rate float64) *measurement {
			x := newMeasurement(target, 1024, 1)
			x.produceRate, x.p99, x.consumed = rate, 3*time.Millisecond, true
			return x
		}
		c, k := m("chronik", 100), m("kfake", 200)
		if o.halfRate {
			c.half = m("chronik", 50)
			c.half.paceRate = 50
			k.half = m("kfake", 100)
			k.half.err = errors.New("a | b")
		}
		r := &report{opts: o, measurements: []*measurement{c, k}, targets: []targetInfo{
			{name: "chronik", own: true, peakRSS: []int64{1 << 20, 2 << 20, -1}},
			{name: "kfake", own: true, peakRSS: []int64{3 << 20}},
		}}
		md := r.markdown()
		cells := -1
		for line := range strings.Lines(md) {
			if !strings.HasPrefix(line, "|") {
				cells = -1
				continue
			}
			n := strings.Count(line, "|")
			if cells < 0 {
				cells = n
			} else if n != cells {
				t.Errorf("-brokers %s: row has %d cells, header %d: %q", brokers, n-1, cells-1, line)
			}
		}
		if want := "max 2 MiB (node 1 1 MiB, node 2 2 MiB, node 3 unknown)"; brokers == "3" && !strings.Contains(md, want) {
			t.Errorf("-brokers 3: report lacks %q:\n%s", want, md)
		}
	}
}
