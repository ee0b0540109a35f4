package replica

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/log"
	"chronik/core/record"
)

// maxReadBytes bounds one log read that Entries makes, whatever maxSize raft passes
// (raft passes no limit for committed entries unless MaxCommittedSizePerReady is set).
const maxReadBytes = 8 << 20

// Storage is the Raft log of one partition replica: raft.Storage over the partition's
// core/log.Log and its state file (state.go). Entry i of the Raft log is the batch with
// log ordinal StartOrdinal()+i-FirstIndex() (entry.go says how each entry is stored), so
// the log holds no second copy of anything.
//
// What is persisted: the batches (term as partitionLeaderEpoch), their ordinals (by
// core/log) and the state file. What Open rebuilds by walking the batch headers: epochs
// below (and recent).
//
// A Storage belongs to one event loop; raft calls it from the RawNode's methods only.
type Storage struct {
	log   *log.Log
	state *stateFile
	fs    log.FS
	dir   string

	// first is the Raft index of the batch at startOffset; prevTerm the term of entry
	// first-1; startOrd that batch's log ordinal. startOffset is the log start as the
	// state file records it: log.StartOffset() is below it while a retention deletion is
	// unfinished (the batches below it are no longer Raft entries), never above it.
	// Invariant: first >= 1; first, prevTerm and startOffset equal state.start's.
	first       uint64
	prevTerm    uint64
	startOffset int64
	startOrd    int64
	// producers is the producer state at startOffset (core/producer's encoding), as
	// stored in its snapshot file; nil when first is 1 (the empty state).
	producers []byte
	// recent[k] is the base offset of entry recentFirst+k: the last entries written, at
	// most 2*maxRecent of them, so that matching proposals and moving the high watermark
	// read nothing back. Older entries' offsets come from the log's batch ordinals
	// (log.OffsetOfOrdinal: an index lookup and a short header walk).
	// Invariant: recentFirst >= first; recent ends at LastIndex().
	recent      []int64
	recentFirst uint64
	maxRecent   int
	// epochs are the distinct terms of the log's entries in order, each with its first
	// entry: Kafka's leader epoch cache.
	// Invariant: term and index strictly increase; epochs[0].index == first when the log
	// is not empty; epochs[len-1].index <= LastIndex().
	epochs []epoch

	// cache holds the entries last appended, cache[k] at index cacheFirst+k, as raft
	// handed them (immutable), so that committing them and sending them to followers
	// does not read the log back. Entries returns subslices of it, so an element once
	// set is never overwritten: the cache is only resliced, or capped before it grows.
	// Invariant: cacheBytes is the sum of their data sizes and exceeds maxCacheBytes
	// only by the newest entry; the cache, when not empty, ends at LastIndex().
	cache         []pb.Entry
	cacheFirst    uint64
	cacheBytes    int
	maxCacheBytes int
	// budget, when set, is shared with the other replicas of the event loop; accounted
	// is what this cache has added to budget.used (cacheBytes as of the last account).
	budget    *CacheBudget
	accounted int

	scratch []byte // the batches of one append, reused

	onWrite    func(record.Header) // Config.OnWrite
	onTruncate func(int64)         // Config.OnTruncate

	// Statistics, for tests.
	entriesRead int // entries read back from the log
	truncations int // calls of truncate
	installs    int // snapshots installed
}

// epoch is one term in the log: its first entry's index and base offset.
type epoch struct {
	term   uint64
	index  uint64
	offset int64
}

// CacheBudget bounds the entry caches of the replicas of one event loop together (all of
// them run on that loop, so it needs no lock). While the caches hold at most Limit bytes
// together, each may grow to its MaxCacheBytes; past Limit, a cache that appends keeps at
// most Floor bytes (its newest entry at least). Memory is then bounded by Limit plus, per
// active replica, Floor and one entry; idle replicas drop their caches (Quiesce).
type CacheBudget struct {
	Limit, Floor int
	used         int
}

// Used is the bytes the caches hold together.
func (b *CacheBudget) Used() int { return b.used }

// Errors of Storage.
var (
	// errLogStartMoved: the log starts above the start the state file records, or does
	// not have a batch boundary there: corruption (retention and snapshots move the
	// recorded start first).
	errLogStartMoved = errors.New("replica: the log does not start where the state file says")
	errTermTooLarge  = errors.New("replica: term does not fit partitionLeaderEpoch")
)

