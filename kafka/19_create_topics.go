package kafka

// CreateTopics, versions 0-7.
//
// NumPartitions -1 takes num.partitions; ReplicationFactor -1 takes 1, and anything above
// the one node is INVALID_REPLICATION_FACTOR (replication is a later issue). A manual
// ReplicaAssignment must name only this node. Configs must be ones Chronik understands
// (INVALID_CONFIG names the bad one). ValidateOnly checks everything and creates nothing.
// From v5 the answer carries the partition count, replication factor and configs; from v7
// the topic id (KIP-516).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleCreateTopics(req *Request, m *kmsg.CreateTopicsRequest) {
	resp := m.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range m.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range m.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		var err error
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("%w: topic %q named more than once", errBadRequest, rt.Topic)
		} else {
			err = n.createOne(&rt, &ot, m.ValidateOnly)
		}
		if err != nil {
			ot.ErrorCode = errCodeOf(err)
			ot.ErrorMessage = errMessage(err)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	n.respond(req, resp)
}

func (n *Node) createOne(rt *kmsg.CreateTopicsRequestTopic, ot *kmsg.CreateTopicsResponseTopic, validateOnly bool) error {
	if err := validTopicName(rt.Topic); err != nil {
		return err
	}
	if n.topics[rt.Topic] != nil {
		return fmt.Errorf("%w: %q", errTopicExists, rt.Topic)
	}
	count, rf := rt.NumPartitions, rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if count != -1 || rf != -1 {
			return fmt.Errorf("%w: replica assignment given with a partition count or replication factor", errBadRequest)
		}
		count, rf = int32(len(rt.ReplicaAssignment)), 1
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != n.cfg.NodeID {
				return fmt.Errorf("%w: assignment must name partitions 0..n-1, each on node %d", errInvalidReplicaAssignment, n.cfg.NodeID)
			}
		}
	}
	if count == -1 {
		count = n.cfg.DefaultPartitions
	}
	if rf == -1 {
		rf = 1
	}
	if count <= 0 {
		return fmt.Errorf("%w: %d partitions", errInvalidPartition, count)
	}
	if rf != 1 {
		return fmt.Errorf("%w: %d, but there is 1 broker", errInvalidRF, rf)
	}
	if n.nparts+int(count) > n.cfg.MaxPartitionsTotal {
		return fmt.Errorf("%w: %d partitions would pass the node's limit of %d", errInvalidPartition, count, n.cfg.MaxPartitionsTotal)
	}
	set := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return fmt.Errorf("%w: %s has no value", errBadConfig, c.Name)
		}
		set[c.Name] = *c.Value
	}
	tc, err := n.cfg.newTopicConfig(set)
	if err != nil {
		return err
	}
	ot.NumPartitions, ot.ReplicationFactor = count, rf
	for _, e := range describeTopicConfig(&tc) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source, c.ReadOnly = e.Name, e.Value, int8(e.Source), e.ReadOnly
		ot.Configs = append(ot.Configs, c)
	}
	if validateOnly {
		return nil
	}
	t, err := n.createTopic(rt.Topic, count, tc)
	if err != nil {
		return err
	}
	ot.TopicID = t.id
	return nil
}
