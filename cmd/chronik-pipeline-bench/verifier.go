package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxScrapeBytes bounds one read of the verifier's /metrics.
const maxScrapeBytes = 4 << 20

// verifierProgress is what the verifier's /metrics say it has read.
type verifierProgress struct {
	ok      int64 // records read intact, once
	missing int64 // sequences in open gaps
	bad     int64 // duplicate, corrupt, foreign, out of order, untracked
}

// scrapeVerifier reads chronik-verify's counters from its /metrics.
func scrapeVerifier(ctx context.Context, addr string) (verifierProgress, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return verifierProgress{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return verifierProgress{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return verifierProgress{}, fmt.Errorf("verifier /metrics: %s", resp.Status)
	}
	return parseVerifierMetrics(io.LimitReader(resp.Body, maxScrapeBytes))
}

// parseVerifierMetrics reads the Prometheus text lines of chronik-verify's counts.
func parseVerifierMetrics(r io.Reader) (verifierProgress, error) {
	var p verifierProgress
	seen := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		n := int64(v)
		switch {
		case name == `chronik_verify_records_total{result="ok"}`:
			p.ok, seen = n, true
		case name == "chronik_verify_missing_records":
			p.missing = n
		case strings.HasPrefix(name, "chronik_verify_records_total{") && name != `chronik_verify_records_total{result="redelivered"}`:
			p.bad += n
		}
	}
	if err := sc.Err(); err != nil {
		return p, err
	}
	if !seen {
		return p, fmt.Errorf("verifier /metrics: no chronik_verify_records_total{result=\"ok\"}")
	}
	return p, nil
}

// verifyResult is the part of chronik-verify's -json summary the report shows.
type verifyResult struct {
	// Counts has chronik-verify's field names (its Counts has no JSON tags).
	Counts struct {
		Records     int64
		OK          int64
		Lost        int64
		Duplicated  int64
		Corrupt     int64
		OutOfOrder  int64
		Foreign     int64
		NotAcked    int64
		Untracked   int64
		Redelivered int64
		OffsetGaps  int64
		Producers   int
		Partitions  int
		Bytes       int64
	} `json:"counts"`
	Faults      []json.RawMessage `json:"faults"`
	FetchErrors int64             `json:"fetch_errors"`
	Stopped     string            `json:"stopped"`
	Verdict     string            `json:"verdict"`
}

func readVerifyResult(path string) (verifyResult, error) {
	var v verifyResult
	b, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
