package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"chronik/core/log"
	"chronik/core/record"
)

// Config configures a Replica. Zero values take the defaults noted.
type Config struct {
	// ID is this replica's Raft id: the broker's node id. It must not be 0.
	ID uint64
	// Peers are the voters' ids, ID included, used only when the replica is created (its
	// directory holds no state file yet); afterwards the state file has them.
	Peers []uint64
	// ElectionTicks is the election timeout in ticks (randomized by raft up to twice
	// that); default 10. HeartbeatTicks is the leader's heartbeat interval; default 1.
	ElectionTicks  int
	HeartbeatTicks int
	// MaxSizePerMsgBytes bounds the entries of one append message; default 1 MiB.
	MaxSizePerMsgBytes uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower; default 256.
	MaxInflightMsgs int
	// MaxUncommittedBytes bounds the leader's uncommitted entries; proposals beyond it are
	// refused with ErrProposalDropped. Default 64 MiB.
	MaxUncommittedBytes uint64
	// MaxCacheBytes bounds the cache of recently appended entries (storage.go); default
	// 4 MiB, negative disables it.
	MaxCacheBytes int
	// CacheBudget, when set, is shared by the replicas of one event loop and bounds their
	// caches together (storage.go).
	CacheBudget *CacheBudget
	// Log configures the partition log.
	Log log.Config
	// Logger receives raft's messages; nil discards them (raft's default logger is a
	// process-global writing to stderr).
	Logger raft.Logger

	// AllowForwarding lets a follower's ProposeForward reach the leader (raft's proposal
	// forwarding). Only for groups whose proposals are all ProposeForward (the metadata
	// group): Propose's outcome tracking assumes the leader's entries are its own.
	AllowForwarding bool
	// OnWrite, when set, is called for every batch written to the log, in log order, with
	// its header as stored (offsets assigned). Followers' appends included.
	OnWrite func(h record.Header)
	// OnTruncate, when set, is called when the log's uncommitted suffix is cut: every batch
	// at or above offset is gone.
	OnTruncate func(offset int64)
	// OnApply, when set, is called for every committed normal entry with data, in index
	// order, as it is applied, with the data as proposed. Entries committed before Open
	// (up to the recovered commit) are not applied again: the caller reads them from the
	// log.
	OnApply func(index uint64, data []byte)
	// OnSnapshot, when set, is called when a snapshot from the leader has been installed
	// (durably): the log is empty and starts at offset, and producers is the producer
	// state there (core/producer's encoding; the caller must not modify it). Everything
	// OnWrite reported before is gone.
	OnSnapshot func(offset int64, producers []byte)
}

