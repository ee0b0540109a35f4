// Package kafka is the broker node: the Kafka protocol's state machine over the
// partitions of core/log, one file per API key. It is deterministic and single-threaded,
// like etcd raft's RawNode: events in, a batch of work out, the caller does the I/O.
//
// The caller (cmd/chronik's loop in production, sim/ in the simulator) must:
//  1. Decode each request frame at the edge with Decode (parallel, off the loop) and hand
//     it to Handle, with a per-connection Seq numbering the requests from 0.
//  2. Call Tick with the current time in milliseconds before each batch of events and by
//     the deadline that Ready returns.
//  3. After a batch of events, call Ready: write its Responses to their connections in Seq
//     order per connection; run each SyncTask's Job off the loop and report it with
//     SyncDone.
//  4. Call ConnClosed when a connection ends, so parked fetches for it are dropped.
//
// Like core/, this package starts no goroutine and reads no clock, no os, no net, no global
// random source: the lint test in internal/lint enforces it.
package kafka

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/log"
	"chronik/core/producer"
	"chronik/core/replica"
)

// Node is one broker.
type Node struct {
	cfg Config
	fs  log.FS
	rng *rand.Rand

	nowMs int64

	topics   map[string]*topic
	topicIDs map[[16]byte]*topic
	nparts   int

	// dirty lists partitions with appends not yet covered by a sync job.
	// Invariant: p.dirty iff p is in dirty.
	dirty []*partition

	parked []*parkedFetch
	// parkedDueMs is the earliest deadline of the parked fetches. Invariant: when parked
	// is not empty, parkedDueMs <= every parked deadline (it may be earlier after a fetch
	// is answered early; the next expireParked walk recomputes it).
	parkedDueMs int64

	pids pidBlock

	groups groupCoordinator // consumer groups: groups.go

	nextRetentionMs int64

	cl *clusterState // cluster mode (cluster.go); nil on a single node
	// leadershipChanges counts partition leaderships gained or lost (NodeStats).
	leadershipChanges int64

	out   []Response
	syncs []SyncTask
}

// SyncTask is a sync job the caller runs off the loop (Run) and reports with SyncDone.
type SyncTask struct {
	Job *log.SyncJob // a single node's partition log job; nil for a replica's
	p   *partition   // nil for the metadata replica's
	// Cluster mode: a replica's job (its log, then its Raft state file).
	rjob *replica.SyncJob
	rep  *replica.Replica
}

// Run syncs the task's files. It may be called from any goroutine.
func (t SyncTask) Run() error {
	if t.rjob != nil {
		return t.rjob.Run()
	}
	return t.Job.Run()
}

// Ready is the work a batch of events produced.
type Ready struct {
	Responses []Response
	Syncs     []SyncTask
	// Messages are Raft messages for other nodes (cluster mode; cluster.go).
	Messages []PeerMessage
	// DeadlineMs is when Tick must next be called (0: no timer is needed).
	DeadlineMs int64
}

// NewNode opens (recovering) every partition under cfg.DataDir. seed drives the node's
// only randomness: topic ids.
func NewNode(cfg Config, fs log.FS, nowMs int64, seed uint64) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:      cfg,
		fs:       fs,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nowMs:    nowMs,
		topics:   make(map[string]*topic),
		topicIDs: make(map[[16]byte]*topic),
	}
	if err := fs.MkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("kafka: data dir: %w", err)
	}
	if err := n.pids.load(fs, cfg.DataDir); err != nil {
		n.Close()
		return nil, err
	}
	if len(cfg.Peers) > 0 {
		if err := n.openCluster(); err != nil {
			n.Close()
			return nil, err
		}
	} else {
		if err := n.loadTopics(); err != nil {
			n.Close()
			return nil, err
		}
		if err := n.loadGroups(); err != nil {
			n.Close()
			return nil, err
		}
	}
	n.nextRetentionMs = nowMs + cfg.RetentionCheckMs
	return n, nil
}

