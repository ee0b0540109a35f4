package sim

import (
	"math"
	"slices"
)

// commitOp is one partition of one OffsetCommit in the history.
type commitOp struct {
	id     int
	client int
	part   int32
	value  int64
	gen    int32
	callUs int64
	retUs  int64 // math.MaxInt64 while the outcome is unknown or pending
	out    outcome
}

// offsetRead is one partition of an OffsetFetch answered without error.
type offsetRead struct {
	client int
	node   int
	value  int64 // -1: nothing committed
	callUs int64
	retUs  int64
}

// generationView is what the members of one generation were told.
type generationView struct {
	// plans are the leaders' assignments for the generation (a generation whose
	// SyncGroup never completed may be formed again after a coordinator failover,
	// with another leader).
	plans []map[string][]int32
	// got is each member's assignment, as its SyncGroup answer gave it.
	got map[string][]int32
	// owner is the member each partition was given to.
	owner   map[int32]string
	covered bool
}

// groupHistory is what the group members saw, for the group checks.
type groupHistory struct {
	commits [][]*commitOp // per partition, in call order
	reads   [][]offsetRead
	gens    map[int32]*generationView
	ncommit int
}

func (s *Sim) beginCommit(client int, part int32, value int64, gen int32) *commitOp {
	g := &s.hist.grp
	op := &commitOp{id: g.ncommit, client: client, part: part, value: value, gen: gen, callUs: s.now, retUs: math.MaxInt64}
	g.ncommit++
	g.commits[part] = append(g.commits[part], op)
	s.tr.line(s.now, s.clients[client].who, "commit-call").i("commit", int64(op.id)).i("p", int64(part)).
		i("offset", value).i("gen", int64(gen)).end()
	return op
}

func (s *Sim) endCommit(op *commitOp, out outcome) {
	op.out = out
	if out == outAcked {
		op.retUs = s.now
	}
	s.tr.line(s.now, s.clients[op.client].who, "commit-return").i("commit", int64(op.id)).s("out", outcomeNames[out]).end()
}

// readCommitted records an OffsetFetch's answer for part: value (-1 for none) read by a
// request sent at callUs to node.
func (s *Sim) readCommitted(cc *clientConn, callUs int64, part int32, value int64, node int) {
	g := &s.hist.grp
	g.reads[part] = append(g.reads[part], offsetRead{client: cc.idx, node: node, value: value, callUs: callUs, retUs: s.now})
	s.tr.line(s.now, cc.who, "committed-read").i("p", int64(part)).i("offset", value).i("node", int64(node)).end()
}

func (s *Sim) generation(gen int32) *generationView {
	g := &s.hist.grp
	gv := g.gens[gen]
	if gv == nil {
		gv = &generationView{got: map[string][]int32{}, owner: map[int32]string{}}
		g.gens[gen] = gv
	}
	return gv
}

// groupPlan records the assignment the leader of generation gen is about to send.
func (s *Sim) groupPlan(cc *clientConn, gen int32, leader string, plan map[string][]int32) {
	gv := s.generation(gen)
	gv.plans = append(gv.plans, plan)
	s.tr.line(s.now, cc.who, "plan").i("gen", int64(gen)).s("leader", leader).i("members", int64(len(plan))).end()
}

// groupAssigned checks one member's SyncGroup answer for generation gen: no partition of
// the generation goes to two members, the member gets what a leader of the generation
// assigned it, and once every member of a plan has its answer, every partition is owned.
func (s *Sim) groupAssigned(cc *clientConn, gen int32, member string, parts []int32) {
	gv := s.generation(gen)
	if prev, ok := gv.got[member]; ok && !slices.Equal(prev, parts) {
		s.violate("group-assignment", -1, "%s: member %s was assigned [%s] in generation %d, and [%s] before in the same generation", cc.who, member, partsString(parts), gen, partsString(prev))
	}
	gv.got[member] = parts
	for _, p := range parts {
		if o, ok := gv.owner[p]; ok && o != member {
			s.violate("group-assignment", p, "%s: partition %d is assigned to both %s and %s in generation %d", cc.who, p, o, member, gen)
		}
		gv.owner[p] = member
	}
	relayed := false
	for _, plan := range gv.plans {
		if want, ok := plan[member]; ok && slices.Equal(want, parts) {
			relayed = true
		}
	}
	if !relayed {
		s.violate("group-assignment", -1, "%s: member %s got [%s] in generation %d, which no leader of the generation assigned it", cc.who, member, partsString(parts), gen)
	}
	for _, plan := range gv.plans {
		if gv.covered || len(plan) != len(gv.got) {
			continue
		}
		// The answers are this plan's (another plan of the generation may have had as
		// many members, its SyncGroup never completed).
		all := true
		for id, want := range plan {
			got, ok := gv.got[id]
			all = all && ok && slices.Equal(got, want)
		}
		if !all {
			continue
		}
		gv.covered = true
		for p := int32(0); p < int32(s.cfg.Workload.Partitions); p++ {
			if _, ok := gv.owner[p]; !ok {
				s.violate("group-assignment", p, "generation %d: every member has its assignment and partition %d is owned by none", gen, p)
			}
		}
	}
}

