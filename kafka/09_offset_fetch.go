package kafka

// OffsetFetch, versions 0-8.
//
// Answers a group's committed offsets: those of the durable prefix of its partition of
// __consumer_offsets. A partition without a committed offset (or a group that does not
// exist) answers offset -1 with no error, as Kafka does. A null topic list (v2+) asks for
// every committed offset of the group. v8 batches groups (KIP-709), each with its own
// error. RequireStable (v7) has no effect: without transactions no offset is pending.
// Errors: INVALID_GROUP_ID (over group.MaxGroupIDLen), NOT_COORDINATOR; at v0-v1 a group
// error is given on every partition, from v2 at the top level.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

// fetchedTopic is one topic of an OffsetFetch answer, shared by the v0-v7 and v8 forms.
type fetchedTopic struct {
	topic string
	parts []fetchedPartition
}

type fetchedPartition struct {
	partition int32
	offset    group.Offset
	err       error
}

func (n *Node) handleOffsetFetch(req *Request, m *kmsg.OffsetFetchRequest) {
	resp := m.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range m.Groups {
			var asked []kmsg.OffsetFetchRequestTopic
			for _, t := range rg.Topics {
				asked = append(asked, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
			if rg.Topics == nil {
				asked = nil
			}
			topics, err := n.fetchOffsets(rg.Group, asked)
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = rg.Group, errCodeOf(err)
			for _, ft := range topics {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = ft.topic
				for _, fp := range ft.parts {
					p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					p.Partition, p.Offset, p.LeaderEpoch = fp.partition, fp.offset.Offset, fp.offset.LeaderEpoch
					md := fp.offset.Metadata
					p.Metadata, p.ErrorCode = &md, errCodeOf(fp.err)
					t.Partitions = append(t.Partitions, p)
				}
				g.Topics = append(g.Topics, t)
			}
			resp.Groups = append(resp.Groups, g)
		}
		n.respond(req, resp)
		return
	}
	topics, err := n.fetchOffsets(m.Group, m.Topics)
	if req.Version >= 2 {
		resp.ErrorCode = errCodeOf(err)
	}
	if err != nil && req.Version < 2 {
		// No top-level error before v2: every asked partition carries it.
		topics = nil
		for _, t := range m.Topics {
			ft := fetchedTopic{topic: t.Topic}
			for _, p := range t.Partitions {
				ft.parts = append(ft.parts, fetchedPartition{partition: p, offset: noOffset, err: err})
			}
			topics = append(topics, ft)
		}
	}
	for _, ft := range topics {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = ft.topic
		for _, fp := range ft.parts {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition, p.Offset, p.LeaderEpoch = fp.partition, fp.offset.Offset, fp.offset.LeaderEpoch
			md := fp.offset.Metadata
			p.Metadata, p.ErrorCode = &md, errCodeOf(fp.err)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	n.respond(req, resp)
}

// noOffset is the answer for a partition without a committed offset.
var noOffset = group.Offset{Offset: -1, LeaderEpoch: -1}

// fetchOffsets answers one group: the asked partitions, or with asked nil every committed
// offset.
func (n *Node) fetchOffsets(groupID string, asked []kmsg.OffsetFetchRequestTopic) ([]fetchedTopic, error) {
	if err := group.ValidGroupID(groupID, true); err != nil {
		return nil, err
	}
	shard, _, err := n.groupShard(groupID, false)
	if err != nil {
		return nil, err
	}
	var out []fetchedTopic
	if asked == nil {
		if shard == nil {
			return nil, nil
		}
		for _, co := range shard.AllCommitted(groupID) {
			if len(out) == 0 || out[len(out)-1].topic != co.Topic {
				out = append(out, fetchedTopic{topic: co.Topic})
			}
			ft := &out[len(out)-1]
			ft.parts = append(ft.parts, fetchedPartition{partition: co.Partition, offset: co.Offset})
		}
		return out, nil
	}
	for _, t := range asked {
		ft := fetchedTopic{topic: t.Topic}
		for _, p := range t.Partitions {
			o := noOffset
			if shard != nil {
				if c, ok := shard.Committed(groupID, group.TopicPartition{Topic: t.Topic, Partition: p}); ok {
					o = c
				}
			}
			ft.parts = append(ft.parts, fetchedPartition{partition: p, offset: o})
		}
		out = append(out, ft)
	}
	return out, nil
}
