package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// verdict says what is wrong with a run, "" when nothing is. minRecords is the fewest
// records a run must read to pass.
func verdict(r result, minRecords int64) string {
	c := r.Counts
	var bad []string
	add := func(n int64, what string) {
		if n > 0 {
			bad = append(bad, fmt.Sprintf("%s %d", what, n))
		}
	}
	add(c.Lost, "lost")
	add(c.Duplicated, "duplicated")
	add(c.Corrupt, "corrupt")
	add(c.OutOfOrder, "out of order")
	add(c.Foreign, "foreign")
	add(c.Untracked, "untracked")
	if c.Records < minRecords {
		bad = append(bad, fmt.Sprintf("read %d records, want at least %d", c.Records, minRecords))
	}
	return strings.Join(bad, ", ")
}

// printSummary writes the run's summary table, its fault examples and its verdict.
func printSummary(w io.Writer, cfg config, r result, minRecords int64) {
	c := r.Counts
	fmt.Fprintf(w, "chronik-verify: group %s, topics %s: %s after %.1fs\n",
		cfg.group, strings.Join(cfg.topics, ","), r.Stopped, r.Elapsed.Seconds())
	rate := 0.0
	if s := r.Elapsed.Seconds(); s > 0 {
		rate = float64(c.Records) / s
	}
	rows := []struct {
		name string
		n    int64
		note string
	}{
		{"records", c.Records, fmt.Sprintf("%.1f MB, %d producers, %d partitions, %.0f records/s", float64(c.Bytes)/1e6, c.Producers, c.Partitions, rate)},
		{"ok", c.OK, ""},
		{"lost", c.Lost, "sequences never read intact (below the highest read, or the count sent)"},
		{"duplicated", c.Duplicated, "a sequence read again at another offset"},
		{"corrupt", c.Corrupt, "failed length, checksum or syntax"},
		{"out of order", c.OutOfOrder, "after a higher sequence in the same partition"},
		{"foreign", c.Foreign, "not load records"},
		{"not acked", c.NotAcked, "missing, but the writer reported that many failed (not a fault)"},
		{"untracked", c.Untracked, fmt.Sprintf("producers past the limit of %d", MaxProducers)},
		{"redelivered", c.Redelivered, "re-read at an offset already read (not a fault)"},
		{"offset gaps", c.OffsetGaps, "skipped offsets in a partition (not a fault)"},
		{"fetch errors", r.FetchErrors, ""},
	}
	for _, row := range rows {
		if row.note != "" {
			fmt.Fprintf(w, "  %-13s %12d   %s\n", row.name, row.n, row.note)
		} else {
			fmt.Fprintf(w, "  %-13s %12d\n", row.name, row.n)
		}
	}
	if c.GapsAbandoned > 0 {
		fmt.Fprintf(w, "  %d gaps given up at the limit of %d per producer (counted lost; a late record from one counts as a duplicate)\n",
			c.GapsAbandoned, MaxGapsPerProducer)
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(w, "faults (at most %d listed):\n", MaxFaultExamples)
		for _, f := range r.Faults {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
	if v := verdict(r, minRecords); v != "" {
		fmt.Fprintf(w, "FAIL: %s\n", v)
	} else {
		fmt.Fprintf(w, "PASS: every record intact, in order, once; no sequence missing\n")
	}
}

// writeJSON writes r to path as JSON, with its verdict.
func writeJSON(path string, r result, minRecords int64) error {
	out := struct {
		result
		Verdict string `json:"verdict"`
	}{r, verdict(r, minRecords)}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