// checkGroupLive checks, when the clients stop, that the group is stable and consumed
// everything: every member in one generation, every partition owned by exactly one of
// them, and a commit of every partition's acknowledged end acknowledged.
func (s *Sim) checkGroupLive() {
	if len(s.members) == 0 {
		return
	}
	gen := int32(-2)
	owner := map[int32]string{}
	for _, m := range s.members {
		if m.stopped {
			return // a check failed already
		}
		if m.phase != mStable {
			s.violate("group-liveness", -1, "%s: %s in the group %dms after the heal (member %q, generation %d)", m.cc.who, memberPhaseNames[m.phase], s.ph.progressMs+s.ph.quiesceMs, m.memberID, m.generation)
			continue
		}
		if gen == -2 {
			gen = m.generation
		} else if m.generation != gen {
			s.violate("group-liveness", -1, "%s: in generation %d, another member in %d, %dms after the heal", m.cc.who, m.generation, gen, s.ph.progressMs+s.ph.quiesceMs)
		}
		for _, p := range m.assigned {
			if o, ok := owner[p]; ok {
				s.violate("group-assignment", p, "%s: partition %d is owned by %s and %s when the group is stable", m.cc.who, p, o, m.cc.who)
			}
			owner[p] = m.cc.who
		}
	}
	if s.res.ViolationCount > 0 && gen == -2 {
		return
	}
	for p := int32(0); p < int32(s.cfg.Workload.Partitions); p++ {
		if _, ok := owner[p]; !ok && gen != -2 {
			s.violate("group-assignment", p, "partition %d is owned by no member of the stable generation %d", p, gen)
		}
		best := int64(-1)
		for _, op := range s.hist.grp.commits[p] {
			if op.out == outAcked {
				best = max(best, op.value)
			}
		}
		if end := s.hist.ackedEnd[p]; best < end {
			s.violate("group-liveness", p, "the group's highest acknowledged commit of partition %d is %d; writes were acknowledged up to %d", p, best, end)
		}
	}
}

// checkGroupCommits checks every OffsetFetch answer against the commits: the offset read
// is one some member committed (or none, -1, before any commit was acknowledged), and
// no acknowledged commit was overwritten by an older one: a read returns a value v only
// if no commit acknowledged before the read was sent began after every commit of v
// ended (the acknowledged commit is lost), and no earlier read returned a value whose
// every commit began after every commit of v ended (the offset went backwards). Commits
// of unknown outcome may take effect at any time after their call.
func (s *Sim) checkGroupCommits() {
	g := &s.hist.grp
	for p := range g.reads {
		commits := g.commits[p]
		// span of a value: the latest end and the earliest call of its commits.
		type span struct{ lastRet, firstCall int64 }
		spans := map[int64]span{-1: {math.MinInt64, math.MinInt64}}
		for _, op := range commits {
			if op.out != outAcked && op.out != outUnknown {
				continue
			}
			sp, ok := spans[op.value]
			if !ok {
				sp = span{math.MinInt64, math.MaxInt64}
			}
			sp.lastRet = max(sp.lastRet, op.retUs)
			sp.firstCall = min(sp.firstCall, op.callUs)
			spans[op.value] = sp
		}
		var seen []offsetRead // reads that returned, in order of return
		for _, r := range sortedReads(g.reads[p]) {
			sp, ok := spans[r.value]
			if !ok || sp.firstCall > r.retUs {
				s.violate("group-commit", int32(p), "%s: OffsetFetch from n%d (sent at %s) answered offset %d for partition %d, which no member committed before", s.clients[r.client].who, r.node, fmtUs(r.callUs), r.value, p)
				return
			}
			for _, op := range commits {
				if op.out == outAcked && op.retUs < r.callUs && op.callUs > sp.lastRet && op.value != r.value {
					s.violate("group-commit", int32(p), "%s: OffsetFetch from n%d (sent at %s, answered at %s) answered offset %d for partition %d; commit %d of offset %d by %s (generation %d) was acknowledged at %s, after every commit of %d: an acknowledged commit is lost",
						s.clients[r.client].who, r.node, fmtUs(r.callUs), fmtUs(r.retUs), r.value, p, op.id, op.value, s.clients[op.client].who, op.gen, fmtUs(op.retUs), r.value)
					return
				}
			}
			for _, e := range seen {
				if e.retUs >= r.callUs || e.value == r.value {
					continue
				}
				if es := spans[e.value]; es.firstCall > sp.lastRet {
					s.violate("group-commit", int32(p), "%s: OffsetFetch from n%d (sent at %s) answered offset %d for partition %d, after %s read %d from n%d (answered at %s), which was committed only after every commit of %d: the committed offset went backwards",
						s.clients[r.client].who, r.node, fmtUs(r.callUs), r.value, p, s.clients[e.client].who, e.value, e.node, fmtUs(e.retUs), r.value)
					return
				}
			}
			seen = append(seen, r)
		}
	}
}

func sortedReads(rs []offsetRead) []offsetRead {
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b offsetRead) int {
		switch {
		case a.retUs < b.retUs:
			return -1
		case a.retUs > b.retUs:
			return 1
		}
		return 0
	})
	return out
}
