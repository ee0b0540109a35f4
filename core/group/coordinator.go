// Package group is Kafka's classic group coordinator as a pure state machine: group
// membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the rebalance protocol with
// its timers, static membership (KIP-345), and committed offsets, together with the
// record formats of the internal topic __consumer_offsets that make them durable.
//
// One Coordinator serves the groups of one partition of the internal topic. It does no
// I/O and reads no clock. The caller:
//  1. Replays the partition's records (Replay), then calls LoadDone with the time: loaded
//     members must heartbeat within their session timeout from then on.
//  2. Calls Join, Sync, Heartbeat, Leave, Commit, DeleteGroup, DeleteOffsets and the read
//     methods with the time of the request. Join and Sync may park: the caller keeps the
//     request under its Token until a Reply names it.
//  3. After every call, takes Ready: Replies answer parked requests; Stores are records to
//     append to the partition. When a Store is durable (or failed) the caller reports it
//     with Stored. Records returned by Commit, DeleteGroup and DeleteOffsets are appended
//     the same way and reported with Applied once durable (or failed), in log order.
//  4. Calls Tick by Deadline: session, rebalance, initial-delay and sync timers fire there.
//
// The committed offsets the Coordinator serves are exactly those of the durable prefix of
// the partition, applied in log order: a commit becomes visible when it is acknowledged,
// and a restart replays the same state.
package group