func (c Config) withDefaults() (Config, error) {
	if c.ID == 0 {
		return c, errors.New("replica: ID must not be 0")
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.MaxSizePerMsgBytes == 0 {
		c.MaxSizePerMsgBytes = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 256
	}
	if c.MaxUncommittedBytes == 0 {
		c.MaxUncommittedBytes = 64 << 20
	}
	if c.MaxCacheBytes == 0 {
		c.MaxCacheBytes = 4 << 20
	}
	if c.Logger == nil {
		c.Logger = discardLogger{}
	}
	if c.HeartbeatTicks >= c.ElectionTicks {
		return c, fmt.Errorf("replica: HeartbeatTicks %d must be below ElectionTicks %d", c.HeartbeatTicks, c.ElectionTicks)
	}
	return c, nil
}

// Errors of Replica.
var (
	// ErrNotLeader: this replica is not the leader (Kafka's NOT_LEADER_OR_FOLLOWER), or
	// stopped being the leader before a proposal's outcome was known. In the second case
	// the entry may still commit under the next leader: the outcome is unknown, as for a
	// Kafka producer whose request timed out, and an idempotent retry is safe.
	ErrNotLeader = errors.New("replica: not the leader")
	// ErrLost: another entry committed at a proposal's index; it will never commit.
	ErrLost = errors.New("replica: proposal lost to another leader's entry")
	// ErrProposalDropped: raft refused the proposal although this replica leads (a
	// leadership transfer, or MaxUncommittedBytes reached). Retriable.
	ErrProposalDropped = errors.New("replica: proposal dropped")
	// ErrFailed: the replica's storage failed; it serves nothing more (KAFKA_STORAGE_ERROR).
	ErrFailed = errors.New("replica: storage failed")
	// ErrTooFewAfterAppend: the proposal committed, but fewer voters than it asked for
	// (ProposeWriteAcks) were in sync before they all had it durably (Kafka's
	// NOT_ENOUGH_REPLICAS_AFTER_APPEND: written, acknowledged by fewer than required).
	ErrTooFewAfterAppend = errors.New("replica: committed, but fewer replicas in sync than required")
)

// Outcome reports what became of a proposal.
type Outcome struct {
	Token uint64 // the caller's, from Propose
	// Index and Term are the proposal's entry; BaseOffset and LastOffset its records'
	// offsets in this replica's log (unset when Err is ErrNotLeader before it was
	// written).
	Index, Term            uint64
	BaseOffset, LastOffset int64
	// Err is nil, ErrNotLeader or ErrLost.
	Err error
}

// proposal is a batch raft accepted, until its outcome is reported.
type proposal struct {
	token uint64
	data  []byte // as proposed
	term  uint64 // the term it was proposed in
	// Set when its entry is written:
	index       uint64
	base, last  int64
	seq         uint64 // the write that holds it
	durableSent bool
	// committedSent: its Committed outcome went out when raft's commit index passed it,
	// before this replica applied it (noteCommitted).
	committedSent bool
	// need is how many voters must hold it durably before it is reported committed; at
	// most a quorum means the commit index is enough (ProposeWriteAcks).
	need int
}

// SyncJob makes a replica's writes durable: the log's files, then the state file. Run it
// off the loop (or, in the simulator, at a simulated time) and report it with SyncDone.
type SyncJob struct {
	logJob *log.SyncJob
	state  log.File // nil when the state file has nothing to sync
	seq    uint64   // writes numbered <= seq are durable once Run returns nil
}

// Run syncs the job's files. It may be called from any goroutine; it touches only the
// files the job captured.
func (j *SyncJob) Run() error {
	if j.logJob != nil {
		if err := j.logJob.Run(); err != nil {
			return err
		}
	}
	if j.state != nil {
		if err := j.state.Sync(); err != nil {
			return fmt.Errorf("replica: sync state: %w", err)
		}
	}
	return nil
}

// Ready is the work a batch of events produced.
type Ready struct {
	// Messages go to the peers named in their To field. They may be sent at once: those
	// that depend on local durability are released only after the SyncJob covering it.
	Messages []pb.Message
	// Sync, when not nil, must be run and reported with SyncDone.
	Sync *SyncJob
	// Durable are proposals now fsynced in this replica's log (the acks=1 answer), and
	// proposals whose outcome became ErrNotLeader before that.
	Durable []Outcome
	// Committed are proposals now committed (the acks=all answer: on a leader as soon as
	// the commit index passes them, before they are applied here), committed to fewer
	// voters than they asked for (ErrTooFewAfterAppend), lost, or whose outcome became
	// unknown (ErrNotLeader). Each proposal appears here exactly once,
	// unless the replica fails first: then the caller answers what is left
	// (KAFKA_STORAGE_ERROR).
	Committed []Outcome
	// HighWatermark is the offset after the last committed entry that this replica has
	// durably: Fetch serves offsets below it.
	HighWatermark int64
}

// waitingResponses are the responses of one MsgStorageAppend, released when the writes up
// to seq are durable.
type waitingResponses struct {
	seq  uint64
	msgs []pb.Message
}

// Replica is one replica of a partition: a raft.RawNode whose log is the partition log.
// It is not safe for concurrent use; it belongs to one event loop.
type Replica struct {
	cfg Config
	rn  *raft.RawNode
	st  *Storage

	nowMs  int64
	failed error

	// lead and state are raft's SoftState as last seen in a Ready; term its HardState.
	lead  uint64
	state raft.StateType
	term  uint64

	// writeSeq numbers the local writes (appends, hard states); durableSeq is the highest
	// whose data is known durable. Invariant: durableSeq <= writeSeq.
	writeSeq, durableSeq uint64
	// waiting are the responses of storage appends not yet durable, in the order raft
	// produced them. Invariant: their seqs do not decrease and each is > durableSeq.
	waiting []waitingResponses
	// job is the outstanding SyncJob, or nil.
	job *SyncJob

	// applied is the last entry applied: committed and durable here.
	applied uint64
	hw      int64
	// commitKnown is the highest commit index raft has handed this replica (in the hard
	// state of a storage append): entries up to it are committed, durable on a quorum,
	// whether or not applied here yet.
	commitKnown uint64

	// proposed are proposals raft accepted whose entries no Ready has written yet;
	// inflight those written and not yet applied, in index order (those whose Committed
	// outcome went out early are marked committedSent); short those applied that still
	// wait for more voters than a quorum to hold them (need), in index order.
	proposed []*proposal
	inflight []*proposal
	short    []*proposal

	out       []pb.Message
	durable   []Outcome
	committed []Outcome

	// snapTicks counts, for each follower this leader sent a snapshot to, the ticks since;
	// past maxSnapshotTicks without an answer the send is reported failed so that raft
	// sends another (a MsgSnap the transport lost would otherwise stall that follower).
	snapTicks map[uint64]int

	// ticks counts Tick calls; heardTick is, per peer, the tick of the last message
	// stepped from it. InSyncReplicas uses them beside raft's RecentActive, which
	// CheckQuorum clears for every follower at each election timeout (so it alone would
	// drop the ISR to the leader until the next heartbeat answers).
	ticks     int64
	heardTick map[uint64]int64

	// The catch-up read (CatchUp): readSeq numbers ReadIndex requests, readWant is the
	// outstanding one (0: none) asked at tick readAsked; readIndex is the leader's commit
	// index the last answer gave (valid once readDone).
	readSeq, readWant uint64
	readAsked         int64
	readIndex         uint64
	readDone          bool
}

// maxSnapshotTicksFactor times ElectionTicks is how long a leader waits for a follower to
// answer a snapshot before sending it again.
const maxSnapshotTicksFactor = 2

// Open opens (recovering) the replica whose log is in dir, or creates it when dir holds
// none. nowMs is the loop's clock.
func Open(fsys log.FS, dir string, cfg Config, nowMs int64) (*Replica, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var conf *pb.ConfState
	if len(cfg.Peers) > 0 {
		conf = &pb.ConfState{Voters: append([]uint64(nil), cfg.Peers...)}
	}
	st, err := openStorage(fsys, dir, cfg.Log, nowMs, conf, cfg.MaxCacheBytes)
	if err != nil {
		return nil, err
	}
	st.onWrite, st.onTruncate, st.budget = cfg.OnWrite, cfg.OnTruncate, cfg.CacheBudget
	applied := st.first - 1
	// The log is the state machine: whatever was committed and survived is applied.
	applied = max(applied, st.state.hard.Commit)
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   st,
		Applied:                   applied,
		AsyncStorageWrites:        true,
		MaxSizePerMsg:             cfg.MaxSizePerMsgBytes,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedBytes,
		// What one Ready hands to apply; raft's default (MaxSizePerMsg) is one entry of a
		// full batch, so applying fell behind under load, past the cache, and the
		// entries were read back from the log.
		MaxCommittedSizePerReady:  max(cfg.MaxUncommittedBytes, cfg.MaxSizePerMsgBytes),
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: !cfg.AllowForwarding,
		Logger:                    cfg.Logger,
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("replica: %w", err), st.close())
	}
	hw, err := st.lookupOffset(applied + 1)
	if err != nil {
		return nil, errors.Join(err, st.close())
	}
	r := &Replica{cfg: cfg, rn: rn, st: st, nowMs: nowMs, applied: applied, hw: hw}
	r.term = st.state.hard.Term
	return r, nil
}

