package kafka

// Consumer groups: the wiring between the node and core/group.
//
// Group state and committed offsets live in the internal topic __consumer_offsets, in
// Kafka's record formats (core/group), created on first use with
// offsets.topic.num.partitions partitions. A group belongs to partition
// abs(hash(groupId)) % partitions, and its coordinator is that partition's leader: this
// node, until replication makes leadership move. Each partition has its own
// core/group.Coordinator (a shard), built at NewNode by replaying the partition.
//
// Writes to the internal topic (offset commits, the leader's assignment, tombstones) are
// appended like produced batches and answered only once durable: groupWrite is the
// internal topic's produceWaiter. The high watermark releases them in log order; each
// shard applies them then, so the offsets it serves are those of the durable log.
//
// JoinGroup and SyncGroup park like long-polling fetches: the shard names them by token
// and answers them when a rebalance completes or times out. A closed connection's parked
// requests are dropped; the shard does not notice, exactly as Kafka's coordinator does not.
//
// The internal topic has no compaction: cleanup.policy is delete with retention off, so it
// grows with every commit and NewNode replays all of it.

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
	"chronik/core/record"
)

// offsetsTopic is Kafka's internal topic of group state and committed offsets.
const offsetsTopic = "__consumer_offsets"

// offsetsTopicSegmentBytes is offsets.topic.segment.bytes, as Kafka's default.
const offsetsTopicSegmentBytes = 100 << 20

// replayReadBytes is how much of an internal partition one read takes during replay.
const replayReadBytes = 1 << 20

// errCommitTooLarge is INVALID_COMMIT_OFFSET_SIZE: the commit's records do not fit in one
// batch of the internal topic.
var errCommitTooLarge = errors.New("kafka: offset commit larger than the internal topic's max.message.bytes")

// groupCoordinator is the node's group state. Invariant: shards is non-nil iff topic is,
// and len(shards) == len(writes) == len(topic.partitions); a nil shard is a partition that
// failed to load.
type groupCoordinator struct {
	topic  *topic
	shards []*group.Coordinator
	// writes are appends to each internal partition waiting to be durable, in log order.
	writes [][]groupWrite
	// parked are the JoinGroup and SyncGroup requests the shards hold, by token.
	parked    map[group.Token]*Request
	nextToken group.Token
}

// groupWrite is one append to an internal partition waiting for the high watermark.
type groupWrite struct {
	end   int64 // answer once the high watermark reaches it
	recs  []group.Record
	store group.StoreID // reported with Stored when set, else the records with Applied
	done  func(err error)
}

func (n *Node) groupConfig() group.Config {
	return group.Config{
		MinSessionTimeoutMs:     n.cfg.GroupMinSessionTimeoutMs,
		MaxSessionTimeoutMs:     n.cfg.GroupMaxSessionTimeoutMs,
		InitialRebalanceDelayMs: max(n.cfg.GroupInitialRebalanceDelayMs, 0),
		MaxSize:                 n.cfg.GroupMaxSize,
		NewMemberJoinTimeoutMs:  n.cfg.GroupNewMemberJoinTimeoutMs,
		MaxMetadataBytes:        n.cfg.OffsetMetadataMaxBytes,
		Rand:                    n.rng,
	}
}

// loadGroups replays the internal topic's partitions, when the topic exists.
func (n *Node) loadGroups() error {
	t := n.topics[offsetsTopic]
	if t == nil {
		return nil
	}
	n.attachOffsetsTopic(t)
	return nil
}

// replayPartition feeds every record of p to shard, in log order. Records that are not
// group records (a client may produce anything into the topic) are skipped.
func replayPartition(p *partition, shard *group.Coordinator) error {
	off, end := p.log.StartOffset(), p.highWatermark()
	for off < end {
		data, err := p.log.Read(off, replayReadBytes, end)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return nil
		}
		next := off
		err = record.Split(data, func(b []byte, h record.Header) bool {
			next = h.LastOffset() + 1
			// A batch we cannot parse (compressed, or not ours) is skipped whole.
			_ = group.ParseBatch(b, func(r group.Record, err error) {
				if err == nil {
					shard.Replay(r)
				}
			})
			return true
		})
		if err != nil {
			return err
		}
		if next <= off {
			return fmt.Errorf("kafka: replay stuck at offset %d", off)
		}
		off = next
	}
	return nil
}