import (
	"encoding/hex"
	"math/rand/v2"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// MaxGroupIDLen bounds a group id in bytes. Kafka sets no limit of its own beyond what a
// record holds; Chronik refuses longer ids with INVALID_GROUP_ID.
const MaxGroupIDLen = 255

// maxTimerRounds bounds the timers one group fires in one Tick.
const maxTimerRounds = 64

// Token names a parked JoinGroup or SyncGroup for the caller. 0 is no token.
type Token uint64

// StoreID names a group metadata record the Coordinator asked to be stored.
type StoreID uint64

// Config bounds the coordinator; the caller validates it (the broker's group.* settings).
type Config struct {
	MinSessionTimeoutMs     int32 // group.min.session.timeout.ms
	MaxSessionTimeoutMs     int32 // group.max.session.timeout.ms
	InitialRebalanceDelayMs int64 // group.initial.rebalance.delay.ms
	MaxSize                 int   // group.max.size: members plus pending members
	NewMemberJoinTimeoutMs  int64 // how long a new member may wait in JoinGroup (Kafka: 5 min)
	MaxMetadataBytes        int   // offset.metadata.max.bytes
	// Rand draws member ids; it belongs to the caller's loop.
	Rand *rand.Rand
}

// JoinRequest is a JoinGroup.
type JoinRequest struct {
	Group                string
	Token                Token // names the request if it parks; must not be 0
	MemberID             string
	InstanceID           string // "" for a dynamic member
	ClientID, ClientHost string
	ProtocolType         string
	Protocols            []Protocol
	SessionTimeoutMs     int32
	RebalanceTimeoutMs   int32
	// RequireKnownMemberID is set from JoinGroup v4 (KIP-394): a new dynamic member gets
	// MEMBER_ID_REQUIRED with its id and must join again with it.
	RequireKnownMemberID bool
	// SupportsSkipAssignment is set from JoinGroup v9 (KIP-814).
	SupportsSkipAssignment bool
}

// MemberMetadata is a member's metadata for the selected protocol, sent to the leader.
type MemberMetadata struct {
	MemberID, InstanceID string
	Metadata             []byte
}

// JoinResult answers a JoinGroup.
type JoinResult struct {
	Err        error
	MemberID   string
	Generation int32 // -1 with an error
	// HasProtocol is false with an error: ProtocolType and Protocol are then null.
	HasProtocol            bool
	ProtocolType, Protocol string
	Leader                 string
	SkipAssignment         bool
	Members                []MemberMetadata // the leader's answer only
}

// Assignment is the leader's assignment for one member.
type Assignment struct {
	MemberID   string
	Assignment []byte
}

// SyncRequest is a SyncGroup.
type SyncRequest struct {
	Group      string
	Token      Token // must not be 0
	MemberID   string
	InstanceID string
	Generation int32
	// ProtocolType and Protocol are checked when not nil (SyncGroup v5).
	ProtocolType, Protocol *string
	Assignments            []Assignment // the leader's only
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	Err                    error
	ProtocolType, Protocol string
	Assignment             []byte
}

// Reply answers a parked request: exactly one of Join and Sync is set.
type Reply struct {
	Token Token
	Join  *JoinResult
	Sync  *SyncResult
}

// Store asks the caller to append a group metadata record.
type Store struct {
	ID     StoreID
	Record Record
}

type storeKind int8

const (
	storeAssignment storeKind = iota + 1 // the leader's SyncGroup: Stable once durable
	storeStaticJoin                      // a static member replaced in a Stable group
)

type storeCtx struct {
	kind        storeKind
	group       string
	generation  int32
	assignments map[string][]byte
	// storeStaticJoin: the new member id and its parked join.
	memberID  string
	token     Token
	oldLeader string
	skip      bool
}

// Coordinator is the group coordinator of one internal-topic partition.
type Coordinator struct {
	cfg    Config
	groups map[string]*Group
	// committed are the offsets of the durable log prefix, by group.
	committed map[string]map[TopicPartition]Offset
	// inflight counts commits returned by Commit and not yet Applied, by key: DeleteGroup
	// writes tombstones for them too.
	inflight map[string]map[TopicPartition]int
	// loaded holds group records during replay; nil after LoadDone.
	loaded map[string]*kmsg.GroupMetadataValue

	stores    map[StoreID]storeCtx
	nextStore StoreID

	replies   []Reply
	newStores []Store

	deadlineDirty bool
	deadline      int64
}

// New returns a Coordinator in the loading phase: Replay, then LoadDone.
func New(cfg Config) *Coordinator {
	if cfg.Rand == nil {
		panic("group: Config.Rand is nil")
	}
	return &Coordinator{
		cfg:       cfg,
		groups:    map[string]*Group{},
		committed: map[string]map[TopicPartition]Offset{},
		inflight:  map[string]map[TopicPartition]int{},
		loaded:    map[string]*kmsg.GroupMetadataValue{},
		stores:    map[StoreID]storeCtx{},
	}
}

// Ready returns the replies and stores produced since the last call. The caller owns
// them.
func (c *Coordinator) Ready() ([]Reply, []Store) {
	r, s := c.replies, c.newStores
	c.replies, c.newStores = nil, nil
	return r, s
}

// Deadline is when Tick must next be called; 0 when no timer runs.
func (c *Coordinator) Deadline() int64 {
	if c.deadlineDirty {
		c.deadline = 0
		for _, g := range c.groups {
			if d := g.nextDeadline(); d > 0 && (c.deadline == 0 || d < c.deadline) {
				c.deadline = d
			}
		}
		c.deadlineDirty = false
	}
	return c.deadline
}

// timerAt keeps 0 meaning "no timer": a timer due at time 0 is set at 1.
func timerAt(t int64) int64 { return max(t, 1) }

// ValidGroupID checks a group id: at most MaxGroupIDLen bytes, and not empty unless
// allowEmpty (Kafka allows "" for OffsetCommit, OffsetFetch, DescribeGroups and
// DeleteGroups, not for membership).
func ValidGroupID(id string, allowEmpty bool) error {
	if len(id) > MaxGroupIDLen || (id == "" && !allowEmpty) {
		return ErrInvalidGroupID
	}
	return nil
}

func (c *Coordinator) newMemberID(prefix string) string {
	var u [16]byte
	for i := range u {
		u[i] = byte(c.cfg.Rand.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return prefix + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (c *Coordinator) reply(t Token, join *JoinResult, sync *SyncResult) {
	c.replies = append(c.replies, Reply{Token: t, Join: join, Sync: sync})
}

func joinError(memberID string, err error) JoinResult {
	return JoinResult{Err: err, MemberID: memberID, Generation: -1}
}

func (c *Coordinator) store(nowMs int64, g *Group, ctx storeCtx, assignments map[string][]byte) StoreID {
	c.nextStore++
	id := c.nextStore
	if ctx.kind != 0 {
		c.stores[id] = ctx
	}
	c.newStores = append(c.newStores, Store{ID: id, Record: Record{Kind: GroupRecord, Group: g.name, Metadata: g.metadataValue(nowMs, assignments)}})
	return id
}

// Join handles a JoinGroup. parked reports that the answer will come as a Reply.
func (c *Coordinator) Join(nowMs int64, req JoinRequest) (res JoinResult, parked bool) {
	if req.Token == 0 {
		panic("group: Join without a token")
	}
	c.deadlineDirty = true
	if err := ValidGroupID(req.Group, false); err != nil {
		return joinError(req.MemberID, err), false
	}
	if req.SessionTimeoutMs < c.cfg.MinSessionTimeoutMs || req.SessionTimeoutMs > c.cfg.MaxSessionTimeoutMs {
		return joinError(req.MemberID, ErrInvalidSessionTimeout), false
	}
	g := c.groups[req.Group]
	if req.MemberID == "" {
		if g == nil {
			if req.ProtocolType == "" || len(req.Protocols) == 0 {
				return joinError("", ErrInconsistentGroupProtocol), false
			}
			g = newGroup(req.Group, nowMs)
			c.groups[req.Group] = g
		}
		res, parked = c.newMemberJoin(nowMs, g, req)
	} else {
		if g == nil {
			return joinError(req.MemberID, ErrUnknownMemberID), false
		}
		res, parked = c.currentMemberJoin(nowMs, g, req)
	}
	c.maybeCompleteJoin(nowMs, g)
	c.maybeDrop(g)
	return res, parked
}

func (c *Coordinator) newMemberJoin(nowMs int64, g *Group, req JoinRequest) (JoinResult, bool) {
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return joinError("", ErrInconsistentGroupProtocol), false
	}
	if req.InstanceID != "" {
		if old, ok := g.static[req.InstanceID]; ok {
			return c.replaceStaticMember(nowMs, g, old, req)
		}
	}
	if g.size() >= c.cfg.MaxSize {
		return joinError("", ErrGroupMaxSizeReached), false
	}
	prefix := req.ClientID
	if req.InstanceID != "" {
		prefix = req.InstanceID
	}
	id := c.newMemberID(prefix)
	if req.InstanceID == "" && req.RequireKnownMemberID {
		g.pending[id] = timerAt(nowMs + int64(req.SessionTimeoutMs))
		return joinError(id, ErrMemberIDRequired), false
	}
	c.addMemberAndRebalance(nowMs, g, id, req)
	return JoinResult{}, true
}

func (c *Coordinator) currentMemberJoin(nowMs int64, g *Group, req JoinRequest) (JoinResult, bool) {
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return joinError(req.MemberID, ErrInconsistentGroupProtocol), false
	}
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != "" {
			return joinError(req.MemberID, ErrUnknownMemberID), false
		}
		delete(g.pending, req.MemberID)
		c.addMemberAndRebalance(nowMs, g, req.MemberID, req)
		return JoinResult{}, true
	}
	if g.isStaticMemberFenced(req.InstanceID, req.MemberID) {
		return joinError(req.MemberID, ErrFencedInstanceID), false
	}
	m := g.members[req.MemberID]
	if m == nil || (req.InstanceID != "" && g.static[req.InstanceID] == "") {
		return joinError(req.MemberID, ErrUnknownMemberID), false
	}
	switch g.state {
	case PreparingRebalance:
		c.updateMemberAndRebalance(nowMs, g, m, req)
		return JoinResult{}, true
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			return g.joinResult(m, m.id == g.leader), false
		}
		c.updateMemberAndRebalance(nowMs, g, m, req)
		return JoinResult{}, true
	case Stable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			c.updateMemberAndRebalance(nowMs, g, m, req)
			return JoinResult{}, true
		}
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		return g.joinResult(m, false), false
	}
	return joinError(req.MemberID, ErrUnknownMemberID), false
}

