package kafka

// Replicated partitions (cluster mode): the partition log is the Raft log of its replicas
// (core/replica), docs/replication.md. Only the leader serves produce and fetch; others
// answer NOT_LEADER_OR_FOLLOWER, and Metadata names the leader.
//
// Produce on the leader proposes the batch and writes it to the local log at once
// (Replica.ProposeWrite), so its offsets are known and the producer view (committed state
// plus the uncommitted tail, core/producer.Pending) holds it before the next request: two
// in-flight retries of one batch are caught. acks=1 is answered when the entry is durable
// here; acks=all when it is committed (a quorum, this node included, fsynced it), with
// min.insync.replicas checked before proposing. A proposal whose leader lost its term is
// NOT_LEADER_OR_FOLLOWER: its outcome is unknown, and the client's idempotent retry to
// the new leader is deduplicated there (every replica folds the same batches into its
// producer state).
//
// The high watermark is the end of the committed entries this node has durably; fetch
// serves below it.

import (
	"fmt"

	"chronik/core/producer"
	"chronik/core/record"
	"chronik/core/replica"
)

// leaderEpoch is the partition's leader epoch as this node knows it: the Raft term.
func (p *partition) leaderEpoch() int32 {
	if p.rep == nil {
		return leaderEpoch
	}
	return int32(p.rep.Term())
}

// leaderNode is the node id of the partition's leader as this node knows it, -1 when it
// knows none.
func (p *partition) leaderNode() int32 {
	if p.rep == nil {
		return -1
	}
	l := p.rep.Leader()
	if l == 0 || p.failed != nil && p.rep.IsLeader() {
		return -1 // none known, or this node, whose replica failed
	}
	return NodeOfRaftID(l)
}

// checkLeader is the precondition of serving a replicated partition's clients.
func (p *partition) checkLeader() error {
	switch {
	case p.rep == nil && p.failed != nil:
		return p.failed
	case p.rep == nil:
		return fmt.Errorf("%w: node does not host %s-%d", errNotLeader, p.topic.name, p.index)
	case !p.rep.IsLeader():
		return fmt.Errorf("%w: %s-%d", errNotLeader, p.topic.name, p.index)
	}
	return nil
}

// produceReplicated proposes one partition's batch on the leader.
func (n *Node) produceReplicated(p *partition, acks int16, batch []byte, h record.Header) (written, error) {
	if err := p.checkLeader(); err != nil {
		return written{}, err
	}
	if acks == -1 && p.rep.InSyncReplicas() < int(p.topic.config.MinInsyncReplicas) {
		return written{}, fmt.Errorf("%w: %d in sync, min.insync.replicas is %d", errNotEnoughISR, p.rep.InSyncReplicas(), p.topic.config.MinInsyncReplicas)
	}
	if h.Idempotent() && h.BaseSequence != 0 && !p.pend.View().Known(h.ProducerID) {
		// Kafka takes any first sequence from an unknown producer (its state may have
		// expired). Here the state is a function of the log, so an unknown producer is a
		// new one, and a nonzero first sequence means earlier batches of its pipeline were
		// refused (a leader change split it): taking this one would reorder them. The
		// client resends it after the earlier ones.
		return written{}, fmt.Errorf("%w: producer %d is new here, its first batch must have sequence 0, not %d", producer.ErrOutOfOrder, h.ProducerID, h.BaseSequence)
	}
	dup, err := p.pend.Check(h)
	if err != nil {
		return written{}, err
	}
	if dup != nil {
		if dup.LastOffset < p.pend.CommitOffset() {
			return written{p: p, base: dup.FirstOffset, end: dup.LastOffset + 1}, nil
		}
		// The original is in this leader's log but not committed: a leader never cuts its
		// own log in its term, so the retry is answered with the original's offsets once
		// they commit (or NOT_LEADER_OR_FOLLOWER if this node stops leading first).
		return written{p: p, base: dup.FirstOffset, end: dup.LastOffset + 1, waitCommit: true}, nil
	}
	n.cl.nextToken++
	tok := n.cl.nextToken
	p.quiet, p.quiesced = 0, false
	p.rep.SetClock(n.nowMs)
	need := 0
	if acks == -1 {
		// acks=all: answered once min.insync.replicas replicas have the batch durably
		// (the commit index already says so for up to a quorum of them).
		need = int(p.topic.config.MinInsyncReplicas)
	}
	base, last, err := p.rep.ProposeWriteAcks(tok, batch, need)
	n.cl.touch(p)
	if err != nil {
		if p.rep.Err() != nil {
			p.fail(p.rep.Err())
		}
		return written{}, err
	}
	return written{p: p, base: base, end: last + 1, token: tok}, nil
}

// readyPartition drains p's replica.
func (n *Node) readyPartition(p *partition) {
	rd := p.rep.Ready()
	n.sendAll(p.group, rd.Messages)
	if rd.Sync != nil {
		p.repSyncing = true
		n.syncs = append(n.syncs, SyncTask{rjob: rd.Sync, rep: p.rep, p: p})
	}
	for _, o := range rd.Durable {
		p.settle(n, o, 1)
	}
	for _, o := range rd.Committed {
		p.settle(n, o, -1)
	}
	if err := p.rep.Err(); err != nil && p.failed == nil {
		p.fail(err)
		n.wakePeers(p)
		p.failWaiters(n, errCodeOf(err))
		n.groupsFailed(p)
		n.leadershipChanged(p, false, p.term)
		return
	}
	if leading, term := p.rep.IsLeader(), p.rep.Term(); leading != p.leading || term != p.term {
		n.leadershipChanged(p, leading, term)
	}
	if rd.HighWatermark != p.hw {
		p.hw = rd.HighWatermark
		p.pend.Commit(p.hw)
		p.releaseRetries(n)
		n.groupsDurable(p)
		n.wakeParked(p)
	}
	n.groupsMaybeLoad(p)
}

