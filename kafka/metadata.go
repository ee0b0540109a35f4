package kafka

// The metadata group (cluster mode): one Raft group of every node whose log holds the
// cluster's topics, their configs and their partitions' replica assignments, as commands
// (one JSON value in one record of one batch per entry). Every node applies the committed
// commands in order, so every node has the same topics; each node opens the replicas it
// hosts. Admin requests propose a command (a follower forwards it to the metadata
// leader) and are answered when this node applies it, or REQUEST_TIMED_OUT after
// Config.AdminTimeoutMs.
//
// Raft group ids of partitions come from applied state (nextGroup), so every node agrees
// on them, and they are never reused: a partition's directory is named after its group
// (<topic>-<partition>.g<group>), so a topic deleted and created again never finds the
// old one's files.

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/producer"
	"chronik/core/record"
	"chronik/core/replica"
)

// metadataDir is the metadata replica's directory under the data dir (not a valid topic
// partition name, so single-node loading never mistakes it for one).
const metadataDir = "@metadata"

// Replica memory bounds (docs/replication.md, "Memory and copies"). An active replica's
// entry cache may hold replicaCacheBytes while the node's caches together stay within
// nodeCacheBudgetBytes, and replicaCacheFloorBytes past it. Under load a replica's log
// runs up to the leader's uncommitted bound (replicaMaxUncommittedBytes) ahead of what it
// has applied, so a cache a little larger than that spares every replica reading its
// entries back from the log to apply them, and the leader to send them.
const (
	replicaMaxUncommittedBytes = 16 << 20
	replicaCacheBytes          = replicaMaxUncommittedBytes + 8<<20
	replicaCacheFloorBytes     = 1 << 20
	nodeCacheBudgetBytes       = 128 << 20
)

// metaCommand is one entry of the metadata log.
type metaCommand struct {
	Origin int32  `json:"origin"` // the node that proposed it, which answers the request
	Seq    uint64 `json:"seq"`    // the proposer's sequence, naming the waiting request

	CreateTopic      *metaCreateTopic      `json:"create_topic,omitempty"`
	DeleteTopic      *metaDeleteTopic      `json:"delete_topic,omitempty"`
	CreatePartitions *metaCreatePartitions `json:"create_partitions,omitempty"`
	LeaderHint       *metaLeaderHint       `json:"leader_hint,omitempty"`
	RegisterBroker   *metaBroker           `json:"register_broker,omitempty"`
}

// metaBroker is a broker's registration: the addresses it advertises. Every node
// registers itself when the applied registration differs from its configuration, and
// Metadata names brokers as registered (the -peers list is the bootstrap for nodes not
// registered yet).
type metaBroker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
}

// metaLeaderHint says who leads a partition, for the nodes that do not host it (a topic
// with fewer replicas than nodes): its leader proposes one when it wins. A stale hint
// costs a client one NOT_LEADER_OR_FOLLOWER and a metadata refresh, as in Kafka.
type metaLeaderHint struct {
	Group  uint64 `json:"group"`
	Leader int32  `json:"leader"`
	Epoch  int32  `json:"epoch"`
}