// joinResult is the current generation as m's JoinGroup answer.
func (g *Group) joinResult(m *member, withMembers bool) JoinResult {
	res := JoinResult{
		MemberID: m.id, Generation: g.generation, HasProtocol: true,
		ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader,
	}
	if withMembers {
		res.Members = g.leaderMembers()
	}
	return res
}

func (g *Group) leaderMembers() []MemberMetadata {
	ms := make([]MemberMetadata, 0, len(g.members))
	for _, id := range g.memberIDs() {
		m := g.members[id]
		ms = append(ms, MemberMetadata{MemberID: id, InstanceID: m.instanceID, Metadata: m.metadataFor(g.protocol)})
	}
	return ms
}

func (c *Coordinator) addMemberAndRebalance(nowMs int64, g *Group, id string, req JoinRequest) {
	m := &member{
		id: id, instanceID: req.InstanceID, clientID: req.ClientID, clientHost: req.ClientHost,
		protocols: req.Protocols, sessionTimeoutMs: req.SessionTimeoutMs, rebalanceTimeoutMs: req.RebalanceTimeoutMs,
		joinToken: req.Token, isNew: true,
		heartbeatDeadlineMs: timerAt(nowMs + c.cfg.NewMemberJoinTimeoutMs),
	}
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	if g.leader == "" {
		g.leader = id
	}
	g.countProtocols(m, 1)
	g.numAwaitingJoin++
	if m.instanceID != "" {
		g.static[m.instanceID] = id
	}
	c.maybePrepareRebalance(nowMs, g)
}

