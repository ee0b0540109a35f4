package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersions are the Kafka versions sarama speaks in these tests: 2.8, its default
// (Produce v9, Fetch v12), and a 3.x release. Both are past 2.1, so zstd is allowed.
var saramaVersions = []struct {
	name    string
	version sarama.KafkaVersion
}{
	{"v2_8", sarama.V2_8_0_0},
	{"v3_6", sarama.V3_6_0_0},
}

// saramaCodecs are the codecs sarama produces with, in a fixed order.
var saramaCodecs = []struct {
	name  string
	codec sarama.CompressionCodec
}{
	{"none", sarama.CompressionNone},
	{"gzip", sarama.CompressionGZIP},
	{"snappy", sarama.CompressionSnappy},
	{"lz4", sarama.CompressionLZ4},
	{"zstd", sarama.CompressionZSTD},
}

const (
	// saramaPartitions is the partition count of every topic the sarama tests create.
	saramaPartitions = 3
	// saramaRecords is how many records each sarama test produces per topic.
	saramaRecords = 300
	// saramaChunk is how many records one SendMessages call carries.
	saramaChunk = 100
	// saramaStepTimeout bounds every wait on the broker in the sarama tests.
	saramaStepTimeout = 30 * time.Second
)

// saramaConfig is a sarama config for version v with bounded timeouts and retries, acks
// from all in-sync replicas, and no topic auto-creation.
func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = v
	c.ClientID = "chronik-e2e-sarama"
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Net.WriteTimeout = 10 * time.Second
	c.Metadata.Retry.Max = 5
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.AllowAutoTopicCreation = false
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 3
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Timeout = 10 * time.Second
	c.Consumer.Return.Errors = true
	c.Consumer.MaxWaitTime = 250 * time.Millisecond
	c.Consumer.Retry.Backoff = 100 * time.Millisecond
	c.Admin.Timeout = 10 * time.Second
	c.Admin.Retry.Max = 3
	return c
}

// newSaramaClient connects a sarama client to addr and closes it when the test ends.
func newSaramaClient(t testing.TB, addr string, cfg *sarama.Config) sarama.Client {
	t.Helper()
	cl, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			t.Errorf("sarama client close: %v", err)
		}
	})
	return cl
}

// saramaCreateTopic creates topic with saramaPartitions partitions through sarama's
// ClusterAdmin and checks that the client's metadata then lists them.
func saramaCreateTopic(t testing.TB, addr string, cfg *sarama.Config, topic string) {
	t.Helper()
	adm, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	defer func() {
		if err := adm.Close(); err != nil {
			t.Errorf("sarama admin close: %v", err)
		}
	}()
	detail := &sarama.TopicDetail{NumPartitions: saramaPartitions, ReplicationFactor: 1}
	if err := adm.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	metas, err := adm.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("describe topic %s: %v", topic, err)
	}
	if len(metas) != 1 || !errors.Is(metas[0].Err, sarama.ErrNoError) || len(metas[0].Partitions) != saramaPartitions {
		t.Fatalf("describe topic %s: %+v", topic, metas)
	}
}

// saramaProduce produces saramaRecords distinct records to topic through a SyncProducer
// on cl and returns them as acknowledged, partition and offset filled in.
func saramaProduce(t testing.TB, cl sarama.Client, topic string) []*sarama.ProducerMessage {
	t.Helper()
	prod, err := sarama.NewSyncProducerFromClient(cl)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	defer func() {
		if err := prod.Close(); err != nil {
			t.Errorf("sarama producer close: %v", err)
		}
	}()
	msgs := make([]*sarama.ProducerMessage, saramaRecords)
	for i := range msgs {
		// Values repeat a pattern so that every codec has something to compress.
		v := fmt.Sprintf("%s-value-%04d-%s", topic, i, strings.Repeat("chronik ", 10))
		msgs[i] = &sarama.ProducerMessage{
			Topic:  topic,
			Key:    sarama.StringEncoder(fmt.Sprintf("key-%04d", i)),
			Value:  sarama.StringEncoder(v),
			Offset: -1,
		}
	}
	for start := 0; start < len(msgs); start += saramaChunk {
		end := min(start+saramaChunk, len(msgs))
		if err := prod.SendMessages(msgs[start:end]); err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				t.Fatalf("produce %s: %d failed, first: %v", topic, len(perrs), perrs[0].Err)
			}
			t.Fatalf("produce %s: %v", topic, err)
		}
	}
	for i, m := range msgs {
		if m.Partition < 0 || m.Partition >= saramaPartitions || m.Offset < 0 {
			t.Fatalf("record %d acknowledged at partition %d offset %d", i, m.Partition, m.Offset)
		}
	}
	return msgs
}

// saramaConsume reads every partition of topic from the oldest offset with a sarama
// Consumer on cl until it has want[p] records of partition p, and returns them.
func saramaConsume(t testing.TB, cl sarama.Client, topic string, want map[int32]int) []*sarama.ConsumerMessage {
	t.Helper()
	cons, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer func() {
		if err := cons.Close(); err != nil {
			t.Errorf("sarama consumer close: %v", err)
		}
	}()
	deadline := time.NewTimer(saramaStepTimeout)
	defer deadline.Stop()
	var got []*sarama.ConsumerMessage
	for p := int32(0); p < saramaPartitions; p++ {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		for n := 0; n < want[p]; {
			select {
			case m := <-pc.Messages():
				got = append(got, m)
				n++
			case err := <-pc.Errors():
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			case <-deadline.C:
				t.Fatalf("consume %s/%d: %d of %d records after %v", topic, p, n, want[p], saramaStepTimeout)
			}
		}
		if hw := pc.HighWaterMarkOffset(); hw != int64(want[p]) {
			t.Errorf("consume %s/%d: high watermark %d, want %d", topic, p, hw, want[p])
		}
		if err := pc.Close(); err != nil {
			t.Fatalf("close partition consumer %s/%d: %v", topic, p, err)
		}
	}
	return got
}

