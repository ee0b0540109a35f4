package kafka

// CreateTopics, versions 0-7.
//
// NumPartitions -1 takes num.partitions; ReplicationFactor -1 takes
// default.replication.factor, and anything above the number of nodes is
// INVALID_REPLICATION_FACTOR. A manual ReplicaAssignment must name only this node on a
// single node, and known nodes, each once per partition, in a cluster. In cluster mode the
// topic is created through the metadata group and the answer waits until this node has
// applied it (REQUEST_TIMED_OUT after AdminTimeoutMs; NOT_CONTROLLER when the group has
// no leader). Configs must be ones Chronik understands
// (INVALID_CONFIG names the bad one). ValidateOnly checks everything and creates nothing.
// From v5 the answer carries the partition count, replication factor and configs; from v7
// the topic id (KIP-516).

import (
	"encoding/hex"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleCreateTopics(req *Request, m *kmsg.CreateTopicsRequest) {
	resp := m.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range m.Topics {
		seen[rt.Topic]++
	}
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(m.Topics))
	w := &adminWait{n: n, req: req, resp: resp}
	w.add()
	for i, rt := range m.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		var err error
		var cmd *metaCommand
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q named more than once", errBadRequest, rt.Topic)
		} else {
			cmd, err = n.createOne(&rt, ot, m.ValidateOnly)
		}
		if err == nil && cmd != nil {
			w.add()
			err = n.proposeMeta(cmd, func(err error) {
				if err != nil {
					ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
					ot.TopicID = [16]byte{}
				}
				w.done()
			})
			if err != nil {
				w.waiting--
			}
		}
		if err != nil {
			ot.ErrorCode = errCodeOf(err)
			ot.ErrorMessage = errMessage(err)
			ot.TopicID = [16]byte{}
		}
	}
	w.done()
}

// createOne checks one topic of a CreateTopics request and creates it: at once on a single
// node, or in cluster mode by returning the metadata command to propose.
func (n *Node) createOne(rt *kmsg.CreateTopicsRequestTopic, ot *kmsg.CreateTopicsResponseTopic, validateOnly bool) (*metaCommand, error) {
	if err := validTopicName(rt.Topic); err != nil {
		return nil, err
	}
	if rt.Topic == offsetsTopic && n.cl != nil {
		return nil, fmt.Errorf("%w %s: the broker creates it", errInternalTopic, rt.Topic)
	}
	if n.topics[rt.Topic] != nil {
		return nil, fmt.Errorf("%w: %q", errTopicExists, rt.Topic)
	}
	count, rf := rt.NumPartitions, rt.ReplicationFactor
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 && n.cl != nil {
		if count != -1 || rf != -1 {
			return nil, fmt.Errorf("%w: replica assignment given with a partition count or replication factor", errBadRequest)
		}
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return nil, fmt.Errorf("%w: assignment must name partitions 0..n-1", errInvalidReplicaAssignment)
			}
			assignment = append(assignment, a.Replicas)
		}
		if err := n.checkAssignment(assignment); err != nil {
			return nil, err
		}
		count, rf = int32(len(assignment)), int16(len(assignment[0]))
	} else if len(rt.ReplicaAssignment) > 0 {
		if count != -1 || rf != -1 {
			return nil, fmt.Errorf("%w: replica assignment given with a partition count or replication factor", errBadRequest)
		}
		count, rf = int32(len(rt.ReplicaAssignment)), 1
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID {
				return nil, fmt.Errorf("%w: assignment must name partitions 0..n-1, each on node %d", errInvalidReplicaAssignment, n.cfg.NodeID)
			}
		}
	}
	if count == -1 {
		count = n.cfg.DefaultPartitions
	}
	if rf == -1 {
		rf = n.cfg.DefaultReplicationFactor
	}
	if count <= 0 {
		return nil, fmt.Errorf("%w: %d partitions", errInvalidPartition, count)
	}
	if brokers := max(1, len(n.cfg.Peers)); rf < 1 || int(rf) > brokers {
		return nil, fmt.Errorf("%w: %d, but there are %d brokers", errInvalidRF, rf, brokers)
	}
	if n.nparts+int(count) > n.cfg.MaxPartitionsTotal {
		return nil, fmt.Errorf("%w: %d partitions would pass the node's limit of %d", errInvalidPartition, count, n.cfg.MaxPartitionsTotal)
	}
	set := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nil, fmt.Errorf("%w: %s has no value", errBadConfig, c.Name)
		}
		set[c.Name] = *c.Value
	}
	tc, err := n.cfg.newTopicConfig(set)
	if err != nil {
		return nil, err
	}
	ot.NumPartitions, ot.ReplicationFactor = count, rf
	for _, e := range describeTopicConfig(&tc) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source, c.ReadOnly = e.Name, e.Value, int8(e.Source), e.ReadOnly
		ot.Configs = append(ot.Configs, c)
	}
	if validateOnly {
		return nil, nil
	}
	if n.cl != nil {
		if assignment == nil {
			assignment = n.assign(count, rf)
		}
		id := n.newTopicID()
		ot.TopicID = id
		return &metaCommand{CreateTopic: &metaCreateTopic{
			Name: rt.Topic, ID: hex.EncodeToString(id[:]), Replicas: assignment, Configs: set,
		}}, nil
	}
	t, err := n.createTopic(rt.Topic, count, tc)
	if err != nil {
		return nil, err
	}
	ot.TopicID = t.id
	return nil, nil
}
