package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

// Outcome is what a producer learned about one write.
type Outcome uint8

const (
	// Pending: the call has not returned (only while the workload runs).
	Pending Outcome = iota
	// Acked: answered with an offset.
	Acked
	// Failed: refused with an error after which the client knows the record was not
	// written (franz-go's idempotent producer fails an in-flight record only after an
	// answer). It must never appear in the log.
	Failed
	// Unknown: the call ended without an answer (context, client closed): the record
	// may or may not be in the log; the checks resolve it against the final log.
	Unknown
)

var outcomeNames = [...]string{"pending", "acked", "failed", "unknown"}

func (o Outcome) String() string { return outcomeNames[o] }

// MarshalText writes the outcome's name.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Op is one write in a History: one record of one producer, produced once (franz-go
// retries it internally with the same producer sequence; the workload never re-sends it).
type Op struct {
	// ID is the op's index in the history.
	ID int `json:"id"`
	// Writer is the workload's producer number; Producer is its loadrec producer id.
	Writer   int    `json:"writer"`
	Producer uint64 `json:"producer"`
	// Seq is the loadrec sequence of the record within Producer.
	Seq       uint64 `json:"seq"`
	Partition int32  `json:"partition"`
	// CallNs and RetNs are the call and return times in nanoseconds since the run began.
	// Invariant: RetNs >= CallNs once Outcome != Pending.
	CallNs  int64   `json:"call_ns"`
	RetNs   int64   `json:"ret_ns"`
	Outcome Outcome `json:"outcome"`
	// Offset is the acknowledged offset (Acked only; -1 otherwise).
	Offset int64  `json:"offset"`
	Err    string `json:"err,omitempty"`
}

// Key identifies a record: its producer and sequence.
type Key struct {
	Producer, Seq uint64
}

// Read is one record a consumer saw.
type Read struct {
	Partition int32
	Offset    int64
	// Key is the record's identity; zero with Err set when the value is not a valid
	// load record, and zero for a control record.
	Key Key
	Err string
	// Control marks a control batch the broker wrote (a new Raft leader's first entry,
	// Kafka's LEADER_CHANGE): it takes an offset, and consumers skip it unless they ask
	// for control records (kgo.KeepControlRecords).
	Control bool
}

// History is what the producers and the tailing consumer saw. Its methods are safe for
// concurrent use.
type History struct {
	start time.Time

	mu  sync.Mutex
	ops []*Op
	// tail holds, per partition, what the tailing consumer read, in arrival order.
	tail map[int32][]Read
	// group holds, per partition, what the consumer-group member read, in arrival order.
	group map[int32][]Read
}

// NewHistory begins a history at start.
func NewHistory(start time.Time) *History {
	return &History{start: start, tail: map[int32][]Read{}, group: map[int32][]Read{}}
}

// since is the time t as nanoseconds since the history began.
func (h *History) since(t time.Time) int64 { return t.Sub(h.start).Nanoseconds() }

// Call records the call of a write and returns its op, which the caller completes with
// Return.
func (h *History) Call(writer int, producer, seq uint64, partition int32) *Op {
	now := h.since(time.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &Op{ID: len(h.ops), Writer: writer, Producer: producer, Seq: seq, Partition: partition, CallNs: now, Offset: -1}
	h.ops = append(h.ops, op)
	return op
}

// Return records the outcome of op.
func (h *History) Return(op *Op, out Outcome, offset int64, err error) {
	now := h.since(time.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	op.RetNs, op.Outcome, op.Offset = now, out, offset
	if err != nil {
		op.Err = err.Error()
	}
}

// Tail records a read of the tailing consumer.
func (h *History) Tail(r Read) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tail[r.Partition] = withGap(h.tail[r.Partition], r)
}

// withGap appends r to reads, which it follows in offset order, first filling the
// offsets it skips with control records: a cluster serves no Raft control batches (a new
// leader's first entry), so their offsets are gaps. A record missing from a gap still
// shows: its acknowledged offset holds a control record in the final log (lost-write).
func withGap(reads []Read, r Read) []Read {
	next := int64(0)
	if n := len(reads); n > 0 {
		next = reads[n-1].Offset + 1
	}
	for o := next; o < r.Offset; o++ {
		reads = append(reads, Read{Partition: r.Partition, Offset: o, Control: true})
	}
	return append(reads, r)
}

// Ops returns a copy of the ops, in call order.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Op, len(h.ops))
	for i, op := range h.ops {
		out[i] = *op
	}
	return out
}

// Group records a read of the consumer-group member.
func (h *History) Group(r Read) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.group[r.Partition] = append(h.group[r.Partition], r)
}

// TailReads returns a copy of the tailing consumer's reads per partition.
func (h *History) TailReads() map[int32][]Read { return h.copyReads(h.tail) }

// GroupReads returns a copy of the consumer-group member's reads per partition.
func (h *History) GroupReads() map[int32][]Read { return h.copyReads(h.group) }

// GroupReached reports whether the group member has read, in every partition p of end,
// the offset end[p]-1 or beyond (end[p] is one past the last record that is not a
// control record, which a group member never reads).
func (h *History) GroupReached(end map[int32]int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, e := range end {
		top := int64(-1)
		for _, r := range h.group[p] {
			top = max(top, r.Offset)
		}
		if top < e-1 {
			return false
		}
	}
	return true
}

func (h *History) copyReads(m map[int32][]Read) map[int32][]Read {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[int32][]Read, len(m))
	for p, rs := range m {
		out[p] = append([]Read(nil), rs...)
	}
	return out
}

// AckedSince reports whether writer has an acknowledged write called at or after t.
func (h *History) AckedSince(writer int, t time.Time) bool {
	ns := h.since(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.ops) - 1; i >= 0 && h.ops[i].CallNs >= ns; i-- {
		if op := h.ops[i]; op.Writer == writer && op.Outcome == Acked {
			return true
		}
	}
	return false
}

// Counts tallies the ops by outcome.
func (h *History) Counts() map[Outcome]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := map[Outcome]int{}
	for _, op := range h.ops {
		c[op.Outcome]++
	}
	return c
}

// WriteFiles writes the ops as JSON lines to ops.jsonl, and the final log, the tailing
// consumer's and the group member's reads as text to final.txt, tail.txt and group.txt
// under dir.
func (h *History) WriteFiles(dir string, final map[int32][]Read) error {
	f, err := os.Create(dir + "/ops.jsonl")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, op := range h.Ops() {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := writeReads(dir+"/final.txt", final); err != nil {
		return err
	}
	if err := writeReads(dir+"/group.txt", h.GroupReads()); err != nil {
		return err
	}
	return writeReads(dir+"/tail.txt", h.TailReads())
}

// writeReads writes one line per read: partition, offset, producer, sequence or error.
func writeReads(path string, reads map[int32][]Read) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	parts := make([]int32, 0, len(reads))
	for p := range reads {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		for _, r := range reads[p] {
			if r.Err != "" {
				fmt.Fprintf(w, "p%d %d error %s\n", p, r.Offset, r.Err)
				continue
			}
			if r.Control {
				fmt.Fprintf(w, "p%d %d control\n", p, r.Offset)
				continue
			}
			fmt.Fprintf(w, "p%d %d producer %016x seq %d\n", p, r.Offset, r.Key.Producer, r.Key.Seq)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
