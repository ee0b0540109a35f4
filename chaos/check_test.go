package chaos

import (
	"testing"
	"time"
)

// acked is an acknowledged write of producer 1 at seq, to partition 0, at offset off,
// called at call and returning at ret (milliseconds).
func acked(id int, seq uint64, off int64, call, ret int64) Op {
	return Op{ID: id, Writer: 1, Producer: 1, Seq: seq, Partition: 0, CallNs: call * 1e6, RetNs: ret * 1e6, Outcome: Acked, Offset: off}
}

func logOf(keys ...Key) []Read {
	rs := make([]Read, len(keys))
	for i, k := range keys {
		rs[i] = Read{Partition: 0, Offset: int64(i), Key: k}
	}
	return rs
}

func k(seq uint64) Key { return Key{Producer: 1, Seq: seq} }

// ctl marks a control record in a logOf argument list.
var ctl = Key{Producer: ^uint64(0), Seq: ^uint64(0)}

// logWith is logOf where each ctl key is a control record (a new leader's entry).
func logWith(keys ...Key) []Read {
	rs := logOf(keys...)
	for i := range rs {
		if rs[i].Key == ctl {
			rs[i] = Read{Partition: 0, Offset: int64(i), Control: true}
		}
	}
	return rs
}

func TestCheck(t *testing.T) {
	unknown := func(id int, seq uint64, call, ret int64) Op {
		op := acked(id, seq, -1, call, ret)
		op.Outcome = Unknown
		return op
	}
	failed := unknown(2, 2, 3, 4)
	failed.Outcome = Failed
	tests := []struct {
		name  string
		ops   []Op
		final []Read
		tail  []Read
		want  string // the one violation kind expected; "" for none
	}{
		{"clean", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logOf(k(0), k(1)), logOf(k(0)), ""},
		{"unknown resolved as written", []Op{acked(0, 0, 0, 0, 1), unknown(1, 1, 1, 2), acked(2, 2, 2, 3, 4)}, logOf(k(0), k(1), k(2)), nil, ""},
		{"unknown resolved as lost", []Op{acked(0, 0, 0, 0, 1), unknown(1, 1, 1, 2), acked(2, 2, 1, 3, 4)}, logOf(k(0), k(2)), nil, ""},
		{"lost write", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logOf(k(0)), nil, "lost-write"},
		{"moved write", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logOf(k(1), k(0)), nil, "lost-write"},
		{"duplicate", []Op{acked(0, 0, 0, 0, 1)}, logOf(k(0), k(0)), nil, "duplicate"},
		{"reorder", []Op{unknown(0, 0, 0, 1), unknown(1, 1, 1, 2)}, logOf(k(1), k(0)), nil, "reorder"},
		{"unexplained", []Op{acked(0, 0, 0, 0, 1)}, logOf(k(0), k(7)), nil, "unexplained"},
		{"failed visible", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2), failed}, logOf(k(0), k(1), k(2)), nil, "failed-write-visible"},
		{"gap", []Op{acked(0, 0, 0, 0, 1)}, []Read{{Offset: 1, Key: k(0)}}, nil, "gap"},
		{"corrupt", []Op{acked(0, 0, 0, 0, 1)}, []Read{{Offset: 0, Key: k(0)}, {Offset: 1, Err: "bad"}}, nil, "corrupt"},
		{"inconsistent tail", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logOf(k(0), k(1)), logOf(k(1)), "inconsistent-read"},
		{"tail beyond the log", []Op{acked(0, 0, 0, 0, 1)}, logOf(k(0)), logOf(k(0), k(1)), "lost-read"},
		{"tail skips", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logOf(k(0), k(1)), logOf(k(0), k(1))[1:], ""},
		{"tail goes back", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logOf(k(0), k(1)), append(logOf(k(0), k(1)), logOf(k(0))...), "tail-offsets"},
		{"control records", []Op{acked(0, 0, 1, 0, 1), acked(1, 1, 3, 1, 2)}, logWith(ctl, k(0), ctl, k(1)), logWith(ctl, k(0), ctl), ""},
		{"ack across a control record", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 2, 1, 2)}, logWith(k(0), ctl, k(1)), nil, ""},
		{"ack across data", []Op{acked(0, 0, 0, 0, 1), {ID: 1, Writer: 2, Producer: 2, Seq: 0, CallNs: 2e6, RetNs: 3e6, Outcome: Acked, Offset: 2}}, logWith(k(0), ctl, Key{2, 0}), nil, ""},
		{"tail misses a control record", []Op{acked(0, 0, 1, 0, 1)}, logWith(ctl, k(0)), logWith(ctl, k(0))[1:], ""},
		{"control read as data", []Op{acked(0, 0, 1, 0, 1)}, logWith(ctl, k(0)), logWith(k(0)), "inconsistent-read"},
		{"acked at a control record", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, logWith(k(0), ctl), nil, "lost-write"},
		// Acknowledged at 2 with offset 1 holding data that is no write's: unexplained.
		{"skip over data", []Op{acked(0, 0, 0, 0, 1), acked(1, 1, 2, 1, 2)}, logWith(k(0), k(9), k(1)), nil, "unexplained"},
		// Both acknowledged at offset 0: each matches the log on its own (no lost write
		// for the first, which is at 0), but no order of the two appends explains both.
		{"not linearizable", []Op{acked(0, 0, 0, 0, 1), {ID: 1, Writer: 2, Producer: 2, Seq: 0, CallNs: 2e6, RetNs: 3e6, Outcome: Acked, Offset: 0}}, logOf(k(0)), nil, "linearizability"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.ops, map[int32][]Read{0: tc.final}, map[int32][]Read{0: tc.tail}, "")
			if tc.want == "" {
				if !r.OK() {
					t.Fatalf("violations %v, want none", r.Violations)
				}
				return
			}
			if r.Counts[tc.want] == 0 {
				t.Fatalf("violations %v, want %s", r.Violations, tc.want)
			}
		})
	}
}