func (c *Coordinator) updateMemberAndRebalance(nowMs int64, g *Group, m *member, req JoinRequest) {
	g.countProtocols(m, -1)
	m.protocols = req.Protocols
	g.countProtocols(m, 1)
	m.sessionTimeoutMs, m.rebalanceTimeoutMs = req.SessionTimeoutMs, req.RebalanceTimeoutMs
	if m.awaitingJoin() {
		// A JoinGroup superseded by a newer one from the same member.
		res := joinError(m.id, ErrRebalanceInProgress)
		c.reply(m.joinToken, &res, nil)
	} else {
		g.numAwaitingJoin++
	}
	m.joinToken = req.Token
	c.maybePrepareRebalance(nowMs, g)
}

// replaceStaticMember gives a known instance id a new member id, fencing the old one
// (KIP-345). In a Stable group whose protocol would not change, the group is stored and
// the member answered without a rebalance.
func (c *Coordinator) replaceStaticMember(nowMs int64, g *Group, oldID string, req JoinRequest) (JoinResult, bool) {
	old := g.members[oldID]
	newID := c.newMemberID(req.InstanceID)
	oldLeader := g.leader
	if old.joinToken != 0 {
		res := joinError(oldID, ErrFencedInstanceID)
		c.reply(old.joinToken, &res, nil)
		old.joinToken = 0
		g.numAwaitingJoin--
	}
	if old.syncToken != 0 {
		c.reply(old.syncToken, nil, &SyncResult{Err: ErrFencedInstanceID})
		old.syncToken = 0
	}
	delete(g.members, oldID)
	old.id = newID
	g.members[newID] = old
	g.static[req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	old.clientID, old.clientHost = req.ClientID, req.ClientHost
	old.heartbeatDeadlineMs = timerAt(nowMs + int64(req.SessionTimeoutMs))
	oldProtocol := g.protocol
	c.updateMemberAndRebalanceNoPrepare(g, old, req)
	switch g.state {
	case Stable:
		if g.selectProtocol() == oldProtocol {
			c.store(nowMs, g, storeCtx{
				kind: storeStaticJoin, group: g.name, generation: g.generation,
				memberID: newID, token: req.Token, oldLeader: oldLeader, skip: req.SupportsSkipAssignment,
			}, nil)
			return JoinResult{}, true
		}
		c.maybePrepareRebalance(nowMs, g)
	case CompletingRebalance:
		c.maybePrepareRebalance(nowMs, g)
	}
	return JoinResult{}, true
}

// updateMemberAndRebalanceNoPrepare takes req's protocols and timeouts and parks its join.
func (c *Coordinator) updateMemberAndRebalanceNoPrepare(g *Group, m *member, req JoinRequest) {
	g.countProtocols(m, -1)
	m.protocols = req.Protocols
	g.countProtocols(m, 1)
	m.sessionTimeoutMs, m.rebalanceTimeoutMs = req.SessionTimeoutMs, req.RebalanceTimeoutMs
	if !m.awaitingJoin() {
		g.numAwaitingJoin++
	}
	m.joinToken = req.Token
}

// removeMember drops m, answering its parked requests with err.
func (c *Coordinator) removeMember(g *Group, m *member, err error) {
	if m.joinToken != 0 {
		res := joinError(m.id, err)
		c.reply(m.joinToken, &res, nil)
		m.joinToken = 0
		g.numAwaitingJoin--
	}
	if m.syncToken != 0 {
		c.reply(m.syncToken, nil, &SyncResult{Err: err})
		m.syncToken = 0
	}
	g.countProtocols(m, -1)
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
		if ids := g.memberIDs(); len(ids) > 0 {
			g.leader = ids[0]
		}
	}
}