// Tick advances raft's logical clock by one tick; nowMs is the loop's clock, used as the
// append time of the batches written next.
func (r *Replica) Tick(nowMs int64) {
	r.nowMs = max(r.nowMs, nowMs)
	if r.failed == nil {
		defer r.recoverStorage(nil)
		r.ticks++
		r.rn.Tick()
		r.maybeResendSnapshots()
	}
}

// maybeResendSnapshots reports as failed the snapshots sent maxSnapshotTicks ago whose
// follower still waits for one (raft's StateSnapshot), so that raft sends them again.
func (r *Replica) maybeResendSnapshots() {
	if len(r.snapTicks) == 0 {
		return
	}
	if r.state != raft.StateLeader {
		clear(r.snapTicks)
		return
	}
	var stalled []uint64
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		n, ok := r.snapTicks[id]
		switch {
		case !ok:
		case pr.State != tracker.StateSnapshot:
			delete(r.snapTicks, id)
		case n+1 >= maxSnapshotTicksFactor*r.cfg.ElectionTicks:
			stalled = append(stalled, id)
		default:
			r.snapTicks[id] = n + 1
		}
	})
	for _, id := range stalled {
		delete(r.snapTicks, id)
		r.rn.ReportSnapshot(id, raft.SnapshotFailure)
	}
}

// SetClock moves the loop's clock forward without a Raft tick: the append time of the
// batches written next (segment age, LogAppendTime). For replicas that are not ticked
// (quiesced).
func (r *Replica) SetClock(nowMs int64) { r.nowMs = max(r.nowMs, nowMs) }

// Step hands raft a message from a peer.
func (r *Replica) Step(m pb.Message) (err error) {
	if r.failed != nil {
		return ErrFailed
	}
	defer r.recoverStorage(&err)
	if m.From != 0 && m.From != r.cfg.ID {
		if r.heardTick == nil {
			r.heardTick = map[uint64]int64{}
		}
		r.heardTick[m.From] = r.ticks
	}
	return r.rn.Step(m)
}

// Campaign makes this replica stand for election at once (tests, leadership transfer).
func (r *Replica) Campaign() (err error) {
	if r.failed != nil {
		return ErrFailed
	}
	defer r.recoverStorage(&err)
	return r.rn.Campaign()
}

