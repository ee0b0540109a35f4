package kafka

// Cluster mode: the node is one of several, each partition a Raft group of its replicas
// (core/replica), and the topics, their configs and partition assignments live in one more
// Raft group of every node, the metadata group (metadata.go). docs/replication.md is the
// design; this file is the seam the caller drives.
//
// The caller, in addition to what node.go says:
//  1. Sends every Ready.Messages entry to the node whose Raft id is To (RaftID of a Peer),
//     with its Group: batched per peer, in order, dropping what cannot be sent (Raft
//     retries), and tells the node with Unreachable.
//  2. Hands every message a peer sent to Step, in the order the peer sent them.
//
// Raft ticks come from Tick: the node ticks every group each RaftTickMs, and Ready's
// DeadlineMs includes the next tick.

import (
	"fmt"
	"path"
	"sort"

	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/log"
	"chronik/core/replica"
)

// Peer is one node of a cluster.
type Peer struct {
	ID       int32  // the Kafka node id
	Host     string // the advertised Kafka host
	Port     int32  // the advertised Kafka port
	PeerAddr string // host:port of its Raft transport listener
}

// PeerMessage is one Raft message for another node.
type PeerMessage struct {
	To    uint64 // the receiving node's Raft id (RaftID)
	Group uint64 // the Raft group: MetadataGroup or a partition's group
	Msg   pb.Message
}

// MetadataGroup is the Raft group id of the metadata group; partitions' groups are above.
const MetadataGroup uint64 = 0

// RaftID is a node's id in every Raft group and on the peer transport: its Kafka node id
// plus one, since Raft reserves 0 and Kafka node ids start at 0.
func RaftID(node int32) uint64 { return uint64(node) + 1 }

// NodeOfRaftID is the Kafka node id of a Raft id.
func NodeOfRaftID(id uint64) int32 { return int32(id - 1) }

// Clustered reports whether the node runs in cluster mode (Config.Peers set).
func (n *Node) Clustered() bool { return n.cl != nil }

// clusterState is the node's cluster-mode state. Invariant: n.cl != nil iff
// len(n.cfg.Peers) > 0.
type clusterState struct {
	me    uint64 // this node's Raft id
	peers []Peer // sorted by id

	meta    *replica.Replica // the metadata group's replica on this node
	metaDir string
	// nextGroup is the Raft group id the next partition created gets (applied state:
	// every node computes the same).
	nextGroup uint64
	// groups are the hosted partitions by Raft group id; byGroup every partition; order
	// the hosted ones in group id order (ids only grow, so appending keeps it sorted).
	groups  map[uint64]*partition
	byGroup map[uint64]*partition
	order   []*partition

	// touched are the replicas (nil: the metadata replica) that got events since the last
	// Ready. Invariant: p.touched iff p is in touched; metaTouched likewise.
	touched     []*partition
	metaTouched bool

	// cacheBudget bounds the entry caches of the partition replicas together.
	cacheBudget replica.CacheBudget

	electionTicks int
	nextTickMs    int64
	tickCount     uint64
	// replaying is set while the open replays the metadata log: replicas open at once.
	// toOpen are hosted partitions whose replicas open a few per Ready (openPending).
	replaying bool
	toOpen    []*partition
	// metaReady: the metadata replica has applied everything its leader had committed
	// when asked (Replica.CatchUp, a ReadIndex), so a topic this node does not know does
	// not exist (until then a restarted node, which replays only what it knew committed,
	// answers retriable errors instead of UNKNOWN_TOPIC_OR_PARTITION).
	metaReady bool
	// alive is peerAlive per peer as of the last tick; scratchIDs a reused buffer.
	alive      map[uint64]bool
	scratchIDs []uint64
	// registered are the applied broker registrations by node id.
	registered map[int32]metaBroker
	// incarnation is this node's start time, sent in every liveness ping (Term);
	// peerIncarnation the last one each peer sent: a change means the peer restarted, and
	// whatever it led before no longer has a leader.
	incarnation     uint64
	peerIncarnation map[uint64]uint64
	// lastHeardMs is when a message last came from each peer, by Raft id: node
	// liveness, which lets idle groups stop ticking (quiescence).
	lastHeardMs map[uint64]int64

	out []PeerMessage

	nextToken uint64 // proposal tokens of partition replicas
	// waits are the admin requests waiting for their metadata commands to apply, by
	// command sequence.
	waits   map[uint64]*metaWait
	nextSeq uint64
	// autoCreating are topics this node proposed to auto-create, until when it will not
	// propose them again.
	autoCreating map[string]int64
}