// defaultMaxRecent bounds Storage.recent: 2*defaultMaxRecent offsets, 64 KiB. Older
// entries' offsets cost an index lookup and a short header walk (followers catching up).
const defaultMaxRecent = 1 << 12

// openStorage opens the log in dir and its state file, rebuilding the epochs and the
// recent offsets from the batch headers. A missing state file is created with conf when the log is empty
// and conf is not nil (a new replica).
func openStorage(fsys log.FS, dir string, cfg log.Config, nowMs int64, conf *pb.ConfState, maxCacheBytes int) (*Storage, error) {
	l, err := log.Open(fsys, dir, cfg, nowMs)
	if err != nil {
		return nil, err
	}
	create := conf != nil && l.StartOffset() == 0 && l.EndOffset() == 0
	var cs pb.ConfState
	if conf != nil {
		cs = *conf
	}
	st, _, err := openState(fsys, dir, create, cs, logStart{firstIndex: 1, startOffset: l.StartOffset()})
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	s := &Storage{
		log:           l,
		state:         st,
		dir:           dir,
		fs:            fsys,
		first:         st.start.firstIndex,
		prevTerm:      st.start.prevTerm,
		startOffset:   st.start.startOffset,
		maxCacheBytes: maxCacheBytes,
		recentFirst:   st.start.firstIndex,
		maxRecent:     defaultMaxRecent,
	}
	if err := s.recoverStart(); err != nil {
		return nil, errors.Join(err, s.close())
	}
	if err := s.rebuild(); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// rebuild walks the log's batch headers from the recorded start to rebuild epochs and
// recent, then reconciles the persisted HardState with the recovered log
// (recoveredHardState).
func (s *Storage) rebuild() error {
	next := s.startOffset
	index := s.first
	var werr error
	err := s.log.Batches(s.startOffset, func(h record.Header) bool {
		if h.BaseOffset != next || h.PartitionLeaderEpoch < 0 {
			werr = fmt.Errorf("replica: batch at %d (epoch %d), want one at %d", h.BaseOffset, h.PartitionLeaderEpoch, next)
			return false
		}
		if err := s.noteEpoch(uint64(h.PartitionLeaderEpoch), index, h.BaseOffset); err != nil {
			werr = err
			return false
		}
		s.noteRecent(h.BaseOffset)
		index++
		next = h.LastOffset() + 1
		return true
	})
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("replica: rebuild: %w", err)
	}
	if index != s.lastIndex()+1 {
		return fmt.Errorf("replica: rebuild: %d batches, the log's ordinals say %d", index-s.first, s.lastIndex()+1-s.first)
	}
	s.state.hard = recoveredHardState(s.state.hard, s.lastTerm(), s.first-1, s.lastIndex())
	return nil
}

// recoveredHardState reconciles the persisted HardState with the recovered log, whose last
// entry has lastTerm and index lastIndex. The state file and the log are two files synced
// one after the other, and a crash keeps any share of their unsynced writes, so:
//   - commit may be above lastIndex: it is cut to lastIndex (commit is a hint; the leader
//     sends it again);
//   - the log may hold entries of a term above the persisted one (the record that raised
//     the term was lost): the term is raised to lastTerm with no vote. That is safe
//     because nothing that depended on the lost record left the node: every response
//     (a vote, an append acknowledgment) is released only after the SyncJob that syncs
//     it, so a vote or acknowledgment in lastTerm implies a durable record of lastTerm.
//     Raft must never see a log whose last term is above its term;
//   - commit may be below snapIndex, the index before the log's first entry (the record
//     that moved the log start carries no commit): it is raised to snapIndex, since only
//     committed entries are ever removed from the front, and raft refuses a commit below
//     its first index.
func recoveredHardState(hs pb.HardState, lastTerm, snapIndex, lastIndex uint64) pb.HardState {
	hs.Commit = min(max(hs.Commit, snapIndex), lastIndex)
	if lastTerm > hs.Term {
		hs.Term, hs.Vote = lastTerm, 0
	}
	return hs
}

// lastTerm is the term of the last entry (of entry first-1 when the log is empty).
func (s *Storage) lastTerm() uint64 {
	if s.log.EndOrdinal() == s.startOrd {
		return s.prevTerm
	}
	return s.epochs[len(s.epochs)-1].term
}

