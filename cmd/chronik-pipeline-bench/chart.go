package main

import (
	"fmt"
	"image/color"
	"math"

	"chronik/internal/linechart"
)

// modeColor is each mode's colour on the chart.
func modeColor(mode string) color.RGBA {
	if mode == "direct" {
		return linechart.Orange
	}
	return linechart.Blue
}

// chart is msg/s, batch latency and broker CPU over time, one line per mode.
func (b *bench) chart() *linechart.Chart {
	var tput, lat, cpu []linechart.Series
	for _, r := range b.finishedRuns() {
		name := "HTTP"
		if r.mode == "direct" {
			name = "direct"
		}
		col := modeColor(r.mode)
		var xs, msgs, p50, p99 []float64
		for _, s := range r.report.Timeline {
			xs = append(xs, s.T)
			msgs = append(msgs, s.MsgsPerSec)
			if s.MsgsPerSec == 0 && s.P99Ms == 0 {
				// No batch ended in this second: no latency to show.
				p50, p99 = append(p50, math.NaN()), append(p99, math.NaN())
				continue
			}
			p50, p99 = append(p50, s.P50Ms), append(p99, s.P99Ms)
		}
		tput = append(tput, linechart.Series{Name: name, Color: col, X: xs, Y: msgs})
		lat = append(lat,
			linechart.Series{Name: name + " p99", Color: col, X: xs, Y: p99},
			linechart.Series{Name: name + " p50", Color: col, Dashed: true, X: xs, Y: p50})
		var cx, cy []float64
		for _, s := range r.series {
			sum := 0.0
			for _, c := range s.Cores {
				sum += c
			}
			// Seconds since the load generator's own start, as the timeline counts.
			cx = append(cx, s.At.Sub(r.report.Started).Seconds())
			cy = append(cy, 100*sum)
		}
		cpu = append(cpu, linechart.Series{Name: name, Color: col, X: cx, Y: cy})
	}
	return &linechart.Chart{
		Title:  fmt.Sprintf("chronik pipeline, 3 nodes RF 3 acks=all, %d x %d B batches, %s", b.o.batch, b.o.size, b.started.UTC().Format("2006-01-02")),
		XLabel: "seconds since the load run began",
		Width:  1200, Height: 960,
		Panels: []linechart.Panel{
			{Title: "acknowledged msg/s", Series: tput},
			{Title: "batch latency, ms", Series: lat},
			{Title: "broker CPU, 3 nodes, % of one core", Series: cpu},
		},
	}
}
