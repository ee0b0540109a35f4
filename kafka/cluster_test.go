package kafka

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"testing/cryptotest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/disk"
)

// testCluster runs three cluster-mode nodes in one goroutine: messages are delivered at
// the next step, sync jobs run at once, time moves by hand. A node can be cut off (its
// messages in and out dropped) or crashed and reopened on its MemFS.
type testCluster struct {
	t     *testing.T
	nowMs int64
	mem   []*disk.MemFS
	nodes []*Node
	cut   []bool
	peers []Peer
	// inbox are messages to deliver at the next step.
	inbox []PeerMessage
	// responses by node, in arrival order.
	resp [][]Response
	corr int32
}

func newTestCluster(t *testing.T, size int) *testCluster {
	// etcd raft's election jitter reads crypto/rand: pinned, so that a failure replays.
	cryptotest.SetGlobalRandom(t, 1)
	c := &testCluster{t: t, nowMs: groupTestNowMs}
	for i := range size {
		c.peers = append(c.peers, Peer{ID: int32(i + 1), Host: "127.0.0.1", Port: int32(9092 + i), PeerAddr: fmt.Sprintf("n%d", i+1)})
	}
	for i := range size {
		c.mem = append(c.mem, disk.NewMem())
		c.nodes = append(c.nodes, nil)
		c.cut = append(c.cut, false)
		c.resp = append(c.resp, nil)
		c.open(i)
	}
	return c
}

func (c *testCluster) config(i int) Config {
	return Config{NodeID: int32(i + 1), DataDir: "data", Peers: c.peers, GroupInitialRebalanceDelayMs: -1, GroupMinSessionTimeoutMs: 1}
}

func (c *testCluster) open(i int) {
	n, err := NewNode(c.config(i), c.mem[i], c.nowMs, uint64(i+1))
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = n
}

// crash closes node i and opens it again from what its disk holds.
func (c *testCluster) restart(i int) {
	if err := c.nodes[i].Close(); err != nil {
		c.t.Fatal(err)
	}
	c.open(i)
}

// step delivers queued messages and drains every node once.
func (c *testCluster) step() {
	inbox := c.inbox
	c.inbox = nil
	for _, m := range inbox {
		to := int(NodeOfRaftID(m.To)) - 1
		from := int(NodeOfRaftID(m.Msg.From)) - 1
		if c.cut[to] || c.cut[from] || c.nodes[to] == nil {
			continue
		}
		c.nodes[to].Step(m.Group, m.Msg)
	}
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		n.Tick(c.nowMs)
		for range 8 {
			rd := n.Ready()
			c.resp[i] = append(c.resp[i], rd.Responses...)
			c.inbox = append(c.inbox, rd.Messages...)
			if len(rd.Syncs) == 0 {
				break
			}
			for _, s := range rd.Syncs {
				n.SyncDone(s, s.Run())
			}
		}
	}
}

// run steps for ms of simulated time, 10 ms per step.
func (c *testCluster) run(ms int64) {
	for end := c.nowMs + ms; c.nowMs < end; c.nowMs += 10 {
		c.step()
	}
}

// do sends msg to node i and steps until it is answered (at most 10 simulated seconds).
func (c *testCluster) do(i int, msg kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.corr++
	corr := c.corr
	frame := fuzzFrame(msg.Key(), msg.GetVersion(), corr, nil, msg.IsFlexible(), msg.AppendTo(nil))
	req, err := Decode(frame)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Conn = ConnID(1000 + i)
	c.nodes[i].Handle(req)
	for range 1000 {
		c.step()
		for k, r := range c.resp[i] {
			if r.CorrelationID == corr {
				c.resp[i] = append(c.resp[i][:k], c.resp[i][k+1:]...)
				return r.Msg
			}
		}
		c.nowMs += 10
	}
	c.t.Fatalf("node %d did not answer %T", i+1, msg)
	return nil
}

func (c *testCluster) createTopic(i int, name string, partitions int32, rf int16) *kmsg.CreateTopicsResponse {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: partitions, ReplicationFactor: rf}}
	return c.do(i, req).(*kmsg.CreateTopicsResponse)
}

func (c *testCluster) metadata(i int, topic string) *kmsg.MetadataResponse {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	return c.do(i, req).(*kmsg.MetadataResponse)
}

