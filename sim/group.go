package sim

import (
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupName is the one consumer group of the workload; its members subscribe to the
// workload's topic.
const groupName = "sim-group"

// Group member timing, in simulated time. The nodes accept session timeouts from
// simGroupMinSessionMs (node.go).
const (
	minSessionMs   = 1000
	maxSessionMs   = 2000
	minRebalanceMs = 1500
	maxRebalanceMs = 3000
	// joinExtraUs is added to the rebalance timeout for a JoinGroup's or SyncGroup's
	// request timeout, as the Java client does (rebalance.timeout.ms + 5s there).
	joinExtraUs = 1_000_000
	// minLifeUs and maxLifeUs bound how long a member stays before it leaves or crashes
	// (during the fault window only); minAwayUs and maxAwayUs how long it stays away.
	minLifeUs = 300_000
	maxLifeUs = 4_000_000
	minAwayUs = 100_000
	maxAwayUs = 2_500_000
	// maxCommitThinkUs bounds the pause between a fetch that read something and the
	// commit of it.
	maxCommitThinkUs = 50_000
	// initialRebalanceDelayMs and offsetsTopicPartitions are the nodes' settings.
	initialRebalanceDelayMs = 200
	offsetsTopicPartitions  = 3
)

// Member phases. A member out of the group waits for rejoinAtUs; in it, it finds the
// coordinator whenever it does not know it (coord < 0) and then does its phase's step.
type memberPhase uint8

const (
	mOut     memberPhase = iota // not a member; rejoins at rejoinAtUs
	mJoin                       // JoinGroup to send or out
	mSync                       // SyncGroup to send or out
	mOffsets                    // OffsetFetch of the assignment's committed offsets
	mStable                     // fetching, committing, heartbeating
	mLeaving                    // LeaveGroup out
)

var memberPhaseNames = [...]string{"out", "join", "sync", "offsets", "stable", "leaving"}

// Kinds of a member's calls.
const (
	gkFind = iota
	gkJoin
	gkSync
	gkHeartbeat
	gkOffsetFetch
	gkCommit
	gkLeave
	gkFetch
)

// memberCall is what a member remembers of a call in flight.
type memberCall struct {
	kind  int
	inc   uint64 // the member's incarnation when sent
	fetch int64  // fetch: the fetch epoch when sent
	part  int32  // fetch: the partition
	// commits: the history's commit ops, by partition order of the request.
	commits []*commitOp
	// audit is set on an OffsetFetch that only reads (the positions stay).
	audit bool
}

// groupMember is a consumer group member speaking the classic protocol as a Kafka
// consumer does: FindCoordinator, JoinGroup (range assignment by the leader), SyncGroup,
// OffsetFetch, then fetch, commit and heartbeat; it rejoins on REBALANCE_IN_PROGRESS,
// ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID, follows the coordinator on NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE and COORDINATOR_LOAD_IN_PROGRESS, and the partitions'
// leaders as the consumer does. During the fault window it sometimes leaves
// (LeaveGroup) and sometimes crashes (its connections reset, its session times out),
// and comes back later as a new member. One coordinator request is out at a time, and
// one fetch.
type groupMember struct {
	s      *Sim
	cc     *clientConn
	rng    *rand.Rand
	routes *routes
	// versions
	vFind, vJoin, vSync, vHB, vLeave, vCommit, vOffFetch, vFetch int16
	sessionMs, rebalanceMs                                       int32

	phase      memberPhase
	inc        uint64 // bumps on every crash or leave: answers of an earlier one are dropped
	coord      int    // the coordinator's node index, -1 unknown
	coordBusy  bool
	coordAtUs  int64 // the next coordinator request may go then
	memberID   string
	generation int32
	leader     bool
	plan       map[string][]int32 // the leader's assignment for the generation
	assigned   []int32            // sorted
	pos        map[int32]int64    // next offset to read, per assigned partition
	fetchEpoch int64              // bumps when the assignment changes
	fetchBusy  bool
	fetchAtUs  int64
	nextPart   int
	hbAtUs     int64
	commitAtUs int64
	auditAtUs  int64
	lifeAtUs   int64 // leave or crash then (0: never)
	rejoinAtUs int64
	stopped    bool
	calls      map[*call]memberCall
	sending    *memberCall // the call being sent (sendCall)
}

func (m *groupMember) init() {
	m.rng = m.s.clientRand(m.cc)
	m.routes = newRoutes(m.cc, m.rng)
	r := m.rng
	m.vFind = int16(between(r, 0, 4))
	m.vJoin = int16(between(r, 1, 9))
	m.vSync = int16(between(r, 0, 5))
	m.vHB = int16(between(r, 0, 4))
	m.vLeave = int16(between(r, 0, 5))
	m.vCommit = int16(between(r, 2, 8))
	m.vOffFetch = int16(between(r, 1, 8))
	m.vFetch = int16(between(r, 4, 12))
	m.sessionMs = int32(between(r, minSessionMs, maxSessionMs))
	m.rebalanceMs = int32(between(r, minRebalanceMs, maxRebalanceMs))
	m.coord = -1
	m.calls = map[*call]memberCall{}
}

// start makes the member join.
func (m *groupMember) start() {
	m.rejoinAtUs = m.s.now + between(m.rng, 0, 100_000)
	m.arm()
}

func (m *groupMember) trace(kind string) *tracer {
	return m.s.tr.line(m.s.now, m.cc.who, kind)
}

// arm sets the client's timer for the earliest thing the member waits for.
func (m *groupMember) arm() {
	if m.stopped {
		return
	}
	next := int64(-1)
	at := func(t int64) {
		if t > 0 && (next < 0 || t < next) {
			next = t
		}
	}
	if m.phase == mOut {
		at(m.rejoinAtUs)
	} else {
		now := m.s.now
		if !m.coordBusy {
			if m.coord < 0 || m.phase != mStable {
				at(max(m.coordAtUs, now))
			} else {
				// Stable: the coordinator requests are the heartbeat, a commit, an audit.
				for _, t := range []int64{m.hbAtUs, m.commitAtUs, m.auditAtUs} {
					if t > 0 {
						at(max(t, m.coordAtUs))
					}
				}
			}
		}
		at(m.lifeAtUs)
		if m.phase == mStable && !m.fetchBusy && len(m.assigned) > 0 {
			at(max(m.fetchAtUs, now))
		}
	}
	if next >= 0 {
		m.cc.wakeIn(max(next-m.s.now, 0))
	}
}

func (m *groupMember) wake() {
	if m.stopped {
		return
	}
	now := m.s.now
	if m.phase == mOut {
		if now >= m.rejoinAtUs {
			m.join()
		}
	} else if m.lifeAtUs > 0 && now >= m.lifeAtUs && !m.s.healed {
		m.lifeAtUs = 0
		if m.rng.IntN(2) == 0 {
			m.crash()
		} else {
			m.leave()
		}
	}
	if m.phase != mOut && !m.coordBusy && now >= m.coordAtUs {
		m.coordStep()
	}
	if m.phase == mStable && !m.fetchBusy && now >= m.fetchAtUs {
		m.fetch()
	}
	m.arm()
}

// join starts a membership: a new member, with no member id.
func (m *groupMember) join() {
	m.inc++
	m.phase = mJoin
	m.memberID = ""
	m.generation = -1
	m.coordAtUs = 0
	m.resetAssignment()
	if !m.s.healed {
		m.lifeAtUs = m.s.now + between(m.rng, minLifeUs, maxLifeUs)
	}
	m.trace("member-join").end()
}

// rejoin goes back to JoinGroup with the member id it has (none after
// UNKNOWN_MEMBER_ID): the generation changed or is changing.
func (m *groupMember) rejoin(why string) {
	m.phase = mJoin
	m.resetAssignment()
	m.trace("member-rejoin").s("why", why).s("member", m.memberID).end()
}

func (m *groupMember) resetAssignment() {
	m.assigned = nil
	m.pos = nil
	m.commitAtUs = 0
	m.auditAtUs = 0
	m.plan = nil
	m.leader = false
	m.fetchEpoch++
}

// crash stops the member at once: its connections reset, its session times out.
func (m *groupMember) crash() {
	m.trace("member-crash").s("member", m.memberID).i("gen", int64(m.generation)).end()
	m.out()
	m.cc.drop()
}

// leave sends LeaveGroup, when the member has an id and a coordinator; otherwise it
// just goes.
func (m *groupMember) leave() {
	m.trace("member-leave").s("member", m.memberID).i("gen", int64(m.generation)).end()
	if m.memberID == "" || m.coord < 0 {
		m.out()
		return
	}
	if m.coordBusy {
		// The call out is dropped (its answer ignored), as a closing client does.
		m.inc++
	}
	m.resetAssignment()
	m.phase = mLeaving
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = m.vLeave
	req.Group = groupName
	if m.vLeave >= 3 {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.memberID
		req.Members = append(req.Members, lm)
	} else {
		req.MemberID = m.memberID
	}
	m.sendCoord(gkLeave, req)
}

// out ends the membership; the member rejoins later (at once after the heal).
func (m *groupMember) out() {
	m.inc++
	m.phase = mOut
	m.resetAssignment()
	m.memberID = ""
	m.coordBusy = false
	m.fetchBusy = false
	m.lifeAtUs = 0
	m.rejoinAtUs = m.s.now + between(m.rng, minAwayUs, maxAwayUs)
	if m.s.healed {
		m.rejoinAtUs = m.s.now + backoff(m.rng)
	}
}

// heal makes a member that is away come back at once.
func (m *groupMember) heal() {
	m.lifeAtUs = 0
	if m.phase == mOut {
		m.rejoinAtUs = m.s.now + backoff(m.rng)
	}
	m.arm()
}

func (m *groupMember) sendCoord(kind int, req kmsg.Request) {
	m.sendCoordCall(req, memberCall{kind: kind})
}

// sendCoordCall sends a coordinator request (FindCoordinator to any node); mc is what
// to remember of it.
func (m *groupMember) sendCoordCall(req kmsg.Request, mc memberCall) {
	kind := mc.kind
	node := m.coord
	if kind == gkFind {
		node = m.routes.anyNode()
	}
	m.coordBusy = true
	timeout := int64(0)
	if kind == gkJoin || kind == gkSync {
		timeout = int64(m.rebalanceMs)*1000 + joinExtraUs
	}
	mc.inc = m.inc
	m.sendCall(node, req, timeout, mc)
}

// sendCall sends req and remembers mc for its answer. The call may be lost before
// sendTimeout returns (a torn write closes the connection at once): sending holds mc
// for lost meanwhile.
func (m *groupMember) sendCall(node int, req kmsg.Request, timeoutUs int64, mc memberCall) {
	m.sending = &mc
	c := m.cc.sendTimeout(node, req, 0, timeoutUs)
	if m.sending != nil {
		m.calls[c] = mc
	}
	m.sending = nil
}

// coordStep sends the coordinator request the phase needs next.
func (m *groupMember) coordStep() {
	if m.coord < 0 {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = m.vFind
		if m.vFind >= 4 {
			req.CoordinatorKeys = []string{groupName}
		} else {
			req.CoordinatorKey = groupName
		}
		m.sendCoord(gkFind, req)
		return
	}
	switch m.phase {
	case mJoin:
		m.sendJoin()
	case mSync:
		m.sendSync()
	case mOffsets:
		m.sendOffsetFetch(false)
	case mStable:
		now := m.s.now
		switch {
		case m.commitAtUs > 0 && now >= m.commitAtUs:
			m.sendCommit()
		case now >= m.hbAtUs:
			m.sendHeartbeat()
		case m.auditAtUs > 0 && now >= m.auditAtUs:
			m.auditAtUs = 0
			m.sendOffsetFetch(true)
		}
	}
}

func (m *groupMember) sendJoin() {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = m.vJoin
	req.Group = groupName
	req.SessionTimeoutMillis = m.sessionMs
	req.RebalanceTimeoutMillis = m.rebalanceMs
	req.MemberID = m.memberID
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topicName}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	m.sendCoord(gkJoin, req)
}

