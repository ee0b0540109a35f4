package kafka

// OffsetCommit, versions 0-8.
//
// Commits are validated by the group's coordinator shard (member, generation, static
// instance, state) and appended to the group's partition of __consumer_offsets as one
// batch of offset commit records (key v1, value v3, as Kafka writes them); the answer
// waits until that batch is durable, and only then do OffsetFetch answers show it. A
// simple commit (generation -1, no member id: a consumer that assigns partitions itself)
// is accepted for a group without members, creating it if needed, as Kafka does.
// Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and are not committed;
// metadata over offset.metadata.max.bytes gets OFFSET_METADATA_TOO_LARGE. Whole-request
// errors: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
// FENCED_INSTANCE_ID, INVALID_GROUP_ID (over group.MaxGroupIDLen), NOT_COORDINATOR.
// RetentionTimeMillis (v2-v4) is ignored: committed offsets do not expire.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleOffsetCommit(req *Request, m *kmsg.OffsetCommitRequest) {
	resp := m.ResponseKind().(*kmsg.OffsetCommitResponse)
	cr := group.CommitRequest{Group: m.Group, MemberID: m.MemberID, Generation: m.Generation}
	if m.InstanceID != nil {
		cr.InstanceID = *m.InstanceID
	}
	// slots[i] is the answer of cr.Offsets[i].
	var slots []*kmsg.OffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(m.Topics))
	for ti := range m.Topics {
		rt := &resp.Topics[ti]
		*rt = kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = m.Topics[ti].Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(m.Topics[ti].Partitions))
		for pi, rp := range m.Topics[ti].Partitions {
			out := &rt.Partitions[pi]
			*out = kmsg.NewOffsetCommitResponseTopicPartition()
			out.Partition = rp.Partition
			if p := n.partition(rt.Topic, rp.Partition); p == nil || p.deleted {
				out.ErrorCode = errCodeOf(errUnknownTopic)
				if n.cl != nil && !n.cl.metaReady {
					// A restarted node that has not caught up: the topic may exist, and
					// this node cannot coordinate yet anyway (retriable).
					out.ErrorCode = errCodeOf(group.ErrNotCoordinator)
				}
				continue
			}
			co := group.CommitOffset{TopicPartition: group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch}
			if req.Version < 6 {
				co.LeaderEpoch = -1
			}
			if rp.Metadata != nil {
				co.Metadata = *rp.Metadata
			}
			cr.Offsets = append(cr.Offsets, co)
			slots = append(slots, out)
		}
	}
	setAll := func(err error) {
		for _, s := range slots {
			s.ErrorCode = errCodeOf(err)
		}
	}
	if len(cr.Offsets) == 0 {
		n.respond(req, resp)
		return
	}
	if err := group.ValidGroupID(m.Group, true); err != nil {
		setAll(err)
		n.respond(req, resp)
		return
	}
	shard, i, err := n.groupShard(m.Group, true)
	if err != nil {
		setAll(err)
		n.respond(req, resp)
		return
	}
	recs, errs, err := shard.Commit(n.nowMs, cr)
	n.flushGroups(i)
	if err != nil {
		setAll(err)
		n.respond(req, resp)
		return
	}
	var accepted []*kmsg.OffsetCommitResponseTopicPartition
	for k, e := range errs {
		if e != nil {
			slots[k].ErrorCode = errCodeOf(e)
		} else {
			accepted = append(accepted, slots[k])
		}
	}
	if len(recs) == 0 {
		n.respond(req, resp)
		return
	}
	n.appendGroupRecords(i, recs, 0, func(err error) {
		for _, s := range accepted {
			s.ErrorCode = errCodeOf(err)
		}
		n.respond(req, resp)
	})
	n.flushGroups(i)
}