func (c *Coordinator) removeMemberAndUpdateGroup(nowMs int64, g *Group, m *member, err error) {
	c.removeMember(g, m, err)
	switch g.state {
	case Stable, CompletingRebalance:
		c.maybePrepareRebalance(nowMs, g)
	case PreparingRebalance:
		c.maybeCompleteJoin(nowMs, g)
	}
}

func (c *Coordinator) maybePrepareRebalance(nowMs int64, g *Group) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		c.prepareRebalance(nowMs, g)
	}
}

func (c *Coordinator) prepareRebalance(nowMs int64, g *Group) {
	if g.state == CompletingRebalance {
		c.resetAndPropagateAssignmentError(nowMs, g, ErrRebalanceInProgress)
	}
	g.syncDeadlineMs, g.pendingSync, g.storing = 0, nil, 0
	if g.state == Empty {
		g.initialDelay = true
		g.initialDelayMs = c.cfg.InitialRebalanceDelayMs
		g.initialRemainingMs = max(g.rebalanceTimeoutMs()-g.initialDelayMs, 0)
		g.newMemberAdded = false
		g.joinDeadlineMs = timerAt(nowMs + g.initialDelayMs)
	} else {
		g.initialDelay = false
		g.joinDeadlineMs = timerAt(nowMs + g.rebalanceTimeoutMs())
	}
	g.transition(PreparingRebalance, nowMs)
	c.maybeCompleteJoin(nowMs, g)
}

func (c *Coordinator) resetAndPropagateAssignmentError(nowMs int64, g *Group, err error) {
	for _, id := range g.memberIDs() {
		m := g.members[id]
		m.assignment = nil
		if m.syncToken != 0 {
			c.reply(m.syncToken, nil, &SyncResult{Err: err})
			m.syncToken = 0
			m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		}
	}
}

func (c *Coordinator) maybeCompleteJoin(nowMs int64, g *Group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.hasAllMembersJoined() {
		c.completeJoin(nowMs, g)
	}
}

// electJoinedLeader keeps the leader if it rejoined, else picks a member that did; false
// when none did.
func (g *Group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.awaitingJoin() {
		return true
	}
	for _, id := range g.memberIDs() {
		if g.members[id].awaitingJoin() {
			g.leader = id
			return true
		}
	}
	return false
}

