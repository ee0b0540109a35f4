package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	gonet "net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/kafka"
	cnet "chronik/net"
)

func withMetrics(m *cnet.Metrics) brokerOption {
	return func(_ *kafka.Config, s *cnet.ServerConfig) { s.Metrics = m }
}

// metricsBroker starts a broker with metrics served over HTTP on loopback, as
// -metrics-listen does, and returns it with the metrics base URL.
func metricsBroker(t *testing.T) (*testBroker, string) {
	t.Helper()
	m := cnet.NewMetrics()
	b := startBroker(t, withMetrics(m))
	ln, err := gonet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- cnet.ServeMetrics(ctx, ln, m.Handler()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	return b, "http://" + ln.Addr().String()
}

// scrape reads /metrics as series (name plus labels, as exposed) to value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually scrapes until ok holds of the metrics, for up to 5 seconds: the edge times a
// request just after its response reaches the socket, so a client can see the answer
// before the metric moves.
func eventually(t *testing.T, base, what string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := scrape(t, base)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never held; last scrape: %v", what, chronikSeries(m))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chronikSeries is the chronik_ series of m without histogram buckets, for failure
// messages.
func chronikSeries(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, "chronik_") && !strings.Contains(k, "_bucket") {
			out[k] = v
		}
	}
	return out
}

// TestMetricsMove: produce and fetch with franz-go move the request counters, latency
// histograms, byte counters, fsync and group-commit histograms and partition gauges; a
// deleted topic's series disappear.
func TestMetricsMove(t *testing.T) {
	b, base := metricsBroker(t)
	before := scrape(t, base)
	for _, name := range []string{"chronik_under_replicated_partitions", "chronik_leadership_changes_total",
		"chronik_connections_open", "chronik_fsync_duration_seconds_count", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := before[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if before["chronik_node_stats_up"] != 1 {
		t.Errorf("chronik_node_stats_up = %v", before["chronik_node_stats_up"])
	}

	const n, size = 500, 200
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t, 30*time.Second)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "metered", Partition: 0, Value: make([]byte, size)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, b.Addr(), "metered", n)
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}

	m := eventually(t, base, "request latencies observed", func(m map[string]float64) bool {
		return m[`chronik_request_duration_seconds_count{api="Produce"}`] == m[`chronik_requests_total{api="Produce"}`] &&
			m[`chronik_request_duration_seconds_count{api="Fetch"}`] >= 1
	})
	checks := []struct {
		series  string
		atLeast float64
	}{
		{`chronik_requests_total{api="Produce"}`, 1},
		{`chronik_requests_total{api="Fetch"}`, 1},
		{`chronik_requests_total{api="Metadata"}`, 1},
		{`chronik_request_duration_seconds_count{api="Produce"}`, 1},
		{`chronik_request_bytes_total{api="Produce"}`, n * size},
		{`chronik_response_bytes_total{api="Fetch"}`, n * size},
		{`chronik_fsync_duration_seconds_count`, 1},
		{`chronik_group_commit_records_count`, 1},
		{`chronik_group_commit_records_sum`, n},
		{`chronik_connections_accepted_total`, 2},
		{`chronik_partition_log_end_offset{partition="0",topic="metered"}`, n},
		{`chronik_partition_high_watermark{partition="0",topic="metered"}`, n},
		{`chronik_partition_log_bytes{partition="0",topic="metered"}`, n * size},
	}
	for _, c := range checks {
		if v, ok := m[c.series]; !ok || v < c.atLeast {
			t.Errorf("%s = %v (present %v), want at least %v", c.series, v, ok, c.atLeast)
		}
	}
	if v := m[`chronik_partition_log_end_offset{partition="0",topic="metered"}`]; v != n {
		t.Errorf("log end offset %v, want %d", v, n)
	}
	if m[`chronik_fsync_errors_total`] != 0 || m[`chronik_under_replicated_partitions`] != 0 {
		t.Errorf("fsync errors %v, under-replicated %v", m[`chronik_fsync_errors_total`], m[`chronik_under_replicated_partitions`])
	}

	// A deleted topic's series go with it.
	if _, err := kadm.NewClient(cl).DeleteTopic(ctx, "metered"); err != nil {
		t.Fatal(err)
	}
	for series := range eventually(t, base, "deleted topic's series gone", func(m map[string]float64) bool {
		_, ok := m[`chronik_partition_log_end_offset{partition="0",topic="metered"}`]
		return !ok
	}) {
		if strings.Contains(series, `topic="metered"`) {
			t.Errorf("series %s outlived its topic", series)
		}
	}
}

// TestMetricsConnectionsReturnToBaseline: 100 connections move the open-connections
// gauge up by 100 and, once closed, back down to where it was.
func TestMetricsConnectionsReturnToBaseline(t *testing.T) {
	b, base := metricsBroker(t)
	baseline := scrape(t, base)["chronik_connections_open"]
	accepted := scrape(t, base)["chronik_connections_accepted_total"]
	const n = 100
	conns := make([]gonet.Conn, 0, n)
	for i := range n {
		c, err := gonet.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 { // half of them get a request answered first
			if err := apiVersions(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, base, fmt.Sprintf("%d connections open", n), func(m map[string]float64) bool {
		return m["chronik_connections_open"] == baseline+n && m["chronik_connections_accepted_total"] == accepted+n
	})
	for _, c := range conns {
		c.Close()
	}
	m := eventually(t, base, "open connections back to baseline", func(m map[string]float64) bool {
		return m["chronik_connections_open"] == baseline
	})
	if got := m[`chronik_requests_total{api="ApiVersions"}`]; got != n/2 {
		t.Errorf("ApiVersions requests %v, want %d", got, n/2)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %s %q", resp.Status, body)
	}
}

// apiVersions sends ApiVersions v0 on c and reads the answer.
func apiVersions(c gonet.Conn) error {
	// length 14: key 18, version 0, correlation id 1, client id "test"
	req := []byte{0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 1, 0, 4, 't', 'e', 's', 't'}
	if _, err := c.Write(req); err != nil {
		return err
	}
	var prefix [4]byte
	if _, err := io.ReadFull(c, prefix[:]); err != nil {
		return err
	}
	size := int(prefix[0])<<24 | int(prefix[1])<<16 | int(prefix[2])<<8 | int(prefix[3])
	_, err := io.ReadFull(c, make([]byte, size))
	return err
}