func (m *groupMember) sendSync() {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = m.vSync
	req.Group = groupName
	req.Generation = m.generation
	req.MemberID = m.memberID
	if m.vSync >= 5 {
		pt, pn := "consumer", "range"
		req.ProtocolType, req.Protocol = &pt, &pn
	}
	if m.leader {
		for _, id := range sortedKeys(m.plan) {
			a := kmsg.NewSyncGroupRequestGroupAssignment()
			a.MemberID = id
			a.MemberAssignment = encodeAssignment(m.plan[id])
			req.GroupAssignment = append(req.GroupAssignment, a)
		}
	}
	m.sendCoord(gkSync, req)
}

func (m *groupMember) sendHeartbeat() {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = m.vHB
	req.Group = groupName
	req.Generation = m.generation
	req.MemberID = m.memberID
	m.hbAtUs = m.s.now + int64(m.sessionMs)*1000/3
	m.sendCoord(gkHeartbeat, req)
}

// sendOffsetFetch asks for the committed offsets of every partition of the topic (all
// are recorded for the check); audit leaves the positions as they are.
func (m *groupMember) sendOffsetFetch(audit bool) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = m.vOffFetch
	parts := make([]int32, m.s.cfg.Workload.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	if m.vOffFetch >= 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = groupName
		t := kmsg.NewOffsetFetchRequestGroupTopic()
		t.Topic, t.Partitions = topicName, parts
		g.Topics = append(g.Topics, t)
		req.Groups = append(req.Groups, g)
	} else {
		req.Group = groupName
		t := kmsg.NewOffsetFetchRequestTopic()
		t.Topic, t.Partitions = topicName, parts
		req.Topics = append(req.Topics, t)
	}
	m.sendCoordCall(req, memberCall{kind: gkOffsetFetch, audit: audit})
}