// Propose proposes batch, one validated v2 record batch, as the next entry. Propose takes
// ownership of batch: a LogAppendTime batch gets the loop's time as its max timestamp now
// (CRC recomputed), so that every replica stores the same bytes; nothing may modify it
// afterwards. The outcome comes back in Ready with token.
func (r *Replica) Propose(token uint64, batch []byte) (err error) {
	if r.failed != nil {
		return ErrFailed
	}
	if err := checkProposal(batch); err != nil {
		return err
	}
	if r.state != raft.StateLeader {
		return ErrNotLeader
	}
	defer r.recoverStorage(&err)
	if h, _ := record.ParseHeader(batch); h.LogAppendTime() {
		stampLogAppendTime(batch, r.nowMs)
	}
	if err := r.rn.Propose(batch); err != nil {
		// Raft stopped leading since the last Ready, or it refused the proposal.
		return fmt.Errorf("%w: %w", ErrProposalDropped, err)
	}
	r.proposed = append(r.proposed, &proposal{token: token, data: batch, term: r.term})
	return nil
}

// ProposeWrite is Propose followed by writing the entry to the local log at once
// (volatile), so that the caller learns its offsets now, as a single node's append does.
// When raft accepted the proposal but it was not written (leadership ended meanwhile),
// ProposeWrite returns ErrNotLeader and the outcome also comes in Ready: the caller ignores
// outcomes of tokens it did not keep.
func (r *Replica) ProposeWrite(token uint64, batch []byte) (base, last int64, err error) {
	return r.ProposeWriteAcks(token, batch, 0)
}

// ProposeWriteAcks is ProposeWrite for a proposal that is reported committed only once
// need voters (this leader included) hold it durably, Kafka's acks=all with
// min.insync.replicas need; a need of at most a quorum is what the commit index already
// says. Should fewer than need voters be in sync (InSyncReplicas) while it waits, its
// outcome is ErrTooFewAfterAppend: committed, but not as widely as asked.
func (r *Replica) ProposeWriteAcks(token uint64, batch []byte, need int) (base, last int64, err error) {
	if err := r.Propose(token, batch); err != nil {
		return -1, -1, err
	}
	p := r.proposed[len(r.proposed)-1]
	p.need = need
	r.guarded(r.drain)
	if r.failed != nil {
		return -1, -1, r.failed
	}
	if p.index == 0 {
		return -1, -1, ErrNotLeader
	}
	return p.base, p.last, nil
}

// ProposeForward proposes data without tracking its outcome: a follower forwards it to
// the leader (Config.AllowForwarding). The caller learns of it through OnApply. raft drops
// it when there is no leader (ErrProposalDropped).
func (r *Replica) ProposeForward(data []byte) (err error) {
	if r.failed != nil {
		return ErrFailed
	}
	if err := checkProposal(data); err != nil {
		return err
	}
	defer r.recoverStorage(&err)
	if err := r.rn.Propose(data); err != nil {
		return fmt.Errorf("%w: %w", ErrProposalDropped, err)
	}
	return nil
}

// ReportUnreachable tells raft that messages to peer id could not be sent.
func (r *Replica) ReportUnreachable(id uint64) {
	if r.failed == nil {
		r.rn.ReportUnreachable(id)
		if _, ok := r.snapTicks[id]; ok {
			// The snapshot may be what was lost: raft waits for it until told.
			delete(r.snapTicks, id)
			r.rn.ReportSnapshot(id, raft.SnapshotFailure)
		}
	}
}

// Ready returns the work produced since the last call. It drives raft as its
// AsyncStorageWrites contract says: storage appends are written at once (volatile) and
// their responses released when a SyncJob makes them durable; committed entries are
// applied (the high watermark moves) and acknowledged at once.
func (r *Replica) Ready() Ready {
	var job *SyncJob
	r.guarded(func() { job = r.work() })
	rd := Ready{Messages: r.out, Sync: job, Durable: r.durable, Committed: r.committed, HighWatermark: r.hw}
	r.out, r.durable, r.committed = nil, nil, nil
	return rd
}

// work drains raft and prepares the next SyncJob, which it returns if it made one.
func (r *Replica) work() *SyncJob {
	var job *SyncJob
	for r.failed == nil {
		r.drain()
		if r.failed != nil || r.job != nil {
			break
		}
		if job = r.prepareSync(); job != nil || r.durableSeq == r.writeSeq {
			break
		}
		// Nothing needs a sync, so every write is durable already (TruncateTo and state
		// rewrites are synchronous): release what waited for them.
		r.durableSeq = r.writeSeq
		r.noteDurable()
	}
	if r.failed == nil {
		r.settleProposals()
		r.noteCommitted()
	}
	return job
}

// guarded runs fn, failing the replica if storage fails under raft.
func (r *Replica) guarded(fn func()) {
	defer r.recoverStorage(nil)
	fn()
}