// noteEpoch records that entry index at offset has term.
func (s *Storage) noteEpoch(term, index uint64, offset int64) error {
	if term > math.MaxInt32 {
		return fmt.Errorf("%w: %d", errTermTooLarge, term)
	}
	if n := len(s.epochs); n > 0 {
		last := s.epochs[n-1]
		if term == last.term {
			return nil
		}
		if term < last.term {
			return fmt.Errorf("replica: entry %d has term %d after term %d", index, term, last.term)
		}
	} else if term < s.prevTerm {
		return fmt.Errorf("replica: entry %d has term %d after term %d", index, term, s.prevTerm)
	}
	s.epochs = append(s.epochs, epoch{term: term, index: index, offset: offset})
	return nil
}

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (pb.HardState, pb.ConfState, error) {
	return s.state.hard, s.state.conf, nil
}

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) { return s.first, nil }

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) { return s.lastIndex(), nil }

func (s *Storage) lastIndex() uint64 {
	return s.first + uint64(s.log.EndOrdinal()-s.startOrd) - 1
}

// Term implements raft.Storage: the term of entry i, from the epochs (no I/O).
func (s *Storage) Term(i uint64) (uint64, error) {
	switch {
	case i+1 == s.first:
		return s.prevTerm, nil
	case i < s.first:
		return 0, raft.ErrCompacted
	case i > s.lastIndex():
		return 0, raft.ErrUnavailable
	}
	k := sort.Search(len(s.epochs), func(k int) bool { return s.epochs[k].index > i }) - 1
	return s.epochs[k].term, nil
}

// Entries implements raft.Storage. Entries still in the cache come from it; older ones
// are read from the log, one read of at most maxReadBytes (and at least one entry). The
// caller owns the returned slice; normal entries read from the log alias a buffer that
// nothing else holds.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	switch {
	case lo < s.first:
		return nil, raft.ErrCompacted
	case hi > s.lastIndex()+1 || lo > hi:
		return nil, fmt.Errorf("replica: entries [%d, %d) outside [%d, %d]", lo, hi, s.first, s.lastIndex())
	case lo == hi:
		return nil, nil
	}
	if len(s.cache) > 0 && lo >= s.cacheFirst {
		ents := s.cache[lo-s.cacheFirst : hi-s.cacheFirst]
		n, size := 0, uint64(0)
		for n < len(ents) {
			size += uint64(len(ents[n].Data))
			if n > 0 && size > maxSize {
				break
			}
			n++
		}
		return ents[:n:n], nil
	}
	ents, err := s.read(lo, hi, maxSize)
	if err != nil {
		// raft has no error path for a failed read: it panics. The Replica recovers this
		// panic, and only this one, and stops (see storageFailure).
		panic(storageFailure{err})
	}
	return ents, nil
}

// storageFailure carries a storage error out of raft, which panics on any error from
// Entries but ErrCompacted. Replica's methods that call into raft recover it and fail the
// replica: a storage error stops the replica, not the broker.
type storageFailure struct{ err error }

// read reads entries [lo, hi) from the log, at least one and at most maxSize bytes.
func (s *Storage) read(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	maxBytes := int(min(maxSize, maxReadBytes))
	from, err := s.lookupOffset(lo)
	if err != nil {
		return nil, err
	}
	limit, err := s.lookupOffset(hi)
	if err != nil {
		return nil, err
	}
	data, err := s.log.Read(from, maxBytes, limit)
	if err != nil {
		return nil, fmt.Errorf("replica: entries [%d, %d): %w", lo, hi, err)
	}
	var ents []pb.Entry
	var derr error
	err = record.Split(data, func(batch []byte, h record.Header) bool {
		if h.BaseOffset != from {
			derr = fmt.Errorf("replica: entry %d: batch at %d, want %d", lo, h.BaseOffset, from)
			return false
		}
		from = h.LastOffset() + 1
		e, err := decodeStored(batch, lo)
		if err != nil {
			derr = err
			return false
		}
		ents = append(ents, e)
		s.entriesRead++
		lo++
		return lo < hi
	})
	if err = errors.Join(err, derr); err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("replica: entries from %d: nothing read", lo)
	}
	return ents, nil
}

// ordinalOf is the log ordinal of entry i.
func (s *Storage) ordinalOf(i uint64) int64 {
	return s.startOrd + int64(i-s.first)
}

// lookupOffset is the base offset of entry i, in [first, LastIndex()+1]; at LastIndex()+1
// it is the log's end offset. It reads the log only for an entry older than recent.
func (s *Storage) lookupOffset(i uint64) (int64, error) {
	last := s.lastIndex()
	switch {
	case i < s.first || i > last+1:
		panic(fmt.Sprintf("replica: offset of entry %d outside [%d, %d]", i, s.first, last+1))
	case i == last+1:
		return s.log.EndOffset(), nil
	case i >= s.recentFirst:
		return s.recent[i-s.recentFirst], nil
	}
	off, err := s.log.OffsetOfOrdinal(s.ordinalOf(i))
	if err != nil {
		return 0, fmt.Errorf("replica: offset of entry %d: %w", i, err)
	}
	return off, nil
}

