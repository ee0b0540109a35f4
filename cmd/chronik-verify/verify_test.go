package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/brokertest"
	"chronik/internal/loadrec"
	"chronik/kafka"
	cnet "chronik/net"
)

// startBroker runs an in-process broker on loopback that auto-creates 3-partition topics
// and lets groups rebalance at once.
func startBroker(t *testing.T) string {
	t.Helper()
	cfg := kafka.Config{DefaultPartitions: 3, GroupInitialRebalanceDelayMs: -1}
	return brokertest.Start(t, cfg, cnet.ServerConfig{}).Addr()
}

// planted is a record to produce: producer, sequence, and whether to damage it.
type planted struct {
	pid, seq uint64
	corrupt  bool
}

// produce writes recs in order with franz-go, keyed by producer as chronik-load does.
func produce(t *testing.T, addr, topic string, recs []planted) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		v := make([]byte, 128)
		loadrec.Encode(v, r.pid, r.seq)
		if r.corrupt {
			v[100] ^= 0x20 // still printable: only the checksum can tell
		}
		krs[i] = &kgo.Record{Topic: topic, Key: loadrec.Key(r.pid), Value: v}
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func seqs(pid uint64, from, to uint64) []planted {
	var out []planted
	for s := from; s < to; s++ {
		out = append(out, planted{pid: pid, seq: s})
	}
	return out
}

// TestVerifierFindsPlantedFaults produces five producers' records through a real broker,
// four of them with one planted fault each, and checks the verifier reports exactly those
// four faults and exits 1.
func TestVerifierFindsPlantedFaults(t *testing.T) {
	addr := startBroker(t)
	var (
		dup     = loadrec.ProducerID(1, 1)
		gap     = loadrec.ProducerID(1, 2)
		corrupt = loadrec.ProducerID(1, 3)
		reorder = loadrec.ProducerID(1, 4)
		clean   = loadrec.ProducerID(1, 5)
	)
	var recs []planted
	// A duplicate: sequence 3 written twice.
	recs = append(recs, seqs(dup, 0, 4)...)
	recs = append(recs, seqs(dup, 3, 10)...)
	// A gap: sequence 5 never written.
	recs = append(recs, seqs(gap, 0, 5)...)
	recs = append(recs, seqs(gap, 6, 10)...)
	// A corrupt checksum: a damaged extra copy of sequence 4.
	recs = append(recs, seqs(corrupt, 0, 10)...)
	recs = append(recs, planted{pid: corrupt, seq: 4, corrupt: true})
	// A reordering: sequence 5 produced after 6.
	recs = append(recs, seqs(reorder, 0, 5)...)
	recs = append(recs, planted{pid: reorder, seq: 6}, planted{pid: reorder, seq: 5})
	recs = append(recs, seqs(reorder, 7, 10)...)
	recs = append(recs, seqs(clean, 0, 100)...)
	produce(t, addr, "load", recs)

	jsonPath := filepath.Join(t.TempDir(), "verify.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, []string{"-brokers", addr, "-topics", "load", "-group", "v1", "-idle-exit", "1s",
		"-duration", "45s", "-progress", "0", "-json", jsonPath}, &stdout, &stderr)
	t.Logf("summary:\n%s%s", stdout.String(), stderr.String())
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		result
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	c := got.Counts
	want := Counts{Records: int64(len(recs)), Bytes: 128 * int64(len(recs)), OK: int64(len(recs)) - 3,
		Lost: 1, Duplicated: 1, Corrupt: 1, OutOfOrder: 1, Producers: 5, Partitions: c.Partitions}
	if c != want {
		t.Errorf("counts\n got %+v\nwant %+v", c, want)
	}
	type fault struct {
		kind FaultKind
		pid  uint64
		seq  uint64
	}
	var faults []fault
	for _, f := range got.Faults {
		if f.Kind == FaultCorrupt {
			f.Producer, f.Seq = corrupt, 4 // a corrupt record's header is not trusted
		}
		faults = append(faults, fault{f.Kind, f.Producer, f.Seq})
	}
	slices.SortFunc(faults, func(a, b fault) int { return strings.Compare(string(a.kind), string(b.kind)) })
	wantFaults := []fault{{FaultCorrupt, corrupt, 4}, {FaultDuplicate, dup, 3}, {FaultLost, gap, 5}, {FaultOutOfOrder, reorder, 5}}
	if !slices.Equal(faults, wantFaults) {
		t.Errorf("faults %+v, want %+v", faults, wantFaults)
	}
	if got.Verdict != "lost 1, duplicated 1, corrupt 1, out of order 1" {
		t.Errorf("verdict %q", got.Verdict)
	}
	if !strings.Contains(stdout.String(), "FAIL: lost 1, duplicated 1, corrupt 1, out of order 1") {
		t.Errorf("summary lacks the FAIL line")
	}
}

// TestVerifierCleanRun: a clean topic passes, with two load reports, one of them of a
// failed producer that is excused, and the metrics say so.
func TestVerifierCleanRun(t *testing.T) {
	addr := startBroker(t)
	var recs []planted
	for w := uint32(0); w < 4; w++ {
		recs = append(recs, seqs(loadrec.ProducerID(2, w), 0, 250)...)
	}
	produce(t, addr, "clean", recs)
	// chronik-load's reports of two runs, as -load-report takes them: the four
	// producers, and a fifth whose only batch failed.
	dir := t.TempDir()
	report, report2 := filepath.Join(dir, "load.json"), filepath.Join(dir, "load2.json")
	var rep strings.Builder
	rep.WriteString(`{"mode": "direct", "producers": [`)
	for w := uint32(0); w < 4; w++ {
		if w > 0 {
			rep.WriteString(", ")
		}
		fmt.Fprintf(&rep, `{"id": "%s", "sent": 250, "acked": 250, "failed": 0}`, loadrec.Key(loadrec.ProducerID(2, w)))
	}
	rep.WriteString("]}")
	rep2 := fmt.Sprintf(`{"mode": "ingest", "producers": [{"id": "%s", "sent": 50, "acked": 0, "failed": 50}]}`, loadrec.Key(loadrec.ProducerID(2, 4)))
	if err := os.WriteFile(report, []byte(rep.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report2, []byte(rep2), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var progress bytes.Buffer
	r, err := verify(ctx, config{brokers: []string{addr}, group: "v2", topics: []string{"clean"},
		idleExit: time.Second, duration: 45 * time.Second, fromZero: true, loadReport: report + "," + report2}, m, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if v := verdict(r, 1); v != "" || r.Counts.OK != int64(len(recs)) || r.Counts.Producers != 5 || r.Counts.NotAcked != 50 {
		t.Fatalf("verdict %q, counts %+v", v, r.Counts)
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ok float64
	for _, f := range families {
		if f.GetName() != "chronik_verify_records_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			if mt.GetLabel()[0].GetValue() == "ok" {
				ok = mt.GetCounter().GetValue()
			}
		}
	}
	if ok != float64(len(recs)) {
		t.Errorf("chronik_verify_records_total{result=ok} = %v, want %d", ok, len(recs))
	}
}
