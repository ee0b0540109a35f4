package group

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// CommitOffset is one partition of an OffsetCommit.
type CommitOffset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// CommitRequest is an OffsetCommit, with the partitions of unknown topics already
// answered by the caller.
type CommitRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32 // -1 for a simple commit (no group management)
	Offsets    []CommitOffset
}

// Commit validates an OffsetCommit. err is the error of the whole request; otherwise
// errs[i] is Offsets[i]'s (nil: accepted) and recs are the records to append for the
// accepted ones. The commit is visible once the caller reports recs Applied.
func (c *Coordinator) Commit(nowMs int64, req CommitRequest) (recs []Record, errs []error, err error) {
	if err := ValidGroupID(req.Group, true); err != nil {
		return nil, nil, err
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.Generation >= 0 {
			// A commit from a generation this coordinator does not know.
			return nil, nil, ErrIllegalGeneration
		}
		g = newGroup(req.Group, nowMs)
		c.groups[req.Group] = g
	}
	defer c.maybeDrop(g)
	var m *member
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != "" {
		m = g.members[req.MemberID]
		switch {
		case g.isStaticMemberFenced(req.InstanceID, req.MemberID):
			return nil, nil, ErrFencedInstanceID
		case m == nil:
			return nil, nil, ErrUnknownMemberID
		case req.Generation != g.generation:
			return nil, nil, ErrIllegalGeneration
		}
	} else if g.state != Empty {
		// Only members commit for a group with members.
		return nil, nil, ErrUnknownMemberID
	}
	if m != nil {
		c.deadlineDirty = true
		m.heartbeatDeadlineMs = timerAt(nowMs + int64(m.sessionTimeoutMs))
	}
	if g.state == CompletingRebalance {
		return nil, nil, ErrRebalanceInProgress
	}
	errs = make([]error, len(req.Offsets))
	for i, o := range req.Offsets {
		if len(o.Metadata) > c.cfg.MaxMetadataBytes {
			errs[i] = ErrOffsetMetadataTooLarge
			continue
		}
		recs = append(recs, Record{Kind: OffsetRecord, Group: req.Group, TopicPartition: o.TopicPartition, Offset: &Offset{
			Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTimestampMs: nowMs,
		}})
		inf := c.inflight[req.Group]
		if inf == nil {
			inf = map[TopicPartition]int{}
			c.inflight[req.Group] = inf
		}
		inf[o.TopicPartition]++
	}
	return recs, errs, nil
}

// Applied reports records returned by Commit, DeleteGroup or DeleteOffsets as durable
// (ok) or failed. Durable records must be reported in log order.
func (c *Coordinator) Applied(recs []Record, ok bool) {
	for i := range recs {
		r := &recs[i]
		if r.Kind != OffsetRecord {
			continue
		}
		if r.Offset != nil {
			c.settleInflight(r.Group, r.TopicPartition)
		}
		if ok {
			c.applyOffset(r)
		}
	}
	for i := range recs {
		if g := c.groups[recs[i].Group]; g != nil {
			c.maybeDrop(g)
		}
	}
}

func (c *Coordinator) settleInflight(group string, tp TopicPartition) {
	inf := c.inflight[group]
	if inf[tp] <= 1 {
		delete(inf, tp)
		if len(inf) == 0 {
			delete(c.inflight, group)
		}
		return
	}
	inf[tp]--
}

func (c *Coordinator) applyOffset(r *Record) {
	offs := c.committed[r.Group]
	if r.Offset == nil {
		delete(offs, r.TopicPartition)
		if len(offs) == 0 {
			delete(c.committed, r.Group)
		}
		return
	}
	if offs == nil {
		offs = map[TopicPartition]Offset{}
		c.committed[r.Group] = offs
	}
	offs[r.TopicPartition] = *r.Offset
}

// Committed returns a group's committed offset for tp.
func (c *Coordinator) Committed(group string, tp TopicPartition) (Offset, bool) {
	o, ok := c.committed[group][tp]
	return o, ok
}

// CommittedOffset is one committed offset of a group.
type CommittedOffset struct {
	TopicPartition
	Offset
}

// AllCommitted returns a group's committed offsets sorted by topic and partition.
func (c *Coordinator) AllCommitted(group string) []CommittedOffset {
	offs := c.committed[group]
	out := make([]CommittedOffset, 0, len(offs))
	for tp, o := range offs {
		out = append(out, CommittedOffset{tp, o})
	}
	sortOffsets(out)
	return out
}

func sortOffsets(o []CommittedOffset) {
	sort.Slice(o, func(i, j int) bool {
		if o[i].Topic != o[j].Topic {
			return o[i].Topic < o[j].Topic
		}
		return o[i].Partition < o[j].Partition
	})
}

