package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"
)

// porcupineTimeout bounds the linearizability check of one partition. With every
// indeterminate write resolved against the final log it takes milliseconds; a timeout is
// reported as Result.LinearizabilityUnknown, not as a failure.
const porcupineTimeout = 30 * time.Second

// check runs the end-of-run checks on every partition.
func (s *Sim) check() {
	for p := range s.hist.final {
		s.checkPartition(int32(p))
	}
	s.checkGroupCommits()
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
// legal only when o is the log's length, or, in cluster mode, when every offset from the
// length to o holds a control batch in the final log (a leader change's entry: the
// broker's own write). nextData(o) is the first offset at or after o that holds no
// control batch. Fetches stay out of the model; the queue checks cover what they read.
func logModel(nextData func(int64) int64) porcupine.Model {
	m := baseModel
	m.Step = func(state, input, output any) (bool, any) {
		st, in, off := state.(logState), input.(writeInput), output.(int64)
		if off != nextData(st.length) {
			return false, st
		}
		return true, logState{length: off + int64(in.n), hash: mix64(st.hash ^ in.value)}
	}
	return m
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

// checkPartition checks one partition's history against its final log: no lost
// acknowledged write, no duplicate, nothing unexplained, consumers' reads consistent
// with it, every batch whole, and the writes linearizable once each indeterminate write
// is resolved (found at offset o: it happened at o; absent: it did not happen).
func (s *Sim) checkPartition(p int32) {
	if int(p) >= len(s.verifier) || !s.verifier[p].verified {
		return // the verify phase already failed the run; the final log is incomplete
	}
	final := s.hist.final[p]
	where := make(map[uint64]int64, len(final))
	for o, v := range final {
		if v == controlValue {
			continue
		}
		if prev, dup := where[v]; dup {
			s.violate("duplicate", p, "value %#x (%s) at offsets %d and %d", v, s.describe(v), prev, o)
			continue
		}
		where[v] = int64(o)
		op := s.hist.byBase[baseOf(v)]
		if op == nil || op.part != p || v-op.base >= uint64(op.n) {
			s.violate("unexplained", p, "offset %d holds %#x, which no client wrote to this partition", o, v)
		}
	}
	for o, v := range s.hist.obs[p] {
		if o >= len(final) {
			s.violate("lost-read", p, "consumers read up to offset %d; the final log ends at %d", len(s.hist.obs[p]), len(final))
			break
		}
		if final[o] != v {
			s.violate("inconsistent-read", p, "consumers read %s at offset %d; the final log has %s", valueName(v), o, valueName(final[o]))
		}
	}

	endUs := s.now + 1
	var ops []porcupine.Operation
	for _, op := range s.hist.ops {
		if op.part != p {
			continue
		}
		off, found := where[op.base]
		any, whole := found, found
		for i := 1; i < op.n; i++ {
			o, ok := where[op.base+uint64(i)]
			any = any || ok
			whole = whole && ok && o == off+int64(i)
		}
		if any && !whole {
			s.violate("torn-batch", p, "write %d (%s): its %d records are not contiguous in the final log", op.id, s.describe(op.base), op.n)
		}
		in := writeInput{value: op.base, n: op.n}
		switch op.out {
		case outAcked:
			if !found || off != op.offset {
				at := "is not in the final log"
				if found {
					at = fmt.Sprintf("is at offset %d in the final log", off)
				}
				s.violate("lost-write", p, "write %d (%s) was acknowledged at offset %d and %s", op.id, s.describe(op.base), op.offset, at)
			}
			ops = append(ops, porcupine.Operation{ClientId: op.client, Input: in, Call: op.callUs, Output: op.offset, Return: op.retUs})
		case outFailed:
			if found {
				s.violate("failed-write-visible", p, "write %d (%s) was refused but is at offset %d", op.id, s.describe(op.base), off)
			}
		default:
			if found {
				s.res.Resolved++
				ops = append(ops, porcupine.Operation{ClientId: op.client, Input: in, Call: op.callUs, Output: off, Return: endUs})
			}
		}
	}
	// nextData[o] for o within the final log; beyond it, o itself.
	next := make([]int64, len(final)+1)
	next[len(final)] = int64(len(final))
	for o := len(final) - 1; o >= 0; o-- {
		next[o] = int64(o)
		if final[o] == controlValue {
			next[o] = next[o+1]
		}
	}
	model := logModel(func(o int64) int64 {
		if o >= 0 && o < int64(len(next)) {
			return next[o]
		}
		return o
	})
	res, info := porcupine.CheckOperationsVerbose(model, ops, porcupineTimeout)
	if res == porcupine.Unknown {
		s.res.LinearizabilityUnknown = true
	}
	viz := ""
	if res == porcupine.Illegal || s.partFailed[p] > 0 {
		viz = s.visualize(model, p, info)
	}
	if res == porcupine.Illegal {
		s.violate("linearizability", p, "%d writes are not linearizable as an append-only log%s", len(ops), viz)
	}
}

// visualize writes the porcupine visualization of partition p's history under OutDir
// and returns a note saying where, or "" when it wrote none.
func (s *Sim) visualize(model porcupine.Model, p int32, info porcupine.LinearizationInfo) string {
	if s.cfg.OutDir == "" {
		return ""
	}
	path := filepath.Join(s.cfg.OutDir, fmt.Sprintf("seed-%d-p%d.html", s.cfg.Seed, p))
	if err := os.MkdirAll(s.cfg.OutDir, 0o755); err != nil {
		return ""
	}
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return ""
	}
	s.res.Visualizations = append(s.res.Visualizations, path)
	return "; visualization in " + path
}

// describe names the write a value comes from.
func (s *Sim) describe(v uint64) string {
	client := int(v >> 48)
	who := "client " + itoa(client)
	if client < len(s.clients) {
		who = s.clients[client].who + " " + s.clients[client].clientID
	}
	return fmt.Sprintf("%s write %d attempt %d record %d", who, uint32(v>>16), (v>>8)&0xff, v&0xff)
}