// saramaPerPartition counts the acknowledged records of each partition.
func saramaPerPartition(produced []*sarama.ProducerMessage) map[int32]int {
	n := map[int32]int{}
	for _, m := range produced {
		n[m.Partition]++
	}
	return n
}

// checkSaramaSame verifies that every acknowledged record was consumed exactly once, at
// the offset it was acknowledged at, with its key and value, in offset order within each
// partition, and that each partition's offsets run from 0 without a gap.
func checkSaramaSame(t testing.TB, produced []*sarama.ProducerMessage, consumed []*sarama.ConsumerMessage) {
	t.Helper()
	type at struct {
		p   int32
		off int64
	}
	type kv struct{ k, v string }
	want := map[at]kv{}
	for i, m := range produced {
		k, err := m.Key.Encode()
		if err != nil {
			t.Fatal(err)
		}
		v, err := m.Value.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := want[at{m.Partition, m.Offset}]; dup {
			t.Fatalf("record %d acknowledged at %d/%d, as was an earlier one", i, m.Partition, m.Offset)
		}
		want[at{m.Partition, m.Offset}] = kv{string(k), string(v)}
	}
	next := map[int32]int64{}
	for _, m := range consumed {
		if m.Offset != next[m.Partition] {
			t.Fatalf("partition %d: read offset %d, want %d (records are read in order, each once, without gaps)", m.Partition, m.Offset, next[m.Partition])
		}
		next[m.Partition]++
		w, ok := want[at{m.Partition, m.Offset}]
		if !ok {
			t.Fatalf("record at %d/%d was never acknowledged", m.Partition, m.Offset)
		}
		if w.k != string(m.Key) || w.v != string(m.Value) {
			t.Fatalf("record at %d/%d: read %q=%q, acknowledged %q=%q", m.Partition, m.Offset, m.Key, m.Value, w.k, w.v)
		}
		delete(want, at{m.Partition, m.Offset})
	}
	if len(want) != 0 {
		t.Fatalf("%d acknowledged records were not read", len(want))
	}
}

// checkSaramaOffsets checks that ListOffsets through client.GetOffset answers 0 for the
// oldest offset and the record count for the newest on every partition of a fresh topic,
// that a timestamp from before the records finds offset 0 on every non-empty partition,
// and that one from the future finds none (-1).
func checkSaramaOffsets(t testing.TB, cl sarama.Client, topic string, want map[int32]int, before time.Time) {
	t.Helper()
	future := time.Now().Add(time.Hour)
	for p := int32(0); p < saramaPartitions; p++ {
		oldest, err := cl.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil || oldest != 0 {
			t.Fatalf("%s/%d oldest offset: %d, %v; want 0", topic, p, oldest, err)
		}
		newest, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || newest != int64(want[p]) {
			t.Fatalf("%s/%d newest offset: %d, %v; want %d", topic, p, newest, err, want[p])
		}
		first, err := cl.GetOffset(topic, p, before.UnixMilli())
		wantFirst := int64(0)
		if want[p] == 0 {
			wantFirst = -1
		}
		if err != nil || first != wantFirst {
			t.Fatalf("%s/%d offset at %v: %d, %v; want %d", topic, p, before, first, err, wantFirst)
		}
		none, err := cl.GetOffset(topic, p, future.UnixMilli())
		if err != nil || none != -1 {
			t.Fatalf("%s/%d offset at %v: %d, %v; want -1", topic, p, future, none, err)
		}
	}
}

// saramaRoundTrip creates topic, produces to it with cfg, reads everything back and
// checks records and offsets.
func saramaRoundTrip(t *testing.T, addr string, cfg *sarama.Config, topic string) {
	saramaCreateTopic(t, addr, cfg, topic)
	cl := newSaramaClient(t, addr, cfg)
	before := time.Now().Add(-time.Second)
	produced := saramaProduce(t, cl, topic)
	want := saramaPerPartition(produced)
	checkSaramaSame(t, produced, saramaConsume(t, cl, topic, want))
	checkSaramaOffsets(t, cl, topic, want, before)
}

func TestSaramaProduceConsumeEveryCodec(t *testing.T) {
	b := startBroker(t)
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) {
			for _, c := range saramaCodecs {
				t.Run(c.name, func(t *testing.T) {
					cfg := saramaConfig(v.version)
					cfg.Producer.Compression = c.codec
					saramaRoundTrip(t, b.Addr(), cfg, "sarama-"+v.name+"-"+c.name)
				})
			}
		})
	}
}

func TestSaramaIdempotentProducer(t *testing.T) {
	b := startBroker(t)
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) {
			cfg := saramaConfig(v.version)
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			cfg.Producer.Compression = sarama.CompressionLZ4
			saramaRoundTrip(t, b.Addr(), cfg, "sarama-idempotent-"+v.name)
		})
	}
}