// recoverStorage turns a storageFailure panic into a failed replica, and *errp (when not
// nil) into ErrFailed; any other panic goes on. Deferred by every method that calls into
// raft.
func (r *Replica) recoverStorage(errp *error) {
	if p := recover(); p != nil {
		sf, ok := p.(storageFailure)
		if !ok {
			panic(p)
		}
		r.fail(sf.err)
		if errp != nil {
			*errp = r.failed
		}
	}
}

// drain handles raft's Readys and releases durable responses until neither produces more.
func (r *Replica) drain() {
	for r.failed == nil {
		for r.failed == nil && r.rn.HasReady() {
			r.handle(r.rn.Ready())
		}
		if r.failed != nil || !r.release() {
			return
		}
	}
}

// handle handles one raft Ready.
func (r *Replica) handle(rd raft.Ready) {
	if rd.SoftState != nil {
		r.lead, r.state = rd.SoftState.Lead, rd.SoftState.RaftState
	}
	for _, rs := range rd.ReadStates {
		if len(rs.RequestCtx) == 8 && r.readWant != 0 && binary.BigEndian.Uint64(rs.RequestCtx) == r.readWant {
			r.readIndex, r.readWant, r.readDone = rs.Index, 0, true
		}
	}
	for i := range rd.Messages {
		m := &rd.Messages[i]
		switch m.To {
		case raft.LocalAppendThread:
			if err := r.storageAppend(m); err != nil {
				r.fail(err)
				return
			}
		case raft.LocalApplyThread:
			r.storageApply(m)
		default:
			if m.Type == pb.MsgSnap {
				if r.snapTicks == nil {
					r.snapTicks = map[uint64]int{}
				}
				r.snapTicks[m.To] = 0
			}
			r.out = append(r.out, *m)
		}
	}
}

// storageAppend writes a MsgStorageAppend's entries and hard state (volatile) and queues
// its responses until they are durable.
func (r *Replica) storageAppend(m *pb.Message) error {
	if m.Snapshot != nil && !raft.IsEmptySnap(*m.Snapshot) {
		if err := r.installSnapshot(*m.Snapshot); err != nil {
			return err
		}
	}
	if ents := m.Entries; len(ents) > 0 {
		if err := r.st.append(ents, r.nowMs); err != nil {
			return err
		}
		r.writeSeq++
		r.noteWritten(ents)
	}
	if hs := (pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
		// The message carries a HardState (all three fields, or none).
		r.term = hs.Term
		r.commitKnown = max(r.commitKnown, hs.Commit)
		old := r.st.state.hard
		if old.Term != hs.Term || old.Vote != hs.Vote {
			// Term and vote must be durable before any response; the commit index is a
			// hint and rides along (raft's MustSync).
			if err := r.st.state.setHardState(hs); err != nil {
				return err
			}
			r.writeSeq++
		}
	}
	if len(m.Responses) > 0 {
		r.waiting = append(r.waiting, waitingResponses{seq: r.writeSeq, msgs: m.Responses})
	}
	return nil
}

// installSnapshot installs a snapshot from the leader, durably (Storage.install): the
// entries up to its index are applied and the high watermark moves to the new log start.
func (r *Replica) installSnapshot(snap pb.Snapshot) error {
	offset, producers, err := r.st.install(snap)
	if err != nil {
		return err
	}
	if offset < r.hw {
		panic(fmt.Sprintf("replica: snapshot at offset %d below the high watermark %d", offset, r.hw))
	}
	r.applied, r.hw = snap.Metadata.Index, offset
	if r.cfg.OnSnapshot != nil {
		r.cfg.OnSnapshot(offset, producers)
	}
	return nil
}

// noteWritten matches the entries just written with this replica's proposals. Raft
// copies a proposal's data (v3.7 clones each proposed entry), so they are matched by
// term and order: this replica proposes only while it leads (as of the last Ready, whose
// SoftState and HardState agree), every entry of a term is its leader's, and the normal,
// non-empty ones of that term are its proposals in order. A proposal raft accepted in a
// later term than the replica knew is never matched and ends as ErrNotLeader.
func (r *Replica) noteWritten(ents []pb.Entry) {
	for i := range ents {
		e := &ents[i]
		if len(r.proposed) == 0 {
			return
		}
		p := r.proposed[0]
		if e.Term != p.term || e.Type != pb.EntryNormal || len(e.Data) == 0 {
			continue
		}
		if !bytes.Equal(e.Data, p.data) {
			panic(fmt.Sprintf("replica: entry %d of term %d is not the proposal expected next", e.Index, p.term))
		}
		p.index, p.seq = e.Index, r.writeSeq
		p.base, p.last = r.st.offsetOf(p.index), r.st.offsetEnd(p.index)-1
		r.proposed = r.proposed[1:]
		r.inflight = append(r.inflight, p)
	}
}