// Close closes every partition's files. Outstanding sync jobs must have been reported.
func (n *Node) Close() error {
	var errs []error
	for _, name := range sortedKeys(n.topics) {
		for _, p := range n.topics[name].partitions {
			var err error
			switch {
			case p.rep != nil:
				err = p.rep.Close()
			case p.log != nil:
				err = p.log.Close()
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if n.cl != nil && n.cl.meta != nil {
		errs = append(errs, n.cl.meta.Close())
	}
	return errors.Join(errs...)
}

// Tick advances the node's clock: expired long polls are answered, and retention runs when
// due.
func (n *Node) Tick(nowMs int64) {
	if nowMs < n.nowMs {
		return // the clock never goes backwards inside the node
	}
	n.nowMs = nowMs
	n.expireParked()
	n.tickGroups()
	if n.cl != nil {
		n.tickCluster()
	}
	if nowMs >= n.nextRetentionMs {
		n.nextRetentionMs = nowMs + n.cfg.RetentionCheckMs
		n.enforceRetention()
	}
}

// NowMs is the node's clock.
func (n *Node) NowMs() int64 { return n.nowMs }

// Handle processes one decoded request.
func (n *Node) Handle(req *Request) {
	switch m := req.Msg.(type) {
	case *kmsg.ApiVersionsRequest:
		n.handleApiVersions(req, m)
	case *kmsg.MetadataRequest:
		n.handleMetadata(req, m)
	case *kmsg.ProduceRequest:
		n.handleProduce(req, m)
	case *kmsg.FetchRequest:
		n.handleFetch(req, m)
	case *kmsg.ListOffsetsRequest:
		n.handleListOffsets(req, m)
	case *kmsg.CreateTopicsRequest:
		n.handleCreateTopics(req, m)
	case *kmsg.DeleteTopicsRequest:
		n.handleDeleteTopics(req, m)
	case *kmsg.CreatePartitionsRequest:
		n.handleCreatePartitions(req, m)
	case *kmsg.InitProducerIDRequest:
		n.handleInitProducerID(req, m)
	case *kmsg.OffsetForLeaderEpochRequest:
		n.handleOffsetForLeaderEpoch(req, m)
	case *kmsg.DescribeConfigsRequest:
		n.handleDescribeConfigs(req, m)
	case *kmsg.DescribeClusterRequest:
		n.handleDescribeCluster(req, m)
	case *kmsg.OffsetCommitRequest:
		n.handleOffsetCommit(req, m)
	case *kmsg.OffsetFetchRequest:
		n.handleOffsetFetch(req, m)
	case *kmsg.FindCoordinatorRequest:
		n.handleFindCoordinator(req, m)
	case *kmsg.JoinGroupRequest:
		n.handleJoinGroup(req, m)
	case *kmsg.HeartbeatRequest:
		n.handleHeartbeat(req, m)
	case *kmsg.LeaveGroupRequest:
		n.handleLeaveGroup(req, m)
	case *kmsg.SyncGroupRequest:
		n.handleSyncGroup(req, m)
	case *kmsg.DescribeGroupsRequest:
		n.handleDescribeGroups(req, m)
	case *kmsg.ListGroupsRequest:
		n.handleListGroups(req, m)
	case *kmsg.DeleteGroupsRequest:
		n.handleDeleteGroups(req, m)
	case *kmsg.OffsetDeleteRequest:
		n.handleOffsetDelete(req, m)
	default:
		// Decode admits only the keys in supported; reaching here is a programmer error.
		panic(fmt.Sprintf("kafka: no handler for api key %d", req.Key))
	}
}

// respond queues msg as req's answer.
func (n *Node) respond(req *Request, msg kmsg.Response) {
	n.out = append(n.out, Response{Conn: req.Conn, Seq: req.Seq, CorrelationID: req.CorrelationID, Msg: msg})
}

// closeConn answers req by closing its connection.
func (n *Node) closeConn(req *Request) {
	n.out = append(n.out, Response{Conn: req.Conn, Seq: req.Seq, CorrelationID: req.CorrelationID, Close: true})
}

// ConnClosed drops the parked fetches and group requests of a closed connection.
func (n *Node) ConnClosed(c ConnID) {
	n.dropParkedGroups(c)
	kept := n.parked[:0]
	for _, pf := range n.parked {
		if pf.req.Conn != c {
			kept = append(kept, pf)
		}
	}
	clear(n.parked[len(kept):])
	n.parked = kept
}

// Ready returns the responses and sync jobs produced since the last call.
func (n *Node) Ready() Ready {
	if n.cl != nil {
		n.readyCluster()
	}
	n.startSyncs()
	rd := Ready{Responses: n.out, Syncs: n.syncs, DeadlineMs: n.deadline()}
	n.out, n.syncs = nil, nil
	if n.cl != nil {
		rd.Messages, n.cl.out = n.cl.out, nil
	}
	return rd
}

// startSyncs hands out a sync job for every dirty partition whose group-commit window has
// closed and that has no job outstanding.
func (n *Node) startSyncs() {
	kept := n.dirty[:0]
	for _, p := range n.dirty {
		if p.syncing != nil || !p.syncDue(n.nowMs, n.cfg.GroupCommitWindowMs, n.cfg.GroupCommitMaxBytes) {
			kept = append(kept, p) // SyncDone or a later Ready looks again
			continue
		}
		p.dirty = false
		job := p.log.PrepareSync()
		if job == nil {
			continue // nothing to sync after all (or the log failed)
		}
		p.syncing = job
		p.unsyncedBytes = 0
		n.syncs = append(n.syncs, SyncTask{Job: job, p: p})
	}
	clear(n.dirty[len(kept):])
	n.dirty = kept
}

// maybeDirty queues p for a sync job when its log has work for one: appends, a rolled
// segment to seal, directory entries created or removed.
func (n *Node) maybeDirty(p *partition) {
	if !p.dirty && !p.deleted && p.log.NeedsSync() {
		p.dirty = true
		n.dirty = append(n.dirty, p)
	}
}

// deadline is the earliest time the node needs a Tick.
func (n *Node) deadline() int64 {
	d := n.nextRetentionMs
	if g := n.groupsDeadline(); g > 0 {
		d = min(d, g)
	}
	if len(n.parked) > 0 {
		d = min(d, n.parkedDueMs)
	}
	if n.cl != nil {
		d = min(d, n.cl.nextTickMs)
		if len(n.cl.toOpen) > 0 {
			d = n.nowMs // replicas wait to be opened: come back at once
		}
	}
	if n.cfg.GroupCommitWindowMs > 0 {
		for _, p := range n.dirty {
			if p.syncing == nil {
				d = min(d, p.firstUnsyncedMs+n.cfg.GroupCommitWindowMs)
			}
		}
	}
	return d
}

// SyncDone reports the outcome of a SyncTask's job.
func (n *Node) SyncDone(t SyncTask, err error) {
	if t.rjob != nil {
		n.replicaSyncDone(t, err)
		return
	}
	p := t.p
	p.log.SyncDone(t.Job, err)
	p.syncing = nil
	if err != nil {
		p.fail(fmt.Errorf("sync: %w", err))
	}
	if p.deleted {
		if cerr := p.log.Close(); cerr != nil {
			p.fail(cerr)
		}
		p.failWaiters(n, errCodeOf(errUnknownTopic))
		n.groupsFailed(p)
		return
	}
	if p.failed != nil {
		p.failWaiters(n, errCodeOf(log.ErrFailed))
		n.groupsFailed(p)
		return
	}
	n.maybeDirty(p)
	p.releaseWaiters(n)
	n.groupsDurable(p)
	n.wakeParked(p)
}

// allTopics is the topics sorted by name.
func (n *Node) allTopics() []*topic {
	ts := make([]*topic, 0, len(n.topics))
	for _, t := range n.topics {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

func (n *Node) enforceRetention() {
	for _, t := range n.allTopics() {
		for _, p := range t.partitions {
			if p.rep != nil {
				// A replicated log: the replica moves its start (docs/replication.md,
				// "Snapshots and retention"); a failure reaches readyPartition via Err.
				if p.failed == nil && p.rep.EnforceRetention(n.nowMs) != nil {
					n.cl.touch(p)
				}
				continue
			}
			if n.cl != nil || p.failed != nil || p.syncing != nil {
				continue
			}
			if err := p.log.EnforceRetention(n.nowMs); err != nil {
				p.fail(err)
				continue
			}
			n.maybeDirty(p)
		}
	}
}

// partition looks up a partition; nil if the topic or partition does not exist.
func (n *Node) partition(topicName string, index int32) *partition {
	t := n.topics[topicName]
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return nil
	}
	return t.partitions[index]
}

// producerStates is for tests: the producers of a partition.
func (n *Node) producerStates(topicName string, index int32) []producer.Producer {
	p := n.partition(topicName, index)
	if p == nil {
		return nil
	}
	if p.pend != nil {
		return p.pend.View().Producers()
	}
	return p.producers.Producers()
}
