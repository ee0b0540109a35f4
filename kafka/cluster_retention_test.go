package kafka

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopicWith creates a topic with configs (name, value pairs) through node i.
func (c *testCluster) createTopicWith(i int, name string, partitions int32, rf int16, configs ...string) *kmsg.CreateTopicsResponse {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	tp := kmsg.CreateTopicsRequestTopic{Topic: name, NumPartitions: partitions, ReplicationFactor: rf}
	for k := 0; k+1 < len(configs); k += 2 {
		tp.Configs = append(tp.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[k], Value: &configs[k+1]})
	}
	req.Topics = []kmsg.CreateTopicsRequestTopic{tp}
	return c.do(i, req).(*kmsg.CreateTopicsResponse)
}

// TestClusterRetention runs retention on a replicated partition (retention.bytes) while
// a follower is cut off: the leader's log start passes the follower's log end, so the
// follower catches up by snapshot (log start and producer state), then by entries. Its
// producer state matches the leader's, also after a restart of every node, and an
// idempotent retry of a batch below nobody's log start any more is still answered with
// its original offset by whichever node leads.
func TestClusterRetention(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	ct := c.createTopicWith(0, "r", 1, 3, "segment.bytes", "1024", "retention.bytes", "4096")
	if code := ct.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v %v", kerr.ErrorForCode(code), ct.Topics[0].ErrorMessage)
	}
	c.run(800)
	l := c.leaderOf(0, "r", 0)
	if l < 0 {
		t.Fatal("no leader")
	}
	f := (l + 1) % 3
	const pid = 9 << 40
	seq := int32(0)
	produce := func(n int) (last int64) {
		t.Helper()
		for range n {
			r := c.produce(l, "r", 0, -1, idemBatch(pid, seq, fmt.Sprintf("value-%04d-%s", seq, "padding-padding-padding")))
			for try := 0; r.ErrorCode == kerr.NotEnoughReplicas.Code && try < 5; try++ {
				// NOT_ENOUGH_REPLICAS is retriable.
				c.run(50)
				r = c.produce(l, "r", 0, -1, idemBatch(pid, seq, fmt.Sprintf("value-%04d-%s", seq, "padding-padding-padding")))
			}
			if r.ErrorCode != 0 {
				t.Fatalf("produce %d: %v", seq, kerr.ErrorForCode(r.ErrorCode))
			}
			seq++
			last = r.BaseOffset
		}
		return last
	}
	produce(5)
	c.run(300)
	c.cut[f] = true
	last := produce(200)
	fEnd := c.nodes[f].partition("r", 0).log.EndOffset()
	for _, n := range c.nodes {
		n.enforceRetention()
	}
	c.run(300)
	for _, n := range c.nodes {
		n.enforceRetention() // deletions wait for seals found at open to be synced
	}
	lp := c.nodes[l].partition("r", 0)
	start := lp.rep.Storage().StartOffset()
	if start <= fEnd || lp.log.StartOffset() != start {
		t.Fatalf("leader's log starts at %d (recorded %d), the cut-off follower's ends at %d", lp.log.StartOffset(), start, fEnd)
	}
	if lo := c.listEarliest(l); lo != start {
		t.Fatalf("ListOffsets earliest %d, log start %d", lo, start)
	}

	c.cut[f] = false
	c.run(3000)
	fp := c.nodes[f].partition("r", 0)
	if fp.log.StartOffset() < start || fp.log.EndOffset() != lp.log.EndOffset() {
		t.Fatalf("follower log [%d, %d), leader's [%d, %d)", fp.log.StartOffset(), fp.log.EndOffset(), lp.log.StartOffset(), lp.log.EndOffset())
	}
	want := c.nodes[l].producerStates("r", 0)
	if got := c.nodes[f].producerStates("r", 0); !slices.Equal(got, want) || len(want) != 1 || want[0].LastSeq != seq-1 {
		t.Fatalf("follower's producers %+v, leader's %+v", got, want)
	}

	for i := range c.nodes {
		c.restart(i)
	}
	c.run(4000)
	l2 := c.leaderOf(0, "r", 0)
	if l2 < 0 {
		t.Fatal("no leader after restart")
	}
	for i, n := range c.nodes {
		if got := n.producerStates("r", 0); !slices.Equal(got, want) {
			t.Fatalf("node %d after restart: producers %+v, want %+v", i+1, got, want)
		}
	}
	r := c.produce(l2, "r", 0, -1, idemBatch(pid, seq-1, fmt.Sprintf("value-%04d-%s", seq-1, "padding-padding-padding")))
	if r.ErrorCode != 0 || r.BaseOffset != last {
		t.Fatalf("retry on node %d: %v base %d, want %d", l2+1, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset, last)
	}
	if f := c.fetch(l2, "r", 0, 0); f.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the log start: code %d", f.ErrorCode)
	}
}

// listEarliest is node i's earliest offset of r-0 (ListOffsets, timestamp -2).
func (c *testCluster) listEarliest(i int) int64 {
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(4)
	req.ReplicaID = -1
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "r", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -2, CurrentLeaderEpoch: -1}}}}
	p := c.do(i, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		c.t.Fatalf("list offsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}
