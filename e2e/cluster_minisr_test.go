package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterFranzMinInsyncAll: franz-go produces with acks=all to a topic with
// min.insync.replicas 3 on three in-process brokers, and every record is acknowledged;
// with one follower's broker stopped, a batch is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND
// (while the leader still counts the follower in sync) or NOT_ENOUGH_REPLICAS, never
// acknowledged by two replicas.
func TestClusterFranzMinInsyncAll(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const topic = "all3"
	bs := startCluster(t, 3, nil)
	cl := newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t, 30*time.Second)
	three := "3"
	for {
		resp, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &three}, topic)
		if err == nil && resp.Err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create: %v %v", err, resp.Err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leader := waitLeaders(t, adm, topic, 1)[0]

	for i := range 200 {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "v%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("record %d with all three replicas up: %v", i, err)
		}
	}

	follower := int(leader % 3) // node ids are 1..3: this is another node's index
	if err := bs[follower].Close(); err != nil {
		t.Fatal(err)
	}
	// Raw requests, to see the codes (kgo retries these and reports only that it gave up).
	produce := func(v string) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: makeBatch(-1, -1, -1, v)}}}}
		resp, err := cl.Broker(int(leader)).Request(testCtx(t, 10*time.Second), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	first := produce("x")
	if first != kerr.NotEnoughReplicasAfterAppend.Code && first != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all just after a follower stopped: %v, want NOT_ENOUGH_REPLICAS(_AFTER_APPEND)", kerr.ErrorForCode(first))
	}
	if code := produce("y"); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with two of three replicas in sync: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
}
