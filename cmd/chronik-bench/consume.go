package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits of the consume phase.
const (
	consumeTimeout = 3 * time.Minute
	// maxFetchErrors ends the phase after this many fetch errors.
	maxFetchErrors = 100
	// maxProblemExamples bounds the problems a verifier keeps word for word.
	maxProblemExamples = 5
	// controlTailWait is how long the consumer waits for more records once it has read
	// every acknowledged one while a partition's end offset is still ahead: the offsets
	// left may be control batches (a Raft leader change writes one), which clients skip.
	controlTailWait = 3 * time.Second
	// pollWait bounds one poll, so that controlTailWait can be noticed.
	pollWait = time.Second
)

// verifier checks consumed records against what the producers had acknowledged.
type verifier struct {
	size  int
	acks  [][]uint64 // [producer][seq]: packed (partition, offset) acknowledged, 0 if none
	seen  [][]bool   // [producer][seq]
	last  [][]int64  // [partition][producer]: last sequence read in that partition, -1 if none
	stats verifyStats
}

// verifyStats counts what consuming found. Every field but consumed and unackedPresent is
// a failure.
type verifyStats struct {
	consumed       int
	corrupt        int // bad length or checksum, or an unknown producer or sequence
	duplicated     int // a (producer, sequence) read twice
	reordered      int // a producer's sequence not increasing within a partition
	misplaced      int // read at a different partition or offset than acknowledged
	lost           int // acknowledged, never read
	unackedPresent int // read although its produce failed: allowed (at least once)
	produceErrors  int // promises that failed
	examples       []string
}

func (s *verifyStats) ok() bool {
	return s.corrupt+s.duplicated+s.reordered+s.misplaced+s.lost+s.produceErrors == 0
}

func (s *verifyStats) problem(format string, args ...any) {
	if len(s.examples) < maxProblemExamples {
		s.examples = append(s.examples, fmt.Sprintf(format, args...))
	}
}

// summary is a short verdict for the table.
func (s *verifyStats) summary() string {
	if s.ok() {
		return "ok"
	}
	var parts []string
	for _, c := range []struct {
		name string
		n    int
	}{{"lost", s.lost}, {"dup", s.duplicated}, {"reordered", s.reordered}, {"misplaced", s.misplaced}, {"corrupt", s.corrupt}, {"produce-errors", s.produceErrors}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", c.name, c.n))
		}
	}
	return "FAIL " + strings.Join(parts, " ")
}

func newVerifier(size, partitions int, prod *produceResult) *verifier {
	v := &verifier{size: size}
	for _, p := range prod.producers {
		v.acks = append(v.acks, p.acks)
		v.seen = append(v.seen, make([]bool, len(p.acks)))
	}
	v.last = make([][]int64, partitions)
	for i := range v.last {
		v.last[i] = make([]int64, len(prod.producers))
		for j := range v.last[i] {
			v.last[i][j] = -1
		}
	}
	v.stats.produceErrors = prod.errs
	return v
}

func (v *verifier) check(r *kgo.Record) {
	s := &v.stats
	s.consumed++
	id, seq, err := decodePayload(r.Value, v.size)
	if err == nil && (int(id) >= len(v.acks) || seq >= uint64(len(v.acks[id]))) {
		err = fmt.Errorf("%w: producer %d sequence %d was never sent", errPayload, id, seq)
	}
	if err != nil {
		s.corrupt++
		s.problem("partition %d offset %d: %v", r.Partition, r.Offset, err)
		return
	}
	if int(r.Partition) >= len(v.last) {
		s.corrupt++
		s.problem("partition %d offset %d: partition out of range", r.Partition, r.Offset)
		return
	}
	if v.seen[id][seq] {
		s.duplicated++
		s.problem("producer %d sequence %d read again at partition %d offset %d", id, seq, r.Partition, r.Offset)
		return
	}
	v.seen[id][seq] = true
	if last := v.last[r.Partition][id]; int64(seq) <= last {
		s.reordered++
		s.problem("partition %d offset %d: producer %d sequence %d after sequence %d", r.Partition, r.Offset, id, seq, last)
	}
	v.last[r.Partition][id] = int64(seq)
	ack := v.acks[id][seq]
	if ack == 0 {
		s.unackedPresent++
		return
	}
	if p, off := unpackAck(ack); p != r.Partition || off != r.Offset {
		s.misplaced++
		s.problem("producer %d sequence %d acknowledged at %d/%d, read at %d/%d", id, seq, p, off, r.Partition, r.Offset)
	}
}

// allAckedSeen reports whether every acknowledged record has been read.
func (v *verifier) allAckedSeen() bool {
	for id, acks := range v.acks {
		for seq, a := range acks {
			if a != 0 && !v.seen[id][seq] {
				return false
			}
		}
	}
	return true
}

// finish counts acknowledged records that were never read.
func (v *verifier) finish() {
	for id, acks := range v.acks {
		for seq, a := range acks {
			if a != 0 && !v.seen[id][seq] {
				v.stats.lost++
				p, off := unpackAck(a)
				v.stats.problem("producer %d sequence %d acknowledged at %d/%d, never read", id, seq, p, off)
			}
		}
	}
}

// consumeResult is one consume phase's outcome.
type consumeResult struct {
	records int
	elapsed time.Duration
	stats   verifyStats
}

// consumeAndVerify reads every partition of topic from its start to the end offset it has
// now, checking each record with a verifier. It also stops when every acknowledged record
// has been read and nothing more arrives for controlTailWait: the offsets left are then
// batches clients do not return (control batches).
func consumeAndVerify(ctx context.Context, seeds []string, topic string, size int, prod *produceResult) (*consumeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, consumeTimeout)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("bench: list end offsets of %s: %w", topic, err)
	}
	end := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		from[o.Partition] = kgo.NewOffset().AtStart()
	})
	v := newVerifier(size, len(end), prod)

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	next := map[int32]int64{} // next offset to read, per partition
	done := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	fetchErrs := 0
	start := time.Now()
	lastRecord := start
	for !done() {
		if time.Since(lastRecord) > controlTailWait && v.allAckedSeen() {
			break
		}
		pctx, pcancel := context.WithTimeout(ctx, pollWait)
		fs := cl.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			v.finish()
			return &consumeResult{records: v.stats.consumed, elapsed: time.Since(start), stats: v.stats},
				fmt.Errorf("bench: consumed %d records of %s in %v, not at the end yet: %w", v.stats.consumed, topic, consumeTimeout, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) && p < 0 {
				return // the poll's own bound
			}
			fetchErrs++
			ferr = fmt.Errorf("bench: fetch %s/%d: %w", t, p, err)
		})
		if fetchErrs > maxFetchErrors {
			return nil, fmt.Errorf("bench: more than %d fetch errors, last: %w", maxFetchErrors, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			lastRecord = time.Now()
			v.check(r)
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		})
	}
	elapsed := lastRecord.Sub(start)
	v.finish()
	return &consumeResult{records: v.stats.consumed, elapsed: elapsed, stats: v.stats}, nil
}
