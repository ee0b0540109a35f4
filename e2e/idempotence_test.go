package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// makeBatch encodes an uncompressed v2 record batch of values with a correct CRC-32C,
// from the given producer id, epoch and first sequence (-1, -1, -1 for a plain batch).
func makeBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	b := wireBatch(values...)
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = pid, epoch, seq
	return wireSeal(b)
}

// produceRaw sends one batch to topic/0 with acks=all and returns the partition answer.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// TestIdempotentProducerProtocol checks the broker's answers to idempotent batches at the
// protocol level: a retry is answered with its original offset and not written twice, a
// gap is OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch INVALID_PRODUCER_EPOCH.
func TestIdempotentProducerProtocol(t *testing.T) {
	b := startBroker(t)
	cl := newClient(t, b.Addr())
	ctx := testCtx(t, 20*time.Second)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "idem"); err != nil {
		t.Fatal(err)
	}
	ip, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || ip.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %v", err, kerr.ErrorForCode(ip.ErrorCode))
	}
	pid := ip.ProducerID
	ip2, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || ip2.ProducerID == pid {
		t.Fatalf("second producer id %d equals the first (%v)", ip2.ProducerID, err)
	}

	steps := []struct {
		name     string
		batch    []byte
		wantCode int16
		wantBase int64
	}{
		{"first", makeBatch(pid, 0, 0, "a", "b", "c"), 0, 0},
		{"second", makeBatch(pid, 0, 3, "d"), 0, 3},
		{"retry of first", makeBatch(pid, 0, 0, "a", "b", "c"), 0, 0},
		{"retry of second", makeBatch(pid, 0, 3, "d"), 0, 3},
		{"gap", makeBatch(pid, 0, 9, "x"), kerr.OutOfOrderSequenceNumber.Code, -1},
		{"third", makeBatch(pid, 0, 4, "e"), 0, 4},
		{"plain batch", makeBatch(-1, -1, -1, "p"), 0, 5},
		{"new epoch", makeBatch(pid, 1, 0, "f"), 0, 6},
		{"stale epoch", makeBatch(pid, 0, 5, "g"), kerr.InvalidProducerEpoch.Code, -1},
	}
	for _, s := range steps {
		got := produceRaw(t, cl, "idem", s.batch)
		if got.ErrorCode != s.wantCode || got.BaseOffset != s.wantBase {
			t.Fatalf("%s: code %v base %d, want code %v base %d", s.name,
				kerr.ErrorForCode(got.ErrorCode), got.BaseOffset, kerr.ErrorForCode(s.wantCode), s.wantBase)
		}
	}
	recs := consumeAll(t, b.Addr(), "idem", 7)
	want := []string{"a", "b", "c", "d", "e", "p", "f"}
	if len(recs) != len(want) {
		t.Fatalf("log holds %d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if string(r.Value) != want[i] || r.Offset != int64(i) {
			t.Fatalf("record %d: %q at %d, want %q at %d", i, r.Value, r.Offset, want[i], i)
		}
	}

	// After a restart the producer state is rebuilt from the log: a retry is still a
	// duplicate, and the next sequence still fits.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBrokerIn(t, b.dir)
	cl2 := newClient(t, b2.Addr())
	if got := produceRaw(t, cl2, "idem", makeBatch(pid, 1, 0, "f")); got.ErrorCode != 0 || got.BaseOffset != 6 {
		t.Fatalf("retry after restart: code %v base %d, want base 6", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	if got := produceRaw(t, cl2, "idem", makeBatch(pid, 1, 1, "h")); got.ErrorCode != 0 || got.BaseOffset != 7 {
		t.Fatalf("next after restart: code %v base %d, want base 7", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
	ip3, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(testCtx(t, 5*time.Second), cl2)
	if err != nil || ip3.ProducerID <= ip2.ProducerID {
		t.Fatalf("producer id after restart %d, must exceed %d (%v)", ip3.ProducerID, ip2.ProducerID, err)
	}
}

// TestFetchLongPoll checks MaxWaitMs/MinBytes: an empty fetch waits, and data produced
// during the wait answers it early.
func TestFetchLongPoll(t *testing.T) {
	b := startBroker(t)
	cl := newClient(t, b.Addr())
	ctx := testCtx(t, 20*time.Second)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "poll"); err != nil {
		t.Fatal(err)
	}
	fetch := func(offset int64, maxWait int32) (*kmsg.FetchResponse, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, maxWait, 1, 1<<20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "poll"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp, time.Since(start)
	}
	resp, took := fetch(0, 300)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("empty fetch: code %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	if took < 250*time.Millisecond {
		t.Fatalf("empty fetch returned after %v, before MaxWaitMillis", took)
	}
	produced := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		produced <- cl.ProduceSync(ctx, &kgo.Record{Topic: "poll", Value: []byte("wake")}).FirstErr()
	}()
	resp, _ = fetch(0, 10000)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark != 1 {
		t.Fatalf("woken fetch: code %d, %d bytes, hw %d", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	// An offset past the end is OFFSET_OUT_OF_RANGE.
	resp, _ = fetch(5, 0)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past end: %v", kerr.ErrorForCode(code))
	}
}