// openCluster opens the metadata replica and replays the committed metadata, which opens
// every hosted partition's replica.
func (n *Node) openCluster() error {
	cl := &clusterState{
		me:          RaftID(n.cfg.NodeID),
		peers:       append([]Peer(nil), n.cfg.Peers...),
		metaDir:     path.Join(n.cfg.DataDir, metadataDir),
		nextGroup:   MetadataGroup + 1,
		cacheBudget: replica.CacheBudget{Limit: nodeCacheBudgetBytes, Floor: replicaCacheFloorBytes},
		groups:      map[uint64]*partition{},
		byGroup:     map[uint64]*partition{},
		lastHeardMs: map[uint64]int64{},
		registered:  map[int32]metaBroker{},
		alive:       map[uint64]bool{},

		incarnation:     uint64(max(n.nowMs, 1)),
		peerIncarnation: map[uint64]uint64{},
		waits:           map[uint64]*metaWait{},
		autoCreating:    map[string]int64{},
	}
	sort.Slice(cl.peers, func(i, j int) bool { return cl.peers[i].ID < cl.peers[j].ID })
	for _, p := range cl.peers {
		cl.lastHeardMs[RaftID(p.ID)] = n.nowMs // presumed alive until a timeout says otherwise
	}
	cl.electionTicks = int(n.cfg.ElectionTimeoutMs / n.cfg.RaftTickMs)
	cl.nextTickMs = n.nowMs + n.cfg.RaftTickMs
	n.cl = cl
	voters := make([]uint64, len(cl.peers))
	for i, p := range cl.peers {
		voters[i] = RaftID(p.ID)
	}
	if err := n.fs.MkdirAll(cl.metaDir); err != nil {
		return err
	}
	meta, err := replica.Open(n.fs, cl.metaDir, replica.Config{
		ID:              cl.me,
		Peers:           voters,
		ElectionTicks:   cl.electionTicks,
		AllowForwarding: true,
		Log:             log.Config{SegmentBytes: 64 << 20, RetentionMs: -1, RetentionBytes: -1},
		OnApply:         func(_ uint64, data []byte) { n.applyMeta(data) },
	}, n.nowMs)
	if err != nil {
		return fmt.Errorf("kafka: open metadata group: %w", err)
	}
	cl.meta = meta
	cl.replaying = true
	err = n.replayMeta()
	cl.replaying = false
	if err != nil {
		return err
	}
	// A new cluster elects its first metadata leader at once: the lowest node id
	// campaigns instead of waiting out an election timeout.
	if meta.Term() == 0 && cl.peers[0].ID == n.cfg.NodeID {
		if err := meta.Campaign(); err != nil {
			return err
		}
	}
	cl.metaTouched = true
	return nil
}

// hintEveryTicks is how often a leader checks that the metadata group holds its leader
// hint, proposing it again when a proposal was lost.
const hintEveryTicks = 20

// needsHint reports whether p, which this node leads, lacks an applied leader hint for
// its term while some node does not host it.
func (p *partition) needsHint(n *Node) bool {
	return len(p.replicas) < len(n.cl.peers) && (p.hintLeader != n.cfg.NodeID || p.hintEpoch != int32(p.term))
}

// proposeLeaderHint proposes that this node leads p in its term; nobody waits for it.
func (n *Node) proposeLeaderHint(p *partition) {
	_ = n.proposeMeta(&metaCommand{LeaderHint: &metaLeaderHint{Group: p.group, Leader: n.cfg.NodeID, Epoch: int32(p.term)}}, nil)
}

