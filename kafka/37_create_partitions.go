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
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(m.Topics))
	w := &adminWait{n: n, req: req, resp: resp}
	w.add()
	for i, rt := range m.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		cmd, err := n.growTopic(&rt, m.ValidateOnly)
		if err == nil && cmd != nil {
			w.add()
			if err = n.proposeMeta(cmd, func(err error) {
				if err != nil {
					ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
				}
				w.done()
			}); err != nil {
				w.waiting--
			}
		}
		if err != nil {
			ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
		}
	}
	w.done()
}

// growTopic checks one topic's growth and grows it: at once on a single node, or in
// cluster mode by returning the metadata command to propose.
func (n *Node) growTopic(rt *kmsg.CreatePartitionsRequestTopic, validateOnly bool) (*metaCommand, error) {
	t := n.topics[rt.Topic]
	if t == nil {
		return nil, fmt.Errorf("%w: %q", errUnknownTopic, rt.Topic)
	}
	if t.internal() {
		return nil, fmt.Errorf("%w %s: growing it would move groups to other partitions", errInternalTopic, t.name)
	}
	have := int32(len(t.partitions))
	if rt.Count <= have {
		return nil, fmt.Errorf("%w: topic has %d partitions, asked for %d", errInvalidPartition, have, rt.Count)
	}
	if n.nparts+int(rt.Count-have) > n.cfg.MaxPartitionsTotal {
		return nil, fmt.Errorf("%w: would pass the node's limit of %d", errInvalidPartition, n.cfg.MaxPartitionsTotal)
	}
	var assignment [][]int32
	if rt.Assignment != nil && n.cl != nil {
		if len(rt.Assignment) != int(rt.Count-have) {
			return nil, fmt.Errorf("%w: %d assignments for %d new partitions", errInvalidReplicaAssignment, len(rt.Assignment), rt.Count-have)
		}
		for _, a := range rt.Assignment {
			assignment = append(assignment, a.Replicas)
		}
		if err := n.checkAssignment(assignment); err != nil {
			return nil, err
		}
	} else if rt.Assignment != nil {
		if len(rt.Assignment) != int(rt.Count-have) {
			return nil, fmt.Errorf("%w: %d assignments for %d new partitions", errInvalidReplicaAssignment, len(rt.Assignment), rt.Count-have)
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID {
				return nil, fmt.Errorf("%w: each new partition must be on node %d", errInvalidReplicaAssignment, n.cfg.NodeID)
			}
		}
	}
	if validateOnly {
		return nil, nil
	}
	if n.cl != nil {
		if assignment == nil {
			assignment = n.assign(rt.Count-have, int16(len(t.partitions[0].replicas)))
		}
		return &metaCommand{CreatePartitions: &metaCreatePartitions{Name: t.name, From: have, Replicas: assignment}}, nil
	}
	return nil, n.addPartitions(t, rt.Count)
}
