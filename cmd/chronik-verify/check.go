package main

import (
	"errors"
	"fmt"
	"sort"

	"chronik/internal/loadrec"
)

// Limits of the checker: its memory is bounded whatever the consumer reads.
const (
	// MaxGapsPerProducer bounds the missing sequence ranges kept per producer. Past it the
	// lowest gap is given up: its sequences are counted lost at once (Counts.GapsAbandoned
	// says how many gaps), and a record from it that arrives later counts as a duplicate.
	MaxGapsPerProducer = 1024
	// MaxProducers bounds the producers tracked; records of further producers are counted
	// in Counts.Untracked and fail the verdict.
	MaxProducers = 1 << 20
	// MaxFaultExamples bounds the faults the summary lists one by one.
	MaxFaultExamples = 32
)

// Counts are the checker's tallies. Every record read is counted once in Records (or in
// Redelivered) and, if anything is wrong with it, in exactly one of Duplicated, Corrupt,
// Foreign, OutOfOrder or Untracked; Lost counts sequences, not records read.
type Counts struct {
	Records int64 // records read once (redeliveries excluded)
	Bytes   int64 // value bytes of Records
	OK      int64 // intact, first delivery of its sequence, in order within its partition
	// Duplicated: a sequence of a producer read a second time (at another offset).
	Duplicated int64
	// Corrupt: starts like a load record but fails its length, checksum or syntax.
	Corrupt int64
	// Foreign: not a load record at all.
	Foreign int64
	// OutOfOrder: first delivery of its sequence, but after a higher sequence of the same
	// producer in the same partition.
	OutOfOrder int64
	// Lost: sequences below a producer's highest sequence read (or below the count it
	// sent, when the writer's report is known) that were never read intact, less those
	// the writer reported failed (known once Finish has run; before that, Missing).
	Lost int64
	// NotAcked: missing sequences excused by the writer's report of failed records: the
	// writer was told they failed, so their absence is no broker fault.
	NotAcked int64
	// Missing: sequences currently in open gaps (they may still arrive).
	Missing int64
	// GapsAbandoned: gaps given up at MaxGapsPerProducer (their sequences are in Lost).
	GapsAbandoned int64
	// Untracked: records of producers past MaxProducers.
	Untracked int64
	// Redelivered: records read again at an offset already read in their partition (a
	// consumer re-read after a rebalance or restart; not a broker fault).
	Redelivered int64
	// OffsetGaps: times a partition's next record came after skipped offsets (reported,
	// not a fault: another group member may have read them).
	OffsetGaps int64
	Producers  int
	Partitions int
}

// Faulty reports whether the counts show anything wrong.
func (c Counts) Faulty() bool {
	return c.Lost+c.Missing+c.Duplicated+c.Corrupt+c.Foreign+c.OutOfOrder+c.Untracked > 0
}

// FaultKind names what is wrong with a record or a range of sequences.
type FaultKind string

// Fault kinds.
const (
	FaultLost       FaultKind = "lost"
	FaultDuplicate  FaultKind = "duplicate"
	FaultCorrupt    FaultKind = "corrupt"
	FaultForeign    FaultKind = "foreign"
	FaultOutOfOrder FaultKind = "out-of-order"
	FaultUntracked  FaultKind = "untracked"
)

