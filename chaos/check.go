package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checks here are the simulator's (sim/check.go) rewritten over a recorded History:
// sim's history types are unexported and tied to *sim.Sim, so they cannot be called with
// a real run's history.

// porcupineTimeout bounds the linearizability check of one partition; a timeout is
// reported as Report.LinearizabilityUnknown, not as a violation.
const porcupineTimeout = 30 * time.Second

// maxViolationsPerKind bounds the violations a Report keeps of each kind (the count is
// kept in full).
const maxViolationsPerKind = 20

// Violation is one broken invariant.
type Violation struct {
	Kind      string
	Partition int32
	Msg       string
}

func (v Violation) String() string { return fmt.Sprintf("%s p%d: %s", v.Kind, v.Partition, v.Msg) }

// Report is the outcome of Check.
type Report struct {
	Violations []Violation
	// Counts is the number of violations of each kind, including those not kept.
	Counts map[string]int
	// Resolved is the number of unknown writes found in the final log.
	Resolved int
	// LinearizabilityUnknown is set when porcupine timed out on some partition.
	LinearizabilityUnknown bool
	// Visualizations are the porcupine HTML files written.
	Visualizations []string
}

// OK says whether no invariant broke.
func (r *Report) OK() bool { return len(r.Counts) == 0 }

func (r *Report) violate(kind string, p int32, format string, args ...any) {
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	r.Counts[kind]++
	if r.Counts[kind] <= maxViolationsPerKind {
		r.Violations = append(r.Violations, Violation{Kind: kind, Partition: p, Msg: fmt.Sprintf(format, args...)})
	}
}

