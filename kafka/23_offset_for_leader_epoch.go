package kafka

// OffsetForLeaderEpoch, versions 0-4 (KIP-101, KIP-279, KIP-320).
//
// A single node has one leader epoch, 0, for the whole log: asked for epoch 0 (or any
// later one, which the client cannot have seen from us) it answers epoch 0 ending at the
// log end offset; a negative epoch is UNDEFINED (-1, -1). Clients use it to detect log
// truncation after a leader change; with replication the epochs become real.

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleOffsetForLeaderEpoch(req *Request, m *kmsg.OffsetForLeaderEpochRequest) {
	resp := m.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range m.Topics {
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		for _, rq := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rq.Partition
			op.LeaderEpoch, op.EndOffset = -1, -1
			p := n.partition(rt.Topic, rq.Partition)
			if err := n.checkReadable(p, rq.CurrentLeaderEpoch); err != nil {
				op.ErrorCode = errCodeOf(err)
			} else if p.rep != nil {
				op.LeaderEpoch, op.EndOffset = p.rep.Storage().OffsetForLeaderEpoch(rq.LeaderEpoch)
			} else if rq.LeaderEpoch >= 0 {
				op.LeaderEpoch, op.EndOffset = leaderEpoch, p.log.EndOffset()
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	n.respond(req, resp)
}
