package main

import (
	"strings"
	"testing"
	"time"

	"chronik/internal/proccpu"
)

func TestParseVerifierMetrics(t *testing.T) {
	text := `# HELP chronik_verify_records_total Records read, by result.
# TYPE chronik_verify_records_total counter
chronik_verify_records_total{result="corrupt"} 1
chronik_verify_records_total{result="duplicate"} 2
chronik_verify_records_total{result="ok"} 1.2345e+06
chronik_verify_records_total{result="redelivered"} 7
chronik_verify_missing_records 3
go_goroutines 12
`
	p, err := parseVerifierMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if want := (verifierProgress{ok: 1234500, missing: 3, bad: 3}); p != want {
		t.Errorf("got %+v, want %+v", p, want)
	}
	if _, err := parseVerifierMetrics(strings.NewReader("go_goroutines 1\n")); err == nil {
		t.Error("no ok counter: no error")
	}
}

func TestParseQuick(t *testing.T) {
	o, err := parse([]string{"-quick"})
	if err != nil {
		t.Fatal(err)
	}
	if o.stages != quickStages || o.verifyTimeout != time.Minute {
		t.Errorf("-quick: stages %q, verify timeout %v", o.stages, o.verifyTimeout)
	}
	o, err = parse([]string{"-quick", "-stages", "1s:1"})
	if err != nil || o.stages != "1s:1" {
		t.Errorf("-quick -stages 1s:1: %v, %q", err, o.stages)
	}
	for _, bad := range [][]string{{"-ingestors", "0"}, {"-idle-within", "30s"}, {"extra"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// fakeBench is a finished run of two modes with the given verdict and recovery.
func fakeBench(t *testing.T, verdict string, idleAfter time.Duration) *bench {
	t.Helper()
	o, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{o: o, started: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), peakRSS: map[string]int64{"load": 20 << 20}}
	now := time.Now()
	for i, mode := range []string{"http", "direct"} {
		rep := &loadReport{Mode: mode, Started: now}
		rep.Stages = []stageRow{{Stage: 1, DurationS: 10, ToVUs: 20, RecordsOK: 1000, MsgsPerSec: 100 * float64(i+1)}}
		rep.Total = stageRow{DurationS: 10, ToVUs: 20, RecordsOK: 1000, MsgsPerSec: 100 * float64(i+1)}
		r := &modeRun{mode: mode, report: rep, started: now, stopped: now.Add(10 * time.Second), cpu: map[string]time.Duration{"node1": time.Second}}
		for range nodes {
			r.recovery = append(r.recovery, nodeRecovery{Recovery: proccpu.Recovery{Idle: true, After: idleAfter, Cores: 0.01}})
		}
		b.runs = append(b.runs, r)
	}
	b.verify = &verifyResult{Verdict: verdict}
	b.verify.Counts.Records, b.verify.Counts.OK = 2000, 2000
	b.verifyCaughtUp = true
	return b
}

func TestReportPass(t *testing.T) {
	b := fakeBench(t, "", 500*time.Millisecond)
	f := b.failures()
	if len(f) != 0 {
		t.Fatalf("failures %q", f)
	}
	doc := b.markdown(f)
	for _, want := range []string{"**PASS**", "| HTTP (2 ingestors) | **100** |", "| direct (franz-go) | **200** |", "**2.00×**", "idle after 0.50 s (1.0%)", "| load generator |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "FAILED") {
		t.Error("a passing report says FAILED")
	}
}

func TestReportFailed(t *testing.T) {
	b := fakeBench(t, "lost 3", 6*time.Second)
	f := b.failures()
	if len(f) != 1+2*nodes {
		t.Fatalf("failures %q, want the verdict and 6 recoveries", f)
	}
	doc := b.markdown(f)
	for _, want := range []string{"## **FAILED**", "**verification: lost 3**", "**FAIL: lost 3**", "| **FAIL** |"} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q:\n%s", want, doc)
		}
	}
	if c := b.chart(); len(c.Panels) != 3 {
		t.Errorf("chart has %d panels", len(c.Panels))
	}
}
