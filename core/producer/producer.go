// Package producer keeps the idempotent-producer state of one partition: for each producer
// id, its epoch and the sequence ranges and offsets of its last MaxCachedBatches batches,
// so that a retried batch is answered with its original offsets instead of being written
// twice (KIP-98, KIP-360).
//
// The state is a pure function of the batches appended to the log: after a restart it is
// rebuilt by replaying the log's batch headers through Append.
package producer

import (
	"errors"
	"sort"

	"chronik/core/record"
)

// MaxCachedBatches is how many recent batches per producer are remembered for duplicate
// detection; Kafka clients keep at most five batches in flight per partition.
const MaxCachedBatches = 5

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
	epoch int16
	// batches is a ring of the last batches written, oldest first.
	// Invariant: len(batches) <= MaxCachedBatches.
	batches []batch
}

// State is one partition's producer state. The zero value is not usable; call New.
type State struct {
	byID map[int64]*entry
}

// New returns an empty State.
func New() *State { return &State{byID: make(map[int64]*entry)} }

// Len is the number of producer ids tracked.
func (s *State) Len() int { return len(s.byID) }

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
		// Unknown producer (new, or its state was lost to retention): Kafka accepts any
		// sequence here.
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
	if len(e.batches) == 0 {
		return nil, nil
	}
	if h.BaseSequence != nextSequence(e.batches[len(e.batches)-1].lastSeq) {
		return nil, ErrOutOfOrder
	}
	return nil, nil
}

// Append records a batch that was written at offsets [h.BaseOffset, h.LastOffset()]. The
// caller has checked it with Check (or is replaying the log, where every batch is taken as
// written).
func (s *State) Append(h record.Header) {
	if !h.Idempotent() {
		return
	}
	e, ok := s.byID[h.ProducerID]
	if !ok || h.ProducerEpoch > e.epoch {
		e = &entry{epoch: h.ProducerEpoch, batches: make([]batch, 0, MaxCachedBatches)}
		s.byID[h.ProducerID] = e
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
}

// Producer is one producer's state, for inspection and tests.
type Producer struct {
	ID      int64
	Epoch   int16
	LastSeq int32
}

// Producers lists the tracked producers sorted by id.
func (s *State) Producers() []Producer {
	out := make([]Producer, 0, len(s.byID))
	for id, e := range s.byID {
		p := Producer{ID: id, Epoch: e.epoch, LastSeq: -1}
		if n := len(e.batches); n > 0 {
			p.LastSeq = e.batches[n-1].lastSeq
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
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
