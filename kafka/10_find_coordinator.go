package kafka

// FindCoordinator, versions 0-4.
//
// Key type 0 (group): the coordinator is the leader of the group's partition of
// __consumer_offsets, which is created on first use (Kafka creates it on the first
// FindCoordinator too, but answers COORDINATOR_NOT_AVAILABLE until it exists; here the
// creation is synchronous, so the first answer is already the node). Version 4 batches
// keys (KIP-699), each with its own error. Key type 1 (transaction) is INVALID_REQUEST:
// transactions are a later issue, and COORDINATOR_NOT_AVAILABLE would make a
// transactional producer retry until it times out (InitProducerId answers the same way).
// Any other key type is INVALID_REQUEST, as Kafka answers it.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

var errTransactionsUnsupported = fmt.Errorf("%w: transactions are not supported", errBadRequest)

func (n *Node) handleFindCoordinator(req *Request, m *kmsg.FindCoordinatorRequest) {
	resp := m.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := m.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{m.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		if node, err := n.findCoordinator(m.CoordinatorType, key); err != nil {
			c.ErrorCode, c.ErrorMessage = errCodeOf(err), errMessage(err)
		} else {
			c.NodeID, c.Host, c.Port = node, n.cfg.Host, n.cfg.Port
			if n.cl != nil {
				reg := n.cl.broker(node)
				c.Host, c.Port = reg.Host, reg.Port
			}
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.NodeID, c.Host, c.Port
		if req.Version >= 1 {
			resp.ErrorMessage = c.ErrorMessage
		}
	}
	n.respond(req, resp)
}

// findCoordinator returns the node that coordinates key: the leader of its internal
// partition.
func (n *Node) findCoordinator(keyType int8, key string) (int32, error) {
	switch keyType {
	case 0:
		if err := group.ValidGroupID(key, true); err != nil {
			return -1, err
		}
		if n.cl != nil {
			t, err := n.offsetsTopicNow(true)
			if err != nil {
				return -1, err
			}
			p := t.partitions[group.PartitionFor(key, int32(len(t.partitions)))]
			if l := p.leaderNode(); l >= 0 && n.peerAlive(RaftID(l)) {
				return l, nil // never a node Metadata would not list
			}
			return -1, fmt.Errorf("%w: %s-%d has no leader yet", group.ErrCoordinatorNotAvailable, t.name, p.index)
		}
		if _, _, err := n.groupShard(key, true); err != nil {
			return -1, fmt.Errorf("%w: %v", group.ErrCoordinatorNotAvailable, err)
		}
		return n.cfg.NodeID, nil
	case 1:
		return -1, errTransactionsUnsupported
	}
	return -1, fmt.Errorf("%w: unknown coordinator type %d", errBadRequest, keyType)
}
