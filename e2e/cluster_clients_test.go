package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ackedRecord is one acknowledged record: where it landed and its value.
type ackedRecord struct {
	partition int32
	offset    int64
	value     string
}

// checkClusterRead verifies that read holds exactly the acknowledged records, each once,
// at its acknowledged offset, in offset order per partition. Offsets may skip: a
// cluster's partitions hold a control batch per leader change, which consumers skip.
func checkClusterRead(t testing.TB, acked, read []ackedRecord) {
	t.Helper()
	type at struct {
		p   int32
		off int64
	}
	want := map[at]string{}
	for _, r := range acked {
		if _, dup := want[at{r.partition, r.offset}]; dup {
			t.Fatalf("two records acknowledged at %d/%d", r.partition, r.offset)
		}
		want[at{r.partition, r.offset}] = r.value
	}
	last := map[int32]int64{}
	for _, r := range read {
		if prev, ok := last[r.partition]; ok && r.offset <= prev {
			t.Fatalf("partition %d: read offset %d after %d", r.partition, r.offset, prev)
		}
		last[r.partition] = r.offset
		v, ok := want[at{r.partition, r.offset}]
		if !ok {
			t.Fatalf("record at %d/%d (%q) was never acknowledged (or read twice)", r.partition, r.offset, r.value)
		}
		if v != r.value {
			t.Fatalf("record at %d/%d: read %q, acknowledged %q", r.partition, r.offset, r.value, v)
		}
		delete(want, at{r.partition, r.offset})
	}
	if len(want) != 0 {
		t.Fatalf("%d acknowledged records were not read", len(want))
	}
}

// lastOffsets is the highest acknowledged offset of each partition.
func lastOffsets(acked []ackedRecord) map[int32]int64 {
	m := map[int32]int64{}
	for _, r := range acked {
		m[r.partition] = max(m[r.partition], r.offset)
	}
	return m
}

// TestClusterOtherClients runs librdkafka (kcat), sarama and kafka-go against a 3-node
// cluster: each produces with acks=all to a topic of RF 3 whose leaders are spread over
// the nodes, seeded with one node's address (the clients find the leaders from
// Metadata), and reads everything back.
func TestClusterOtherClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const records = 300
	bs := startCluster(t, 3, nil)
	seeds := clusterSeeds(bs)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	create := func(t *testing.T, topic string, partitions int) {
		createTopicRetrying(t, adm, int32(partitions), 3, topic)
		waitLeaders(t, adm, topic, partitions)
	}
	seed := seeds[1]

	t.Run("kcat", func(t *testing.T) {
		bin := kcatPath(t)
		const topic = "cluster-kcat"
		create(t, topic, kcatPartitions)
		input := kcatInput("cluster", kcatRecords)
		kcatProduce(t, bin, seed, topic, "lz4", input, "-X", "enable.idempotence=true")
		checkKcatRecordsGaps(t, input, kcatConsume(t, bin, seed, topic), true)
	})

	t.Run("sarama", func(t *testing.T) {
		const topic, partitions = "cluster-sarama", 3
		create(t, topic, partitions)
		cfg := saramaConfig(sarama.V3_6_0_0)
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
		cl := newSaramaClient(t, seed, cfg)
		prod, err := sarama.NewSyncProducerFromClient(cl)
		if err != nil {
			t.Fatal(err)
		}
		var acked []ackedRecord
		for i := range records {
			v := fmt.Sprintf("sarama-%d", i)
			p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)})
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			acked = append(acked, ackedRecord{p, off, v})
		}
		if err := prod.Close(); err != nil {
			t.Fatal(err)
		}
		cons, err := sarama.NewConsumerFromClient(cl)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		var read []ackedRecord
		for p, last := range lastOffsets(acked) {
			pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.After(30 * time.Second)
			for done := false; !done; {
				select {
				case m := <-pc.Messages():
					read = append(read, ackedRecord{m.Partition, m.Offset, string(m.Value)})
					done = m.Offset >= last
				case err := <-pc.Errors():
					t.Fatalf("consume %d: %v", p, err)
				case <-deadline:
					t.Fatalf("consume %d: not at offset %d after 30s", p, last)
				}
			}
			pc.Close()
		}
		checkClusterRead(t, acked, read)
	})

	t.Run("kafka-go", func(t *testing.T) {
		const topic, partitions = "cluster-kafkago", 3
		create(t, topic, partitions)
		ctx := testCtx(t, 60*time.Second)
		w := &kafka.Writer{Addr: kafka.TCP(seed), Topic: topic, Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond, MaxAttempts: 10}
		var acked []ackedRecord
		w.Completion = func(msgs []kafka.Message, err error) {
			if err != nil {
				t.Errorf("kafka-go write: %v", err)
				return
			}
			for _, m := range msgs {
				acked = append(acked, ackedRecord{int32(m.Partition), m.Offset, string(m.Value)})
			}
		}
		for i := range records {
			if err := w.WriteMessages(ctx, kafka.Message{Value: []byte(fmt.Sprintf("kafka-go-%d", i))}); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if len(acked) != records {
			t.Fatalf("%d of %d records acknowledged", len(acked), records)
		}
		var read []ackedRecord
		for p, last := range lastOffsets(acked) {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{seed}, Topic: topic, Partition: int(p), MaxWait: 250 * time.Millisecond})
			if err := r.SetOffset(kafka.FirstOffset); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read %d: %v", p, err)
				}
				read = append(read, ackedRecord{int32(m.Partition), m.Offset, string(m.Value)})
				if m.Offset >= last {
					break
				}
			}
			r.Close()
		}
		checkClusterRead(t, acked, read)
	})
}