// sendCommit commits the positions of the assigned partitions.
func (m *groupMember) sendCommit() {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = m.vCommit
	req.Group = groupName
	req.Generation = m.generation
	req.MemberID = m.memberID
	req.RetentionTimeMillis = -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topicName
	var ops []*commitOp
	for _, p := range m.assigned {
		pp := kmsg.NewOffsetCommitRequestTopicPartition()
		pp.Partition = p
		pp.Offset = m.pos[p]
		pp.LeaderEpoch = -1
		t.Partitions = append(t.Partitions, pp)
		ops = append(ops, m.s.beginCommit(m.cc.idx, p, m.pos[p], m.generation))
	}
	req.Topics = append(req.Topics, t)
	m.commitAtUs = 0
	m.sendCoordCall(req, memberCall{kind: gkCommit, commits: ops})
}

// fetch reads the next assigned partition from its position.
func (m *groupMember) fetch() {
	if len(m.assigned) == 0 {
		return
	}
	part := m.assigned[m.nextPart%len(m.assigned)]
	m.nextPart++
	node := m.routes.leaderOf(part)
	if node < 0 {
		m.fetchAtUs = m.s.now + backoff(m.rng)
		return
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = m.vFetch
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(between(m.rng, 5, 200))
	req.MinBytes = 1
	req.MaxBytes = 64 << 10
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = topicName
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = part
	p.FetchOffset = m.pos[part]
	p.PartitionMaxBytes = 16 << 10
	if m.routes.clustered() {
		p.CurrentLeaderEpoch = m.routes.epoch[part]
	}
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	m.fetchBusy = true
	m.sendCall(node, req, 0, memberCall{kind: gkFetch, inc: m.inc, fetch: m.fetchEpoch, part: part})
}

func (m *groupMember) lost(c *call) {
	if c.tag == metaTag {
		m.routes.lost()
		m.arm()
		return
	}
	mc, ok := m.calls[c]
	if !ok && m.sending != nil {
		mc, ok = *m.sending, true
		m.sending = nil
	}
	if !ok {
		return
	}
	delete(m.calls, c)
	for _, op := range mc.commits {
		m.s.endCommit(op, outUnknown)
	}
	if mc.inc != m.inc {
		return
	}
	if mc.kind == gkFetch {
		m.fetchBusy = false
		m.routes.lostNode(c.node)
		if mc.fetch == m.fetchEpoch {
			m.fetchAtUs = m.s.now + backoff(m.rng)
		}
		m.arm()
		return
	}
	m.coordBusy = false
	if mc.kind == gkLeave {
		m.out()
		m.arm()
		return
	}
	// A lost connection to the coordinator: find it again, as a Kafka client marks the
	// coordinator dead on a disconnect.
	m.coord = -1
	m.coordAtUs = m.s.now + backoff(m.rng)
	m.arm()
}

func (m *groupMember) reply(c *call, resp kmsg.Response) {
	if r, ok := resp.(*kmsg.MetadataResponse); ok {
		m.routes.take(r)
		m.wake()
		return
	}
	mc, ok := m.calls[c]
	if !ok {
		return
	}
	delete(m.calls, c)
	if mc.kind == gkCommit {
		m.commitAnswered(mc, resp.(*kmsg.OffsetCommitResponse))
	}
	if mc.kind == gkOffsetFetch {
		m.recordOffsets(c, resp.(*kmsg.OffsetFetchResponse))
	}
	if mc.inc != m.inc || m.stopped {
		return
	}
	if mc.kind == gkFetch {
		m.fetchBusy = false
		if mc.fetch == m.fetchEpoch {
			m.fetched(mc.part, resp.(*kmsg.FetchResponse))
		}
		m.wake()
		return
	}
	m.coordBusy = false
	switch mc.kind {
	case gkFind:
		m.found(resp.(*kmsg.FindCoordinatorResponse))
	case gkJoin:
		m.joined(resp.(*kmsg.JoinGroupResponse))
	case gkSync:
		m.synced(resp.(*kmsg.SyncGroupResponse))
	case gkHeartbeat:
		m.groupCode("heartbeat", resp.(*kmsg.HeartbeatResponse).ErrorCode)
	case gkOffsetFetch:
		m.offsetsFetched(mc, resp.(*kmsg.OffsetFetchResponse))
	case gkCommit:
		m.committedAnswer(resp.(*kmsg.OffsetCommitResponse))
	case gkLeave:
		m.trace("member-left").i("code", int64(resp.(*kmsg.LeaveGroupResponse).ErrorCode)).end()
		m.out()
	}
	m.wake()
}

// groupCode handles a coordinator answer's error code the way a Kafka consumer does and
// reports whether it was 0.
func (m *groupMember) groupCode(api string, code int16) bool {
	if code == 0 {
		return true
	}
	m.s.checkCode(m.cc, api, -1, code)
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
		m.coord = -1
		m.coordAtUs = m.s.now + backoff(m.rng)
	case kerr.CoordinatorLoadInProgress.Code:
		m.coordAtUs = m.s.now + backoff(m.rng)
	case kerr.UnknownMemberID.Code:
		m.memberID = ""
		m.generation = -1
		m.rejoin(api + ": unknown member")
	case kerr.IllegalGeneration.Code:
		m.rejoin(api + ": illegal generation")
	case kerr.RebalanceInProgress.Code:
		if m.phase != mJoin {
			m.rejoin(api + ": rebalance in progress")
		}
	default:
		m.coordAtUs = m.s.now + backoff(m.rng)
	}
	return false
}