// completeJoin ends the join phase: dynamic members that did not rejoin are removed, the
// generation advances, and every joined member gets its answer.
func (c *Coordinator) completeJoin(nowMs int64, g *Group) {
	if g.state != PreparingRebalance {
		return
	}
	g.joinDeadlineMs, g.initialDelay = 0, false
	for _, id := range g.memberIDs() {
		if m := g.members[id]; !m.awaitingJoin() && m.instanceID == "" {
			c.removeMember(g, m, ErrUnknownMemberID)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined: wait for them a rebalance timeout more.
		g.joinDeadlineMs = timerAt(nowMs + g.rebalanceTimeoutMs())
		return
	}
	g.generation++
	g.pendingSync = nil
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.transition(Empty, nowMs)
		c.store(nowMs, g, storeCtx{}, nil)
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(CompletingRebalance, nowMs)
	g.pendingSync = map[string]bool{}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		if m.joinToken != 0 {
			res := g.joinResult(m, id == g.leader)
			c.reply(m.joinToken, &res, nil)
			m.joinToken = 0
		}
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		m.isNew = false
		g.pendingSync[id] = true
	}
	g.numAwaitingJoin = 0
	g.syncDeadlineMs = timerAt(nowMs + g.rebalanceTimeoutMs())
}

// Sync handles a SyncGroup. parked reports that the answer will come as a Reply.
func (c *Coordinator) Sync(nowMs int64, req SyncRequest) (res SyncResult, parked bool) {
	if req.Token == 0 {
		panic("group: Sync without a token")
	}
	c.deadlineDirty = true
	if err := ValidGroupID(req.Group, false); err != nil {
		return SyncResult{Err: err}, false
	}
	g := c.groups[req.Group]
	if g == nil {
		return SyncResult{Err: ErrUnknownMemberID}, false
	}
	if g.isStaticMemberFenced(req.InstanceID, req.MemberID) {
		return SyncResult{Err: ErrFencedInstanceID}, false
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		return SyncResult{Err: ErrUnknownMemberID}, false
	case req.Generation != g.generation:
		return SyncResult{Err: ErrIllegalGeneration}, false
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return SyncResult{Err: ErrInconsistentGroupProtocol}, false
	}
	switch g.state {
	case PreparingRebalance:
		return SyncResult{Err: ErrRebalanceInProgress}, false
	case CompletingRebalance:
		if m.syncToken != 0 {
			c.reply(m.syncToken, nil, &SyncResult{Err: ErrRebalanceInProgress})
		}
		m.syncToken = req.Token
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			assignments := make(map[string][]byte, len(g.members))
			for _, a := range req.Assignments {
				if g.members[a.MemberID] != nil {
					assignments[a.MemberID] = a.Assignment
				}
			}
			for id := range g.members {
				if assignments[id] == nil {
					assignments[id] = []byte{}
				}
			}
			g.storing = c.store(nowMs, g, storeCtx{kind: storeAssignment, group: g.name, generation: g.generation, assignments: assignments}, assignments)
		}
		return SyncResult{}, true
	case Stable:
		delete(g.pendingSync, m.id)
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		return SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}, false
	}
	return SyncResult{Err: ErrUnknownMemberID}, false
}

// Stored reports that the Store id is durable (err nil) or failed.
func (c *Coordinator) Stored(nowMs int64, id StoreID, err error) {
	ctx, ok := c.stores[id]
	if !ok {
		return
	}
	delete(c.stores, id)
	c.deadlineDirty = true
	g := c.groups[ctx.group]
	if g == nil {
		return
	}
	switch ctx.kind {
	case storeAssignment:
		if g.storing != id || g.state != CompletingRebalance || g.generation != ctx.generation {
			return
		}
		g.storing = 0
		if err != nil {
			c.resetAndPropagateAssignmentError(nowMs, g, err)
			c.maybePrepareRebalance(nowMs, g)
			return
		}
		for _, mid := range g.memberIDs() {
			m := g.members[mid]
			m.assignment = ctx.assignments[mid]
			if m.syncToken != 0 {
				c.reply(m.syncToken, nil, &SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment})
				m.syncToken = 0
				m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
			}
		}
		g.transition(Stable, nowMs)
	case storeStaticJoin:
		m := g.members[ctx.memberID]
		if m == nil || m.joinToken != ctx.token || g.state != Stable || g.generation != ctx.generation {
			return
		}
		m.joinToken = 0
		g.numAwaitingJoin--
		if err != nil {
			res := joinError("", err)
			c.reply(ctx.token, &res, nil)
			return
		}
		res := g.joinResult(m, false)
		isLeader := g.leader == m.id
		switch {
		case ctx.skip && isLeader:
			res.Members, res.SkipAssignment = g.leaderMembers(), true
		case isLeader:
			// Before KIP-814 the leader is told the old leader id, so that it does not run
			// the assignor again for an unchanged group.
			res.Leader = ctx.oldLeader
		}
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		c.reply(ctx.token, &res, nil)
	}
}