// offsetOf is lookupOffset for the Ready path: a read error panics with storageFailure,
// which the Replica recovers and fails on.
func (s *Storage) offsetOf(i uint64) int64 {
	off, err := s.lookupOffset(i)
	if err != nil {
		panic(storageFailure{err})
	}
	return off
}

// noteRecent records the base offset of the entry just after recent's end, keeping at
// most 2*maxRecent (shifting in place: recent is never handed out).
func (s *Storage) noteRecent(offset int64) {
	s.recent = append(s.recent, offset)
	if n := len(s.recent); n > 2*max(s.maxRecent, 1) {
		drop := n - max(s.maxRecent, 1)
		s.recent = s.recent[:copy(s.recent, s.recent[drop:])]
		s.recentFirst += uint64(drop)
	}
}

// dropCache forgets the cached entries (an idle group: every follower has them), so that
// idle replicas hold no entry memory.
func (s *Storage) dropCache() {
	s.cache, s.cacheBytes = nil, 0
	s.account()
}

// account brings the budget up to date with cacheBytes.
func (s *Storage) account() {
	if s.budget != nil {
		s.budget.used += s.cacheBytes - s.accounted
	}
	s.accounted = s.cacheBytes
}

// offsetEnd is the offset after entry i, in [first-1, LastIndex()].
func (s *Storage) offsetEnd(i uint64) int64 { return s.offsetOf(i + 1) }

// append writes ents (consecutive, from MsgStorageAppend) to the log, first cutting every
// entry at or after ents[0]'s index (raft's step 1: a new entry replaces the old ones from
// its index on). The write is volatile; the next SyncJob makes it durable. Small entries
// are copied into a scratch buffer whose baseOffset and partitionLeaderEpoch the log and
// appendStored rewrite; large ones are written from their own bytes, those two fields
// set in place (inPlaceBytes).
func (s *Storage) append(ents []pb.Entry, nowMs int64) error {
	if len(ents) == 0 {
		return nil
	}
	lo := ents[0].Index
	if lo < s.first || lo > s.lastIndex()+1 {
		return fmt.Errorf("replica: append at %d outside [%d, %d]", lo, s.first, s.lastIndex()+1)
	}
	if lo <= s.lastIndex() {
		if err := s.truncate(lo); err != nil {
			return err
		}
	}
	s.scratch = s.scratch[:0]
	for i := range ents {
		e := &ents[i]
		if e.Term > math.MaxInt32 {
			return fmt.Errorf("%w: entry %d term %d", errTermTooLarge, e.Index, e.Term)
		}
		if e.Type == pb.EntryNormal && len(e.Data) >= inPlaceBytes {
			// Written from its own bytes, stamped in place, not copied: see inPlaceBytes.
			if h, err := record.ParseHeader(e.Data); err != nil || h.Size() != len(e.Data) {
				return fmt.Errorf("%w: entry %d", errNotOneBatch, e.Index)
			}
			if err := s.flush(s.scratch, nowMs); err != nil {
				return err
			}
			s.scratch = s.scratch[:0]
			record.SetPartitionLeaderEpoch(e.Data, int32(e.Term))
			if err := s.flush(e.Data, nowMs); err != nil {
				return err
			}
			continue
		}
		var err error
		if s.scratch, err = appendStored(s.scratch, e); err != nil {
			return err
		}
	}
	if err := s.flush(s.scratch, nowMs); err != nil {
		return err
	}
	s.cacheAppend(ents)
	return nil
}

// inPlaceBytes: a normal entry with at least this much data is written to the log from
// its own bytes, its partitionLeaderEpoch and baseOffset set in place, instead of being
// copied to the scratch buffer first (a copy of every byte replicated, on every node).
// That writes into bytes raft and the transport share, and is safe because it happens
// once per entry, in the Ready that first persists it, before any message carrying the
// entry leaves the loop (a leader's entries are its proposals, a follower's were decoded
// for it alone), and because the values are the same on every replica: the term, and the
// offset the log-matching property gives entry i on every log that holds it. Smaller
// entries share one write through the scratch buffer.
const inPlaceBytes = 64 << 10