// LivenessGroup is the pseudo-group of node liveness pings: one heartbeat per peer per
// tick, handled by the node, not by Raft.
const LivenessGroup uint64 = 1<<64 - 1

// WakeGroup is the pseudo-group of wake-ups: a node whose replica of a group failed (a
// storage error) tells the group's other replicas, whose quiesced followers would
// otherwise wait forever on a leader whose node is alive. Msg.Commit carries the group.
const WakeGroup uint64 = 1<<64 - 2

// peerRestarted wakes the groups the restarted peer led as far as this node knows: its
// replicas came back as followers, and quiesced followers here would otherwise keep
// waiting on it, its node being alive.
func (n *Node) peerRestarted(id uint64) {
	for _, p := range n.cl.hosted() {
		if p.rep.Leader() == id {
			p.quiet, p.quiesced = 0, false
			p.awakeUntilTick = n.cl.tickCount + uint64(2*n.cl.electionTicks)
		}
	}
}

// wakePeers sends a wake-up for p's group to its other replicas.
func (n *Node) wakePeers(p *partition) {
	for _, r := range p.replicas {
		if id := RaftID(r); id != n.cl.me {
			n.cl.out = append(n.cl.out, PeerMessage{To: id, Group: WakeGroup, Msg: pb.Message{Type: pb.MsgHeartbeat, From: n.cl.me, To: id, Commit: p.group}})
		}
	}
}

// quiesceTicks is how many ticks a replica stays settled, without news, before it stops
// ticking: enough for the leader's heartbeats to carry the last commit to followers.
const quiesceTicks = 3

// peerAlive reports whether the node with Raft id id was heard from within an election
// timeout, as of the last tick.
func (n *Node) peerAlive(id uint64) bool {
	if alive, ok := n.cl.alive[id]; ok {
		return alive
	}
	return n.peerAliveNow(id)
}

func (n *Node) peerAliveNow(id uint64) bool {
	if id == n.cl.me {
		return true
	}
	t, ok := n.cl.lastHeardMs[id]
	return ok && n.nowMs-t < n.cfg.ElectionTimeoutMs
}

// Preferred-leader rebalancing (Kafka's auto.leader.rebalance.enable): every
// rebalanceEveryTicks, a node hands up to maxTransfersPerRebalance of the partitions it
// leads to their preferred replica (the first in the assignment) when that replica's
// node is alive and in sync. Elections under load leave leaders lopsided otherwise.
const (
	rebalanceEveryTicks      = 50
	maxTransfersPerRebalance = 64
)

// transferToPreferred starts a leadership transfer of p to its preferred replica when
// this node leads p and should not; it reports whether it did.
func (n *Node) transferToPreferred(p *partition) bool {
	pref := p.replicas[0]
	if !p.leading || pref == n.cfg.NodeID || !n.peerAlive(RaftID(pref)) {
		return false
	}
	inSync := false
	for _, id := range p.rep.InSync(n.cl.scratchIDs[:0]) {
		inSync = inSync || id == RaftID(pref)
	}
	if !inSync {
		return false
	}
	p.quiet, p.quiesced = 0, false
	p.rep.TransferLeader(RaftID(pref))
	return true
}

// quiescedStillValid reports whether p may stay (or become) quiesced: a follower while
// its leader's node is alive, so a dead leader is replaced; a leader while a majority of
// its replicas' nodes are alive, so an isolated leader ticks again and steps down
// (CheckQuorum).
func (n *Node) quiescedStillValid(p *partition) bool {
	if !p.rep.IsLeader() {
		return p.rep.Leader() != 0 && n.peerAlive(p.rep.Leader())
	}
	alive := 0
	for _, r := range p.replicas {
		if n.peerAlive(RaftID(r)) {
			alive++
		}
	}
	return alive > len(p.replicas)/2
}

// preferredCampaignTicks: a new partition's preferred leader campaigns at the 1st, 3rd
// and 5th tick after it is created, while no leader is known.
const preferredCampaignTicks = 6

