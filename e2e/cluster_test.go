package e2e

import (
	"errors"
	"fmt"
	gonet "net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/internal/brokertest"
	"chronik/kafka"
	cnet "chronik/net"
)

// startCluster starts n clustered brokers in this process on free ports of 127.0.0.1,
// node ids 1..n, talking over the real TCP peer transport. Each is stopped when the test
// ends.
func startCluster(t *testing.T, n int, tune func(*kafka.Config)) []*cnet.Broker {
	t.Helper()
	kafkaLns := make([]gonet.Listener, n)
	peerLns := make([]gonet.Listener, n)
	peers := make([]kafka.Peer, n)
	for i := range n {
		for _, ln := range []*gonet.Listener{&kafkaLns[i], &peerLns[i]} {
			l, err := gonet.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() }) // a no-op once the broker owns and closed it
			*ln = l
		}
		port := kafkaLns[i].Addr().(*gonet.TCPAddr).Port
		peers[i] = kafka.Peer{ID: int32(i + 1), Host: "127.0.0.1", Port: int32(port), PeerAddr: peerLns[i].Addr().String()}
	}
	bs := make([]*cnet.Broker, n)
	for i := range n {
		cfg := kafka.Config{NodeID: int32(i + 1), Peers: peers, RaftTickMs: 50, ElectionTimeoutMs: 500}
		if tune != nil {
			tune(&cfg)
		}
		bs[i] = brokertest.Serve(t, kafkaLns[i], cfg, cnet.ServerConfig{Peer: cnet.PeerOptions{Listener: peerLns[i], JitterSeed: uint64(i + 1)}})
	}
	return bs
}

func clusterSeeds(bs []*cnet.Broker) []string {
	var seeds []string
	for _, b := range bs {
		seeds = append(seeds, b.Addr())
	}
	return seeds
}

// createTopicRetrying creates a topic, retrying while the cluster elects its metadata
// leader; an existing topic is success (a timed-out attempt may have created it).
func createTopicRetrying(t testing.TB, adm *kadm.Client, partitions int32, rf int16, topic string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for {
		resp, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
		if err == nil && (resp.Err == nil || errors.Is(resp.Err, kerr.TopicAlreadyExists)) {
			return
		}
		if err == nil {
			err = resp.Err
		}
		if ctx.Err() != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		t.Logf("create topic %s: %v (retrying)", topic, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// waitLeaders waits until every partition of topic has a leader in Metadata and returns
// them by partition.
func waitLeaders(t testing.TB, adm *kadm.Client, topic string, partitions int) []int32 {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			leaders := make([]int32, 0, partitions)
			for p := range int32(partitions) {
				if pd, ok := td.Partitions[p]; ok && pd.Err == nil && pd.Leader >= 0 {
					leaders = append(leaders, pd.Leader)
				}
			}
			if len(leaders) == partitions {
				return leaders
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("partitions of %s have no leader: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterFranz runs three in-process brokers with the real peer transport: kadm
// creates a replicated topic, franz-go produces to it idempotently with acks=all and
// reads everything back, Metadata names three brokers and spreads the leaders, and a
// produce sent straight to a follower is NOT_LEADER_OR_FOLLOWER.
func TestClusterFranz(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const (
		topic      = "replicated"
		partitions = 3
		records    = 3000
	)
	bs := startCluster(t, 3, nil)
	cl := newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	adm := kadm.NewClient(cl)
	createTopicRetrying(t, adm, partitions, 3, topic)
	leaders := waitLeaders(t, adm, topic, partitions)
	t.Logf("leaders by partition: %v", leaders)

	md, err := adm.Metadata(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("metadata names %d brokers, want 3: %v", len(md.Brokers), md.Brokers)
	}
	for p, pd := range md.Topics[topic].Partitions {
		if len(pd.Replicas) != 3 {
			t.Errorf("partition %d has replicas %v, want 3", p, pd.Replicas)
		}
	}
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(leaders)))); distinct < 2 {
		t.Errorf("leaders %v: all partitions led by one node", leaders)
	}

	// Produce: values are "partition-seq", so the read-back can check order.
	ctx := testCtx(t, 40*time.Second)
	results := make(chan error, records)
	for i := range records {
		p := int32(i % partitions)
		r := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i/partitions)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- err })
	}
	for range records {
		if err := <-results; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	// Read everything back with a fresh consumer.
	cons := newClient(t, bs[1].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := make([]int, partitions)
	for got := 0; got < records; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", got, records, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			want := fmt.Sprintf("%d-%d", r.Partition, next[r.Partition])
			if string(r.Value) != want {
				t.Fatalf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition]++
			got++
		})
	}

	// A produce sent to a follower of partition 0 is refused.
	follower := int32(-1)
	for _, id := range md.Topics[topic].Partitions[0].Replicas {
		if id != leaders[0] {
			follower = id
			break
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, makeBatch(-1, -1, -1, "to-a-follower")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl.Broker(int(follower)))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Errorf("produce to follower %d: %v, want NOT_LEADER_OR_FOLLOWER", follower, kerr.ErrorForCode(code))
	}
}