// attachOffsetsTopic makes t the internal topic, with a shard per partition built by
// replaying it. A partition that cannot be replayed is marked failed: its groups get
// NOT_COORDINATOR.
func (n *Node) attachOffsetsTopic(t *topic) {
	gc := &n.groups
	gc.topic = t
	gc.shards = make([]*group.Coordinator, len(t.partitions))
	gc.writes = make([][]groupWrite, len(t.partitions))
	if gc.parked == nil {
		gc.parked = map[group.Token]*Request{}
	}
	if n.cl != nil {
		return // a replicated partition's shard loads when this node leads it (groupsMaybeLoad)
	}
	for i, p := range t.partitions {
		shard := group.New(n.groupConfig())
		if err := replayPartition(p, shard); err != nil {
			p.failed = fmt.Errorf("kafka: replay %s: %w", p.dir, err)
			continue
		}
		shard.LoadDone(n.nowMs)
		gc.shards[i] = shard
	}
}

// offsetsTopicNow returns the internal topic, creating it when create is set; nil when
// it does not exist. When the topic was deleted or replaced behind the coordinator's
// back, the old state is dropped and its waiting requests answered with NOT_COORDINATOR.
func (n *Node) offsetsTopicNow(create bool) (*topic, error) {
	gc := &n.groups
	t := n.topics[offsetsTopic]
	if gc.topic != nil && t != gc.topic {
		n.detachOffsetsTopic()
	}
	if t == nil {
		if !create {
			return nil, nil
		}
		if n.cl != nil {
			n.autoCreateReplicated(offsetsTopic, n.cfg.OffsetsTopicPartitions, offsetsTopicConfigs())
			return nil, fmt.Errorf("%w: %s is being created", group.ErrCoordinatorNotAvailable, offsetsTopic)
		}
		tc, err := n.cfg.newTopicConfig(offsetsTopicConfigs())
		if err != nil {
			return nil, err
		}
		t, err = n.createTopic(offsetsTopic, n.cfg.OffsetsTopicPartitions, tc)
		if err != nil {
			return nil, fmt.Errorf("%w: create %s: %v", group.ErrCoordinatorNotAvailable, offsetsTopic, err)
		}
	}
	if gc.topic == nil {
		n.attachOffsetsTopic(t)
	}
	return t, nil
}

// offsetsTopicConfigs are the internal topic's settings.
func offsetsTopicConfigs() map[string]string {
	return map[string]string{
		"retention.ms":    "-1",
		"retention.bytes": "-1",
		"segment.bytes":   fmt.Sprint(offsetsTopicSegmentBytes),
	}
}

// detachOffsetsTopic forgets the internal topic's state (it was deleted).
func (n *Node) detachOffsetsTopic() {
	gc := &n.groups
	for i := range gc.writes {
		for _, w := range gc.writes[i] {
			if w.done != nil {
				w.done(group.ErrNotCoordinator)
			}
		}
	}
	for _, tok := range sortedTokens(gc.parked) {
		n.answerParkedGroup(gc.parked[tok], group.ErrNotCoordinator)
	}
	gc.topic, gc.shards, gc.writes = nil, nil, nil
	clear(gc.parked)
}

// groupShard returns the shard and partition of groupID. With create unset and no
// internal topic, it returns a nil shard and no error on a single node: no group exists.
// In cluster mode it returns NOT_COORDINATOR then: the node has not learned of the topic
// (a restarted node still replaying the metadata log), so it leads none of its
// partitions, and answering as for a group that does not exist would show every
// committed offset as -1 (sim finding 7).
func (n *Node) groupShard(groupID string, create bool) (*group.Coordinator, int, error) {
	t, err := n.offsetsTopicNow(create)
	if err != nil {
		return nil, 0, err
	}
	if t == nil {
		if n.cl != nil {
			return nil, 0, group.ErrNotCoordinator
		}
		return nil, 0, nil
	}
	i := int(group.PartitionFor(groupID, int32(len(t.partitions))))
	p := t.partitions[i]
	if n.groups.shards[i] == nil && p.failed == nil && p.leading {
		return nil, i, errCoordinatorLoading
	}
	if p.failed != nil || p.deleted || n.groups.shards[i] == nil {
		return nil, i, group.ErrNotCoordinator
	}
	return n.groups.shards[i], i, nil
}

