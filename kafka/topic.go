package kafka

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"chronik/core/log"
	"chronik/core/producer"
	"chronik/core/record"
	"chronik/core/replica"
)

// metadataFile is written in every partition's directory: the topic's id and the configs
// set on it. It is replaced atomically (write, sync, rename, sync dir).
const metadataFile = "partition.metadata"

// MaxTopicNameLen is Kafka's limit on a topic name.
const MaxTopicNameLen = 249

type topic struct {
	name       string
	id         [16]byte
	config     topicConfig
	partitions []*partition
}

type partition struct {
	topic *topic
	index int32
	dir   string

	log       *log.Log
	producers *producer.State

	// dirty: appended bytes not yet covered by a sync job (see Node.dirty).
	dirty           bool
	firstUnsyncedMs int64
	unsyncedBytes   int64
	syncing         *log.SyncJob

	// waiters are produce answers waiting for the durable offset, in append order.
	waiters []produceWaiter

	failed  error // storage failed: the partition stops serving
	deleted bool

	// Cluster mode (replicated.go). rep is nil when this node does not host the
	// partition (then log is nil too).
	rep      *replica.Replica
	group    uint64  // Raft group id
	replicas []int32 // node ids, the preferred leader first
	pend     *producer.Pending
	// hw, leading and term are what the node last saw of rep; leadEnd is the log end when
	// this replica became leader (its term's first entry included): the groups of an
	// internal partition load once the high watermark reaches it.
	hw      int64
	leading bool
	term    uint64
	leadEnd int64
	touched bool // in clusterState.touched
	// pendingOpen: hosted here, its replica not opened yet (openPending).
	pendingOpen bool
	// campaignTicks counts down the ticks in which a new partition's preferred leader
	// stands for election while no leader is known.
	campaignTicks int
	// quiet counts the ticks p's replica has been settled (replica.Settled) without news;
	// quiesced: it is not ticked until a message or a proposal arrives (cluster.go).
	quiet    int
	quiesced bool
	// awakeUntilTick: p does not quiesce before this tick (an election is on).
	awakeUntilTick uint64
	// ctrlRunStart is the base offset of the run of Raft control batches that ends the
	// log, -1 when the log ends with data (or it is not known: after a truncation).
	// Clients never see these batches (dropRaftBatches), so the high watermark they are
	// told stops before such a run: a consumer that read everything has lag 0.
	ctrlRunStart int64
	// hintLeader and hintEpoch are the last leader hint applied (metaLeaderHint), for
	// partitions this node does not host; -1 when none.
	hintLeader int32
	hintEpoch  int32
	repSyncing bool // a replica SyncJob is outstanding
}

type partitionMetadata struct {
	TopicID string            `json:"topic_id"`
	Configs map[string]string `json:"configs,omitempty"`
}

var errInvalidTopic = errors.New("kafka: invalid topic name")

// validTopicName reports whether name is a legal Kafka topic name.
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxTopicNameLen {
		return fmt.Errorf("%w: %q", errInvalidTopic, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has a character outside [a-zA-Z0-9._-]", errInvalidTopic, name)
		}
	}
	return nil
}

// loadTopics opens every partition directory under the data dir.
func (n *Node) loadTopics() error {
	names, err := n.fs.List(n.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("kafka: list data dir: %w", err)
	}
	type found struct {
		meta  partitionMetadata
		parts map[int32]bool
	}
	byTopic := map[string]*found{}
	for _, name := range names {
		i := strings.LastIndexByte(name, '-')
		if i <= 0 {
			continue
		}
		idx, err := strconv.ParseInt(name[i+1:], 10, 32)
		if err != nil || idx < 0 || validTopicName(name[:i]) != nil {
			continue
		}
		meta, err := n.readMetadata(path.Join(n.cfg.DataDir, name))
		if err != nil {
			continue // not a partition directory (or a half-created one): ignore it
		}
		f := byTopic[name[:i]]
		if f == nil {
			f = &found{meta: meta, parts: map[int32]bool{}}
			byTopic[name[:i]] = f
		}
		f.parts[int32(idx)] = true
	}
	for _, name := range sortedKeys(byTopic) {
		f := byTopic[name]
		var id [16]byte
		if b, err := hex.DecodeString(f.meta.TopicID); err == nil && len(b) == 16 {
			copy(id[:], b)
		}
		tc, err := n.cfg.newTopicConfig(f.meta.Configs)
		if err != nil {
			return fmt.Errorf("kafka: topic %s: %w", name, err)
		}
		count := int32(0)
		for idx := range f.parts {
			count = max(count, idx+1)
		}
		t := &topic{name: name, id: id, config: tc}
		if err := n.addPartitions(t, count); err != nil {
			return err
		}
		n.topics[name] = t
		n.topicIDs[id] = t
	}
	return nil
}

func (n *Node) readMetadata(dir string) (partitionMetadata, error) {
	var meta partitionMetadata
	f, err := n.fs.Open(path.Join(dir, metadataFile))
	if err != nil {
		return meta, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return meta, err
	}
	if size > 1<<20 {
		return meta, fmt.Errorf("kafka: %s: metadata file too large", dir)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return meta, err
	}
	if err := json.Unmarshal(buf, &meta); err != nil {
		return meta, fmt.Errorf("kafka: %s: %w", dir, err)
	}
	return meta, nil
}