// Check checks a run: ops are the writes, final is each partition's whole log read after
// the faults healed (from offset 0, in offset order, control records included), tail is
// what a consumer read while the faults ran (control records included). visDir, when not
// empty, receives a porcupine visualization of every partition that fails. The
// invariants (DESIGN.md, "Reliability oracle"):
//   - the final log has offsets 0, 1, 2, ... without gaps, and valid records only; a
//     control record (a new leader's entry) takes an offset and is no write's;
//   - every acknowledged write is in the final log at its acknowledged offset;
//   - no record is at two offsets (no duplicate from an idempotent producer), and each
//     record was written by some op, to that partition;
//   - a write refused with a definite error is not in the log;
//   - each producer's records are in sequence order within their partition;
//   - the tailing consumer's offsets only increase without gaps, and what it read
//     matches the final log;
//   - each partition's writes are linearizable as an append-only log whose appends may
//     be preceded by control records the broker wrote, once each unknown write is
//     resolved against the final log (found at o: it happened at o; absent: it did not
//     happen).
func Check(ops []Op, final, tail map[int32][]Read, visDir string) *Report {
	r := &Report{}
	parts := map[int32]bool{}
	for p := range final {
		parts[p] = true
	}
	for _, op := range ops {
		parts[op.Partition] = true
	}
	sorted := make([]int32, 0, len(parts))
	for p := range parts {
		sorted = append(sorted, p)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	byKey := make(map[Key]*Op, len(ops))
	for i := range ops {
		byKey[Key{ops[i].Producer, ops[i].Seq}] = &ops[i]
	}
	for _, p := range sorted {
		where := checkLog(r, p, final[p], byKey)
		checkTail(r, p, tail[p], final[p])
		checkWrites(r, p, ops, where, final[p], visDir)
	}
	return r
}

// checkLog checks one partition's final log on its own and returns where each record is.
func checkLog(r *Report, p int32, log []Read, byKey map[Key]*Op) map[Key]int64 {
	where := make(map[Key]int64, len(log))
	lastSeq := map[uint64]Read{}
	for i, rd := range log {
		if rd.Offset != int64(i) {
			r.violate("gap", p, "the final log's record %d is at offset %d", i, rd.Offset)
			break
		}
		if rd.Err != "" {
			r.violate("corrupt", p, "offset %d: %s", rd.Offset, rd.Err)
			continue
		}
		if rd.Control {
			continue
		}
		if prev, dup := where[rd.Key]; dup {
			r.violate("duplicate", p, "producer %016x seq %d at offsets %d and %d", rd.Key.Producer, rd.Key.Seq, prev, rd.Offset)
			continue
		}
		where[rd.Key] = rd.Offset
		if op := byKey[rd.Key]; op == nil || op.Partition != p {
			r.violate("unexplained", p, "offset %d holds producer %016x seq %d, which no op wrote to this partition", rd.Offset, rd.Key.Producer, rd.Key.Seq)
		}
		if prev, ok := lastSeq[rd.Key.Producer]; ok && prev.Key.Seq >= rd.Key.Seq {
			r.violate("reorder", p, "producer %016x: seq %d at offset %d after seq %d at offset %d", rd.Key.Producer, rd.Key.Seq, rd.Offset, prev.Key.Seq, prev.Offset)
		}
		lastSeq[rd.Key.Producer] = rd
	}
	return where
}

// checkTail checks what the tailing consumer read against the final log.
func checkTail(r *Report, p int32, tail, log []Read) {
	next := int64(-1)
	for _, rd := range tail {
		if next >= 0 && rd.Offset != next {
			r.violate("tail-offsets", p, "the tailing consumer read offset %d after offset %d", rd.Offset, next-1)
		}
		next = rd.Offset + 1
		switch {
		case rd.Offset >= int64(len(log)):
			r.violate("lost-read", p, "the tailing consumer read offset %d; the final log ends at %d", rd.Offset, len(log))
		case rd.Err != "" || log[rd.Offset].Err != "":
			// corrupt values are reported by checkLog
		case log[rd.Offset].Control != rd.Control:
			r.violate("inconsistent-read", p, "the tailing consumer read %s at offset %d; the final log has %s", describeRead(rd), rd.Offset, describeRead(log[rd.Offset]))
		case log[rd.Offset].Key != rd.Key:
			r.violate("inconsistent-read", p, "the tailing consumer read producer %016x seq %d at offset %d; the final log has producer %016x seq %d",
				rd.Key.Producer, rd.Key.Seq, rd.Offset, log[rd.Offset].Key.Producer, log[rd.Offset].Key.Seq)
		}
	}
}

// CheckGroup checks what a consumer-group member read (group, per partition, in arrival
// order; no control records) against the final log: a member may read an offset again
// after a rebalance or a restart (it resumes from the committed offset), but must never
// skip past an offset the group has not read (a committed offset ahead of what was
// consumed) unless the final log holds a control record there, and each record it reads
// must be the final log's at that offset.
func CheckGroup(r *Report, group, final map[int32][]Read) {
	parts := make([]int32, 0, len(group))
	for p := range group {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		log := final[p]
		top := int64(-1)
		for _, rd := range group[p] {
			if rd.Offset > top+1 && !allControl(log, top+1, rd.Offset) {
				r.violate("group-skip", p, "the group member read offset %d when the group had read only up to %d", rd.Offset, top)
			}
			top = max(top, rd.Offset)
			switch {
			case rd.Offset >= int64(len(log)):
				r.violate("lost-read", p, "the group member read offset %d; the final log ends at %d", rd.Offset, len(log))
			case rd.Err != "" || log[rd.Offset].Err != "":
			case log[rd.Offset].Control:
				r.violate("inconsistent-read", p, "the group member read %s at offset %d; the final log has a control record", describeRead(rd), rd.Offset)
			case log[rd.Offset].Key != rd.Key:
				r.violate("inconsistent-read", p, "the group member read producer %016x seq %d at offset %d; the final log has producer %016x seq %d",
					rd.Key.Producer, rd.Key.Seq, rd.Offset, log[rd.Offset].Key.Producer, log[rd.Offset].Key.Seq)
			}
		}
	}
}

// allControl says whether the final log holds a control record at every offset in
// [from, to) (false when some offset is past its end).
func allControl(log []Read, from, to int64) bool {
	for o := from; o < to; o++ {
		if o < 0 || o >= int64(len(log)) || !log[o].Control {
			return false
		}
	}
	return true
}

func describeRead(rd Read) string {
	if rd.Control {
		return "a control record"
	}
	return fmt.Sprintf("producer %016x seq %d", rd.Key.Producer, rd.Key.Seq)
}

// checkWrites checks the writes to partition p against where their records are in its
// final log, and runs porcupine on them.
func checkWrites(r *Report, p int32, ops []Op, where map[Key]int64, log []Read, visDir string) {
	var pops []porcupine.Operation
	var endNs int64
	for _, op := range ops {
		endNs = max(endNs, op.RetNs+1, op.CallNs+1)
	}
	for _, op := range ops {
		if op.Partition != p {
			continue
		}
		off, found := where[Key{op.Producer, op.Seq}]
		in := writeInput{value: valueHash(op.Producer, op.Seq), n: 1}
		switch op.Outcome {
		case Acked:
			if !found || off != op.Offset {
				at := "is not in the final log"
				if found {
					at = fmt.Sprintf("is at offset %d in the final log", off)
				}
				r.violate("lost-write", p, "op %d (producer %016x seq %d) was acknowledged at offset %d and %s", op.ID, op.Producer, op.Seq, op.Offset, at)
			}
			pops = append(pops, porcupine.Operation{ClientId: op.Writer, Input: in, Call: op.CallNs, Output: op.Offset, Return: op.RetNs})
		case Failed:
			if found {
				r.violate("failed-write-visible", p, "op %d (producer %016x seq %d) failed (%s) but is at offset %d", op.ID, op.Producer, op.Seq, op.Err, off)
			}
		default: // Unknown, or Pending if the workload was abandoned
			if found {
				r.Resolved++
				pops = append(pops, porcupine.Operation{ClientId: op.Writer, Input: in, Call: op.CallNs, Output: off, Return: endNs})
			}
		}
	}
	model := logModel(nextData(log))
	res, info := porcupine.CheckOperationsVerbose(model, pops, porcupineTimeout)
	if res == porcupine.Unknown {
		r.LinearizabilityUnknown = true
	}
	if res == porcupine.Illegal || (visDir != "" && partitionFailed(r, p)) {
		if visDir != "" {
			path := filepath.Join(visDir, fmt.Sprintf("p%d.html", p))
			if err := os.MkdirAll(visDir, 0o755); err == nil && porcupine.VisualizePath(model, info, path) == nil {
				r.Visualizations = append(r.Visualizations, path)
			}
		}
	}
	if res == porcupine.Illegal {
		r.violate("linearizability", p, "%d writes are not linearizable as an append-only log", len(pops))
	}
}

func partitionFailed(r *Report, p int32) bool {
	for _, v := range r.Violations {
		if v.Partition == p {
			return true
		}
	}
	return false
}

// logState is the model's state of a partition: its length and a chained hash of its
// values (DESIGN.md: "Model each partition as (length, chained hash of the values)").
type logState struct {
	length int64
	hash   uint64
}

type writeInput struct {
	value uint64
	n     int
}

// logModel is a partition as an append-only log: produce(v) answered with offset o is
// legal only when o is next(length): the log's length, or, in a cluster, the first offset
// at or after it that holds no control record in the final log (the records between are
// new leaders' entries, the broker's own writes).
func logModel(next func(int64) int64) porcupine.Model {
	m := baseModel
	m.Step = func(state, input, output any) (bool, any) {
		st, in, off := state.(logState), input.(writeInput), output.(int64)
		if off != next(st.length) {
			return false, st
		}
		return true, logState{length: off + int64(in.n), hash: mix64(st.hash ^ in.value)}
	}
	return m
}

// nextData returns, for an offset o, the first offset at or after o that holds no control
// record in log (o itself past the log's end).
func nextData(log []Read) func(int64) int64 {
	next := make([]int64, len(log)+1)
	next[len(log)] = int64(len(log))
	for o := len(log) - 1; o >= 0; o-- {
		next[o] = int64(o)
		if log[o].Control && log[o].Offset == int64(o) {
			next[o] = next[o+1]
		}
	}
	return func(o int64) int64 {
		if o >= 0 && o < int64(len(next)) {
			return next[o]
		}
		return o
	}
}

var baseModel = porcupine.Model{
	Init:  func() any { return logState{} },
	Equal: func(a, b any) bool { return a.(logState) == b.(logState) },
	Hash:  func(st any) uint64 { return st.(logState).hash ^ uint64(st.(logState).length) },
	DescribeOperation: func(input, output any) string {
		in := input.(writeInput)
		return fmt.Sprintf("produce(%#x x%d) -> %d", in.value, in.n, output.(int64))
	},
	DescribeState: func(state any) string {
		st := state.(logState)
		return fmt.Sprintf("len=%d hash=%016x", st.length, st.hash)
	},
}

// valueHash is the model's value of a record.
func valueHash(producer, seq uint64) uint64 { return mix64(producer*0x9e3779b97f4a7c15 ^ mix64(seq)) }

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
