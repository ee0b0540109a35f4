package kafka

// OffsetDelete, version 0 (KIP-496).
//
// Deletes committed offsets of a group: any of an Empty group; for a consumer group with
// members, those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the
// others); a group of another protocol type with members is NON_EMPTY_GROUP. Tombstones
// are appended to __consumer_offsets and the answer waits until they are durable.
// Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION. Group errors:
// GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, INVALID_GROUP_ID, NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleOffsetDelete(req *Request, m *kmsg.OffsetDeleteRequest) {
	resp := m.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var tps []group.TopicPartition
	var slots []*kmsg.OffsetDeleteResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(m.Topics))
	for ti := range m.Topics {
		rt := &resp.Topics[ti]
		*rt = kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = m.Topics[ti].Topic
		rt.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(m.Topics[ti].Partitions))
		for pi, rp := range m.Topics[ti].Partitions {
			out := &rt.Partitions[pi]
			*out = kmsg.NewOffsetDeleteResponseTopicPartition()
			out.Partition = rp.Partition
			if p := n.partition(rt.Topic, rp.Partition); p == nil || p.deleted {
				out.ErrorCode = errCodeOf(errUnknownTopic)
				continue
			}
			tps = append(tps, group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
			slots = append(slots, out)
		}
	}
	recs, i, errs, err := n.deleteOffsets(m.Group, tps)
	if err != nil {
		resp.ErrorCode = errCodeOf(err)
		resp.Topics = nil
		n.respond(req, resp)
		return
	}
	for k, e := range errs {
		slots[k].ErrorCode = errCodeOf(e)
	}
	if len(recs) == 0 {
		n.respond(req, resp)
		return
	}
	n.appendGroupRecords(i, recs, 0, func(err error) {
		if err != nil {
			resp.ErrorCode = errCodeOf(err)
		}
		n.respond(req, resp)
	})
	n.flushGroups(i)
}

func (n *Node) deleteOffsets(id string, tps []group.TopicPartition) ([]group.Record, int, []error, error) {
	if err := group.ValidGroupID(id, true); err != nil {
		return nil, 0, nil, err
	}
	shard, i, err := n.groupShard(id, false)
	switch {
	case err != nil:
		return nil, 0, nil, err
	case shard == nil:
		return nil, 0, nil, group.ErrGroupIDNotFound
	}
	recs, errs, err := shard.DeleteOffsets(id, tps)
	return recs, i, errs, err
}