type metaCreateTopic struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`       // 16 bytes, hex
	Replicas [][]int32         `json:"replicas"` // per partition, the preferred leader first
	Configs  map[string]string `json:"configs,omitempty"`
}

type metaDeleteTopic struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

type metaCreatePartitions struct {
	Name     string    `json:"name"`
	From     int32     `json:"from"`     // the partition count it grows from
	Replicas [][]int32 `json:"replicas"` // the new partitions'
}

// metaWait is an admin request waiting for its command to apply here.
type metaWait struct {
	deadlineMs int64
	done       func(err error)
}

// encodeMeta frames a command as one uncompressed v2 batch of one record.
func encodeMeta(cmd *metaCommand, nowMs int64) ([]byte, error) {
	value, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	r := kmsg.Record{Key: []byte("chronik.meta"), Value: value}
	r.Length = int32(len(r.AppendTo(nil)) - 1) // AppendTo writes Length as given: measure with a 1-byte 0
	body := r.AppendTo(nil)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		FirstTimestamp:       nowMs,
		MaxTimestamp:         nowMs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              body,
	}
	out := b.AppendTo(nil)
	record.FixLengthAndCRC(out)
	return out, nil
}

// decodeMeta reads the command of a metadata batch; ok is false for batches that are not
// commands (control batches: leader changes).
func decodeMeta(batch []byte) (cmd metaCommand, ok bool, err error) {
	var b kmsg.RecordBatch
	if err := b.ReadFrom(batch); err != nil {
		return cmd, false, fmt.Errorf("kafka: metadata batch: %w", err)
	}
	if b.Attributes&0x20 != 0 || b.NumRecords != 1 {
		return cmd, false, nil
	}
	recs := b.Records
	l, n := binary.Varint(recs)
	if n <= 0 || l < 0 || int64(len(recs)-n) < l {
		return cmd, false, errors.New("kafka: metadata batch: truncated record")
	}
	var r kmsg.Record
	if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
		return cmd, false, fmt.Errorf("kafka: metadata record: %w", err)
	}
	if err := json.Unmarshal(r.Value, &cmd); err != nil {
		return cmd, false, fmt.Errorf("kafka: metadata command: %w", err)
	}
	return cmd, true, nil
}

// proposeMeta proposes cmd; done runs when this node applies it (with its outcome) or
// when it times out.
func (n *Node) proposeMeta(cmd *metaCommand, done func(err error)) error {
	cl := n.cl
	cl.nextSeq++
	cmd.Origin, cmd.Seq = n.cfg.NodeID, cl.nextSeq
	b, err := encodeMeta(cmd, n.nowMs)
	if err != nil {
		return err
	}
	if err := cl.meta.ProposeForward(b); err != nil {
		if errors.Is(err, replica.ErrProposalDropped) {
			return fmt.Errorf("%w: %v", errNotController, err)
		}
		return err
	}
	cl.metaTouched = true
	if done != nil {
		cl.waits[cmd.Seq] = &metaWait{deadlineMs: n.nowMs + n.cfg.AdminTimeoutMs, done: done}
	}
	return nil
}

// expireMetaWaits answers the admin requests whose commands did not apply in time. The
// command may still apply later: the answer says the outcome is unknown, as Kafka's does.
func (n *Node) expireMetaWaits() {
	for _, seq := range sortedSeqs(n.cl.waits) {
		w := n.cl.waits[seq]
		if n.nowMs >= w.deadlineMs {
			delete(n.cl.waits, seq)
			w.done(fmt.Errorf("%w: the metadata change did not apply within %d ms", errTimedOut, n.cfg.AdminTimeoutMs))
		}
	}
}

func sortedSeqs(m map[uint64]*metaWait) []uint64 { return slices.Sorted(maps.Keys(m)) }

// replayMeta applies the committed metadata log at open: Raft does not apply again what
// was committed before a restart (the log is the state machine).
func (n *Node) replayMeta() error {
	l := n.cl.meta.Storage().Log()
	off, end := l.StartOffset(), n.cl.meta.HighWatermark()
	for off < end {
		data, err := l.Read(off, replayReadBytes, end)
		if err != nil {
			return fmt.Errorf("kafka: replay metadata: %w", err)
		}
		if len(data) == 0 {
			break
		}
		next := off
		if err := record.Split(data, func(b []byte, h record.Header) bool {
			next = h.LastOffset() + 1
			n.applyMeta(b)
			return true
		}); err != nil {
			return fmt.Errorf("kafka: replay metadata: %w", err)
		}
		if next <= off {
			return fmt.Errorf("kafka: replay metadata stuck at offset %d", off)
		}
		off = next
	}
	return nil
}

// applyMeta applies one committed metadata entry on this node.
func (n *Node) applyMeta(batch []byte) {
	cmd, ok, err := decodeMeta(batch)
	if err != nil || !ok {
		return // not a command (a leader change); a damaged one would have failed its CRC
	}
	var result error
	switch {
	case cmd.CreateTopic != nil:
		result = n.applyCreateTopic(cmd.CreateTopic)
	case cmd.DeleteTopic != nil:
		result = n.applyDeleteTopic(cmd.DeleteTopic)
	case cmd.CreatePartitions != nil:
		result = n.applyCreatePartitions(cmd.CreatePartitions)
	case cmd.RegisterBroker != nil:
		b := *cmd.RegisterBroker
		if _, ok := n.cl.peerByID(b.ID); ok {
			n.cl.registered[b.ID] = b
		}
	case cmd.LeaderHint != nil:
		if p := n.cl.byGroup[cmd.LeaderHint.Group]; p != nil && cmd.LeaderHint.Epoch >= p.hintEpoch {
			p.hintLeader, p.hintEpoch = cmd.LeaderHint.Leader, cmd.LeaderHint.Epoch
		}
	}
	if cmd.Origin == n.cfg.NodeID {
		if w := n.cl.waits[cmd.Seq]; w != nil {
			delete(n.cl.waits, cmd.Seq)
			w.done(result)
		}
	}
}

func (n *Node) applyCreateTopic(c *metaCreateTopic) error {
	if n.topics[c.Name] != nil {
		return fmt.Errorf("%w: %q", errTopicExists, c.Name)
	}
	var id [16]byte
	if b, err := hex.DecodeString(c.ID); err == nil && len(b) == 16 {
		copy(id[:], b)
	}
	if _, taken := n.topicIDs[id]; taken {
		return fmt.Errorf("%w: topic id %s is taken", errTopicExists, c.ID)
	}
	tc, err := n.cfg.newTopicConfig(c.Configs)
	if err != nil {
		return err
	}
	t := &topic{name: c.Name, id: id, config: tc}
	for _, reps := range c.Replicas {
		n.addReplicated(t, reps)
	}
	n.topics[t.name] = t
	n.topicIDs[t.id] = t
	if t.name == offsetsTopic {
		n.attachOffsetsTopic(t)
	}
	n.wakeParkedAll()
	return nil
}

func (n *Node) applyDeleteTopic(c *metaDeleteTopic) error {
	t := n.topics[c.Name]
	if t == nil || hex.EncodeToString(t.id[:]) != c.ID {
		return fmt.Errorf("%w: %q", errUnknownTopic, c.Name)
	}
	for _, p := range t.partitions {
		delete(n.cl.byGroup, p.group)
	}
	return n.deleteTopic(t)
}

func (n *Node) applyCreatePartitions(c *metaCreatePartitions) error {
	t := n.topics[c.Name]
	if t == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, c.Name)
	}
	if int32(len(t.partitions)) != c.From {
		return fmt.Errorf("%w: topic %q has %d partitions, not %d (a concurrent change)", errInvalidPartition, c.Name, len(t.partitions), c.From)
	}
	for _, reps := range c.Replicas {
		n.addReplicated(t, reps)
	}
	n.wakeParkedAll()
	return nil
}

// addReplicated appends a partition with replicas reps to t, opening its replica when
// this node hosts it. The group id is taken whether or not it does.
func (n *Node) addReplicated(t *topic, reps []int32) {
	cl := n.cl
	group := cl.nextGroup
	cl.nextGroup++
	i := int32(len(t.partitions))
	p := &partition{
		topic:    t,
		index:    i,
		dir:      path.Join(n.cfg.DataDir, t.name+"-"+strconv.Itoa(int(i))+".g"+strconv.FormatUint(group, 10)),
		group:    group,
		replicas: append([]int32(nil), reps...),
		hw:       -1,

		hintLeader: -1,
		hintEpoch:  -1,

		ctrlRunStart: -1,
	}
	t.partitions = append(t.partitions, p)
	cl.byGroup[group] = p
	if !p.hosted(n.cfg.NodeID) {
		return
	}
	n.nparts++
	if cl.replaying {
		n.openNow(p)
		return
	}
	// Creating a replica syncs a few files; a topic of a thousand partitions would block
	// the loop for seconds (no heartbeats, no liveness pings). Replicas open a few per
	// Ready instead (openPending); until then the partition is served as not hosted here.
	p.pendingOpen = true
	cl.toOpen = append(cl.toOpen, p)
}

// maxOpensPerReady bounds the replicas one Ready opens.
const maxOpensPerReady = 16

// openNow opens p's replica and starts driving it.
func (n *Node) openNow(p *partition) {
	p.pendingOpen = false
	if err := n.openReplica(p); err != nil {
		p.fail(err)
		return
	}
	n.cl.groups[p.group] = p
	n.cl.order = append(n.cl.order, p) // in group order: toOpen is
	n.cl.touch(p)
}

// openPending opens up to maxOpensPerReady of the replicas waiting, in group order.
func (n *Node) openPending() {
	cl := n.cl
	k := 0
	for opened := 0; k < len(cl.toOpen) && opened < maxOpensPerReady; k++ {
		if p := cl.toOpen[k]; !p.deleted {
			n.openNow(p)
			opened++
		}
	}
	clear(cl.toOpen[:k])
	cl.toOpen = cl.toOpen[k:]
}

// hosted reports whether node holds a replica of p.
func (p *partition) hosted(node int32) bool {
	for _, r := range p.replicas {
		if r == node {
			return true
		}
	}
	return false
}

// openReplica opens (recovering, or creating) p's replica and rebuilds its producer state:
// committed up to the high watermark, pending above it.
func (n *Node) openReplica(p *partition) error {
	if err := n.fs.MkdirAll(p.dir); err != nil {
		return err
	}
	names, err := n.fs.List(p.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fresh := len(names) == 0
	peers := make([]uint64, len(p.replicas))
	for i, r := range p.replicas {
		peers[i] = RaftID(r)
	}
	lc := p.topic.config.logConfig()
	rep, err := replica.Open(n.fs, p.dir, replica.Config{
		ID:            n.cl.me,
		Peers:         peers,
		ElectionTicks: n.cl.electionTicks,
		Log:           lc,
		// Per-partition memory, bounded so that many partitions stay within the node's
		// budget: the entry cache (dropped when the group quiesces) and the leader's
		// uncommitted entries.
		MaxCacheBytes:       replicaCacheBytes,
		CacheBudget:         &n.cl.cacheBudget,
		MaxUncommittedBytes: replicaMaxUncommittedBytes,
		OnWrite: func(h record.Header) {
			p.noteWritten(h)
			if p.pend != nil {
				p.pend.Append(h)
			}
		},
		OnTruncate: func(offset int64) {
			p.ctrlRunStart = -1 // what ends the log now is not known: the plain high watermark
			if p.pend != nil {
				p.pend.Discard(offset)
			}
		},
		// A snapshot from the leader replaced the log: the producer state restarts from
		// the one it carries (the replica has checked that it decodes).
		OnSnapshot: func(offset int64, producers []byte) {
			st, err := producer.Decode(producers)
			if err != nil {
				panic(fmt.Sprintf("kafka: snapshot producer state of %s: %v", p.dir, err))
			}
			p.pend = producer.NewPending(st, offset)
			p.ctrlRunStart = -1
		},
	}, n.nowMs)
	if err != nil {
		return fmt.Errorf("kafka: open replica %s: %w", p.dir, err)
	}
	p.rep, p.log = rep, rep.Storage().Log()
	p.hw = rep.HighWatermark()
	// The producer state at the log start (retention and snapshots move it), then the log.
	committed := producer.New()
	if b := rep.Storage().ProducerSnapshot(); b != nil {
		if committed, err = producer.Decode(b); err != nil {
			return fmt.Errorf("kafka: producer snapshot of %s: %w", p.dir, err)
		}
	}
	var tail []record.Header
	if err := p.log.Batches(rep.Storage().StartOffset(), func(h record.Header) bool {
		p.noteWritten(h)
		if h.BaseOffset < p.hw {
			committed.Append(h)
		} else {
			tail = append(tail, h)
		}
		return true
	}); err != nil {
		return fmt.Errorf("kafka: rebuild producer state of %s: %w", p.dir, err)
	}
	p.pend = producer.NewPending(committed, p.hw)
	for _, h := range tail {
		p.pend.Append(h)
	}
	// A new partition elects its preferred leader within a few ticks rather than after an
	// election timeout (tickCluster): not at once, since the other replicas may not have
	// applied the topic yet and would drop its votes.
	if fresh && p.replicas[0] == n.cfg.NodeID {
		p.campaignTicks = preferredCampaignTicks
	}
	return nil
}
