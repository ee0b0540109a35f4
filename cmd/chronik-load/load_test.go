package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	gonet "net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/brokertest"
	"chronik/internal/ingest"
	"chronik/internal/loadrec"
	"chronik/kafka"
	cnet "chronik/net"
)

// startIngest serves an ingestor for broker on 127.0.0.1 and returns its base URL.
func startIngest(t testing.TB, broker string) string {
	t.Helper()
	s, err := ingest.New(ingest.Config{Brokers: []string{broker}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := gonet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("ingest shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ingest serve: %v", err)
		}
		if err := s.Close(ctx); err != nil {
			t.Errorf("ingest close: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// runLoad runs chronik-load with args and a -json file, expects success, and returns
// the table and the parsed JSON.
func runLoad(t *testing.T, args ...string) (string, *report) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out", "load.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	ok, err := run(ctx, append(args, "-json", path), &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil || !ok {
		t.Fatalf("run: ok %v, err %v\n%s", ok, err, stdout.String())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(stderr.String(), " msg/s "); lines < 3 {
		t.Errorf("%d progress lines for a 4 s run, want one a second", lines)
	}
	return stdout.String(), &rep
}

// checkReport checks the table and the JSON of a -quick run without errors.
func checkReport(t *testing.T, table string, rep *report) {
	t.Helper()
	for _, want := range []string{"| stage | duration | VUs |", "| 1 | 1s | 0→4 |", "| 2 | 2s | 4→8 |", "| 3 | 1s | 8→0 |", "| **total** |", "| 0.00% |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if len(rep.Stages) != 3 || rep.Total.RecordsOK == 0 || rep.Total.RecordsFailed != 0 || len(rep.Errors) != 0 {
		t.Fatalf("report: %d stages, %d ok, %d failed, errors %v", len(rep.Stages), rep.Total.RecordsOK, rep.Total.RecordsFailed, rep.Errors)
	}
	var sum int64
	for _, s := range rep.Stages {
		sum += s.RecordsOK
		if s.RecordsOK > 0 && (s.LatencyMs.P50 <= 0 || s.LatencyMs.P50 > s.LatencyMs.P90 || s.LatencyMs.P90 > s.LatencyMs.P95 || s.LatencyMs.P95 > s.LatencyMs.P99) {
			t.Errorf("stage %d latencies out of order: %+v", s.Stage, s.LatencyMs)
		}
	}
	if sum != rep.Total.RecordsOK || len(rep.Timeline) < 3 || len(rep.Producers) < 8 {
		t.Errorf("stages sum to %d of %d; %d timeline samples; %d producers", sum, rep.Total.RecordsOK, len(rep.Timeline), len(rep.Producers))
	}
}

// verifyTopic reads the whole topic back and checks every record with loadrec: a valid
// checksum, the key of its producer, and per producer the sequences 0, 1, 2, ... in
// order, once each, as many as the report says were acknowledged.
func verifyTopic(t *testing.T, broker, topic string, rep *report, size int) {
	t.Helper()
	want := map[uint64]uint64{}
	var total uint64
	for _, p := range rep.Producers {
		if p.Failed != 0 || p.Sent != p.Acked {
			t.Fatalf("producer %s: %+v", p.ID, p)
		}
		var id uint64
		for _, c := range []byte(p.ID) {
			id = id<<4 | uint64(strings.IndexByte("0123456789abcdef", c))
		}
		want[id] = p.Acked
		total += p.Acked
	}
	if total != uint64(rep.Total.RecordsOK) {
		t.Fatalf("producers acked %d, total says %d", total, rep.Total.RecordsOK)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := map[uint64]uint64{}
	var got uint64
	for got < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", got, total)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		for _, r := range fs.Records() {
			got++
			lr, err := loadrec.Decode(r.Value)
			if err != nil {
				t.Fatalf("%d/%d: %v", r.Partition, r.Offset, err)
			}
			if lr.Bytes != size || !bytes.Equal(r.Key, loadrec.Key(lr.Producer)) {
				t.Fatalf("%d/%d: %d bytes, key %q, for producer %x", r.Partition, r.Offset, lr.Bytes, r.Key, lr.Producer)
			}
			if lr.Seq != next[lr.Producer] {
				t.Fatalf("%d/%d: producer %x seq %d, want %d (gap, duplicate or reorder)", r.Partition, r.Offset, lr.Producer, lr.Seq, next[lr.Producer])
			}
			next[lr.Producer]++
		}
	}
	for id, n := range want {
		if next[id] != n {
			t.Errorf("producer %x: %d records in the topic, %d acknowledged", id, next[id], n)
		}
	}
	if got != total {
		t.Errorf("%d records in the topic, %d acknowledged", got, total)
	}
}

func TestQuickThroughIngest(t *testing.T) {
	b := brokertest.Start(t, kafka.Config{}, cnet.ServerConfig{})
	url := startIngest(t, b.Addr())
	for _, form := range []string{"simple", "rest"} {
		t.Run(form, func(t *testing.T) {
			topic := "load-" + form
			table, rep := runLoad(t, "-quick", "-target", url, "-brokers", b.Addr(), "-topic", topic, "-form", form, "-batch", "20", "-size", "100")
			checkReport(t, table, rep)
			if rep.Mode != "ingest" || rep.Form != form || rep.Total.WireMBPerSec <= rep.Total.PayloadMBPerSec {
				t.Errorf("report: mode %s form %s, wire %.2f MB/s, payload %.2f MB/s", rep.Mode, rep.Form, rep.Total.WireMBPerSec, rep.Total.PayloadMBPerSec)
			}
			verifyTopic(t, b.Addr(), topic, rep, 100)
		})
	}
}

func TestQuickDirect(t *testing.T) {
	b := brokertest.Start(t, kafka.Config{}, cnet.ServerConfig{})
	table, rep := runLoad(t, "-quick", "-direct", "-brokers", b.Addr(), "-topic", "load-direct", "-batch", "50", "-size", "256", "-clients", "2")
	checkReport(t, table, rep)
	if rep.Mode != "direct" || rep.Acks != "all" {
		t.Errorf("report: mode %s acks %s", rep.Mode, rep.Acks)
	}
	verifyTopic(t, b.Addr(), "load-direct", rep, 256)
}

// TestFailuresAreCounted: a load against an ingestor with no such topic fails every
// record, says so in the table and the JSON, and reports not ok.
func TestFailuresAreCounted(t *testing.T) {
	b := brokertest.Start(t, kafka.Config{}, cnet.ServerConfig{})
	url := startIngest(t, b.Addr())
	path := filepath.Join(t.TempDir(), "load.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok, err := run(ctx, []string{"-stages", "1s:2", "-create-topic=false", "-target", url, "-topic", "absent", "-batch", "5", "-json", path}, &stdout, &stderr)
	if err != nil || ok {
		t.Fatalf("run: ok %v, err %v; want not ok", ok, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.RecordsOK != 0 || rep.Total.RecordsFailed == 0 || rep.Total.ErrorPct != 100 || len(rep.Errors) == 0 || rep.Errors[0].Kind != "http 404 (40401)" {
		t.Errorf("report: %+v, errors %v", rep.Total, rep.Errors)
	}
	for _, p := range rep.Producers {
		if p.Sent == 0 || p.Failed != p.Sent || len(p.FailedRanges) != 1 || p.FailedRanges[0] != [2]uint64{0, p.Sent - 1} {
			t.Errorf("producer %+v: want every sequence in one failed range", p)
		}
	}
	if !strings.Contains(stdout.String(), "| 100.00% |") || !strings.Contains(stdout.String(), "http 404 (40401)") {
		t.Errorf("table:\n%s", stdout.String())
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range [][]string{
		{"-stages", "10s"},
		{"-size", "10"},
		{"-batch", "0"},
		{"-batch", "10000", "-size", "900000"},
		{"-form", "avro"},
		{"-target", "127.0.0.1:8080"},
		{"-direct", "-brokers", ""},
		{"-acks", "2"},
		{"extra"},
	} {
		if _, err := parse(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}