// flush appends the stored batches in b to the log and notes their epochs and offsets.
func (s *Storage) flush(b []byte, nowMs int64) error {
	if len(b) == 0 {
		return nil
	}
	// As is: a LogAppendTime batch keeps the stamp the leader gave it in Propose, so that
	// every replica stores the same bytes; nowMs only ages segments.
	index := s.lastIndex() + 1
	if _, _, err := s.log.AppendAsIs(b, nowMs); err != nil {
		return fmt.Errorf("replica: append: %w", err)
	}
	return record.Split(b, func(_ []byte, h record.Header) bool {
		// Terms were checked by append and raft keeps them non-decreasing.
		if err := s.noteEpoch(uint64(h.PartitionLeaderEpoch), index, h.BaseOffset); err != nil {
			panic(err)
		}
		s.noteRecent(h.BaseOffset)
		if s.onWrite != nil {
			s.onWrite(h)
		}
		index++
		return true
	})
}

// truncate removes entries from index lo on, durably (log.TruncateTo waits for I/O).
func (s *Storage) truncate(lo uint64) error {
	offset, err := s.lookupOffset(lo)
	if err != nil {
		return err
	}
	if err := s.log.TruncateTo(offset); err != nil {
		return fmt.Errorf("replica: truncate to entry %d: %w", lo, err)
	}
	s.truncations++
	if s.onTruncate != nil {
		s.onTruncate(offset)
	}
	if lo >= s.recentFirst {
		s.recent = s.recent[:lo-s.recentFirst]
	} else {
		s.recent, s.recentFirst = s.recent[:0], lo
	}
	for len(s.epochs) > 0 && s.epochs[len(s.epochs)-1].index >= lo {
		s.epochs = s.epochs[:len(s.epochs)-1]
	}
	if len(s.cache) > 0 && lo <= s.cacheFirst+uint64(len(s.cache))-1 {
		keep := int(max(lo, s.cacheFirst) - s.cacheFirst)
		for i := range s.cache[keep:] {
			s.cacheBytes -= len(s.cache[keep+i].Data)
		}
		// Capped, so that the next append copies instead of overwriting entries that a
		// slice Entries returned may still show.
		s.cache = s.cache[:keep:keep]
		s.account()
	}
	return nil
}

// cacheAppend adds ents, just appended, to the cache and evicts the oldest entries past
// maxCacheBytes, or past the budget's Floor while the budget is exceeded.
func (s *Storage) cacheAppend(ents []pb.Entry) {
	if s.maxCacheBytes <= 0 {
		return
	}
	if len(s.cache) == 0 {
		s.cacheFirst = ents[0].Index
	}
	s.cache = append(s.cache, ents...)
	for i := range ents {
		s.cacheBytes += len(ents[i].Data)
	}
	limit := s.maxCacheBytes
	if b := s.budget; b != nil && b.used+s.cacheBytes-s.accounted > b.Limit {
		limit = min(limit, b.Floor)
	}
	n := 0
	for n < len(s.cache)-1 && s.cacheBytes > limit {
		s.cacheBytes -= len(s.cache[n].Data)
		n++
	}
	// Resliced, never shifted: slices Entries returned alias the array.
	s.cache = s.cache[n:]
	s.cacheFirst += uint64(n)
	s.account()
}

// OffsetForLeaderEpoch answers Kafka's OffsetForLeaderEpoch from the epochs: the largest
// epoch in the log not above leaderEpoch, and the offset where the next epoch starts, or
// the log's end offset when it is the last. (-1, -1) when every epoch in the log is above
// leaderEpoch (Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET).
func (s *Storage) OffsetForLeaderEpoch(leaderEpoch int32) (epochOut int32, endOffset int64) {
	if leaderEpoch < 0 {
		return -1, -1
	}
	k := sort.Search(len(s.epochs), func(k int) bool { return s.epochs[k].term > uint64(leaderEpoch) })
	if k == 0 {
		return -1, -1
	}
	if k == len(s.epochs) {
		return int32(s.epochs[k-1].term), s.log.EndOffset()
	}
	return int32(s.epochs[k-1].term), s.epochs[k].offset
}

// Log is the partition log, for reads (Fetch, ListOffsets). The caller must not append
// to it, truncate it, or run its syncs: the Replica does.
func (s *Storage) Log() *log.Log { return s.log }

func (s *Storage) close() error {
	s.dropCache()
	return errors.Join(s.log.Close(), s.state.close())
}