// leaderOf is the index of the node that leads topic-partition as node i's metadata says.
func (c *testCluster) leaderOf(i int, topic string, partition int32) int {
	md := c.metadata(i, topic)
	for _, p := range md.Topics[0].Partitions {
		if p.Partition == partition && p.Leader > 0 {
			return int(p.Leader) - 1
		}
	}
	return -1
}

func (c *testCluster) produce(i int, topic string, partition int32, acks int16, batch []byte) kmsg.ProduceResponseTopicPartition {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = acks, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: batch}}}}
	return c.do(i, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

func (c *testCluster) fetch(i int, topic string, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxBytes, req.MaxWaitMillis, req.MinBytes = 1<<20, 0, 0
	req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: partition, FetchOffset: offset, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	return c.do(i, req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

func TestClusterCreateProduceFetch(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	ct := c.createTopic(1, "orders", 3, 3)
	if code := ct.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v %v", kerr.ErrorForCode(code), ct.Topics[0].ErrorMessage)
	}
	c.run(500)
	leaders := map[int]bool{}
	for p := int32(0); p < 3; p++ {
		l := c.leaderOf(0, "orders", p)
		if l < 0 {
			t.Fatalf("partition %d has no leader", p)
		}
		leaders[l] = true
		for f := range 3 {
			if f == l {
				continue
			}
			r := c.produce(f, "orders", p, -1, fuzzBatch("x"))
			if r.ErrorCode != kerr.NotLeaderForPartition.Code {
				t.Fatalf("produce to follower %d: code %d", f+1, r.ErrorCode)
			}
		}
		for k := range 3 {
			r := c.produce(l, "orders", p, -1, fuzzBatch(fmt.Sprintf("v%d", k)))
			if r.ErrorCode != 0 || r.BaseOffset < 0 {
				t.Fatalf("produce p%d: %v base %d", p, kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
			}
		}
		f := c.fetch(l, "orders", p, 0)
		if f.ErrorCode != 0 || len(f.RecordBatches) == 0 || f.HighWatermark < 3 {
			t.Fatalf("fetch p%d: code %d, %d bytes, hw %d", p, f.ErrorCode, len(f.RecordBatches), f.HighWatermark)
		}
	}
	if len(leaders) != 3 {
		t.Errorf("leaders %v: want one partition led by each node", leaders)
	}
}

// idemBatch is fuzzBatch from an idempotent producer.
func idemBatch(pid int64, seq int32, values ...string) []byte {
	b := fuzzBatch(values...)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], 0)
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestClusterFailover cuts the leader off: a new leader is elected, takes writes, and
// answers an idempotent retry of a batch the old leader committed with its original
// offset; the old leader, restarted and reconnected, catches up to the same log.
func TestClusterFailover(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	if code := c.createTopic(0, "t", 1, 3).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	c.run(800)
	l := c.leaderOf(0, "t", 0)
	if l < 0 {
		t.Fatal("no leader")
	}
	const pid = 7 << 40
	var first int64 = -1
	for seq := int32(0); seq < 5; seq++ {
		r := c.produce(l, "t", 0, -1, idemBatch(pid, seq, fmt.Sprint(seq)))
		if r.ErrorCode != 0 {
			t.Fatalf("produce %d: %v", seq, kerr.ErrorForCode(r.ErrorCode))
		}
		if seq == 4 {
			first = r.BaseOffset
		}
	}
	c.cut[l] = true
	c.run(4000)
	other := (l + 1) % 3
	l2 := c.leaderOf(other, "t", 0)
	if l2 < 0 || l2 == l {
		t.Fatalf("leader after cutting node %d: %d", l+1, l2+1)
	}
	// The retry of seq 4 is a duplicate: the original offset, nothing written.
	r := c.produce(l2, "t", 0, -1, idemBatch(pid, 4, "4"))
	if r.ErrorCode != 0 || r.BaseOffset != first {
		t.Fatalf("retry on the new leader: %v base %d, want %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset, first)
	}
	r = c.produce(l2, "t", 0, -1, idemBatch(pid, 5, "5"))
	if r.ErrorCode != 0 || r.BaseOffset <= first {
		t.Fatalf("produce on the new leader: %v base %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	// The old leader answers NOT_LEADER once it hears of the new term; restarted and
	// reconnected it catches up.
	c.restart(l)
	c.cut[l] = false
	c.run(2000)
	want := c.nodes[l2].partition("t", 0).log.EndOffset()
	if got := c.nodes[l].partition("t", 0).log.EndOffset(); got != want {
		t.Fatalf("old leader's log ends at %d, the new leader's at %d", got, want)
	}
	if r := c.produce(l, "t", 0, -1, fuzzBatch("z")); r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to the old leader: code %d", r.ErrorCode)
	}
	// Every value once, in order.
	f := c.fetch(l2, "t", 0, 0)
	var got []string
	for len(f.RecordBatches) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(f.RecordBatches); err != nil {
			t.Fatal(err)
		}
		f.RecordBatches = f.RecordBatches[12+b.Length:]
		if b.Attributes&0x20 != 0 {
			t.Fatalf("fetch served Raft's control batch at %d", b.FirstOffset)
		}
		recs := b.Records
		for range b.NumRecords {
			l, n := binary.Varint(recs)
			var r kmsg.Record
			if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
				t.Fatal(err)
			}
			recs = recs[n+int(l):]
			got = append(got, string(r.Value))
		}
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5]" {
		t.Fatalf("values %v", got)
	}
}

// TestClusterRestartAll stops every node and opens them again: topics come back from
// the metadata log, leaders are elected, and the data is there.
func TestClusterRestartAll(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	c.createTopic(2, "a", 2, 3)
	c.createTopic(0, "b", 1, 2)
	c.run(800)
	l := c.leaderOf(0, "a", 1)
	if r := c.produce(l, "a", 1, -1, fuzzBatch("x", "y")); r.ErrorCode != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	co := c.coordinator(0, "g")
	if code := c.commit(co, "g", "a", 2); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	for i := range c.nodes {
		c.restart(i)
	}
	c.run(4000)
	md := c.metadata(1, "a")
	if len(md.Topics[0].Partitions) != 2 {
		t.Fatalf("topic a after restart: %+v", md.Topics[0])
	}
	l = c.leaderOf(1, "a", 1)
	if l < 0 {
		t.Fatal("no leader after restart")
	}
	f := c.fetch(l, "a", 1, 0)
	if f.ErrorCode != 0 || f.HighWatermark < 2 {
		t.Fatalf("fetch after restart: code %d hw %d", f.ErrorCode, f.HighWatermark)
	}
	for i, n := range c.nodes {
		if n.topics["b"] == nil {
			t.Fatalf("node %d lost topic b", i+1)
		}
	}
	co = c.coordinator(1, "g")
	var off int64
	var code int16
	for range 20 {
		if off, code = c.fetchOffset(co, "g", "a"); code != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		c.run(100)
	}
	if off != 2 || code != 0 {
		t.Fatalf("committed offset after a full restart: %d %v", off, kerr.ErrorForCode(code))
	}
}

func (c *testCluster) findCoordinator(i int, group string) (int, int16) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(3)
	req.CoordinatorKey = group
	r := c.do(i, req).(*kmsg.FindCoordinatorResponse)
	return int(r.NodeID) - 1, r.ErrorCode
}