func (m *groupMember) found(r *kmsg.FindCoordinatorResponse) {
	code, node := r.ErrorCode, r.NodeID
	if m.vFind >= 4 {
		if len(r.Coordinators) != 1 {
			m.s.violate("protocol", -1, "%s: FindCoordinator v4 answered %d coordinators for one key", m.cc.who, len(r.Coordinators))
			m.coordAtUs = m.s.now + backoff(m.rng)
			return
		}
		code, node = r.Coordinators[0].ErrorCode, r.Coordinators[0].NodeID
	}
	if code != 0 {
		m.s.checkCode(m.cc, "find-coordinator", -1, code)
		m.coordAtUs = m.s.now + backoff(m.rng)
		return
	}
	if node < 0 || int(node) >= len(m.s.nodes) {
		m.s.violate("protocol", -1, "%s: FindCoordinator named node %d", m.cc.who, node)
		m.coordAtUs = m.s.now + backoff(m.rng)
		return
	}
	m.coord = int(node)
	m.coordAtUs = 0
	m.trace("coordinator").i("node", int64(node)).end()
}

func (m *groupMember) joined(r *kmsg.JoinGroupResponse) {
	if r.ErrorCode == kerr.MemberIDRequired.Code {
		m.memberID = r.MemberID
		m.trace("member-id").s("member", m.memberID).end()
		return
	}
	if m.phase != mJoin || !m.groupCode("join", r.ErrorCode) {
		return
	}
	m.memberID, m.generation = r.MemberID, r.Generation
	m.leader = r.LeaderID == r.MemberID
	m.phase = mSync
	m.trace("joined").s("member", m.memberID).i("gen", int64(r.Generation)).s("leader", r.LeaderID).
		i("members", int64(len(r.Members))).end()
	if !m.leader {
		return
	}
	var ids []string
	for _, mm := range r.Members {
		ids = append(ids, mm.MemberID)
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(mm.ProtocolMetadata); err != nil || !slices.Contains(meta.Topics, topicName) {
			m.s.violate("group-protocol", -1, "%s: JoinGroup relayed member %s's metadata unreadable or changed (%v)", m.cc.who, mm.MemberID, err)
		}
	}
	m.plan = rangeAssign(ids, m.s.cfg.Workload.Partitions)
	m.s.groupPlan(m.cc, r.Generation, m.memberID, m.plan)
}

