package producer

import (
	"fmt"

	"chronik/core/record"
)

// Pending is a replica's producer state, split as docs/replication.md ("Idempotent
// producers as replicated state") needs: the committed State, folded over committed batches
// only, which never rolls back; and the view, the committed state plus the batches appended
// to the log above the commit point, which a leader checks produce requests against so that
// two in-flight retries of one batch are caught.
//
// The caller, for every partition log entry in offset order:
//
//  1. Appends the batch's header once the log holds it (leader: after proposing it;
//     follower: after appending the leader's entries); Check before that on a leader.
//  2. Commits up to the commit point as it advances (raft's commit index, mapped to the
//     offset after the last committed batch).
//  3. Discards from the truncation offset when the log's uncommitted suffix is truncated
//     (a follower overwritten by a new leader); the view is then exactly the committed
//     state plus the retained batches.
//
// A Duplicate whose LastOffset is at or above CommitOffset names a batch not committed yet:
// answer the retry with it only once the commit point passes it, or with an error if it is
// discarded first.
//
// Memory: two States (committed and view) plus one record.Header per idempotent batch above
// the commit point; that tail is bounded by the replica's uncommitted log (raft's
// MaxUncommittedBytes on a leader, the leader's tail on a follower).
type Pending struct {
	committed *State
	view      *State
	// tail is the idempotent batches appended at or above commit, in offset order.
	// Invariant: commit <= tail[0].BaseOffset, tail[i].LastOffset() < tail[i+1].BaseOffset,
	// tail[len-1].LastOffset() < end.
	// Invariant: view equals committed with every tail batch appended, in order.
	tail []record.Header
	// commit is the offset after the last committed batch. Invariant: commit <= end.
	commit int64
	// end is the offset after the last batch appended.
	end int64
}

// NewPending returns a Pending whose committed state is committed, the fold of every batch
// below offset commit, with nothing above it. It takes ownership of committed.
func NewPending(committed *State, commit int64) *Pending {
	return &Pending{committed: committed, view: committed.Clone(), commit: commit, end: commit}
}

// Committed is the committed state, for a snapshot or a checkpoint at CommitOffset. It is
// owned by p: the caller must not modify it, and it changes on Commit and ExpireBefore.
func (p *Pending) Committed() *State { return p.committed }

// View is the committed state plus every batch appended above the commit point. It is owned
// by p: the caller must not modify it, nor keep it across a Discard or ExpireBefore, which
// replace it.
func (p *Pending) View() *State { return p.view }

// CommitOffset is the offset after the last committed batch.
func (p *Pending) CommitOffset() int64 { return p.commit }

// EndOffset is the offset after the last batch appended.
func (p *Pending) EndOffset() int64 { return p.end }

// Check is State.Check against the view.
func (p *Pending) Check(h record.Header) (*Duplicate, error) { return p.view.Check(h) }

// Append records a batch written at [h.BaseOffset, h.LastOffset()], which must be at or above
// EndOffset; it is uncommitted until Commit passes it.
func (p *Pending) Append(h record.Header) {
	if h.BaseOffset < p.end || h.LastOffset() < h.BaseOffset {
		panic(fmt.Sprintf("producer: append of [%d, %d] at end %d", h.BaseOffset, h.LastOffset(), p.end))
	}
	p.end = h.LastOffset() + 1
	if !h.Idempotent() {
		return
	}
	p.tail = append(p.tail, h)
	p.view.Append(h)
}

// Commit folds every appended batch below offset upTo into the committed state. upTo is at
// or above CommitOffset, at most EndOffset, and not inside a batch.
func (p *Pending) Commit(upTo int64) {
	if upTo < p.commit || upTo > p.end {
		panic(fmt.Sprintf("producer: commit to %d outside [%d, %d]", upTo, p.commit, p.end))
	}
	i := 0
	for ; i < len(p.tail) && p.tail[i].BaseOffset < upTo; i++ {
		if p.tail[i].LastOffset() >= upTo {
			panic(fmt.Sprintf("producer: commit to %d inside batch [%d, %d]", upTo, p.tail[i].BaseOffset, p.tail[i].LastOffset()))
		}
		p.committed.Append(p.tail[i])
	}
	p.tail = p.tail[:copy(p.tail, p.tail[i:])]
	p.commit = upTo
}

// Discard forgets every batch at or above offset from, as a log truncation to from does.
// from is at or above CommitOffset (committed batches are never truncated) and not inside
// a batch; at or above EndOffset it does nothing.
func (p *Pending) Discard(from int64) {
	if from < p.commit {
		panic(fmt.Sprintf("producer: discard from %d below commit %d", from, p.commit))
	}
	if from >= p.end {
		return
	}
	i := len(p.tail)
	for i > 0 && p.tail[i-1].BaseOffset >= from {
		i--
	}
	if i > 0 && p.tail[i-1].LastOffset() >= from {
		panic(fmt.Sprintf("producer: discard from %d inside batch [%d, %d]", from, p.tail[i-1].BaseOffset, p.tail[i-1].LastOffset()))
	}
	p.end = from
	if i == len(p.tail) {
		return // only batches without a producer id were truncated
	}
	p.tail = p.tail[:i]
	p.rebuildView()
}

// ExpireBefore is State.ExpireBefore on the committed state; the view is rebuilt from it so
// that it stays the committed state plus the tail. It returns how many committed producers
// were removed.
func (p *Pending) ExpireBefore(ts int64) int {
	n := p.committed.ExpireBefore(ts)
	if n > 0 {
		p.rebuildView()
	}
	return n
}

func (p *Pending) rebuildView() {
	p.view = p.committed.Clone()
	for _, h := range p.tail {
		p.view.Append(h)
	}
}
