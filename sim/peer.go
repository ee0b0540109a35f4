package sim

import (
	"math/rand/v2"

	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/kafka"
)

// The peer network (cluster mode): Raft messages between nodes travel as Go values on
// one ordered link per pair of nodes and direction, with that link's latency and jitter,
// the occasional retransmission delay, the latency spikes of FaultDelay, random drops
// (FaultPeerDrop) and cuts (FaultIsolate, FaultSplit, FaultPeerOneWay). A message a
// link cannot carry is dropped and its sender told with Node.Unreachable a moment later,
// as a transport notices a broken connection. A node's crash resets its links: what was
// in flight to or from it is lost, as with TCP. A paused node's kernel buffers what
// arrives; the loop steps it on resume.

// peerMsg is one Raft message in flight.
type peerMsg struct {
	at  int64
	msg kafka.PeerMessage
}

// peerLink carries messages from one node to another, in order.
type peerLink struct {
	from, to int
	rng      *rand.Rand
	baseUs   int64 // one-way latency
	// q holds the messages in flight, sorted by at, each with one evPeer of this epoch.
	q      []peerMsg
	head   int
	lastAt int64
	epoch  uint64 // bumps on reset, voiding the deliveries of what it dropped
}

// peerCut drops messages between nodes: from a to b (and b to a when both); a node of
// -1 stands for every node other than the other end (isolation).
type peerCut struct {
	a, b    int
	both    bool
	untilUs int64
}

// maxPeerInbox bounds what a paused node's kernel buffers; beyond it messages drop.
const maxPeerInbox = 100_000

func (s *Sim) newPeerLinks() {
	n := len(s.nodes)
	s.plinks = make([]*peerLink, n*n)
	for from := range n {
		for to := range n {
			if from == to {
				continue
			}
			l := &peerLink{from: from, to: to, rng: newRand(s.cfg.Seed, streamPeer, uint64(from*n+to))}
			l.baseUs = between(l.rng, 100, 600)
			s.plinks[from*n+to] = l
		}
	}
}

func (s *Sim) plink(from, to int) *peerLink { return s.plinks[from*len(s.nodes)+to] }

// peerCutOff reports whether a cut drops messages from node a to node b now.
func (s *Sim) peerCutOff(a, b int) bool {
	for _, c := range s.peerCuts {
		if c.untilUs <= s.now {
			continue
		}
		match := func(x, y int) bool {
			return (x == a || (x == -1 && y != a)) && (y == b || (y == -1 && x != b))
		}
		if match(c.a, c.b) || (c.both && match(c.b, c.a)) {
			return true
		}
	}
	return false
}

// sendPeers puts a node's Ready messages on the wire.
func (n *simNode) sendPeers(msgs []kafka.PeerMessage) {
	s := n.s
	unreachable := uint64(0) // bit per node index
	for _, m := range msgs {
		s.oracle.sent(n, m)
		to := int(kafka.NodeOfRaftID(m.To))
		if to < 0 || to >= len(s.nodes) || to == n.idx {
			continue
		}
		l := s.plink(n.idx, to)
		drop := s.peerCutOff(n.idx, to) || (s.now < s.peerDropUntil && l.rng.Float64() < s.peerDropProb)
		if drop {
			unreachable |= 1 << uint(to)
			s.tr.line(s.now, n.who, "peer-drop").i("to", int64(to)).i("g", int64(m.Group)).s("t", m.Msg.Type.String()).end()
			continue
		}
		at := s.now + l.latency(s)
		at = max(at, l.lastAt)
		l.lastAt = at
		l.q = append(l.q, peerMsg{at: at, msg: m})
		s.push(event{at: at, kind: evPeer, idx: int32(n.idx*len(s.nodes) + to), gen: l.epoch})
	}
	for to := range s.nodes {
		if unreachable&(1<<uint(to)) != 0 {
			s.after(peerNoticeUs, event{kind: evUnreachable, node: int32(n.idx), gen: n.gen, token: kafka.RaftID(int32(to))})
		}
	}
}

// peerNoticeUs is how long a transport takes to notice it could not send.
const peerNoticeUs = 1000

func (l *peerLink) latency(s *Sim) int64 {
	d := l.baseUs + l.rng.Int64N(200)
	if l.rng.IntN(50) == 0 {
		d += between(l.rng, 1000, 20000) // an occasional retransmission
	}
	if s.now < s.spikeUntil {
		d += s.spikeExtraUs
	}
	return d
}

// reset drops what the link holds.
func (l *peerLink) reset() {
	l.epoch++
	clear(l.q)
	l.q, l.head, l.lastAt = l.q[:0], 0, 0
}

// deliverPeer hands the head message of a link to its receiver.
func (s *Sim) deliverPeer(ev event) {
	l := s.plinks[ev.idx]
	if ev.gen != l.epoch {
		return
	}
	m := l.q[l.head]
	l.q[l.head] = peerMsg{}
	l.head++
	if l.head == len(l.q) {
		l.q, l.head = l.q[:0], 0
	}
	n := s.nodes[l.to]
	if !n.up() {
		return
	}
	if n.paused {
		if len(n.peerInbox) < maxPeerInbox {
			n.peerInbox = append(n.peerInbox, m.msg)
		}
		return
	}
	n.begin()
	n.step(m.msg)
	n.flush()
}

// step hands one peer message to the node.
func (n *simNode) step(m kafka.PeerMessage) {
	n.s.tr.line(n.s.now, n.who, "peer-recv").i("from", int64(kafka.NodeOfRaftID(m.Msg.From))).
		i("g", int64(m.Group)).s("t", m.Msg.Type.String()).i("term", int64(m.Msg.Term)).end()
	n.node.Step(m.Group, m.Msg)
}

// onUnreachable tells a node a message to another could not be sent.
func (n *simNode) onUnreachable(ev event) {
	if ev.gen != n.gen || !n.up() || n.paused {
		return
	}
	n.begin()
	n.node.Unreachable(ev.token)
	n.flush()
}

// resetPeerLinks drops everything in flight to and from node idx (it crashed).
func (s *Sim) resetPeerLinks(idx int) {
	for _, l := range s.plinks {
		if l != nil && (l.from == idx || l.to == idx) {
			l.reset()
		}
	}
}

// leaderMsg reports whether only a leader sends messages of type t.
func leaderMsg(t pb.MessageType) bool {
	switch t {
	case pb.MsgApp, pb.MsgHeartbeat, pb.MsgSnap, pb.MsgTimeoutNow:
		return true
	}
	return false
}
