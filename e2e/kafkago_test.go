package e2e

import (
	"context"
	"errors"
	"fmt"
	gonet "net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	ckafka "chronik/kafka"
)

// kafkaGoCodecs are the codecs kafka-go's Writer produces with, in a fixed order.
var kafkaGoCodecs = []struct {
	name  string
	codec kafka.Compression
}{
	{"none", 0},
	{"gzip", kafka.Gzip},
	{"snappy", kafka.Snappy},
	{"lz4", kafka.Lz4},
	{"zstd", kafka.Zstd},
}

const (
	// kafkaGoPartitions is the partition count of every topic the kafka-go tests create.
	kafkaGoPartitions = 3
	// kafkaGoRecords is how many records each kafka-go test produces per topic.
	kafkaGoRecords = 300
	// kafkaGoStepTimeout bounds every wait on the broker in the kafka-go tests.
	kafkaGoStepTimeout = 30 * time.Second
)

// kafkaGoController dials the cluster's controller through a connection to addr, as
// kafka-go requires for CreateTopics and DeleteTopics, and closes it when the test ends.
func kafkaGoController(t testing.TB, addr string) *kafka.Conn {
	t.Helper()
	ctx := testCtx(t, kafkaGoStepTimeout)
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	ctrlAddr := gonet.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port))
	if ctrlAddr != addr {
		t.Fatalf("controller at %s, want the only broker %s", ctrlAddr, addr)
	}
	cc, err := kafka.DialContext(ctx, "tcp", ctrlAddr)
	if err != nil {
		t.Fatalf("dial controller %s: %v", ctrlAddr, err)
	}
	t.Cleanup(func() { cc.Close() })
	if err := cc.SetDeadline(time.Now().Add(kafkaGoStepTimeout)); err != nil {
		t.Fatal(err)
	}
	return cc
}

// kafkaGoCreateTopic creates topic with kafkaGoPartitions partitions through the
// controller and checks that metadata then lists them.
func kafkaGoCreateTopic(t testing.TB, cc *kafka.Conn, topic string) {
	t.Helper()
	err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: kafkaGoPartitions, ReplicationFactor: 1})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	parts, err := cc.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("read partitions of %s: %v", topic, err)
	}
	if len(parts) != kafkaGoPartitions {
		t.Fatalf("%s has %d partitions, want %d", topic, len(parts), kafkaGoPartitions)
	}
}

// kafkaGoProduce writes kafkaGoRecords distinct records to topic with a kafka.Writer
// (acks from all in-sync replicas, codec, keys hashed to partitions) and returns them
// as acknowledged, partition and offset filled in from the produce answers.
func kafkaGoProduce(t testing.TB, addr, topic string, codec kafka.Compression) []kafka.Message {
	t.Helper()
	var (
		mu    sync.Mutex
		acked []kafka.Message
	)
	tr := &kafka.Transport{DialTimeout: 5 * time.Second, ClientID: "chronik-e2e-kafka-go"}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		MaxAttempts:  3,
		BatchSize:    100,
		BatchTimeout: 10 * time.Millisecond,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
		Transport:    tr,
		ErrorLogger:  kafka.LoggerFunc(t.Logf),
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			acked = append(acked, msgs...)
		},
	}
	msgs := make([]kafka.Message, kafkaGoRecords)
	for i := range msgs {
		// Values repeat a pattern so that every codec has something to compress.
		msgs[i] = kafka.Message{
			Key:   fmt.Appendf(nil, "key-%04d", i),
			Value: fmt.Appendf(nil, "%s-value-%04d-%s", topic, i, strings.Repeat("chronik ", 10)),
		}
	}
	ctx := testCtx(t, kafkaGoStepTimeout)
	err := w.WriteMessages(ctx, msgs...)
	if cerr := w.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write %s: %v", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != len(msgs) {
		t.Fatalf("write %s: %d of %d records acknowledged", topic, len(acked), len(msgs))
	}
	for _, m := range acked {
		if m.Partition < 0 || m.Partition >= kafkaGoPartitions || m.Offset < 0 {
			t.Fatalf("record %s acknowledged at partition %d offset %d", m.Key, m.Partition, m.Offset)
		}
	}
	return acked
}

// kafkaGoConsume reads partition p of topic from the first offset with a kafka.Reader
// (no consumer group) until it has n records, and returns them.
func kafkaGoConsume(t testing.TB, addr, topic string, p, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{addr},
		Topic:       topic,
		Partition:   p,
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     250 * time.Millisecond,
		MaxAttempts: 3,
		// No background lag polling: Lag below comes from the fetch answers.
		ReadLagInterval: -1,
		ErrorLogger:     kafka.LoggerFunc(t.Logf),
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("reader close: %v", err)
		}
	}()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		t.Fatalf("set offset: %v", err)
	}
	ctx := testCtx(t, kafkaGoStepTimeout)
	got := make([]kafka.Message, 0, n)
	for len(got) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s/%d: %d of %d records: %v", topic, p, len(got), n, err)
		}
		got = append(got, m)
	}
	if lag := r.Lag(); lag != 0 {
		t.Errorf("read %s/%d: lag %d after reading all %d acknowledged records", topic, p, lag, n)
	}
	return got
}