// storageApply applies committed entries: the high watermark moves to their end, and the
// proposals among them are answered. The log is the state machine, so nothing is copied.
func (r *Replica) storageApply(m *pb.Message) {
	ents := m.Entries
	if len(ents) > 0 {
		last := ents[len(ents)-1]
		r.applied = last.Index
		r.hw = r.st.offsetEnd(r.applied)
		if r.cfg.OnApply != nil {
			for i := range ents {
				if e := &ents[i]; e.Type == pb.EntryNormal && len(e.Data) > 0 {
					r.cfg.OnApply(e.Index, e.Data)
				}
			}
		}
		for len(r.inflight) > 0 && r.inflight[0].index <= r.applied {
			p := r.inflight[0]
			r.inflight = r.inflight[1:]
			o := p.outcome(nil)
			if k := p.index - ents[0].Index; p.index < ents[0].Index || ents[k].Term != p.term {
				o.Err = ErrLost
			}
			if p.committedSent {
				if o.Err != nil {
					panic(fmt.Sprintf("replica: entry %d of term %d was reported committed and is not in the log", p.index, p.term))
				}
				continue
			}
			if o.Err == nil && p.need > 0 {
				r.short = append(r.short, p) // noteCommitted decides
				continue
			}
			r.committed = append(r.committed, o)
		}
	}
	for _, resp := range m.Responses {
		if err := r.rn.Step(resp); err != nil {
			r.fail(fmt.Errorf("replica: step apply response: %w", err))
			return
		}
	}
}

// release delivers the responses whose writes are durable: to raft when addressed to
// this replica, to the outbox otherwise. It reports whether it stepped raft.
func (r *Replica) release() bool {
	stepped := false
	n := 0
	for ; n < len(r.waiting) && r.waiting[n].seq <= r.durableSeq; n++ {
		for _, resp := range r.waiting[n].msgs {
			if resp.To != r.cfg.ID {
				r.out = append(r.out, resp)
				continue
			}
			if err := r.rn.Step(resp); err != nil {
				r.fail(fmt.Errorf("replica: step storage response: %w", err))
				return false
			}
			stepped = true
		}
	}
	clear(r.waiting[:n])
	r.waiting = r.waiting[n:]
	return stepped
}

// noteDurable reports the proposals whose writes are now durable (the acks=1 answer).
func (r *Replica) noteDurable() {
	for _, p := range r.inflight {
		if !p.durableSent && p.seq <= r.durableSeq {
			p.durableSent = true
			r.durable = append(r.durable, p.outcome(nil))
		}
	}
}

// settleProposals ends the proposals this replica can no longer vouch for: all of them
// once it is not the leader, or its term moved past theirs. After drain every proposal
// raft kept has been written, so one still in proposed was cut from raft's log.
func (r *Replica) settleProposals() {
	for _, p := range r.proposed {
		r.notLeader(p)
	}
	clear(r.proposed)
	r.proposed = r.proposed[:0]
	if r.state != raft.StateLeader || len(r.short) > 0 && r.short[0].term != r.term {
		for _, p := range r.short {
			r.notLeader(p)
		}
		clear(r.short)
		r.short = r.short[:0]
	}
	keep := r.inflight[:0]
	for _, p := range r.inflight {
		if r.state == raft.StateLeader && p.term == r.term {
			keep = append(keep, p)
			continue
		}
		r.notLeader(p)
	}
	clear(r.inflight[len(keep):])
	r.inflight = keep
}

// notLeader reports p's outcome as unknown (but for what was reported already).
func (r *Replica) notLeader(p *proposal) {
	o := p.outcome(ErrNotLeader)
	if !p.durableSent {
		r.durable = append(r.durable, o)
	}
	if !p.committedSent {
		r.committed = append(r.committed, o)
	}
}