// touch queues p's replica for the next Ready.
func (cl *clusterState) touch(p *partition) {
	if p == nil {
		cl.metaTouched = true
		return
	}
	if !p.touched && p.rep != nil {
		p.touched = true
		cl.touched = append(cl.touched, p)
	}
}

// Step hands a Raft message from a peer to its group. Messages for a group this node does
// not host (yet: its metadata may lag) are dropped; Raft sends them again.
func (n *Node) Step(group uint64, m pb.Message) {
	cl := n.cl
	if cl == nil || m.To != cl.me {
		return
	}
	if _, ok := cl.lastHeardMs[m.From]; ok {
		cl.lastHeardMs[m.From] = n.nowMs
	}
	if group == LivenessGroup {
		if old, ok := cl.peerIncarnation[m.From]; ok && old != m.Term {
			n.peerRestarted(m.From)
		}
		cl.peerIncarnation[m.From] = m.Term
		return
	}
	if group == WakeGroup {
		// A peer's replica of group m.Commit failed: stop waiting on it quietly.
		if p := cl.groups[m.Commit]; p != nil {
			p.quiet, p.quiesced = 0, false
		}
		return
	}
	if group == MetadataGroup {
		if cl.meta.Step(m) == nil {
			cl.metaTouched = true
		}
		return
	}
	p := cl.groups[group]
	if p == nil || p.rep == nil || p.deleted {
		return
	}
	if !(p.leading && m.Type == pb.MsgHeartbeatResp) {
		// News for the group: it ticks again. A leader's heartbeat answers are not news.
		p.quiet, p.quiesced = 0, false
	}
	switch m.Type {
	case pb.MsgPreVote, pb.MsgVote, pb.MsgPreVoteResp, pb.MsgVoteResp, pb.MsgTimeoutNow:
		// An election is on: stay awake long enough for it to finish, even if the old
		// leader's node looks alive (it may have restarted and lost its leadership).
		p.awakeUntilTick = cl.tickCount + uint64(2*cl.electionTicks)
	}
	p.rep.SetClock(n.nowMs)
	if err := p.rep.Step(m); err != nil && p.rep.Err() != nil {
		p.fail(p.rep.Err())
	}
	cl.touch(p)
}

// Unreachable reports that messages to the node with Raft id to could not be sent.
func (n *Node) Unreachable(to uint64) {
	cl := n.cl
	if cl == nil {
		return
	}
	cl.meta.ReportUnreachable(to)
	cl.metaTouched = true
	for _, p := range cl.hosted() {
		p.rep.ReportUnreachable(to)
		cl.touch(p)
	}
}

// errMissing is the error for a topic or partition this node does not know:
// UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER (retriable, the client refreshes
// its metadata) while a restarted node is catching up with the metadata group.
func (n *Node) errMissing() error {
	if n.cl != nil && !n.cl.metaReady {
		return fmt.Errorf("%w: this node is catching up with the cluster's metadata", errNotLeader)
	}
	return errUnknownTopic
}

// hosted is the hosted partitions in group id order, dropping deleted ones from order.
func (cl *clusterState) hosted() []*partition {
	kept := cl.order[:0]
	for _, p := range cl.order {
		if !p.deleted && p.rep != nil {
			kept = append(kept, p)
		}
	}
	clear(cl.order[len(kept):])
	cl.order = kept
	return kept
}