func (m *groupMember) synced(r *kmsg.SyncGroupResponse) {
	if m.phase != mSync || !m.groupCode("sync", r.ErrorCode) {
		return
	}
	var a kmsg.ConsumerMemberAssignment
	var parts []int32
	if len(r.MemberAssignment) > 0 {
		if err := a.ReadFrom(r.MemberAssignment); err != nil {
			m.s.violate("group-protocol", -1, "%s: SyncGroup generation %d: assignment does not parse: %v", m.cc.who, m.generation, err)
			m.rejoin("bad assignment")
			return
		}
		for _, t := range a.Topics {
			if t.Topic == topicName {
				parts = append(parts, t.Partitions...)
			}
		}
	}
	slices.Sort(parts)
	m.assigned = parts
	m.pos = map[int32]int64{}
	m.phase = mOffsets
	m.trace("synced").s("member", m.memberID).i("gen", int64(m.generation)).s("parts", partsString(parts)).end()
	m.s.groupAssigned(m.cc, m.generation, m.memberID, parts)
}

func (m *groupMember) offsetsFetched(mc memberCall, r *kmsg.OffsetFetchResponse) {
	parts, code := offsetFetchParts(r)
	if !m.groupCode("offset-fetch", code) {
		return
	}
	if mc.audit || m.phase != mOffsets {
		return
	}
	for _, p := range parts {
		if !slices.Contains(m.assigned, p.Partition) {
			continue
		}
		if p.ErrorCode != 0 {
			m.s.checkCode(m.cc, "offset-fetch", p.Partition, p.ErrorCode)
			m.coordAtUs = m.s.now + backoff(m.rng)
			return
		}
		m.pos[p.Partition] = max(p.Offset, 0)
	}
	for _, p := range m.assigned {
		if _, ok := m.pos[p]; !ok {
			m.s.violate("group-protocol", p, "%s: OffsetFetch did not answer partition %d", m.cc.who, p)
			m.pos[p] = 0
		}
	}
	m.phase = mStable
	m.hbAtUs = m.s.now + int64(m.sessionMs)*1000/3
	m.fetchAtUs = m.s.now
	m.trace("positions").s("pos", m.describePos()).end()
}

