// Package producer keeps the idempotent-producer state of one partition: for each producer
// id, its epoch, the timestamp of its last batch, and the sequence ranges and offsets of its
// last MaxCachedBatches batches, so that a retried batch is answered with its original
// offsets instead of being written twice (KIP-98, KIP-360).
//
// The state is a pure function of the batches appended to the log, in log order: Append and
// ExpireBefore are its only transitions (UnmarshalBinary replaces it whole), and neither
// reads a clock. Replicas that fold
// the same batches (and expire at the same log timestamps) hold equal states, and equal
// states encode to equal bytes (MarshalBinary).
//
// A single node uses one State:
//
//  1. On open, rebuild it by replaying the log's batch headers through Append (or, see
//     "Checkpoints" below, decode a checkpoint and replay only the headers after it).
//  2. Before appending a produced batch, Check it: append it, answer a duplicate with its
//     original offsets, or reject it.
//  3. After the log has assigned its offsets, Append its header as the log holds it:
//     BaseOffset set to the first offset assigned, and MaxTimestamp the time the log wrote
//     (a LogAppendTime batch's stamped time), or the state rebuilt at open differs.
//
// A replica uses a Pending (pending.go): a committed State that never rolls back plus the
// batches appended to the log but not yet committed, which a follower truncation discards.
//
// # Bounds
//
// Per producer, MaxCachedBatches batches. Per partition, MaxProducers producers: Append of a
// new producer id beyond it evicts the producer whose last batch is oldest (see MaxProducers).
// ExpireBefore removes producers idle in log time (Kafka's producer.id.expiration.ms,
// DefaultExpirationMs); the caller picks the cut-off from the log, never from a clock.
//
// # Checkpoints (design, not implemented)
//
// Replaying every batch header at open is O(log size). A checkpoint bounds it, as Kafka's
// per-segment <offset>.snapshot files do:
//
//  1. When a segment is sealed (or every N bytes), the partition writes a file
//     producer-<end>.checkpoint holding end (the offset after the last batch folded) and
//     the bytes of MarshalBinary of the state at end, and syncs it with the segment.
//     For a replicated partition only committed state is checkpointed (end <= commit).
//  2. Open picks the newest checkpoint whose end is <= the log end and >= the log start,
//     decodes it (a corrupt one is skipped: ErrCorrupt, take the previous), and replays
//     headers from end. With none, it replays from the log start, as today.
//  3. Truncation below a checkpoint's end deletes that checkpoint; retention deletes
//     checkpoints below the new log start except the newest one at or below it, which is
//     the producer snapshot a Raft snapshot carries.
//  4. Keep that one and the newest two above it; a checkpoint is an optimisation, never
//     the only copy of a fact (the log still holds every header above the log start).
//
// The state's bytes do not record their offset; the file (or Raft snapshot) frames it.
package producer

import (
	"container/heap"
	"errors"
	"sort"

	"chronik/core/record"
)

// MaxCachedBatches is how many recent batches per producer are remembered for duplicate
// detection; Kafka clients keep at most five batches in flight per partition.
const MaxCachedBatches = 5

// MaxProducers bounds the producer ids one partition tracks. Kafka sets no such bound: its
// producer state grows until producer.id.expiration.ms removes idle ids, and a burst of
// short-lived producers can exhaust a broker's memory (KIP-936 proposes throttling the
// creation of ids per principal instead). Chronik bounds it here: appending a batch of a new producer
// id when MaxProducers are tracked first evicts the producer whose last batch has the
// smallest MaxTimestamp (the smaller id on a tie), as expiry would have done first. The
// evicted producer is then unknown: its next batch is accepted at any sequence, so a retry
// of its last batch could be written twice. At about 200 bytes per producer the bound is
// ~2 MiB per partition. Every replica must use the same bound, or their states diverge.
const MaxProducers = 10_000

// DefaultExpirationMs is Kafka's default producer.id.expiration.ms (one day): a producer
// whose last batch is older than this, in log time, may be forgotten (ExpireBefore).
const DefaultExpirationMs = 24 * 60 * 60 * 1000

// Errors Check returns; the broker maps them to Kafka codes.
var (
	// ErrOutOfOrder is OUT_OF_ORDER_SEQUENCE_NUMBER: the batch's sequence does not follow
	// the last one written, and it is not a duplicate of a remembered batch.
	ErrOutOfOrder = errors.New("producer: out of order sequence")
	// ErrFenced is INVALID_PRODUCER_EPOCH: the batch's epoch is older than the producer's.
	ErrFenced = errors.New("producer: stale producer epoch")
)

type batch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

type entry struct {
	id    int64
	epoch int16
	// lastTimestamp is the MaxTimestamp (ms) of the last batch appended, in log time.
	lastTimestamp int64
	// batches is a ring of the last batches written, oldest first.
	// Invariant: 1 <= len(batches) <= MaxCachedBatches.
	batches []batch
	// age is the entry's index in State.byAge.
	age int
}

