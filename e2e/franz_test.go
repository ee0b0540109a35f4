package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
)

func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(10 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceN produces n records to topic and returns them as acknowledged.
func produceN(t testing.TB, cl *kgo.Client, topic string, n int, size int) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(v, strconv.Itoa(i))
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: v}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return recs
}

// consumeAll reads n records from topic's start across all partitions.
func consumeAll(t testing.TB, addr, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl := newClient(t, addr, opts...)
	ctx := testCtx(t, 30*time.Second)
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

// checkSame verifies that every produced record was read exactly once, at the offset it
// was acknowledged at, with its key and value.
func checkSame(t testing.TB, produced, consumed []*kgo.Record) {
	t.Helper()
	type at struct {
		p   int32
		off int64
	}
	want := map[at]*kgo.Record{}
	for _, r := range produced {
		want[at{r.Partition, r.Offset}] = r
	}
	seen := map[at]bool{}
	last := map[int32]int64{}
	for _, r := range consumed {
		k := at{r.Partition, r.Offset}
		if seen[k] {
			t.Fatalf("duplicate record at %d/%d", r.Partition, r.Offset)
		}
		seen[k] = true
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			t.Fatalf("partition %d went from offset %d to %d", r.Partition, prev, r.Offset)
		}
		last[r.Partition] = r.Offset
		w := want[k]
		if w == nil {
			t.Fatalf("record at %d/%d was never acknowledged", r.Partition, r.Offset)
		}
		if !bytes.Equal(w.Key, r.Key) || !bytes.Equal(w.Value, r.Value) {
			t.Fatalf("record at %d/%d differs from what was acknowledged", r.Partition, r.Offset)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("read %d distinct records, %d were acknowledged", len(seen), len(want))
	}
}

func TestFranzProduceConsumeEveryCodec(t *testing.T) {
	b := startBroker(t)
	adm := kadm.NewClient(newClient(t, b.Addr()))
	ctx := testCtx(t, 30*time.Second)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			prod := newClient(t, b.Addr(), kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
			produced := produceN(t, prod, topic, 500, 200)
			checkSame(t, produced, consumeAll(t, b.Addr(), topic, 500))
		})
	}
}

func TestFranzAcksLevels(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name string
		acks kgo.Acks
	}{{"acks0", kgo.NoAck()}, {"acks1", kgo.LeaderAck()}, {"acksAll", kgo.AllISRAcks()}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "acks-" + tc.name
			opts := []kgo.Opt{kgo.RequiredAcks(tc.acks), kgo.AllowAutoTopicCreation()}
			if tc.acks != kgo.AllISRAcks() {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			prod := newClient(t, b.Addr(), opts...)
			produced := produceN(t, prod, topic, 200, 100)
			got := consumeAll(t, b.Addr(), topic, 200)
			if tc.acks == kgo.NoAck() {
				// acks=0 answers carry no offsets; compare by content and order.
				if len(got) != len(produced) {
					t.Fatalf("got %d records, want %d", len(got), len(produced))
				}
				for i := range got {
					if !bytes.Equal(got[i].Value, produced[i].Value) || got[i].Offset != int64(i) {
						t.Fatalf("record %d: offset %d, value mismatch=%v", i, got[i].Offset, !bytes.Equal(got[i].Value, produced[i].Value))
					}
				}
				return
			}
			checkSame(t, produced, got)
		})
	}
}

func TestFranzAdminTopics(t *testing.T) {
	b := startBroker(t)
	raw := newClient(t, b.Addr())
	adm := kadm.NewClient(raw)
	ctx := testCtx(t, 30*time.Second)

	resp, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "admin-a")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin-a"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create again: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "admin-rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3 on one node: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "admin-badcfg"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v, want INVALID_CONFIG", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v, want INVALID_TOPIC_EXCEPTION", err)
	}

	td, err := adm.ListTopics(ctx, "admin-a")
	if err != nil || len(td["admin-a"].Partitions) != 2 {
		t.Fatalf("list: %v %+v", err, td)
	}
	if _, err := adm.UpdatePartitions(ctx, 5, "admin-a"); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	td, _ = adm.ListTopics(ctx, "admin-a")
	if n := len(td["admin-a"].Partitions); n != 5 {
		t.Fatalf("after create partitions: %d partitions, want 5", n)
	}
	r, err := adm.UpdatePartitions(ctx, 3, "admin-a")
	if err == nil {
		err = r["admin-a"].Err
	}
	if !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v, want INVALID_PARTITIONS", err)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("admin-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			found = true
			if c.MaybeValue() != "3600000" {
				t.Fatalf("retention.ms = %q", c.MaybeValue())
			}
		}
	}
	if !found {
		t.Fatal("retention.ms not described")
	}
	if _, err := adm.DescribeBrokerConfigs(ctx); err != nil {
		t.Fatalf("describe broker configs: %v", err)
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) != 1 || meta.Brokers[0].NodeID != 1 {
		t.Fatalf("metadata: %v %+v", err, meta)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, raw)
	if err != nil || dc.ErrorCode != 0 || len(dc.Brokers) != 1 || dc.ControllerID != 1 {
		t.Fatalf("describe cluster: %v %+v", err, dc)
	}

	dr, err := adm.DeleteTopics(ctx, "admin-a")
	if err != nil || dr["admin-a"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["admin-a"].Err)
	}
	td, err = adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("admin-a") {
		t.Fatal("topic still listed after delete")
	}
}

func TestFranzListOffsets(t *testing.T) {
	b := startBroker(t)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("offsets"), kgo.AllowAutoTopicCreation())
	ctx := testCtx(t, 30*time.Second)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	start, err := adm.ListStartOffsets(ctx, "offsets")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "offsets")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("offsets", 0); o.Offset != 0 {
		t.Fatalf("start offset %d", o.Offset)
	}
	if o, _ := end.Lookup("offsets", 0); o.Offset != 10 {
		t.Fatalf("end offset %d", o.Offset)
	}
	at, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Minute+time.Second).UnixMilli(), "offsets")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := at.Lookup("offsets", 0); o.Offset != 5 {
		t.Fatalf("offset after 4m1s: %d, want 5", o.Offset)
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, time.Now().Add(time.Hour).UnixMilli(), "offsets")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("offsets", 0); o.Offset != 10 {
		t.Fatalf("offset after the future: %d, want the end (10)", o.Offset)
	}
}

func TestFranzAutoCreateOff(t *testing.T) {
	b := startBroker(t, withConfig(func(c *kafka.Config) { c.DisableAutoCreate = true }))
	cl := newClient(t, b.Addr(), kgo.RecordRetries(2), kgo.RetryTimeout(2*time.Second), kgo.UnknownTopicRetries(1))
	ctx := testCtx(t, 20*time.Second)
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "missing", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("produce to missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("missing") {
		t.Fatal("topic was created with auto-creation off")
	}
}

func TestFranzRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	b := startBrokerIn(t, dir)
	prod := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
	produced := produceN(t, prod, "durable", 300, 100)
	prod.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBrokerIn(t, dir)
	checkSame(t, produced, consumeAll(t, b2.Addr(), "durable", 300))
	// Idempotent producing continues after the restart with a fresh producer id.
	more := produceN(t, newClient(t, b2.Addr()), "durable", 10, 100)
	if more[0].Offset != 300 {
		t.Fatalf("first offset after restart: %d, want 300", more[0].Offset)
	}
}