// DeleteGroup handles one group of a DeleteGroups: an Empty group is forgotten at once
// and recs are its tombstones (the group record and every offset, committed or in
// flight), to append and report Applied.
func (c *Coordinator) DeleteGroup(group string) (recs []Record, err error) {
	if err := ValidGroupID(group, true); err != nil {
		return nil, err
	}
	g := c.groups[group]
	switch {
	case g == nil:
		return nil, ErrGroupIDNotFound
	case g.state != Empty:
		return nil, ErrNonEmptyGroup
	}
	keys := map[TopicPartition]bool{}
	for tp := range c.committed[group] {
		keys[tp] = true
	}
	for tp := range c.inflight[group] {
		keys[tp] = true
	}
	tombs := make([]CommittedOffset, 0, len(keys))
	for tp := range keys {
		tombs = append(tombs, CommittedOffset{TopicPartition: tp})
	}
	sortOffsets(tombs)
	for _, t := range tombs {
		recs = append(recs, Record{Kind: OffsetRecord, Group: group, TopicPartition: t.TopicPartition})
	}
	recs = append(recs, Record{Kind: GroupRecord, Group: group})
	delete(c.groups, group)
	c.deadlineDirty = true
	return recs, nil
}

// DeleteOffsets handles an OffsetDelete (KIP-496): err is the group's error; otherwise
// errs[i] is tps[i]'s and recs the tombstones to append. An Empty group loses any offset;
// a consumer group with members only those of topics it is not subscribed to.
func (c *Coordinator) DeleteOffsets(group string, tps []TopicPartition) (recs []Record, errs []error, err error) {
	if err := ValidGroupID(group, true); err != nil {
		return nil, nil, err
	}
	g := c.groups[group]
	if g == nil {
		return nil, nil, ErrGroupIDNotFound
	}
	var subscribed map[string]bool
	switch {
	case g.state == Empty:
	case g.protocolType == "consumer":
		topics, known := g.subscribedTopics()
		subscribed = topics
		if !known {
			// Unknown subscriptions: every topic counts as subscribed, as in Kafka.
			errs = make([]error, len(tps))
			for i := range errs {
				errs[i] = ErrGroupSubscribedToTopic
			}
			return nil, errs, nil
		}
	default:
		return nil, nil, ErrNonEmptyGroup
	}
	errs = make([]error, len(tps))
	for i, tp := range tps {
		if subscribed[tp.Topic] {
			errs[i] = ErrGroupSubscribedToTopic
			continue
		}
		if _, ok := c.committed[group][tp]; ok {
			recs = append(recs, Record{Kind: OffsetRecord, Group: group, TopicPartition: tp})
		}
	}
	return recs, errs, nil
}

// Replay applies one record of the partition during loading, in log order.
func (c *Coordinator) Replay(r Record) {
	if c.loaded == nil {
		panic("group: Replay after LoadDone")
	}
	switch r.Kind {
	case OffsetRecord:
		c.applyOffset(&r)
	case GroupRecord:
		if r.Metadata == nil {
			delete(c.loaded, r.Group)
		} else {
			c.loaded[r.Group] = r.Metadata
		}
	}
}

// LoadDone ends loading: every group with a record or offsets is restored, Stable with
// its stored members (whose sessions start now) or Empty.
func (c *Coordinator) LoadDone(nowMs int64) {
	names := map[string]bool{}
	for name := range c.loaded {
		names[name] = true
	}
	for name := range c.committed {
		names[name] = true
	}
	for _, name := range sortedKeys(names) {
		g := newGroup(name, nowMs)
		if v := c.loaded[name]; v != nil {
			c.restore(nowMs, g, v)
		}
		c.groups[name] = g
	}
	c.loaded = nil
	c.deadlineDirty = true
}

func (c *Coordinator) restore(nowMs int64, g *Group, v *kmsg.GroupMetadataValue) {
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	if v.Protocol == nil || *v.Protocol == "" || len(v.Members) == 0 {
		return // Empty
	}
	g.protocol = *v.Protocol
	for _, vm := range v.Members {
		m := &member{
			id: vm.MemberID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			protocols:        []Protocol{{Name: g.protocol, Metadata: vm.Subscription}},
			sessionTimeoutMs: vm.SessionTimeoutMillis, rebalanceTimeoutMs: vm.RebalanceTimeoutMillis,
			assignment:          vm.Assignment,
			heartbeatDeadlineMs: timerAt(nowMs + int64(vm.SessionTimeoutMillis)),
		}
		if m.rebalanceTimeoutMs < 0 {
			m.rebalanceTimeoutMs = m.sessionTimeoutMs
		}
		if vm.InstanceID != nil && *vm.InstanceID != "" {
			m.instanceID = *vm.InstanceID
			g.static[m.instanceID] = m.id
		}
		g.members[m.id] = m
		g.countProtocols(m, 1)
	}
	g.leader = ""
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	} else {
		g.leader = g.memberIDs()[0]
	}
	g.transition(Stable, nowMs)
}
