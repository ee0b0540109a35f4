package sim

import (
	"strconv"
	"strings"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
)

// oracle watches the Raft messages every node sends (cluster mode) and knows from them,
// per node incarnation and Raft group, the highest term the node led (it sent MsgApp or
// a heartbeat in it), the highest term it is in (any message but a pre-vote carries its
// sender's term) and the highest term it pre-voted for (a pre-vote is sent by a follower
// only, for the term after its own). A node that answers a fetch successfully while it
// is in a term above the last one it led, or after pre-voting for one, knows it is not
// the leader: the read is a deposed leader's (check `deposed-read`); the broker decides
// at answer time, so every successful answer counts, with records or not. A leader that
// has not yet heard of a newer term may still serve (Raft's CheckQuorum steps it down
// within an election timeout); that is not flagged.
type oracle struct {
	s    *Sim
	led  []map[uint64]uint64 // per node: group -> highest term led
	term []map[uint64]uint64 // per node: group -> highest term sent in
	pre  []map[uint64]uint64 // per node: group -> highest term pre-voted for
	// groups maps the workload topic's partitions to their Raft groups, read from a
	// node's partition directories (<topic>-<partition>.g<group>) once they exist.
	groups []uint64
}

func newOracle(s *Sim) *oracle {
	o := &oracle{s: s}
	for range s.nodes {
		o.led = append(o.led, map[uint64]uint64{})
		o.term = append(o.term, map[uint64]uint64{})
		o.pre = append(o.pre, map[uint64]uint64{})
	}
	return o
}

// restarted forgets what node idx's previous incarnation sent.
func (o *oracle) restarted(idx int) {
	o.led[idx] = map[uint64]uint64{}
	o.term[idx] = map[uint64]uint64{}
	o.pre[idx] = map[uint64]uint64{}
}

// sent notes a message node n sends.
func (o *oracle) sent(n *simNode, m kafka.PeerMessage) {
	t, g := m.Msg.Type, m.Group
	switch t {
	case pb.MsgPreVote:
		o.pre[n.idx][g] = max(o.pre[n.idx][g], m.Msg.Term)
		return
	case pb.MsgPreVoteResp:
		return // it carries the term its asker would stand in, not its sender's
	}
	o.term[n.idx][g] = max(o.term[n.idx][g], m.Msg.Term)
	if leaderMsg(t) {
		o.led[n.idx][g] = max(o.led[n.idx][g], m.Msg.Term)
	}
}

// leaderOf is the node that led group g in the highest term any node led, -1 if none.
func (o *oracle) leaderOf(g uint64) int {
	best, who := uint64(0), -1
	for i := range o.led {
		if t := o.led[i][g]; t > best {
			best, who = t, i
		}
	}
	return who
}

// group is partition part's Raft group, 0 while unknown.
func (o *oracle) group(part int32) uint64 {
	if o.groups == nil {
		o.load()
	}
	if int(part) < len(o.groups) {
		return o.groups[part]
	}
	return 0
}

// load reads the partition directories of the workload topic from the nodes' disks.
func (o *oracle) load() {
	for _, n := range o.s.nodes {
		names, err := n.mem.List(n.cfg.DataDir)
		if err != nil {
			continue
		}
		groups := make([]uint64, o.s.cfg.Workload.Partitions)
		found := 0
		for _, name := range names {
			rest, ok := strings.CutPrefix(name, topicName+"-")
			if !ok {
				continue
			}
			ps, gs, ok := strings.Cut(rest, ".g")
			p, err1 := strconv.Atoi(ps)
			g, err2 := strconv.ParseUint(gs, 10, 64)
			if !ok || err1 != nil || err2 != nil || p < 0 || p >= len(groups) {
				continue
			}
			groups[p] = g
			found++
		}
		if found == len(groups) {
			o.groups = groups
			return
		}
	}
}

// answered checks a fetch answer node n is about to send.
func (o *oracle) answered(n *simNode, r *kmsg.FetchResponse) {
	for _, t := range r.Topics {
		if t.Topic != topicName {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				continue
			}
			g := o.group(p.Partition)
			if g == 0 {
				continue
			}
			led, term, pre := o.led[n.idx][g], o.term[n.idx][g], o.pre[n.idx][g]
			if led == 0 || led < term || led < pre {
				o.s.violate("deposed-read", p.Partition, "n%d served a fetch (%d bytes, high watermark %d) in term %d, pre-voting for %d, having led up to term %d",
					n.idx, len(p.RecordBatches), p.HighWatermark, term, pre, led)
			}
		}
	}
}
