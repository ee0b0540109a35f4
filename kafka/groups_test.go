package kafka

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
	"chronik/disk"
)

const groupTestNowMs = 1_700_000_000_000

func newGroupTestNode(t *testing.T, fs *disk.MemFS) *Node {
	t.Helper()
	n, err := NewNode(Config{NodeID: 1, DataDir: "data", GroupInitialRebalanceDelayMs: -1, GroupMinSessionTimeoutMs: 1}, fs, groupTestNowMs, 1)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drain runs the node's sync jobs until none is left and returns every response.
func drain(t *testing.T, n *Node) []Response {
	t.Helper()
	var out []Response
	for range 16 {
		rd := n.Ready()
		out = append(out, rd.Responses...)
		for _, r := range rd.Responses {
			if r.Msg != nil {
				AppendResponse(nil, r.CorrelationID, r.Msg)
			}
		}
		if len(rd.Syncs) == 0 {
			return out
		}
		for _, s := range rd.Syncs {
			n.SyncDone(s, s.Run())
		}
	}
	t.Fatal("sync work did not end")
	return nil
}

var groupKeys = []kmsg.Key{kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.Heartbeat,
	kmsg.LeaveGroup, kmsg.SyncGroup, kmsg.DescribeGroups, kmsg.ListGroups, kmsg.DeleteGroups, kmsg.OffsetDelete}

// TestGroupAPIsEveryVersion sends every group API at every version served, with the
// fields a client sets, and checks that each request is answered exactly once (parked
// ones by the end of their timers) and every answer encodes.
func TestGroupAPIsEveryVersion(t *testing.T) {
	n := newGroupTestNode(t, disk.NewMem())
	topic := "t"
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}
	n.Handle(&Request{Conn: 1, Key: ct.Key(), Version: 7, Msg: ct})
	drain(t, n)
	seq := uint64(0)
	for _, key := range groupKeys {
		vr := supported[key.Int16()]
		for v := vr.min; v <= vr.max; v++ {
			req := kmsg.RequestForKey(key.Int16())
			req.SetVersion(v)
			fillGroupRequest(req, topic)
			n.Handle(&Request{Conn: 2, Seq: seq, Key: key.Int16(), Version: v, Msg: req})
			seq++
		}
	}
	answered := map[uint64]int{}
	for _, r := range drain(t, n) {
		answered[r.Seq]++
	}
	n.Tick(groupTestNowMs + 3_600_000) // every join, rebalance and session timer ends
	for _, r := range drain(t, n) {
		answered[r.Seq]++
	}
	for s := uint64(0); s < seq; s++ {
		if answered[s] != 1 {
			t.Errorf("request %d answered %d times", s, answered[s])
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

func fillGroupRequest(req kmsg.Request, topic string) {
	switch m := req.(type) {
	case *kmsg.OffsetCommitRequest:
		m.Group = "g"
		m.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3, LeaderEpoch: -1}}}}
	case *kmsg.OffsetFetchRequest:
		m.Group = "g"
		m.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	case *kmsg.FindCoordinatorRequest:
		m.CoordinatorKey, m.CoordinatorKeys = "g", []string{"g", "h"}
	case *kmsg.JoinGroupRequest:
		m.Group, m.ProtocolType, m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = "j", "consumer", 10000, 10000
		m.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0}}}
	case *kmsg.HeartbeatRequest:
		m.Group, m.MemberID = "j", "m"
	case *kmsg.LeaveGroupRequest:
		m.Group, m.MemberID = "j", "m"
		m.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	case *kmsg.SyncGroupRequest:
		m.Group, m.MemberID = "j", "m"
	case *kmsg.DescribeGroupsRequest:
		m.Groups = []string{"g", "j", "none"}
	case *kmsg.ListGroupsRequest:
		m.StatesFilter = []string{"stable", "Empty"}
	case *kmsg.DeleteGroupsRequest:
		m.Groups = []string{"none"}
	case *kmsg.OffsetDeleteRequest:
		m.Group = "g"
		m.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}}}
	}
}

// junkBatch is a valid v2 batch of one record whose key is no internal-topic key.
func junkBatch() []byte {
	var rec []byte
	rec = append(rec, 0)
	rec = kbin.AppendVarlong(rec, 0)
	rec = kbin.AppendVarint(rec, 0)
	rec = kbin.AppendVarintBytes(rec, []byte{0, 9, 'j', 'u', 'n', 'k'})
	rec = kbin.AppendVarintBytes(rec, []byte("value"))
	rec = kbin.AppendVarint(rec, 0)
	b := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1,
		Records: append(kbin.AppendVarint(nil, int32(len(rec))), rec...)}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// TestGroupOffsetsSurviveRestartAndJunk commits offsets, writes a foreign record into the
// group's internal partition (a client may produce anything there), restarts the node on
// the same files, and finds the committed offset served again.
func TestGroupOffsetsSurviveRestartAndJunk(t *testing.T) {
	fs := disk.NewMem()
	n := newGroupTestNode(t, fs)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t", NumPartitions: 1, ReplicationFactor: 1}}
	n.Handle(&Request{Conn: 1, Key: ct.Key(), Version: 7, Msg: ct})
	drain(t, n)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.SetVersion(8)
	commit.Group = "g"
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}
	n.Handle(&Request{Conn: 1, Seq: 1, Key: commit.Key(), Version: 8, Msg: commit})
	if rs := drain(t, n); len(rs) != 1 || rs[0].Msg.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit answer: %+v", rs)
	}
	p := n.partition(offsetsTopic, group.PartitionFor("g", n.cfg.OffsetsTopicPartitions))
	if _, _, err := p.log.Append(junkBatch(), n.nowMs); err != nil {
		t.Fatal(err)
	}
	n.markDirty(p, 1)
	drain(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n2 := newGroupTestNode(t, fs)
	defer n2.Close()
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.SetVersion(8)
	fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	n2.Handle(&Request{Conn: 1, Key: fetch.Key(), Version: 8, Msg: fetch})
	rs := drain(t, n2)
	resp := rs[0].Msg.(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 || resp.Groups[0].Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("offsets after restart: %+v", resp.Groups)
	}
	list := kmsg.NewPtrListGroupsRequest()
	list.SetVersion(4)
	n2.Handle(&Request{Conn: 1, Seq: 1, Key: list.Key(), Version: 4, Msg: list})
	lr := drain(t, n2)[0].Msg.(*kmsg.ListGroupsResponse)
	if len(lr.Groups) != 1 || lr.Groups[0].Group != "g" || lr.Groups[0].GroupState != "Empty" {
		t.Fatalf("groups after restart: %+v", lr.Groups)
	}
}