// coordinator asks node i until it names the group's coordinator.
func (c *testCluster) coordinator(i int, group string) int {
	c.t.Helper()
	for range 50 {
		if node, code := c.findCoordinator(i, group); code == 0 {
			return node
		}
		c.run(100)
	}
	c.t.Fatalf("no coordinator for %s", group)
	return -1
}

func (c *testCluster) commit(i int, group, topic string, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = group, -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return c.do(i, req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

func (c *testCluster) fetchOffset(i int, group, topic string) (int64, int16) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(7)
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	r := c.do(i, req).(*kmsg.OffsetFetchResponse)
	if r.ErrorCode != 0 {
		return -1, r.ErrorCode
	}
	return r.Topics[0].Partitions[0].Offset, r.Topics[0].Partitions[0].ErrorCode
}

// TestClusterCoordinatorFailover commits an offset, cuts the coordinator off, and reads
// the offset back from the new coordinator.
func TestClusterCoordinatorFailover(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	c.createTopic(0, "t", 1, 3)
	co := c.coordinator(1, "g")
	if code := c.commit(co, "g", "t", 42); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	if off, code := c.fetchOffset(co, "g", "t"); off != 42 || code != 0 {
		t.Fatalf("offset fetch: %d %v", off, kerr.ErrorForCode(code))
	}
	if code := c.commit((co+1)%3, "g", "t", 43); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit to a non-coordinator: code %d", code)
	}
	c.run(2000) // long enough for the groups to quiesce
	c.cut[co] = true
	c.run(4000)
	other := (co + 1) % 3
	co2 := c.coordinator(other, "g")
	if co2 == co {
		t.Fatalf("coordinator still node %d", co+1)
	}
	var off int64
	var code int16
	for range 20 {
		if off, code = c.fetchOffset(co2, "g", "t"); code != kerr.CoordinatorLoadInProgress.Code {
			break
		}
		c.run(100)
	}
	if off != 42 || code != 0 {
		t.Fatalf("offset after failover: %d %v", off, kerr.ErrorForCode(code))
	}
}