// recordOffsets records every partition an OffsetFetch answered successfully, for the
// commit check, whatever the member's state.
func (m *groupMember) recordOffsets(c *call, r *kmsg.OffsetFetchResponse) {
	parts, code := offsetFetchParts(r)
	if code != 0 {
		return
	}
	for _, p := range parts {
		if p.ErrorCode == 0 && p.Partition >= 0 && int(p.Partition) < m.s.cfg.Workload.Partitions {
			m.s.readCommitted(m.cc, c.sentUs, p.Partition, p.Offset, c.node)
		}
	}
}

func (m *groupMember) commitAnswered(mc memberCall, r *kmsg.OffsetCommitResponse) {
	codes := map[int32]int16{}
	for _, t := range r.Topics {
		if t.Topic != topicName {
			continue
		}
		for _, p := range t.Partitions {
			codes[p.Partition] = p.ErrorCode
		}
	}
	for _, op := range mc.commits {
		code, ok := codes[op.part]
		switch {
		case !ok:
			m.s.violate("protocol", op.part, "%s: OffsetCommit answer lacks the partition", m.cc.who)
			m.s.endCommit(op, outUnknown)
		case code == 0:
			m.s.endCommit(op, outAcked)
		default:
			m.s.endCommit(op, outUnknown)
		}
	}
}

