package main

import (
	"fmt"
	"testing"
)

func TestJudge(t *testing.T) {
	h := &httpSender{batch: 4, size: 100}
	ok := `{"partition":0,"offset":7,"error_code":null,"error":null}`
	bad := `{"partition":null,"offset":null,"error_code":40402,"error":"partition 9 not found"}`
	for _, tc := range []struct {
		status     int
		body       string
		ok, failed int
		ranges     string
		kind       string
	}{
		{200, `{"offsets":[` + ok + `,` + ok + `,` + ok + `,` + ok + `]}`, 4, 0, "[]", ""},
		{207, `{"offsets":[` + ok + `,` + bad + `,` + bad + `,` + ok + `]}`, 2, 2, "[[1 2]]", "http 207 (40402)"},
		{207, `{"offsets":[` + bad + `,` + ok + `,` + ok + `,` + bad + `]}`, 2, 2, "[[0 0] [3 3]]", "http 207 (40402)"},
		{200, `{"offsets":[` + ok + `]}`, 0, 4, "[[0 3]]", "http 200"}, // one offset for four records
		{429, `{"error_code":42901,"message":"busy"}`, 0, 4, "[[0 3]]", "http 429 (42901)"},
		{502, `<html>bad gateway</html>`, 0, 4, "[[0 3]]", "http 502"},
	} {
		r, _ := h.judge(tc.status, []byte(tc.body), 1)
		if r.ok != tc.ok || r.failed != tc.failed || fmt.Sprint(r.failedRanges) != tc.ranges || r.errKind != tc.kind {
			t.Errorf("%d %s: ok %d failed %d ranges %v kind %q; want %d %d %s %q", tc.status, tc.body, r.ok, r.failed, r.failedRanges, r.errKind, tc.ok, tc.failed, tc.ranges, tc.kind)
		}
	}
}

func TestProducerAccount(t *testing.T) {
	var p producer
	for _, b := range []batchResult{
		{ok: 10},
		{ok: 8, failed: 2, failedRanges: [][2]int{{8, 9}}}, // seqs 18-19
		{failed: 10, failedRanges: whole(10)},              // 20-29, joins 18-19
		{ok: 9, failed: 1, failedRanges: [][2]int{{4, 4}}}, // 34
		{ok: 10}, // 40-49
		{ok: 9, failed: 1, failedRanges: [][2]int{{0, 0}}}, // 50
	} {
		p.account(10, &b)
	}
	if got, want := fmt.Sprint(p.failedRanges), "[[18 29] [34 34] [50 50]]"; got != want || p.nextSeq != 60 || p.acked != 46 || p.failed != 14 {
		t.Errorf("ranges %s (want %s), next %d acked %d failed %d", got, want, p.nextSeq, p.acked, p.failed)
	}
	var q producer
	for range maxFailedRanges + 5 {
		q.account(2, &batchResult{ok: 1, failed: 1, failedRanges: [][2]int{{1, 1}}})
	}
	if len(q.failedRanges) != maxFailedRanges || !q.failedTruncated {
		t.Errorf("%d ranges, truncated %v", len(q.failedRanges), q.failedTruncated)
	}
}