// tickCluster ticks every group when a Raft tick is due.
func (n *Node) tickCluster() {
	cl := n.cl
	if n.nowMs < cl.nextTickMs {
		return
	}
	// One tick however late the call: a paused process must not fire many elections'
	// worth of ticks at once.
	cl.nextTickMs = max(cl.nextTickMs+n.cfg.RaftTickMs, n.nowMs+1)
	cl.tickCount++
	if cl.tickCount%hintEveryTicks == 1 && cl.meta.Leader() != 0 {
		if me := n.registration(); cl.registered[me.ID] != me {
			_ = n.proposeMeta(&metaCommand{RegisterBroker: &me}, nil)
		}
	}
	for _, peer := range cl.peers {
		if id := RaftID(peer.ID); id != cl.me {
			cl.out = append(cl.out, PeerMessage{To: id, Group: LivenessGroup, Msg: pb.Message{Type: pb.MsgHeartbeat, From: cl.me, To: id, Term: cl.incarnation}})
		}
	}
	cl.meta.Tick(n.nowMs)
	cl.metaTouched = true
	for _, peer := range cl.peers {
		cl.alive[RaftID(peer.ID)] = n.peerAliveNow(RaftID(peer.ID))
	}
	transfers := 0
	rebalance := cl.tickCount%rebalanceEveryTicks == 0
	for _, p := range cl.hosted() {
		if p.failed != nil {
			if cl.tickCount%hintEveryTicks == 1 {
				n.wakePeers(p)
			}
			continue
		}
		// A transfer wakes p: leaders quiesce, and this is when idle ones hand over.
		if rebalance && transfers < maxTransfersPerRebalance && n.transferToPreferred(p) {
			transfers++
		}
		if p.quiesced {
			if n.quiescedStillValid(p) {
				continue
			}
			p.quiesced, p.quiet = false, 0
		}
		// Settled is judged on the state the last Ready left, before this tick's
		// heartbeats.
		if p.rep.Settled() && n.quiescedStillValid(p) && cl.tickCount >= p.awakeUntilTick {
			p.quiet++
			if p.quiet >= quiesceTicks {
				p.quiesced = true
				p.rep.Quiesce()
				continue
			}
		} else {
			p.quiet = 0
		}
		p.rep.Tick(n.nowMs)
		if p.leading && cl.tickCount%hintEveryTicks == 0 && p.needsHint(n) {
			n.proposeLeaderHint(p)
		}
		if p.campaignTicks > 0 {
			p.campaignTicks--
			if p.campaignTicks%2 == 1 && p.rep.Leader() == 0 {
				_ = p.rep.Campaign() // a failed replica reports itself in Ready
			}
		}
		cl.touch(p)
	}
	n.expireMetaWaits()
}

// readyCluster drains every touched replica: messages out, sync jobs, proposal outcomes,
// high watermark and leadership changes. Applying metadata may open replicas, which are
// drained in the same call.
func (n *Node) readyCluster() {
	cl := n.cl
	n.openPending()
	for round := 0; round < 16 && (cl.metaTouched || len(cl.touched) > 0); round++ {
		if cl.metaTouched {
			cl.metaTouched = false
			rd := cl.meta.Ready()
			n.sendAll(MetadataGroup, rd.Messages)
			if !cl.metaReady && cl.meta.CaughtUp() {
				cl.metaReady = true
			}
			if !cl.metaReady && cl.meta.CatchUp() {
				cl.metaTouched = true // the request goes out with the next Ready
			}
			if rd.Sync != nil {
				n.syncs = append(n.syncs, SyncTask{rjob: rd.Sync, rep: cl.meta})
			}
		}
		touched := cl.touched
		cl.touched = nil
		for _, p := range touched {
			p.touched = false
			if p.deleted || p.rep == nil {
				continue
			}
			n.readyPartition(p)
		}
	}
}

func (n *Node) sendAll(group uint64, msgs []pb.Message) {
	for _, m := range msgs {
		n.cl.out = append(n.cl.out, PeerMessage{To: m.To, Group: group, Msg: m})
	}
}

// registration is this node's broker registration as configured.
func (n *Node) registration() metaBroker {
	return metaBroker{ID: n.cfg.NodeID, Host: n.cfg.Host, Port: n.cfg.Port, Rack: n.cfg.Rack}
}

// broker is how node id is advertised: its applied registration, or the configured peer
// before it registered.
func (cl *clusterState) broker(id int32) metaBroker {
	if b, ok := cl.registered[id]; ok {
		return b
	}
	p, _ := cl.peerByID(id)
	return metaBroker{ID: p.ID, Host: p.Host, Port: p.Port}
}

// peerByID is the configured peer with Kafka node id id.
func (cl *clusterState) peerByID(id int32) (Peer, bool) {
	for _, p := range cl.peers {
		if p.ID == id {
			return p, true
		}
	}
	return Peer{}, false
}
