package kafka

// Admin requests in cluster mode: CreateTopics, DeleteTopics, CreatePartitions and
// auto-creation become metadata commands (metadata.go); Metadata and DescribeCluster
// answer from the configured peers and the replicas' view of their leaders.

import (
	"encoding/hex"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// assign spreads count partitions' replicas over the nodes: partition i's preferred
// leader is node (start+i) mod N and the next rf-1 nodes in id order follow, so leaders
// spread evenly within a topic and, as start moves with every partition created, across
// topics.
func (n *Node) assign(count int32, rf int16) [][]int32 {
	peers := n.cl.peers
	start := int(n.cl.nextGroup)
	out := make([][]int32, count)
	for i := range out {
		reps := make([]int32, rf)
		for k := range reps {
			reps[k] = peers[(start+i+k)%len(peers)].ID
		}
		out[i] = reps
	}
	return out
}

// checkAssignment validates a manual assignment: every partition with the same number of
// distinct, known nodes.
func (n *Node) checkAssignment(reps [][]int32) error {
	for i, r := range reps {
		if len(r) == 0 || len(r) != len(reps[0]) {
			return fmt.Errorf("%w: partition %d has %d replicas", errInvalidReplicaAssignment, i, len(r))
		}
		seen := map[int32]bool{}
		for _, id := range r {
			if _, ok := n.cl.peerByID(id); !ok || seen[id] {
				return fmt.Errorf("%w: partition %d names node %d twice or an unknown node", errInvalidReplicaAssignment, i, id)
			}
			seen[id] = true
		}
	}
	return nil
}

// autoCreateReplicated proposes to create a topic with count partitions and the default
// replication factor, once per AdminTimeoutMs per name; nobody waits for the outcome.
func (n *Node) autoCreateReplicated(name string, count int32, configs map[string]string) {
	cl := n.cl
	if until, ok := cl.autoCreating[name]; ok && n.nowMs < until {
		return
	}
	for k, until := range cl.autoCreating {
		if n.nowMs >= until {
			delete(cl.autoCreating, k)
		}
	}
	cl.autoCreating[name] = n.nowMs + n.cfg.AdminTimeoutMs
	id := n.newTopicID()
	cmd := &metaCommand{CreateTopic: &metaCreateTopic{
		Name: name, ID: hex.EncodeToString(id[:]), Replicas: n.assign(count, n.cfg.DefaultReplicationFactor), Configs: configs,
	}}
	_ = n.proposeMeta(cmd, nil) // no leader yet: the client's retry proposes again
}

// adminWait collects the outcomes of one admin request's commands and answers it when
// the last one is in.
type adminWait struct {
	n       *Node
	req     *Request
	resp    kmsg.Response
	waiting int
}

func (w *adminWait) add() { w.waiting++ }

func (w *adminWait) done() {
	w.waiting--
	if w.waiting == 0 {
		w.n.respond(w.req, w.resp)
	}
}

// metadataCluster answers Metadata in cluster mode. As in Kafka, the brokers are the live
// ones (here: heard from within an election timeout): a client drops a dead broker and
// whatever it cached for it, such as a group coordinator, instead of dialing it again.
func (n *Node) metadataCluster(req *Request, m *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	for _, p := range n.cl.peers {
		if !n.peerAlive(RaftID(p.ID)) {
			continue
		}
		reg := n.cl.broker(p.ID)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = reg.ID, reg.Host, reg.Port
		if reg.Rack != "" {
			b.Rack = &reg.Rack
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ControllerID = n.controllerID()
}

// controllerID is the metadata leader's node id, or this node's when none is known
// (clients send admin requests to the controller; any node forwards them).
func (n *Node) controllerID() int32 {
	if l := n.cl.meta.Leader(); l != 0 {
		return NodeOfRaftID(l)
	}
	return n.cfg.NodeID
}

// metadataPartitionCluster fills one partition's Metadata answer in cluster mode.
func (n *Node) metadataPartitionCluster(p *partition, mp *kmsg.MetadataResponseTopicPartition) {
	mp.Replicas = append([]int32(nil), p.replicas...)
	mp.ISR = append([]int32(nil), p.replicas...)
	if p.leading && p.failed == nil {
		// The leader knows who is in sync; a follower reports every replica.
		mp.ISR = mp.ISR[:0]
		for _, id := range p.rep.InSync(nil) {
			mp.ISR = append(mp.ISR, NodeOfRaftID(id))
		}
	}
	mp.Leader, mp.LeaderEpoch = p.leaderNode(), p.leaderEpoch()
	if mp.Leader >= 0 && !n.peerAlive(RaftID(mp.Leader)) {
		mp.Leader = -1 // a node Metadata does not list: its partitions are electing
	}
	switch {
	case p.failed != nil && p.rep == nil:
		mp.ErrorCode = kerr.KafkaStorageError.Code
	case p.rep == nil && p.hintLeader >= 0 && n.peerAlive(RaftID(p.hintLeader)):
		// Not hosted here: the leader's last hint through the metadata group.
		mp.Leader, mp.LeaderEpoch = p.hintLeader, p.hintEpoch
	case p.rep == nil:
		mp.ErrorCode = kerr.LeaderNotAvailable.Code
		mp.LeaderEpoch = -1
	case p.failed != nil:
		mp.OfflineReplicas = []int32{n.cfg.NodeID}
		mp.ISR = removeID(mp.ISR, n.cfg.NodeID)
	case mp.Leader < 0:
		mp.ErrorCode = kerr.LeaderNotAvailable.Code
	}
}

func removeID(ids []int32, id int32) []int32 {
	out := ids[:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}