// Heartbeat handles a Heartbeat.
func (c *Coordinator) Heartbeat(nowMs int64, group, memberID, instanceID string, generation int32) error {
	if err := ValidGroupID(group, false); err != nil {
		return err
	}
	g := c.groups[group]
	if g == nil {
		return ErrUnknownMemberID
	}
	if g.isStaticMemberFenced(instanceID, memberID) {
		return ErrFencedInstanceID
	}
	m := g.members[memberID]
	switch {
	case m == nil:
		return ErrUnknownMemberID
	case generation != g.generation:
		return ErrIllegalGeneration
	}
	c.deadlineDirty = true
	switch g.state {
	case CompletingRebalance, Stable:
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		return nil
	case PreparingRebalance:
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
		return ErrRebalanceInProgress
	}
	return ErrUnknownMemberID
}

// LeaveMember names a member leaving: by member id, or by instance id alone.
type LeaveMember struct {
	MemberID, InstanceID string
}

// LeaveResult is one member's LeaveGroup answer.
type LeaveResult struct {
	MemberID, InstanceID string
	Err                  error
}

// Leave handles a LeaveGroup: err is the group's error, results the members' ones.
func (c *Coordinator) Leave(nowMs int64, group string, members []LeaveMember) (results []LeaveResult, err error) {
	if err := ValidGroupID(group, false); err != nil {
		return nil, err
	}
	c.deadlineDirty = true
	g := c.groups[group]
	for _, lm := range members {
		r := LeaveResult{MemberID: lm.MemberID, InstanceID: lm.InstanceID}
		r.Err = c.leaveOne(nowMs, g, lm, &r.MemberID)
		results = append(results, r)
	}
	if g != nil {
		c.maybeDrop(g)
	}
	return results, nil
}

func (c *Coordinator) leaveOne(nowMs int64, g *Group, lm LeaveMember, resolved *string) error {
	if g == nil {
		return ErrUnknownMemberID
	}
	if lm.MemberID == "" {
		id, ok := g.static[lm.InstanceID]
		if lm.InstanceID == "" || !ok {
			return ErrUnknownMemberID
		}
		*resolved = id
		c.removeMemberAndUpdateGroup(nowMs, g, g.members[id], ErrUnknownMemberID)
		return nil
	}
	if _, ok := g.pending[lm.MemberID]; ok {
		delete(g.pending, lm.MemberID)
		c.maybeCompleteJoin(nowMs, g)
		return nil
	}
	if g.isStaticMemberFenced(lm.InstanceID, lm.MemberID) {
		return ErrFencedInstanceID
	}
	m := g.members[lm.MemberID]
	if m == nil {
		return ErrUnknownMemberID
	}
	c.removeMemberAndUpdateGroup(nowMs, g, m, ErrUnknownMemberID)
	return nil
}

// maybeDrop forgets a group that never completed a rebalance and holds nothing: a group a
// MEMBER_ID_REQUIRED answer created and whose pending member went away.
func (c *Coordinator) maybeDrop(g *Group) {
	if g.state == Empty && g.generation == 0 && len(g.members) == 0 && len(g.pending) == 0 &&
		len(c.committed[g.name]) == 0 && len(c.inflight[g.name]) == 0 && c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
}

// Tick fires the timers due at nowMs.
func (c *Coordinator) Tick(nowMs int64) {
	var due []string
	for name, g := range c.groups {
		if d := g.nextDeadline(); d > 0 && d <= nowMs {
			due = append(due, name)
		}
	}
	if len(due) == 0 {
		return
	}
	sort.Strings(due)
	c.deadlineDirty = true
	for _, name := range due {
		for i := 0; i < maxTimerRounds; i++ {
			g := c.groups[name]
			if g == nil || !c.fireOne(nowMs, g) {
				break
			}
		}
	}
}

