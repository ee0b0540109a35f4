package kafka

// CreatePartitions, versions 0-3.
//
// Grows a topic to Count partitions; Count must exceed the current count
// (INVALID_PARTITIONS). A manual assignment must put each new partition on this node.
// ValidateOnly checks and changes nothing.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleCreatePartitions(req *Request, m *kmsg.CreatePartitionsRequest) {
	resp := m.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range m.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		if err := n.growTopic(&rt, m.ValidateOnly); err != nil {
			ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	n.respond(req, resp)
}

func (n *Node) growTopic(rt *kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	t := n.topics[rt.Topic]
	if t == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, rt.Topic)
	}
	if t.internal() {
		return fmt.Errorf("%w %s: growing it would move groups to other partitions", errInternalTopic, t.name)
	}
	have := int32(len(t.partitions))
	if rt.Count <= have {
		return fmt.Errorf("%w: topic has %d partitions, asked for %d", errInvalidPartition, have, rt.Count)
	}
	if n.nparts+int(rt.Count-have) > n.cfg.MaxPartitionsTotal {
		return fmt.Errorf("%w: would pass the node's limit of %d", errInvalidPartition, n.cfg.MaxPartitionsTotal)
	}
	if rt.Assignment != nil {
		if len(rt.Assignment) != int(rt.Count-have) {
			return fmt.Errorf("%w: %d assignments for %d new partitions", errInvalidReplicaAssignment, len(rt.Assignment), rt.Count-have)
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID {
				return fmt.Errorf("%w: each new partition must be on node %d", errInvalidReplicaAssignment, n.cfg.NodeID)
			}
		}
	}
	if validateOnly {
		return nil
	}
	return n.addPartitions(t, rt.Count)
}