// Fault is one example of a fault for the summary. A lost fault names sequences
// [Seq, SeqEnd) and no offset.
type Fault struct {
	Kind      FaultKind `json:"kind"`
	Topic     string    `json:"topic,omitempty"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Producer  uint64    `json:"producer"`
	Seq       uint64    `json:"seq"`
	SeqEnd    uint64    `json:"seq_end,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

func (f Fault) String() string {
	switch f.Kind {
	case FaultLost:
		if f.SeqEnd == f.Seq+1 {
			return fmt.Sprintf("lost         producer %016x seq %d%s", f.Producer, f.Seq, f.Detail)
		}
		return fmt.Sprintf("lost         producer %016x seq %d..%d (%d records)%s", f.Producer, f.Seq, f.SeqEnd-1, f.SeqEnd-f.Seq, f.Detail)
	case FaultCorrupt, FaultForeign:
		return fmt.Sprintf("%-12s %s[%d]@%d: %s", f.Kind, f.Topic, f.Partition, f.Offset, f.Detail)
	default:
		return fmt.Sprintf("%-12s %s[%d]@%d producer %016x seq %d%s", f.Kind, f.Topic, f.Partition, f.Offset, f.Producer, f.Seq, f.Detail)
	}
}

// seqRange is the sequences [lo, hi).
type seqRange struct{ lo, hi uint64 }

// partSeq is the highest sequence a producer has had read in one partition.
type partSeq struct {
	tp  topicPartition
	max uint64
}

// producerState is what the checker remembers of one producer.
type producerState struct {
	// next: every sequence below next has been read (or given up).
	// end: one past the highest sequence read.
	// gaps: the missing ranges, sorted and disjoint.
	// Invariant: next <= end; gaps lie in [next, end); gaps empty iff next == end, else
	// gaps[0].lo == next; len(gaps) <= MaxGapsPerProducer.
	next, end uint64
	gaps      []seqRange
	// parts is the highest sequence read per partition: usually one (records are keyed by
	// producer), more when a topic grew and the key moved.
	parts []partSeq
	// given counts the sequences of gaps given up at MaxGapsPerProducer.
	given uint64
	// expected: the writer's report says it sent sequences [0, sent), of which failed
	// were answered with an error (Expect).
	expected     bool
	sent, failed uint64
}

type topicPartition struct {
	topic     string
	partition int32
}

// Checker verifies load records as a consumer reads them: per producer it keeps the
// contiguous high-water sequence and a bounded set of gaps, per partition the next offset.
// It is used from one goroutine.
type Checker struct {
	// fromZero: a producer's sequences are expected from 0 (the topic is read from its
	// start); otherwise its first sequence read starts its tracking.
	fromZero  bool
	producers map[uint64]*producerState
	// nextOffset is one past the highest offset read per partition.
	nextOffset map[topicPartition]int64
	counts     Counts
	faults     []Fault
}

// NewChecker returns an empty checker. fromZero says whether each producer's sequences
// must start at 0 (set it when the consumer reads the topics from their start).
func NewChecker(fromZero bool) *Checker {
	return &Checker{fromZero: fromZero, producers: map[uint64]*producerState{}, nextOffset: map[topicPartition]int64{}}
}

// Counts returns the tallies so far.
func (c *Checker) Counts() Counts {
	n := c.counts
	n.Producers, n.Partitions = len(c.producers), len(c.nextOffset)
	return n
}

// Faults returns up to MaxFaultExamples faults in the order found (lost ranges last,
// after Finish). The caller must not modify the slice.
func (c *Checker) Faults() []Fault { return c.faults }

func (c *Checker) fault(f Fault) {
	if len(c.faults) < MaxFaultExamples {
		c.faults = append(c.faults, f)
	}
}

// Check verifies one record read from topic/partition at offset and returns its fault
// kind, "" when it is fine (or a redelivery).
func (c *Checker) Check(topic string, partition int32, offset int64, value []byte) FaultKind {
	tp := topicPartition{topic, partition}
	if next, seen := c.nextOffset[tp]; seen && offset < next {
		c.counts.Redelivered++
		return ""
	} else if seen && offset > next {
		c.counts.OffsetGaps++
	}
	c.nextOffset[tp] = offset + 1
	c.counts.Records++
	c.counts.Bytes += int64(len(value))
	rec, err := loadrec.Decode(value)
	if err != nil {
		kind := FaultCorrupt
		if errors.Is(err, loadrec.ErrForeign) {
			kind = FaultForeign
			c.counts.Foreign++
		} else {
			c.counts.Corrupt++
		}
		c.fault(Fault{Kind: kind, Topic: topic, Partition: partition, Offset: offset, Detail: err.Error()})
		return kind
	}
	kind := c.sequence(tp, rec)
	switch kind {
	case "":
		c.counts.OK++
		return ""
	case FaultDuplicate:
		c.counts.Duplicated++
	case FaultOutOfOrder:
		c.counts.OutOfOrder++
	case FaultUntracked:
		c.counts.Untracked++
	}
	c.fault(Fault{Kind: kind, Topic: topic, Partition: partition, Offset: offset, Producer: rec.Producer, Seq: rec.Seq})
	return kind
}

// sequence files rec's sequence with its producer.
func (c *Checker) sequence(tp topicPartition, rec loadrec.Record) FaultKind {
	p := c.producers[rec.Producer]
	if p == nil {
		if len(c.producers) >= MaxProducers {
			return FaultUntracked
		}
		p = &producerState{}
		if !c.fromZero {
			p.next, p.end = rec.Seq, rec.Seq
		}
		c.producers[rec.Producer] = p
	}
	seq := rec.Seq
	switch {
	case seq < p.next:
		return FaultDuplicate
	case seq >= p.end:
		if seq > p.end {
			c.addGap(rec.Producer, p, seqRange{p.end, seq})
		}
		p.end = seq + 1
		if len(p.gaps) == 0 {
			p.next = p.end
		}
	default:
		if !c.fill(rec.Producer, p, seq) {
			return FaultDuplicate
		}
	}
	// A first delivery: in order unless this partition already had a higher sequence.
	for i := range p.parts {
		if p.parts[i].tp == tp {
			if seq < p.parts[i].max {
				return FaultOutOfOrder
			}
			p.parts[i].max = seq
			return ""
		}
	}
	p.parts = append(p.parts, partSeq{tp, seq})
	return ""
}

// addGap appends the missing range r above every other gap of p, giving up p's lowest
// gap when p holds MaxGapsPerProducer already.
func (c *Checker) addGap(id uint64, p *producerState, r seqRange) {
	if len(p.gaps) == 0 {
		p.next = r.lo
	}
	if len(p.gaps) >= MaxGapsPerProducer {
		c.abandon(id, p)
	}
	p.gaps = append(p.gaps, r)
	c.counts.Missing += int64(r.hi - r.lo)
}

// abandon gives up p's lowest gap: its sequences are lost.
func (c *Checker) abandon(id uint64, p *producerState) {
	g := p.gaps[0]
	p.gaps = append(p.gaps[:0], p.gaps[1:]...)
	c.counts.GapsAbandoned++
	p.given += g.hi - g.lo
	c.counts.Lost += int64(g.hi - g.lo)
	c.fault(Fault{Kind: FaultLost, Producer: id, Seq: g.lo, SeqEnd: g.hi, Partition: -1, Offset: -1, Detail: " (gap given up at the limit)"})
	c.counts.Missing -= int64(g.hi - g.lo)
	if len(p.gaps) > 0 {
		p.next = p.gaps[0].lo
	} else {
		p.next = p.end
	}
}

// fill removes seq from p's gaps; false when no gap holds it (it was read before).
func (c *Checker) fill(id uint64, p *producerState, seq uint64) bool {
	i := sort.Search(len(p.gaps), func(i int) bool { return p.gaps[i].hi > seq })
	if i == len(p.gaps) || p.gaps[i].lo > seq {
		return false
	}
	g := p.gaps[i]
	switch {
	case g.lo == seq && g.hi == seq+1:
		p.gaps = append(p.gaps[:i], p.gaps[i+1:]...)
	case g.lo == seq:
		p.gaps[i].lo++
	case g.hi == seq+1:
		p.gaps[i].hi--
	default: // split: one more gap
		p.gaps = append(p.gaps, seqRange{})
		copy(p.gaps[i+1:], p.gaps[i:])
		p.gaps[i] = seqRange{g.lo, seq}
		p.gaps[i+1] = seqRange{seq + 1, g.hi}
	}
	c.counts.Missing--
	if len(p.gaps) > 0 {
		p.next = p.gaps[0].lo
	} else {
		p.next = p.end
	}
	if len(p.gaps) > MaxGapsPerProducer {
		c.abandon(id, p)
	}
	return true
}

// Expect records the writer's report of producer id: it sent sequences [0, sent), and
// failed of them were answered with an error (they may or may not be in the topic).
// Finish then counts a missing tail below sent, and excuses up to failed missing
// sequences. Call it before Finish; false when the producer limit is reached.
func (c *Checker) Expect(id, sent, failed uint64) bool {
	p := c.producers[id]
	if p == nil {
		if len(c.producers) >= MaxProducers {
			return false
		}
		p = &producerState{}
		c.producers[id] = p
	}
	p.expected, p.sent, p.failed = true, sent, failed
	return true
}

// Finish ends the check: every gap still open, and every sequence a producer's report
// says was sent but was never read, is lost, except as many as the writer reported
// failed. Call it once, after the last Check.
func (c *Checker) Finish() Counts {
	ids := make([]uint64, 0, len(c.producers))
	for id := range c.producers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		p := c.producers[id]
		var open uint64
		for _, g := range p.gaps {
			open += g.hi - g.lo
		}
		c.counts.Missing -= int64(open)
		if p.expected && p.sent > p.end {
			p.gaps = append(p.gaps, seqRange{p.end, p.sent})
			open += p.sent - p.end
		}
		total := open + p.given
		var excused uint64
		if p.expected {
			excused = min(p.failed, total)
		}
		c.counts.Lost += int64(total - excused - p.given) // given is counted already
		c.counts.NotAcked += int64(excused)
		if total > excused {
			detail := ""
			if excused > 0 {
				detail = fmt.Sprintf(" (writer reported %d failed: %d of the %d missing were acknowledged)", p.failed, total-excused, total)
			}
			for _, g := range p.gaps {
				c.fault(Fault{Kind: FaultLost, Producer: id, Seq: g.lo, SeqEnd: g.hi, Partition: -1, Offset: -1, Detail: detail})
			}
		}
		p.gaps, p.next = nil, p.end
	}
	return c.Counts()
}