// noteCommitted reports the proposals raft's commit index has passed (the acks=all
// answer) without waiting for this replica to apply them, which raft does only once they
// are durable here too: a quorum has them durably, so a leader whose own fsync is the
// slow one does not hold the answer back. Only a leader does this, for proposals of its
// current term that it has written: while it leads in that term its log keeps them, so
// the entry at a proposal's index is the proposal.
//
// A proposal that needs more voters than a quorum (ProposeWriteAcks) is reported once
// that many voters' match indexes (raft's view of what each has durably: a follower
// acknowledges an append after its fsync, and this leader's own match moves when its
// write is durable) have passed it, or with ErrTooFewAfterAppend once fewer voters than it
// needs are in sync.
func (r *Replica) noteCommitted() {
	if r.state != raft.StateLeader {
		return
	}
	var matches []uint64 // of the voters, when a proposal needs more than a quorum
	inSync := -1
	ready := func(p *proposal) (bool, error) {
		if p.term != r.term || p.index > r.commitKnown {
			return false, nil
		}
		if p.need <= 0 {
			return true, nil
		}
		if matches == nil {
			matches = make([]uint64, 0, 8)
			r.rn.WithProgress(func(_ uint64, typ raft.ProgressType, pr tracker.Progress) {
				if typ == raft.ProgressTypePeer {
					matches = append(matches, pr.Match)
				}
			})
		}
		if p.need <= len(matches)/2+1 {
			return true, nil
		}
		n := 0
		for _, m := range matches {
			if m >= p.index {
				n++
			}
		}
		if n >= p.need {
			return true, nil
		}
		if inSync < 0 {
			inSync = r.InSyncReplicas()
		}
		if inSync < p.need {
			return true, ErrTooFewAfterAppend
		}
		return false, nil
	}
	for _, p := range r.inflight {
		if p.index > r.commitKnown {
			break // inflight is in index order: nothing after it is committed either
		}
		if p.committedSent {
			continue
		}
		if ok, err := ready(p); ok {
			p.committedSent = true
			r.committed = append(r.committed, p.outcome(err))
		}
	}
	kept := r.short[:0]
	for _, p := range r.short {
		if ok, err := ready(p); ok {
			r.committed = append(r.committed, p.outcome(err))
			continue
		}
		kept = append(kept, p)
	}
	clear(r.short[len(kept):])
	r.short = kept
}

func (p *proposal) outcome(err error) Outcome {
	return Outcome{Token: p.token, Index: p.index, Term: p.term, BaseOffset: p.base, LastOffset: p.last, Err: err}
}

// prepareSync returns a SyncJob for every write not yet durable, or nil when nothing needs
// a sync. A job must not be outstanding.
func (r *Replica) prepareSync() *SyncJob {
	needLog, needState := r.st.log.NeedsSync(), r.st.state.dirty
	if !needLog && !needState {
		return nil
	}
	j := &SyncJob{seq: r.writeSeq}
	if needLog {
		j.logJob = r.st.log.PrepareSync()
	}
	if needState {
		j.state = r.st.state.f
		r.st.state.dirty = false
		r.st.state.syncing = true
	}
	r.job = j
	return j
}

// SyncDone reports the outcome of the Ready's SyncJob. An error fails the replica.
func (r *Replica) SyncDone(j *SyncJob, err error) {
	if j == nil || j != r.job {
		panic("replica: SyncDone of a job that is not outstanding")
	}
	r.job = nil
	if j.logJob != nil {
		r.st.log.SyncDone(j.logJob, err)
	}
	if rerr := r.st.state.released(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		r.fail(err)
		return
	}
	r.durableSeq = j.seq
	r.noteDurable()
	if err := r.st.maybeDeleteBefore(); err != nil {
		r.fail(err)
	}
}

// EnforceRetention moves the log start as the log's retention rules say (Config.Log's
// RetentionMs and RetentionBytes, core/log.RetentionPoint), but never above the high
// watermark: a cut the rules want above it waits for a later call. It also goes on with
// a deletion an earlier call or Open left unfinished. Followers that later need entries
// below the new start get a snapshot. It writes and syncs two small files on the loop
// when it moves the start (docs/replication.md, "Snapshots and retention"). An error
// fails the replica.
func (r *Replica) EnforceRetention(nowMs int64) error {
	if r.failed != nil {
		return ErrFailed
	}
	offset, ok := r.st.log.RetentionPoint(nowMs)
	if !ok || offset > r.hw {
		offset = r.st.startOffset
	}
	return r.RetainBefore(offset)
}

// RetainBefore moves the log start to offset, which must be the base offset of a batch at
// or below the high watermark (offsets at or below the current start do nothing but go
// on with an unfinished deletion): the producer state there is written, the new start
// recorded durably, and the whole segments below it deleted (core/log deletes only
// sealed segments, so some may go only after later SyncJobs). An error fails the replica.
func (r *Replica) RetainBefore(offset int64) error {
	if r.failed != nil {
		return ErrFailed
	}
	if offset > r.hw {
		return fmt.Errorf("replica: retain before %d: above the high watermark %d", offset, r.hw)
	}
	err := r.st.retain(offset)
	if err == nil {
		err = r.st.maybeDeleteBefore()
	}
	if err != nil {
		r.fail(err)
		return r.failed
	}
	return nil
}

// fail stops the replica for good: a storage error is never retried (docs/replication.md).
func (r *Replica) fail(err error) {
	if r.failed == nil {
		r.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	}
}

// Err is the error that failed the replica, or nil.
func (r *Replica) Err() error { return r.failed }

// Leader is the id of the leader this replica knows, 0 when none; Term its current term
// (the partition's leader epoch when this replica leads).
func (r *Replica) Leader() uint64 { return r.lead }

