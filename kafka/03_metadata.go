package kafka

// Metadata, versions 0-12.
//
// Answers from the node's topics: one broker (this node), which leads every partition at
// leader epoch 0 with itself as the only replica and ISR. A null topic list (v1+; an empty
// one at v0) asks for every topic. An unknown topic is created with the broker defaults
// when auto-creation is on and the request allows it (v4+ AllowAutoTopicCreation; always
// at v0-v3), as Kafka's auto.create.topics.enable; otherwise it is
// UNKNOWN_TOPIC_OR_PARTITION. Topic ids (KIP-516) are returned from v10.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleMetadata(req *Request, m *kmsg.MetadataRequest) {
	resp := m.ResponseKind().(*kmsg.MetadataResponse)
	broker := kmsg.NewMetadataResponseBroker()
	broker.NodeID, broker.Host, broker.Port = n.cfg.NodeID, n.cfg.Host, n.cfg.Port
	if n.cfg.Rack != "" {
		broker.Rack = &n.cfg.Rack
	}
	resp.Brokers = []kmsg.MetadataResponseBroker{broker}
	resp.ClusterID = &n.cfg.ClusterID
	resp.ControllerID = n.cfg.NodeID
	resp.AuthorizedOperations = -2147483648
	if n.cl != nil {
		resp.Brokers = resp.Brokers[:0]
		n.metadataCluster(req, m, resp)
	}

	all := m.Topics == nil || (req.Version == 0 && len(m.Topics) == 0)
	if all {
		for _, t := range n.allTopics() {
			resp.Topics = append(resp.Topics, n.metadataTopic(t))
		}
		n.respond(req, resp)
		return
	}
	autoCreate := !n.cfg.DisableAutoCreate && (req.Version < 4 || m.AllowAutoTopicCreation)
	for _, rt := range m.Topics {
		var t *topic
		if rt.Topic != nil {
			t = n.topics[*rt.Topic]
		} else if req.Version >= 10 {
			t = n.topicIDs[rt.TopicID]
		}
		if t == nil && n.cl != nil && !n.cl.metaReady {
			// A restarted node that has not caught up with the metadata group yet: the
			// topic may exist. Retriable, so the client asks again (or asks another node).
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, kerr.LeaderNotAvailable.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if t == nil && rt.Topic != nil && autoCreate && n.cl != nil && validTopicName(*rt.Topic) == nil {
			// Created through the metadata group: LEADER_NOT_AVAILABLE until it exists,
			// as Kafka answers an auto-created topic.
			n.autoCreateReplicated(*rt.Topic, n.cfg.DefaultPartitions, nil)
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.ErrorCode = rt.Topic, kerr.LeaderNotAvailable.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if t == nil && rt.Topic != nil && autoCreate {
			t = n.autoCreate(*rt.Topic)
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic != nil && validTopicName(*rt.Topic) != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, n.metadataTopic(t))
	}
	n.respond(req, resp)
}

// autoCreate creates a topic with the broker defaults; nil if the name is invalid or the
// creation fails.
func (n *Node) autoCreate(name string) *topic {
	if validTopicName(name) != nil {
		return nil
	}
	tc, err := n.cfg.newTopicConfig(nil)
	if err != nil {
		return nil
	}
	t, err := n.createTopic(name, n.cfg.DefaultPartitions, tc)
	if err != nil {
		return nil
	}
	return t
}

func (n *Node) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic, mt.TopicID = &name, t.id
	mt.IsInternal = t.internal()
	mt.AuthorizedOperations = -2147483648
	for _, p := range t.partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		if n.cl != nil {
			mp.Partition = p.index
			n.metadataPartitionCluster(p, &mp)
			mt.Partitions = append(mt.Partitions, mp)
			continue
		}
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.index, n.cfg.NodeID, leaderEpoch
		mp.Replicas = []int32{n.cfg.NodeID}
		mp.ISR = []int32{n.cfg.NodeID}
		if p.failed != nil {
			mp.ErrorCode = kerr.KafkaStorageError.Code
			mp.OfflineReplicas = []int32{n.cfg.NodeID}
			mp.ISR = nil
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