// fireOne fires one due timer of g; false when none is due.
func (c *Coordinator) fireOne(nowMs int64, g *Group) bool {
	due := func(t int64) bool { return t > 0 && t <= nowMs }
	if g.state == PreparingRebalance && due(g.joinDeadlineMs) {
		c.onJoinTimer(nowMs, g)
		return true
	}
	if due(g.syncDeadlineMs) {
		c.onSyncTimer(nowMs, g)
		return true
	}
	for _, id := range sortedKeys(g.pending) {
		if due(g.pending[id]) {
			delete(g.pending, id)
			c.maybeCompleteJoin(nowMs, g)
			c.maybeDrop(g)
			return true
		}
	}
	for _, id := range g.memberIDs() {
		if m := g.members[id]; due(m.heartbeatDeadlineMs) {
			if !m.isNew && (m.awaitingJoin() || m.awaitingSync()) {
				// A member waiting on the coordinator needs no heartbeat.
				m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
			} else {
				c.removeMemberAndUpdateGroup(nowMs, g, m, ErrUnknownMemberID)
			}
			return true
		}
	}
	return false
}

func (c *Coordinator) onJoinTimer(nowMs int64, g *Group) {
	if g.initialDelay && g.newMemberAdded && g.initialRemainingMs > 0 {
		// Members keep arriving in a new group: wait another delay, within the rebalance
		// timeout.
		g.newMemberAdded = false
		delay := min(c.cfg.InitialRebalanceDelayMs, g.initialRemainingMs)
		g.initialRemainingMs = max(g.initialRemainingMs-g.initialDelayMs, 0)
		g.initialDelayMs = delay
		g.joinDeadlineMs = timerAt(nowMs + delay)
		return
	}
	g.initialDelay = false
	c.completeJoin(nowMs, g)
}

func (c *Coordinator) onSyncTimer(nowMs int64, g *Group) {
	g.syncDeadlineMs = 0
	if (g.state != CompletingRebalance && g.state != Stable) || len(g.pendingSync) == 0 {
		return
	}
	for _, id := range sortedKeys(g.pendingSync) {
		if m := g.members[id]; m != nil {
			c.removeMember(g, m, ErrUnknownMemberID)
		}
	}
	g.pendingSync = nil
	c.prepareRebalance(nowMs, g)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MemberDescription describes one member for DescribeGroups.
type MemberDescription struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Metadata, Assignment                       []byte
}

// Description describes a group for DescribeGroups.
type Description struct {
	State                  State
	ProtocolType, Protocol string
	Members                []MemberDescription
}

// Describe describes a group; ok is false when the coordinator does not know it. As in
// Kafka, the protocol and the members' metadata and assignments are given only when the
// group is Stable.
func (c *Coordinator) Describe(group string) (d Description, ok bool) {
	g := c.groups[group]
	if g == nil {
		return Description{State: Dead}, false
	}
	d = Description{State: g.state, ProtocolType: g.protocolType}
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		md := MemberDescription{MemberID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == Stable {
			md.Metadata, md.Assignment = m.metadataFor(g.protocol), m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d, true
}

// Listing is one group for ListGroups.
type Listing struct {
	Group        string
	ProtocolType string
	State        State
}

// List lists the groups, sorted by name.
func (c *Coordinator) List() []Listing {
	var ls []Listing
	for _, name := range sortedKeys(c.groups) {
		g := c.groups[name]
		ls = append(ls, Listing{Group: name, ProtocolType: g.protocolType, State: g.state})
	}
	return ls
}

// Generation is the group's generation and state, for tests and the simulator's checks.
func (c *Coordinator) Generation(group string) (int32, State, bool) {
	g := c.groups[group]
	if g == nil {
		return 0, Dead, false
	}
	return g.generation, g.state, true
}