// TestClusterLeaderHints: a node that does not host a partition (RF 1 on 3 nodes) names
// its leader in Metadata from the leader's hint, and a produce through it lands.
func TestClusterLeaderHints(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	if code := c.createTopic(0, "one", 3, 1).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	c.run(1500)
	for p := int32(0); p < 3; p++ {
		for i := range 3 {
			l := c.leaderOf(i, "one", p)
			if l < 0 {
				t.Fatalf("node %d knows no leader of partition %d", i+1, p)
			}
			if r := c.produce(l, "one", p, 1, fuzzBatch("v")); r.ErrorCode != 0 {
				t.Fatalf("produce to the hinted leader %d: %v", l+1, kerr.ErrorForCode(r.ErrorCode))
			}
		}
	}
}

// TestClusterIdleQuiesces: idle partitions stop ticking (quiescence), so an idle cluster
// exchanges only the metadata group's heartbeats and the liveness pings, however many
// partitions it has; when a node dies, the partitions it led elect new leaders.
func TestClusterIdleQuiesces(t *testing.T) {
	const partitions = 300
	c := newTestCluster(t, 3)
	c.run(500)
	if code := c.createTopic(0, "big", partitions, 3).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	c.run(5000) // elections keep groups awake for two election timeouts
	msgs := 0
	for end := c.nowMs + 10000; c.nowMs < end; c.nowMs += 100 {
		msgs += len(c.inbox)
		c.step()
	}
	// Per 100 ms tick: liveness pings 3x2, metadata heartbeats and answers 2x2.
	if limit := 100 * 10 * 3; msgs > limit {
		t.Fatalf("%d messages in 10 idle seconds with %d partitions, want at most %d", msgs, partitions, limit)
	}
	t.Logf("%d messages in 10 idle seconds, %d partitions", msgs, partitions)
	dead := 0
	led := 0
	for _, p := range c.nodes[dead].topics["big"].partitions {
		if p.leading {
			led++
		}
	}
	if led == 0 {
		t.Fatal("node 1 leads nothing")
	}
	c.cut[dead] = true
	// Liveness notices in an election timeout; the two survivors may split votes a few
	// times (each campaigns when it notices), so allow several election rounds.
	c.run(12000)
	for _, p := range c.nodes[1].topics["big"].partitions {
		l := p.leaderNode()
		if l < 0 || l == int32(dead+1) {
			t.Fatalf("partition %d: leader %d after node %d died", p.index, l, dead+1)
		}
		if !c.nodes[l-1].partition("big", p.index).leading {
			t.Fatalf("partition %d: node %d does not lead it", p.index, l)
		}
	}
}