// settle answers the produce waiting for proposal o: acks is 1 for the Durable outcome,
// -1 for the Committed one. Outcomes of proposals nobody waits for are ignored.
func (p *partition) settle(n *Node, o replica.Outcome, acks int16) {
	for i, w := range p.waiters {
		if w.token != o.Token || (w.acks != acks && !(bugAcksAllOnDurable && acks == 1)) { // planted bug: chronikbugs only
			continue
		}
		copy(p.waiters[i:], p.waiters[i+1:])
		p.waiters[len(p.waiters)-1] = produceWaiter{}
		p.waiters = p.waiters[:len(p.waiters)-1]
		if o.Err != nil {
			rp := &w.pp.resp.Topics[w.ti].Partitions[w.pi]
			rp.ErrorCode, rp.BaseOffset = errCodeOf(o.Err), -1
		}
		w.pp.done(n)
		return
	}
}

// leadershipChanged notes that p's replica started or stopped leading, or moved to a new
// term.
func (n *Node) leadershipChanged(p *partition, leading bool, term uint64) {
	was := p.leading
	if was != leading {
		n.leadershipChanges++
	}
	p.leading, p.term = leading, term
	if leading {
		p.leadEnd = p.log.EndOffset()
		if p.needsHint(n) {
			n.proposeLeaderHint(p)
		}
	}
	if was {
		p.failRetries(n)
		n.groupsLostLeadership(p)
		// Parked fetches for p are answered now: their next fetch goes to the new leader.
		n.wakeParked(p)
	}
}

// releaseRetries answers the retried batches whose originals are now committed.
func (p *partition) releaseRetries(n *Node) {
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.commitTerm != 0 && w.commitTerm == p.term && p.leading && w.end <= p.hw {
			w.pp.done(n)
			continue
		}
		kept = append(kept, w)
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
}

// failRetries answers NOT_LEADER_OR_FOLLOWER to the retried batches still waiting for
// their originals to commit: this node stopped leading, and the outcome is unknown.
func (p *partition) failRetries(n *Node) {
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.commitTerm == 0 {
			kept = append(kept, w)
			continue
		}
		rp := &w.pp.resp.Topics[w.ti].Partitions[w.pi]
		rp.ErrorCode, rp.BaseOffset = errCodeOf(errNotLeader), -1
		w.pp.done(n)
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
}

// replicaSyncDone reports a replica's SyncJob.
func (n *Node) replicaSyncDone(t SyncTask, err error) {
	t.rep.SyncDone(t.rjob, err)
	p := t.p
	if p == nil {
		n.cl.metaTouched = true
		return
	}
	p.repSyncing = false
	if p.deleted {
		if cerr := p.rep.Close(); cerr != nil {
			p.fail(cerr)
		}
		return
	}
	n.cl.touch(p)
}

// raftControl reports whether a stored batch is Raft's, not a client's (dropRaftBatches).
func raftControl(h record.Header) bool { return h.Control() && !h.Transactional() }

// noteWritten follows the run of Raft control batches at the end of p's log.
func (p *partition) noteWritten(h record.Header) {
	switch {
	case !raftControl(h):
		p.ctrlRunStart = -1
	case p.ctrlRunStart < 0:
		p.ctrlRunStart = h.BaseOffset
	}
}

// maxRaftBatchSkips bounds the reads dropRaftBatches makes past batches it dropped.
const maxRaftBatchSkips = 4

// dropRaftBatches removes from data, a read of p's log, the control batches Raft wrote
// (a new leader's empty entry, conf changes: docs/replication.md, "One entry, one
// batch"). They are not Kafka's: Kafka's partitions hold control batches only for
// transactions, and some clients (kafka-go's Reader) hand any control record to the
// application. Clients never write control batches (Propose refuses them), so a
// non-transactional control batch in a replicated log is Raft's. The offsets they take
// stay as gaps, as compaction leaves. When everything read was dropped and the log goes
// on below the limit, it reads on, so that the client's next fetch offset moves.
func (n *Node) dropRaftBatches(p *partition, data []byte, maxBytes int, limit int64) ([]byte, error) {
	for range maxRaftBatchSkips {
		kept, next, err := dropRaftControl(data)
		if err != nil || len(kept) > 0 || len(data) == 0 || next >= limit {
			return kept, err
		}
		if data, err = p.log.Read(next, maxBytes, limit); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// dropRaftControl compacts data in place without Raft's control batches, and returns the
// offset after the last batch it read.
func dropRaftControl(data []byte) (kept []byte, next int64, err error) {
	out := 0
	err = record.Split(data, func(b []byte, h record.Header) bool {
		next = h.LastOffset() + 1
		if raftControl(h) {
			return true
		}
		// b aliases data at or after out, so the copy (a memmove) never overwrites a batch
		// not read yet.
		out += copy(data[out:], b)
		return true
	})
	return data[:out], next, err
}