// IsLeader reports whether this replica leads its group.
func (r *Replica) IsLeader() bool { return r.state == raft.StateLeader }

// InSyncReplicas counts the voters in sync, this leader included: Kafka's ISR, for
// min.insync.replicas. A follower is in sync when the leader heard from it within the
// last election timeout (raft's RecentActive, or a message stepped within ElectionTicks:
// CheckQuorum clears RecentActive at each timeout) and replicates normally (not probing,
// not waiting for a snapshot). 0 when this replica does not lead.
func (r *Replica) InSyncReplicas() int {
	if r.failed != nil || r.state != raft.StateLeader {
		return 0
	}
	n := 0
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if r.inSync(id, typ, pr) {
			n++
		}
	})
	return n
}

// inSync is the predicate of InSyncReplicas.
func (r *Replica) inSync(id uint64, typ raft.ProgressType, pr tracker.Progress) bool {
	if typ != raft.ProgressTypePeer {
		return false
	}
	if id == r.cfg.ID {
		return true
	}
	h, heard := r.heardTick[id]
	recent := pr.RecentActive || heard && r.ticks-h <= int64(r.cfg.ElectionTicks)
	return recent && pr.State == tracker.StateReplicate
}

// InSync appends to dst the Raft ids of the voters InSyncReplicas counts, in id order;
// nothing when this replica does not lead.
func (r *Replica) InSync(dst []uint64) []uint64 {
	if r.failed != nil || r.state != raft.StateLeader {
		return dst
	}
	start := len(dst)
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if r.inSync(id, typ, pr) {
			dst = append(dst, id)
		}
	})
	slices.Sort(dst[start:])
	return dst
}

// Settled reports whether the group has nothing in motion as this replica sees it: every
// entry it has is committed and applied, no proposal, response or sync is outstanding,
// and, on a leader, every voter's log matches its own. A caller may then stop ticking it
// (quiescence) until a message or a proposal arrives.
func (r *Replica) Settled() bool {
	if r.failed != nil || r.job != nil || len(r.proposed) > 0 || len(r.inflight) > 0 || len(r.short) > 0 || len(r.waiting) > 0 || r.rn.HasReady() {
		return false
	}
	last := r.st.lastIndex()
	if r.applied != last {
		return false
	}
	if r.state != raft.StateLeader {
		return r.state == raft.StateFollower && r.lead != 0
	}
	ok := true
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ == raft.ProgressTypePeer && pr.Match != last {
			ok = false
		}
	})
	return ok
}

// CatchUp asks the leader for its commit index (raft's ReadIndex; a follower forwards
// it), unless a request is outstanding and younger than an election timeout; CaughtUp
// reports when this replica has applied up to the answer. A replica's own commit index
// is no proof: a restarted one knows only what it had persisted (the commit index rides
// along with term and vote changes), and a new leader's heartbeats carry no more than
// what it knows the follower matches, nothing before its first append answer. It
// reports whether it asked (the next Ready then has a message to send).
func (r *Replica) CatchUp() bool {
	if r.failed != nil || r.lead == 0 {
		return false
	}
	if r.readWant != 0 && r.ticks-r.readAsked < int64(r.cfg.ElectionTicks) {
		return false
	}
	r.readSeq++
	r.readWant, r.readAsked = r.readSeq, r.ticks
	defer r.recoverStorage(nil)
	r.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, r.readSeq))
	return true
}

// CaughtUp reports whether this replica knows a leader and has applied every entry that
// leader had committed when it answered the last CatchUp.
func (r *Replica) CaughtUp() bool {
	return r.failed == nil && r.lead != 0 && r.readDone && r.applied >= r.readIndex
}

// TransferLeader asks raft to hand leadership to the voter id (raft sends it the log it
// lacks, then MsgTimeoutNow); proposals are refused while the transfer runs. No-op when
// this replica does not lead.
func (r *Replica) TransferLeader(id uint64) {
	if r.failed == nil && r.state == raft.StateLeader {
		defer r.recoverStorage(nil)
		r.rn.TransferLeader(id)
	}
}

// Quiesce releases memory an idle replica does not need (the cache of recent entries).
// Call it when the caller stops ticking a Settled replica.
func (r *Replica) Quiesce() { r.st.dropCache() }

// Term is raft's current term as last persisted.
func (r *Replica) Term() uint64 { return r.term }

// HighWatermark is the offset after the last applied (committed, locally durable) entry.
func (r *Replica) HighWatermark() int64 { return r.hw }

// Storage is the replica's raft storage (the log and its index).
func (r *Replica) Storage() *Storage { return r.st }

// Close closes the log and state files. The outstanding SyncJob, if any, must have been
// reported.
func (r *Replica) Close() error { return r.st.close() }