// writeMetadata replaces a partition directory's metadata file durably. It blocks on
// fsync: it runs only for admin requests (create topic, create partitions), never on the
// produce or fetch path.
func (n *Node) writeMetadata(dir string, t *topic) error {
	b, err := json.Marshal(partitionMetadata{TopicID: hex.EncodeToString(t.id[:]), Configs: t.config.Set})
	if err != nil {
		return err
	}
	tmp := path.Join(dir, metadataFile+".tmp")
	f, err := n.fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := n.fs.Rename(tmp, path.Join(dir, metadataFile)); err != nil {
		return err
	}
	if err := n.fs.SyncDir(dir); err != nil {
		return err
	}
	return n.fs.SyncDir(n.cfg.DataDir)
}

// createTopic creates and persists a topic with count partitions.
func (n *Node) createTopic(name string, count int32, tc topicConfig) (*topic, error) {
	t := &topic{name: name, config: tc, id: n.newTopicID()}
	if err := n.addPartitions(t, count); err != nil {
		return nil, err
	}
	n.topics[name] = t
	n.topicIDs[t.id] = t
	return t, nil
}

// newTopicID draws a topic id no topic has.
func (n *Node) newTopicID() [16]byte {
	for {
		var id [16]byte
		for i := range id {
			id[i] = byte(n.rng.Uint32())
		}
		if _, taken := n.topicIDs[id]; !taken && id != [16]byte{} {
			return id
		}
	}
}

// addPartitions opens (creating when new) partitions len(t.partitions)..count-1.
func (n *Node) addPartitions(t *topic, count int32) error {
	for i := int32(len(t.partitions)); i < count; i++ {
		if n.nparts >= n.cfg.MaxPartitionsTotal {
			return fmt.Errorf("kafka: partition limit %d reached", n.cfg.MaxPartitionsTotal)
		}
		dir := path.Join(n.cfg.DataDir, t.name+"-"+strconv.Itoa(int(i)))
		if err := n.fs.MkdirAll(dir); err != nil {
			return err
		}
		if _, err := n.readMetadata(dir); err != nil {
			if err := n.writeMetadata(dir, t); err != nil {
				return fmt.Errorf("kafka: %s: %w", dir, err)
			}
		}
		l, err := log.Open(n.fs, dir, t.config.logConfig(), n.nowMs)
		if err != nil {
			return fmt.Errorf("kafka: open %s: %w", dir, err)
		}
		p := &partition{topic: t, index: i, dir: dir, log: l, producers: producer.New()}
		if err := l.Batches(l.StartOffset(), func(h record.Header) bool {
			p.producers.Append(h)
			return true
		}); err != nil {
			l.Close()
			return fmt.Errorf("kafka: rebuild producer state of %s: %w", dir, err)
		}
		t.partitions = append(t.partitions, p)
		n.nparts++
		n.maybeDirty(p) // recovery may leave work for a sync job (sealing, directory entries)
	}
	return nil
}

// deleteTopic removes a topic's partitions from the node and their files from disk.
func (n *Node) deleteTopic(t *topic) error {
	delete(n.topics, t.name)
	delete(n.topicIDs, t.id)
	var errs []error
	for _, p := range t.partitions {
		p.deleted = true
		if p.pendingOpen {
			n.nparts-- // hosted, never opened
			continue
		}
		if p.replicas != nil && p.rep == nil && p.log == nil {
			continue // cluster mode: not hosted here
		}
		n.nparts--
		p.failWaiters(n, errCodeOf(errUnknownTopic))
		switch {
		case p.rep != nil:
			delete(n.cl.groups, p.group)
			if !p.repSyncing {
				if err := p.rep.Close(); err != nil {
					errs = append(errs, err)
				}
			}
		case p.syncing == nil:
			if err := p.log.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		names, err := n.fs.List(p.dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range names {
			if err := n.fs.Remove(path.Join(p.dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
		if err := n.fs.Remove(p.dir); err != nil {
			errs = append(errs, err)
		}
	}
	n.wakeParkedAll()
	if err := n.fs.SyncDir(n.cfg.DataDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// syncDue reports whether a dirty partition's group-commit window has closed.
func (p *partition) syncDue(nowMs, windowMs, maxBytes int64) bool {
	return p.syncing == nil && (windowMs == 0 || nowMs-p.firstUnsyncedMs >= windowMs || p.unsyncedBytes >= maxBytes)
}

// markDirty notes bytes appended and not yet synced.
func (n *Node) markDirty(p *partition, bytes int) {
	if p.unsyncedBytes == 0 {
		p.firstUnsyncedMs = n.nowMs
	}
	p.unsyncedBytes += int64(bytes)
	if !p.dirty {
		p.dirty = true
		n.dirty = append(n.dirty, p)
	}
}

// highWatermark is the end of what clients may read: on a single node, the durable end.
func (p *partition) highWatermark() int64 {
	if p.rep != nil {
		hw := p.rep.HighWatermark()
		if p.ctrlRunStart >= 0 && p.ctrlRunStart < hw {
			return p.ctrlRunStart
		}
		return hw
	}
	if bugHWBeforeDurable { // planted bug: chronikbugs builds only
		return p.log.EndOffset()
	}
	return p.log.DurableOffset()
}

// fail stops p serving: every later request to it gets KAFKA_STORAGE_ERROR. The first
// failure is kept.
func (p *partition) fail(err error) {
	if p.failed != nil {
		return
	}
	if !errors.Is(err, log.ErrFailed) {
		err = fmt.Errorf("%w: %s-%d: %w", log.ErrFailed, p.topic.name, p.index, err)
	}
	p.failed = err
}

// internal reports whether t is a broker-owned topic that clients may read but not write,
// delete or grow (Kafka's Topic.isInternal).
func (t *topic) internal() bool { return t.name == offsetsTopic }

// errInternalTopic is INVALID_TOPIC_EXCEPTION, as Kafka answers writes to its internal topics.
var errInternalTopic = fmt.Errorf("%w: internal topic", errInvalidTopic)