// checkKafkaGoSame verifies that the records read from partition p are exactly those
// acknowledged there: each once, at its acknowledged offset, with its key and value, and
// at offsets 0, 1, 2, ... in order.
func checkKafkaGoSame(t testing.TB, p int, acked, read []kafka.Message) {
	t.Helper()
	type kv struct{ k, v string }
	want := map[int64]kv{}
	for _, m := range acked {
		if m.Partition != p {
			continue
		}
		if _, dup := want[m.Offset]; dup {
			t.Fatalf("two records acknowledged at %d/%d", p, m.Offset)
		}
		want[m.Offset] = kv{string(m.Key), string(m.Value)}
	}
	if len(read) != len(want) {
		t.Fatalf("partition %d: read %d records, %d acknowledged", p, len(read), len(want))
	}
	for i, m := range read {
		if m.Partition != p || m.Offset != int64(i) {
			t.Fatalf("record %d read from partition %d: at %d/%d, want %d/%d", i, p, m.Partition, m.Offset, p, i)
		}
		w, ok := want[m.Offset]
		if !ok {
			t.Fatalf("record at %d/%d was never acknowledged", p, m.Offset)
		}
		if w.k != string(m.Key) || w.v != string(m.Value) {
			t.Fatalf("record at %d/%d: read %q=%q, acknowledged %q=%q", p, m.Offset, m.Key, m.Value, w.k, w.v)
		}
	}
}

// kafkaGoCount counts the acknowledged records of partition p.
func kafkaGoCount(acked []kafka.Message, p int) int {
	n := 0
	for _, m := range acked {
		if m.Partition == p {
			n++
		}
	}
	return n
}

func TestKafkaGoProduceConsumeEveryCodec(t *testing.T) {
	b := startBroker(t)
	cc := kafkaGoController(t, b.Addr())
	for _, c := range kafkaGoCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kafkago-" + c.name
			kafkaGoCreateTopic(t, cc, topic)
			acked := kafkaGoProduce(t, b.Addr(), topic, c.codec)
			for p := 0; p < kafkaGoPartitions; p++ {
				read := kafkaGoConsume(t, b.Addr(), topic, p, kafkaGoCount(acked, p))
				checkKafkaGoSame(t, p, acked, read)
			}
		})
	}
}

func TestKafkaGoConnOffsetsAndTopics(t *testing.T) {
	// kafka-go's metadata requests ask for auto-creation, which would bring a deleted
	// topic straight back.
	b := startBroker(t, withConfig(func(c *ckafka.Config) { c.DisableAutoCreate = true }))
	cc := kafkaGoController(t, b.Addr())
	const topic = "kafkago-offsets"
	kafkaGoCreateTopic(t, cc, topic)
	before := time.Now().Add(-time.Second)
	acked := kafkaGoProduce(t, b.Addr(), topic, kafka.Zstd)

	for p := 0; p < kafkaGoPartitions; p++ {
		ctx := testCtx(t, kafkaGoStepTimeout)
		conn, err := kafka.DialLeader(ctx, "tcp", b.Addr(), topic, p)
		if err != nil {
			t.Fatalf("dial leader of %s/%d: %v", topic, p, err)
		}
		if err := conn.SetDeadline(time.Now().Add(kafkaGoStepTimeout)); err != nil {
			t.Fatal(err)
		}
		n := int64(kafkaGoCount(acked, p))
		first, err := conn.ReadFirstOffset()
		if err != nil || first != 0 {
			t.Fatalf("%s/%d first offset: %d, %v; want 0", topic, p, first, err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil || last != n {
			t.Fatalf("%s/%d last offset: %d, %v; want %d", topic, p, last, err, n)
		}
		lo, hi, err := conn.ReadOffsets()
		if err != nil || lo != 0 || hi != n {
			t.Fatalf("%s/%d offsets: [%d, %d), %v; want [0, %d)", topic, p, lo, hi, err, n)
		}
		at, err := conn.ReadOffset(before)
		wantAt := int64(0)
		if n == 0 {
			wantAt = -1
		}
		if err != nil || at != wantAt {
			t.Fatalf("%s/%d offset at %v: %d, %v; want %d", topic, p, before, at, err, wantAt)
		}
		if err := conn.Close(); err != nil {
			t.Fatal(err)
		}
	}

	if err := cc.DeleteTopics(topic); err != nil {
		t.Fatalf("delete %s: %v", topic, err)
	}
	_, err := cc.ReadPartitions(topic)
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("read partitions after delete: %v, want %v", err, kafka.UnknownTopicOrPartition)
	}
	// The name is free again.
	kafkaGoCreateTopic(t, cc, topic)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaGoStepTimeout)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", b.Addr(), topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(kafkaGoStepTimeout)); err != nil {
		t.Fatal(err)
	}
	if lo, hi, err := conn.ReadOffsets(); err != nil || lo != 0 || hi != 0 {
		t.Fatalf("recreated %s/0 offsets: [%d, %d), %v; want [0, 0)", topic, lo, hi, err)
	}
}