func (n *Node) newGroupToken() group.Token {
	n.groups.nextToken++
	return n.groups.nextToken
}

// maxFlushRounds bounds flushGroups: a failed append reports back at once and may make
// more output.
const maxFlushRounds = 8

// flushGroups answers the parked requests the shard replied to and appends its stores.
func (n *Node) flushGroups(i int) {
	gc := &n.groups
	if gc.shards == nil || gc.shards[i] == nil {
		return
	}
	for round := 0; round < maxFlushRounds; round++ {
		replies, stores := gc.shards[i].Ready()
		if len(replies) == 0 && len(stores) == 0 {
			return
		}
		for _, s := range stores {
			n.appendGroupRecords(i, []group.Record{s.Record}, s.ID, nil)
		}
		for _, r := range replies {
			req := gc.parked[r.Token]
			if req == nil {
				continue // its connection closed
			}
			delete(gc.parked, r.Token)
			if r.Join != nil {
				n.respond(req, joinResponse(req, *r.Join))
			} else {
				n.respond(req, syncResponse(req, *r.Sync))
			}
		}
	}
}

// appendGroupRecords appends recs to internal partition i as one batch; done (may be
// nil) runs once they are durable or failed. A store is reported to the shard with
// Stored, other records with Applied.
func (n *Node) appendGroupRecords(i int, recs []group.Record, store group.StoreID, done func(error)) {
	gc := &n.groups
	p := gc.topic.partitions[i]
	shard := gc.shards[i]
	fail := func(err error) {
		if store != 0 {
			shard.Stored(n.nowMs, store, err)
		} else {
			shard.Applied(recs, false)
		}
		if done != nil {
			done(err)
		}
	}
	batch := group.AppendBatch(nil, recs, n.nowMs)
	if len(batch) > int(p.topic.config.MaxMessageBytes) {
		if store != 0 {
			fail(fmt.Errorf("kafka: group record of %d bytes over max.message.bytes", len(batch)))
		} else {
			fail(errCommitTooLarge)
		}
		return
	}
	if p.failed != nil || p.deleted {
		fail(group.ErrNotCoordinator)
		return
	}
	var last int64
	if p.rep != nil {
		p.quiet, p.quiesced = 0, false
		p.rep.SetClock(n.nowMs)
		n.cl.nextToken++
		var err error
		if _, last, err = p.rep.ProposeWrite(n.cl.nextToken, batch); err != nil {
			n.cl.touch(p)
			fail(group.ErrNotCoordinator)
			return
		}
		n.cl.touch(p)
	} else {
		record.SetPartitionLeaderEpoch(batch, leaderEpoch)
		var err error
		_, last, err = p.log.Append(batch, n.nowMs)
		if err != nil {
			p.failed = err
			fail(group.ErrNotCoordinator)
			return
		}
		n.markDirty(p, len(batch))
	}
	gc.writes[i] = append(gc.writes[i], groupWrite{end: last + 1, recs: recs, store: store, done: done})
}

// groupsDurable releases the internal writes of p that its high watermark now covers, in
// log order. SyncDone calls it.
func (n *Node) groupsDurable(p *partition) {
	gc := &n.groups
	if gc.topic == nil || p.topic != gc.topic {
		return
	}
	i := int(p.index)
	hw := p.highWatermark()
	shard := gc.shards[i]
	k := 0
	for ; k < len(gc.writes[i]) && gc.writes[i][k].end <= hw; k++ {
		w := gc.writes[i][k]
		if w.store != 0 {
			shard.Stored(n.nowMs, w.store, nil)
		} else {
			shard.Applied(w.recs, true)
		}
		if w.done != nil {
			w.done(nil)
		}
	}
	if k > 0 {
		rest := gc.writes[i][k:]
		clear(gc.writes[i][:k])
		gc.writes[i] = rest
		n.flushGroups(i)
	}
}