func TestCheckVisualizesFailingPartition(t *testing.T) {
	dir := t.TempDir()
	r := Check([]Op{acked(0, 0, 0, 0, 1), acked(1, 1, 1, 1, 2)}, map[int32][]Read{0: logOf(k(0))}, nil, dir)
	if len(r.Visualizations) != 1 {
		t.Fatalf("visualizations %v, want one", r.Visualizations)
	}
}

func TestDrawScheduleRepeats(t *testing.T) {
	cfg := DefaultConfig(7, 60*time.Second).Schedule
	cfg.Duration, cfg.Nodes = 60*time.Second, 3
	a, b := DrawSchedule(7, cfg), DrawSchedule(7, cfg)
	if FormatSchedule(a) != FormatSchedule(b) || len(a) == 0 {
		t.Fatalf("seed 7 drew two schedules:\n%s\n%s", FormatSchedule(a), FormatSchedule(b))
	}
	if FormatSchedule(a) == FormatSchedule(DrawSchedule(8, cfg)) {
		t.Fatal("seeds 7 and 8 drew the same schedule")
	}
	end := time.Duration(0)
	for _, f := range a {
		if f.At < end || f.At+f.Length > cfg.Duration || f.Node < 0 || f.Node >= 3 {
			t.Fatalf("fault %v overlaps the previous one or leaves the schedule", f)
		}
		end = f.At + f.Length
	}
}

func TestCheckGroup(t *testing.T) {
	final := logOf(k(0), k(1), k(2))
	tests := []struct {
		name  string
		reads []Read
		want  string
	}{
		{"in order", logOf(k(0), k(1), k(2)), ""},
		{"again after a rebalance", append(logOf(k(0), k(1)), logOf(k(0), k(1), k(2))...), ""},
		{"skips", []Read{{Offset: 0, Key: k(0)}, {Offset: 2, Key: k(2)}}, "group-skip"},
		{"inconsistent", []Read{{Offset: 0, Key: k(1)}}, "inconsistent-read"},
		{"past the end", logOf(k(0), k(1), k(2), k(3)), "lost-read"},
		{"over a control record", []Read{{Offset: 0, Key: k(0)}, {Offset: 2, Key: k(2)}}, ""},
		{"at a control record", []Read{{Offset: 1, Key: k(1)}}, "inconsistent-read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{}
			log := final
			if tc.name == "over a control record" || tc.name == "at a control record" {
				log = logWith(k(0), ctl, k(2))
			}
			CheckGroup(r, map[int32][]Read{0: tc.reads}, map[int32][]Read{0: log})
			if tc.want == "" && !r.OK() || tc.want != "" && r.Counts[tc.want] == 0 {
				t.Fatalf("violations %v, want %q", r.Violations, tc.want)
			}
		})
	}
}