// State is one partition's producer state. The zero value is not usable; call New.
type State struct {
	byID map[int64]*entry
	// byAge holds the entries of byID as a min-heap ordered by (lastTimestamp, id), so that
	// eviction and expiry find the oldest producer without a scan.
	// Invariant: len(byAge) == len(byID); byAge[e.age] == e for every e in byID.
	byAge ageHeap
	// maxProducers is MaxProducers except in tests.
	// Invariant: len(byID) <= maxProducers.
	maxProducers int
}

// New returns an empty State.
func New() *State { return newLimited(MaxProducers) }

func newLimited(maxProducers int) *State {
	if maxProducers < 1 {
		panic("producer: maxProducers < 1")
	}
	return &State{byID: make(map[int64]*entry), maxProducers: maxProducers}
}

// Len is the number of producer ids tracked.
func (s *State) Len() int { return len(s.byID) }

// Known reports whether the state holds producer id pid.
func (s *State) Known(pid int64) bool {
	_, ok := s.byID[pid]
	return ok
}

// Clone returns a deep copy of s; the two share nothing.
func (s *State) Clone() *State {
	c := newLimited(s.maxProducers)
	c.byAge = make(ageHeap, len(s.byAge))
	for i, e := range s.byAge {
		ce := e.clone()
		c.byAge[i] = ce
		c.byID[ce.id] = ce
	}
	return c
}

func (e *entry) clone() *entry {
	c := *e
	c.batches = make([]batch, len(e.batches), MaxCachedBatches)
	copy(c.batches, e.batches)
	return &c
}

// Duplicate describes the original write of a retried batch.
type Duplicate struct {
	FirstOffset, LastOffset int64
}

// Check decides what to do with an idempotent batch before it is appended: nil, nil means
// append it; a non-nil Duplicate means answer with the original offsets and append
// nothing; an error means reject it. Batches without a producer id are always appended.
func (s *State) Check(h record.Header) (*Duplicate, error) {
	if !h.Idempotent() {
		return nil, nil
	}
	e, ok := s.byID[h.ProducerID]
	if !ok {
		// Unknown producer (new, or its state was lost to retention or expiry): Kafka
		// accepts any sequence here.
		return nil, nil
	}
	if h.ProducerEpoch < e.epoch {
		return nil, ErrFenced
	}
	if h.ProducerEpoch > e.epoch {
		if h.BaseSequence != 0 {
			return nil, ErrOutOfOrder
		}
		return nil, nil
	}
	lastSeq := lastSequence(h)
	for _, b := range e.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == lastSeq {
			return &Duplicate{FirstOffset: b.firstOffset, LastOffset: b.lastOffset}, nil
		}
	}
	if h.BaseSequence != nextSequence(e.batches[len(e.batches)-1].lastSeq) {
		return nil, ErrOutOfOrder
	}
	return nil, nil
}

// Append records a batch that was written at offsets [h.BaseOffset, h.LastOffset()] with
// h.MaxTimestamp as its timestamp. The caller has checked it with Check (or is replaying the
// log, where every batch is taken as written). A new producer id beyond MaxProducers evicts
// the producer with the oldest last batch.
func (s *State) Append(h record.Header) {
	if !h.Idempotent() {
		return
	}
	e, ok := s.byID[h.ProducerID]
	switch {
	case !ok:
		if len(s.byID) >= s.maxProducers {
			s.evictOldest()
		}
		e = &entry{id: h.ProducerID, epoch: h.ProducerEpoch, lastTimestamp: h.MaxTimestamp, batches: make([]batch, 0, MaxCachedBatches)}
		s.byID[h.ProducerID] = e
		heap.Push(&s.byAge, e)
	case h.ProducerEpoch > e.epoch:
		e.epoch, e.batches = h.ProducerEpoch, e.batches[:0]
	}
	if len(e.batches) == MaxCachedBatches {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:MaxCachedBatches-1]
	}
	e.batches = append(e.batches, batch{
		firstSeq:    h.BaseSequence,
		lastSeq:     lastSequence(h),
		firstOffset: h.BaseOffset,
		lastOffset:  h.LastOffset(),
	})
	if e.lastTimestamp != h.MaxTimestamp {
		e.lastTimestamp = h.MaxTimestamp
		heap.Fix(&s.byAge, e.age)
	}
}

// Producer is one producer's state, for inspection and tests.
type Producer struct {
	ID      int64
	Epoch   int16
	LastSeq int32
	// LastTimestamp is the MaxTimestamp of the producer's last batch, ms since the epoch.
	LastTimestamp int64
}

// Producers lists the tracked producers sorted by id.
func (s *State) Producers() []Producer {
	out := make([]Producer, 0, len(s.byID))
	for _, id := range s.sortedIDs() {
		e := s.byID[id]
		out = append(out, Producer{ID: id, Epoch: e.epoch, LastSeq: e.batches[len(e.batches)-1].lastSeq, LastTimestamp: e.lastTimestamp})
	}
	return out
}

func (s *State) sortedIDs() []int64 {
	ids := make([]int64, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// lastSequence is the sequence of the batch's last record; sequences wrap at MaxInt32.
func lastSequence(h record.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (1 << 31))
}

func nextSequence(seq int32) int32 {
	if seq == 1<<31-1 {
		return 0
	}
	return seq + 1
}
