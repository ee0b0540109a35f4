package main

import (
	"errors"
	"slices"
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
		{[]string{"-paced-fractions", "0.5,0.1"}, true},
		{[]string{"-paced-fractions", "0.5", "-half-rate-latency"}, true},
	} {
		o, err := parse(tc.args)
		if err != nil {
			t.Fatalf("parse(%q): %v", tc.args, err)
		}
		if o.paced != tc.want {
			t.Errorf("parse(%q).paced = %v, want %v", tc.args, o.paced, tc.want)
		}
	}
	for _, bad := range [][]string{
		{"-brokers", "0"}, {"-brokers", "6"}, {"-brokers", "3", "-external-chronik=false"},
		{"-paced-fractions", "0.5", "-half-rate-latency=false"},
	} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestParsePacedFractions(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want []float64
	}{
		{"", []float64{0.5}}, // the default
		{"0.5", []float64{0.5}},
		{"0.5,0.25,0.1", []float64{0.5, 0.25, 0.1}},
		{"0.1, 1 ,0.5", []float64{1, 0.5, 0.1}},
		{"1e-3", []float64{0.001}},
	} {
		args := []string{"-brokers", "3"}
		if tc.arg != "" {
			args = append(args, "-paced-fractions", tc.arg)
		}
		o, err := parse(args)
		if err != nil {
			t.Fatalf("parse(%q): %v", args, err)
		}
		if !slices.Equal(o.pacedFractions, tc.want) {
			t.Errorf("parse(%q).pacedFractions = %v, want %v", args, o.pacedFractions, tc.want)
		}
	}
	for _, tc := range []struct{ arg, wantErr string }{
		{"0", `-paced-fractions: "0" is not a fraction in (0, 1]`},
		{"-0.5", `-paced-fractions: "-0.5" is not a fraction in (0, 1]`},
		{"1.5", `-paced-fractions: "1.5" is not a fraction in (0, 1]`},
		{"half", `-paced-fractions: "half" is not a fraction in (0, 1]`},
		{"NaN", `-paced-fractions: "NaN" is not a fraction in (0, 1]`},
		{"Inf", `-paced-fractions: "Inf" is not a fraction in (0, 1]`},
		{"", `-paced-fractions: empty entry in ""`},
		{"0.5,,0.1", `-paced-fractions: empty entry in "0.5,,0.1"`},
		{"0.5,", `-paced-fractions: empty entry in "0.5,"`},
		{"0.5,0.50", `-paced-fractions: "0.50" named twice`},
		{"1,.9,.8,.7,.6,.5,.4,.3,.2,.1,.05", "-paced-fractions: 11 fractions, at most 10"},
	} {
		_, err := parse([]string{"-paced-fractions", tc.arg})
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("parse(-paced-fractions %q) = %v, want error %q", tc.arg, err, tc.wantErr)
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
		if o.paced {
			ch := m("chronik", 50)
			ch.paceRate, ch.fraction = 50, 0.5
			c.paced = []*measurement{ch}
			kh := m("kfake", 100)
			kh.fraction = 0.5
			kh.err = errors.New("a | b")
			k.paced = []*measurement{kh}
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
