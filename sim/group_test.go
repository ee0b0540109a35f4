package sim

import (
	"slices"
	"testing"
)

// groupSim is a Sim with just enough to run the group checks on a made-up history.
func groupSim(partitions int) *Sim {
	s := &Sim{tr: newTracer(nil)}
	s.cfg.Workload.Partitions = partitions
	s.partFailed = make([]int, partitions)
	s.hist.grp = groupHistory{
		commits: make([][]*commitOp, partitions),
		reads:   make([][]offsetRead, partitions),
		gens:    map[int32]*generationView{},
	}
	for range 2 {
		s.clients = append(s.clients, &clientConn{who: "c" + itoa(len(s.clients))})
	}
	return s
}

func TestGroupCommitCheck(t *testing.T) {
	type c struct {
		value, call, ret int64 // ret < 0: unknown outcome
	}
	type r struct{ value, call, ret int64 }
	tests := []struct {
		name    string
		commits []c
		reads   []r
		want    bool // a violation
	}{
		{"nothing committed", nil, []r{{-1, 0, 1}}, false},
		{"read sees the ack", []c{{5, 0, 10}}, []r{{5, 11, 12}}, false},
		{"read concurrent with the commit", []c{{5, 0, 10}}, []r{{-1, 5, 12}}, false},
		{"acknowledged commit not visible", []c{{5, 0, 10}}, []r{{-1, 11, 12}}, true},
		{"overwritten by an older value", []c{{5, 0, 10}, {7, 20, 30}}, []r{{5, 31, 32}}, true},
		{"a member commits lower", []c{{7, 0, 10}, {5, 20, 30}}, []r{{5, 31, 32}}, false},
		{"concurrent commits, either wins", []c{{5, 0, 10}, {7, 5, 15}}, []r{{5, 20, 21}, {5, 22, 23}}, false},
		{"goes backwards between reads", []c{{5, 0, 10}, {7, 11, -1}}, []r{{7, 20, 21}, {5, 22, 23}}, true},
		{"unknown commit may land late", []c{{5, 0, -1}}, []r{{-1, 20, 21}, {5, 22, 23}}, false},
		{"never committed", []c{{5, 0, 10}}, []r{{6, 20, 21}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := groupSim(1)
			for _, cm := range tt.commits {
				s.now = cm.call
				op := s.beginCommit(0, 0, cm.value, 1)
				s.now = cm.ret
				if cm.ret < 0 {
					s.endCommit(op, outUnknown)
				} else {
					s.endCommit(op, outAcked)
				}
			}
			for _, rd := range tt.reads {
				s.now = rd.ret
				s.readCommitted(s.clients[1], rd.call, 0, rd.value, 0)
			}
			s.checkGroupCommits()
			if got := s.res.ViolationCount > 0; got != tt.want {
				t.Fatalf("violation %v, want %v: %v", got, tt.want, s.res.Violations)
			}
		})
	}
}

func TestGroupAssignmentCheck(t *testing.T) {
	plan := rangeAssign([]string{"b", "a"}, 3)
	if !slices.Equal(plan["a"], []int32{0, 1}) || !slices.Equal(plan["b"], []int32{2}) {
		t.Fatalf("range assignment %v", plan)
	}
	s := groupSim(3)
	s.groupPlan(s.clients[0], 1, "a", plan)
	s.groupAssigned(s.clients[0], 1, "a", []int32{0, 1})
	s.groupAssigned(s.clients[1], 1, "b", []int32{2})
	if s.res.ViolationCount != 0 {
		t.Fatalf("a good generation: %v", s.res.Violations)
	}
	s.groupAssigned(s.clients[1], 1, "c", []int32{1}) // overlap, and no leader assigned it
	if s.res.ViolationCount != 2 {
		t.Fatalf("overlap: %v", s.res.Violations)
	}

	// A generation formed twice (the first never synced), with one member first: the
	// answers of the second are checked against the second plan only.
	s = groupSim(3)
	s.groupPlan(s.clients[0], 3, "a", map[string][]int32{"a": {0, 1, 2}})
	s.groupPlan(s.clients[0], 3, "a", plan)
	s.groupAssigned(s.clients[0], 3, "a", []int32{0, 1})
	s.groupAssigned(s.clients[1], 3, "b", []int32{2})
	if s.res.ViolationCount != 0 {
		t.Fatalf("a generation formed twice: %v", s.res.Violations)
	}

	s = groupSim(3)
	s.groupPlan(s.clients[0], 2, "a", map[string][]int32{"a": {0}, "b": {1}})
	s.groupAssigned(s.clients[0], 2, "a", []int32{0})
	s.groupAssigned(s.clients[1], 2, "b", []int32{1})
	if s.res.ViolationCount != 1 || s.res.Violations[0].Partition != 2 {
		t.Fatalf("partition 2 owned by none: %v", s.res.Violations)
	}
}
