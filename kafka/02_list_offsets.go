package kafka

// ListOffsets, versions 1-7.
//
// Timestamp -2 is the log start offset, -1 the high watermark (the latest committed
// offset; read_committed sees the same, as there are no transactions yet), and a
// timestamp >= 0 the first offset of the first batch whose max timestamp is at least it
// (the time index), or -1 when there is none below the high watermark. -3 (KIP-734, v7)
// is the batch holding the largest timestamp. CurrentLeaderEpoch is checked (KIP-320).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/record"
)

func (n *Node) handleListOffsets(req *Request, m *kmsg.ListOffsetsRequest) {
	resp := m.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range m.Topics {
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rq := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rq.Partition
			op.Offset, op.Timestamp, op.LeaderEpoch = -1, -1, -1
			p := n.partition(rt.Topic, rq.Partition)
			if err := n.checkReadable(p, rq.CurrentLeaderEpoch); err != nil {
				op.ErrorCode = errCodeOf(err)
			} else {
				op.Offset, op.Timestamp = n.offsetFor(p, rq.Timestamp)
				op.LeaderEpoch = p.leaderEpoch()
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	n.respond(req, resp)
}

// offsetFor resolves a ListOffsets timestamp query on p.
func (n *Node) offsetFor(p *partition, ts int64) (offset, timestamp int64) {
	hw := p.highWatermark()
	switch ts {
	case -2, -4: // earliest, earliest-local
		return p.log.StartOffset(), -1
	case -1, -5: // latest, latest-tiered
		return hw, -1
	case -3: // max timestamp
		return n.maxTimestampOffset(p, hw)
	}
	if ts < 0 {
		return -1, -1
	}
	off, bts, ok := p.log.OffsetForTime(ts)
	if !ok || off >= hw {
		return -1, -1
	}
	return off, bts
}

// maxTimestampOffset finds the batch with the largest max timestamp below hw. It walks the
// batch headers, so its cost grows with the log; clients use it rarely.
func (n *Node) maxTimestampOffset(p *partition, hw int64) (offset, timestamp int64) {
	offset, timestamp = -1, -1
	err := p.log.Batches(p.log.StartOffset(), func(h record.Header) bool {
		if h.BaseOffset >= hw {
			return false
		}
		if h.MaxTimestamp > timestamp {
			offset, timestamp = h.LastOffset(), h.MaxTimestamp
		}
		return true
	})
	if err != nil {
		return -1, -1
	}
	return offset, timestamp
}