// TestClusterBrokerRegistration: a node restarted with a new advertised address
// registers it through the metadata group, and every node's Metadata names it.
func TestClusterBrokerRegistration(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(3000)
	if err := c.nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	cfg := c.config(2)
	cfg.Host, cfg.Port = "10.0.0.3", 19999
	n, err := NewNode(cfg, c.mem[2], c.nowMs, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[2] = n
	c.run(5000)
	for i := range c.nodes {
		md := c.metadata(i, "none")
		found := false
		for _, b := range md.Brokers {
			if b.NodeID == 3 {
				found = b.Host == "10.0.0.3" && b.Port == 19999
			}
		}
		if !found {
			t.Fatalf("node %d's Metadata: %+v", i+1, md.Brokers)
		}
	}
}

// TestClusterPreferredLeaderRebalance: a node that was cut off loses its leaderships;
// once it is back and in sync, the leaders hand its preferred partitions back.
func TestClusterPreferredLeaderRebalance(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	if code := c.createTopic(0, "r", 6, 3).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	c.run(3000)
	c.cut[0] = true
	c.run(5000)
	for _, p := range c.nodes[1].topics["r"].partitions {
		if p.leaderNode() == 1 {
			t.Fatalf("partition %d still led by the cut-off node", p.index)
		}
	}
	c.cut[0] = false
	c.run(15000)
	for _, p := range c.nodes[1].topics["r"].partitions {
		if l := p.leaderNode(); l != p.replicas[0] {
			t.Errorf("partition %d: leader %d, preferred %d", p.index, l, p.replicas[0])
		}
	}
}

// TestClusterBadAdmin: admin requests a cluster must refuse get Kafka's codes, and
// nothing is created.
func TestClusterBadAdmin(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	create := func(rt kmsg.CreateTopicsRequestTopic) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
		return c.do(1, req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
	}
	topic := func(name string, parts int32, rf int16) kmsg.CreateTopicsRequestTopic {
		return kmsg.CreateTopicsRequestTopic{Topic: name, NumPartitions: parts, ReplicationFactor: rf}
	}
	if code := create(topic("rf4", 1, 4)); code != kerr.InvalidReplicationFactor.Code {
		t.Errorf("RF 4 on 3 nodes: code %d", code)
	}
	bad := topic("assign", -1, -1)
	bad.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1, 9}}}
	if code := create(bad); code != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("assignment naming node 9: code %d", code)
	}
	twice := topic("twice", -1, -1)
	twice.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{2, 2}}}
	if code := create(twice); code != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("assignment naming node 2 twice: code %d", code)
	}
	if code := create(topic(offsetsTopic, 1, 3)); code != kerr.InvalidTopicException.Code {
		t.Errorf("creating %s: code %d", offsetsTopic, code)
	}
	if code := create(topic("ok", 2, 3)); code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	if code := create(topic("ok", 2, 3)); code != kerr.TopicAlreadyExists.Code {
		t.Errorf("create again: code %d", code)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "ok", Count: 1}}
	if code := c.do(2, cp).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode; code != kerr.InvalidPartitions.Code {
		t.Errorf("shrink to 1 partition: code %d", code)
	}
	c.run(1000)
	if r := c.produce(c.leaderOf(0, "ok", 0), "ok", 7, -1, fuzzBatch("x")); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce to partition 7 of 2: code %d", r.ErrorCode)
	}
	for i, n := range c.nodes {
		for _, name := range []string{"rf4", "assign", "twice"} {
			if n.topics[name] != nil {
				t.Errorf("node %d created %s", i+1, name)
			}
		}
		if len(n.topics["ok"].partitions) != 2 {
			t.Errorf("node %d: ok has %d partitions", i+1, len(n.topics["ok"].partitions))
		}
	}
}

// TestClusterMinInsyncAll: with min.insync.replicas 3 on RF 3, acks=all is answered once
// all three replicas have the batch durably, not when the commit (a quorum) says so. A
// follower cut off after the check answers NOT_ENOUGH_REPLICAS_AFTER_APPEND once the
// leader sees it out of sync; then new batches get NOT_ENOUGH_REPLICAS, acks=1 still
// works, and after the follower is back acks=all does too.
func TestClusterMinInsyncAll(t *testing.T) {
	c := newTestCluster(t, 3)
	c.run(500)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	three := "3"
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "m", NumPartitions: 1, ReplicationFactor: 3,
		Configs: []kmsg.CreateTopicsRequestTopicConfig{{Name: "min.insync.replicas", Value: &three}}}}
	if code := c.do(0, req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(code))
	}
	c.run(800)
	l := c.leaderOf(0, "m", 0)
	if l < 0 {
		t.Fatal("no leader")
	}
	if r := c.produce(l, "m", 0, -1, fuzzBatch("a")); r.ErrorCode != 0 {
		t.Fatalf("acks=all, all in sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// Every replica has it durably when the answer comes.
	want := c.nodes[l].partition("m", 0).log.EndOffset()
	for i, n := range c.nodes {
		if d := n.partition("m", 0).log.DurableOffset(); d < want {
			t.Fatalf("node %d durable to %d when acks=all was answered, want %d", i+1, d, want)
		}
	}
	f := (l + 1) % 3
	c.cut[f] = true
	if r := c.produce(l, "m", 0, -1, fuzzBatch("b")); r.ErrorCode != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("acks=all with a follower cut after the check: %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := c.produce(l, "m", 0, -1, fuzzBatch("c")); r.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with two in sync: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := c.produce(l, "m", 0, 1, fuzzBatch("d")); r.ErrorCode != 0 {
		t.Fatalf("acks=1 with two in sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	c.cut[f] = false
	c.run(3000)
	if r := c.produce(l, "m", 0, -1, fuzzBatch("e")); r.ErrorCode != 0 {
		t.Fatalf("acks=all, the follower back: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