func (m *groupMember) committedAnswer(r *kmsg.OffsetCommitResponse) {
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if !m.groupCode("commit", p.ErrorCode) {
				if m.phase == mStable {
					// Commit again: the outcome is unknown.
					m.commitAtUs = m.s.now + backoff(m.rng)
				}
				return
			}
		}
	}
	if m.phase == mStable && m.rng.IntN(4) == 0 {
		m.auditAtUs = m.s.now + between(m.rng, 0, 100_000)
	}
}

// fetched takes a fetch answer: the position moves past what it holds.
func (m *groupMember) fetched(part int32, r *kmsg.FetchResponse) {
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		m.fetchAtUs = m.s.now + backoff(m.rng)
		return
	}
	rp := &r.Topics[0].Partitions[0]
	m.s.checkCode(m.cc, "fetch", part, rp.ErrorCode)
	switch {
	case rp.ErrorCode == kerr.OffsetOutOfRange.Code:
		m.s.violate("group-offset", part, "%s: committed offset %d of partition %d (generation %d) is out of range (high watermark %d)", m.cc.who, m.pos[part], part, m.generation, rp.HighWatermark)
		m.stopped = true
		return
	case rp.ErrorCode != 0:
		if movedCode(rp.ErrorCode) {
			m.routes.invalidate(part)
		}
		m.fetchAtUs = m.s.now + backoff(m.rng)
		return
	}
	from := m.pos[part]
	pos := from
	err := readBatches(rp.RecordBatches, func(offset int64, v uint64, ok bool) {
		if offset >= pos {
			pos = offset + 1
		}
	})
	if err != nil {
		m.s.violate("corrupt-read", part, "%s: fetch at %d served a bad batch: %v", m.cc.who, from, err)
	}
	m.fetchAtUs = m.s.now
	if pos > from {
		m.pos[part] = pos
		if m.commitAtUs == 0 {
			m.commitAtUs = m.s.now + between(m.rng, 0, maxCommitThinkUs)
		}
	}
	m.trace("group-fetched").i("p", int64(part)).i("pos", pos).i("hw", rp.HighWatermark).end()
}

// finish checks, at the end of the quiesce phase, that the member is in a stable group
// and stops it.
func (m *groupMember) finish() {
	m.stopped = true
}

func (m *groupMember) describePos() string {
	var b strings.Builder
	for i, p := range m.assigned {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(int(p)) + "@" + itoa(int(m.pos[p])))
	}
	return b.String()
}

// offsetFetchParts flattens an OffsetFetch answer (either layout) to the workload
// topic's partitions and the error code of the group.
func offsetFetchParts(r *kmsg.OffsetFetchResponse) ([]kmsg.OffsetFetchResponseTopicPartition, int16) {
	var out []kmsg.OffsetFetchResponseTopicPartition
	if r.Version >= 8 {
		if len(r.Groups) != 1 {
			return nil, kerr.UnknownServerError.Code
		}
		g := r.Groups[0]
		for _, t := range g.Topics {
			if t.Topic != topicName {
				continue
			}
			for _, p := range t.Partitions {
				out = append(out, kmsg.OffsetFetchResponseTopicPartition{Partition: p.Partition, Offset: p.Offset, ErrorCode: p.ErrorCode})
			}
		}
		return out, g.ErrorCode
	}
	for _, t := range r.Topics {
		if t.Topic != topicName {
			continue
		}
		out = append(out, t.Partitions...)
	}
	return out, r.ErrorCode
}

// rangeAssign is Kafka's range assignor for one topic: members sorted by id, each gets a
// contiguous run of partitions, the first ones one more when they do not divide evenly.
func rangeAssign(members []string, partitions int) map[string][]int32 {
	ids := slices.Clone(members)
	slices.Sort(ids)
	plan := map[string][]int32{}
	per, extra := partitions/len(ids), partitions%len(ids)
	p := 0
	for i, id := range ids {
		n := per
		if i < extra {
			n++
		}
		parts := []int32{}
		for range n {
			parts = append(parts, int32(p))
			p++
		}
		plan[id] = parts
	}
	return plan
}

func encodeAssignment(parts []int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	t := kmsg.NewConsumerMemberAssignmentTopic()
	t.Topic, t.Partitions = topicName, parts
	a.Topics = append(a.Topics, t)
	return a.AppendTo(nil)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func partsString(parts []int32) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(int(p)))
	}
	return b.String()
}