// groupsFailed fails every internal write waiting on p (its storage failed or it was
// deleted). SyncDone calls it.
func (n *Node) groupsFailed(p *partition) {
	gc := &n.groups
	if gc.topic == nil || p.topic != gc.topic {
		return
	}
	i := int(p.index)
	writes := gc.writes[i]
	gc.writes[i] = nil
	shard := gc.shards[i]
	for _, w := range writes {
		if w.store != 0 {
			shard.Stored(n.nowMs, w.store, group.ErrNotCoordinator)
		} else {
			shard.Applied(w.recs, false)
		}
		if w.done != nil {
			w.done(group.ErrNotCoordinator)
		}
	}
	if len(writes) > 0 {
		n.flushGroups(i)
	}
}

// tickGroups fires the shards' timers.
func (n *Node) tickGroups() {
	for i, s := range n.groups.shards {
		if s != nil && s.Deadline() > 0 && s.Deadline() <= n.nowMs {
			s.Tick(n.nowMs)
			n.flushGroups(i)
		}
	}
}

// groupsDeadline is the shards' earliest timer; 0 when none runs.
func (n *Node) groupsDeadline() int64 {
	d := int64(0)
	for _, s := range n.groups.shards {
		if s == nil {
			continue
		}
		if t := s.Deadline(); t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

// dropParkedGroups forgets the parked group requests of a closed connection.
func (n *Node) dropParkedGroups(c ConnID) {
	for tok, req := range n.groups.parked {
		if req.Conn == c {
			delete(n.groups.parked, tok)
		}
	}
}

func sortedTokens(m map[group.Token]*Request) []group.Token {
	toks := make([]group.Token, 0, len(m))
	for t := range m {
		toks = append(toks, t)
	}
	sort.Slice(toks, func(i, j int) bool { return toks[i] < toks[j] })
	return toks
}

// answerParkedGroup answers a parked JoinGroup or SyncGroup with err.
func (n *Node) answerParkedGroup(req *Request, err error) {
	switch req.Msg.(type) {
	case *kmsg.JoinGroupRequest:
		n.respond(req, joinResponse(req, group.JoinResult{Err: err, Generation: -1}))
	case *kmsg.SyncGroupRequest:
		n.respond(req, syncResponse(req, group.SyncResult{Err: err}))
	}
}

// groupsMaybeLoad loads the shard of internal partition p once this node leads it and
// its high watermark covers every entry of earlier terms (the new leader's first entry is
// committed): from then on the shard sees every committed write.
func (n *Node) groupsMaybeLoad(p *partition) {
	gc := &n.groups
	if gc.topic == nil || p.topic != gc.topic || !p.leading || p.failed != nil || p.deleted {
		return
	}
	i := int(p.index)
	if gc.shards[i] != nil || p.hw < p.leadEnd {
		return
	}
	shard := group.New(n.groupConfig())
	if err := replayPartition(p, shard); err != nil {
		p.fail(fmt.Errorf("kafka: replay %s: %w", p.dir, err))
		return
	}
	shard.LoadDone(n.nowMs)
	gc.shards[i] = shard
}

// groupsLostLeadership drops the shard of internal partition p when this node stops
// leading it: waiting writes and parked requests of its groups get NOT_COORDINATOR, and
// their clients find the new coordinator.
func (n *Node) groupsLostLeadership(p *partition) {
	gc := &n.groups
	if gc.topic == nil || p.topic != gc.topic {
		return
	}
	i := int(p.index)
	if gc.shards[i] == nil {
		return
	}
	n.groupsFailed(p)
	gc.shards[i] = nil
	for _, tok := range sortedTokens(gc.parked) {
		req := gc.parked[tok]
		var id string
		switch m := req.Msg.(type) {
		case *kmsg.JoinGroupRequest:
			id = m.Group
		case *kmsg.SyncGroupRequest:
			id = m.Group
		}
		if int(group.PartitionFor(id, int32(len(gc.topic.partitions)))) == i {
			delete(gc.parked, tok)
			n.answerParkedGroup(req, group.ErrNotCoordinator)
		}
	}
}
