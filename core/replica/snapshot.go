package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/log"
	"chronik/core/producer"
	"chronik/core/record"
)

// Snapshots and retention (docs/replication.md, "Snapshots and retention"). A snapshot
// carries no records: its metadata is (index first-1, term prevTerm, ConfState) and its
// data the log start offset and the producer state at that offset. The log start moves in
// two ways, each in an order a crash cannot break:
//
// Retention (Storage.retain), on every replica independently, to an offset at or below the
// high watermark: (1) write the producer state at the new start to its snapshot file,
// durably; (2) record the new start in the state file, durably (first, prevTerm, offset);
// (3) delete the whole segments below it (core/log.DeleteBefore, which may need further
// calls after SyncJobs). Open finishes (3): a log starting below the recorded start is an
// unfinished deletion, one starting above it corruption.
//
// Snapshot install (Storage.install), on a follower behind the leader's log start: (1)
// write the snapshot's producer state to its file, durably; (2) record the new start as a
// reset (kindLogReset), durably; (3) core/log.ResetTo(offset, first), itself atomic. Open
// redoes (3) while the log does not start at the recorded reset (offset and ordinal).
//
// Producer snapshot files are named producerSnapshotPrefix + the offset (20 digits) +
// producerSnapshotSuffix, hold the bytes of producer.State.MarshalBinary (which carry
// their own CRC), and are written whole under a temporary name, synced, renamed and the
// directory synced. Only the one at the recorded start is kept; Open removes the others.

const (
	producerSnapshotPrefix = "producer-"
	producerSnapshotSuffix = ".snapshot"
	producerSnapshotTemp   = "producer.snapshot.tmp"

	// snapshotDataVersion is the first byte of a raft snapshot's data:
	//	version uint8 | start offset int64 | producer state (core/producer encoding) |
	//	crc uint32 (CRC-32C of every byte before it)
	snapshotDataVersion = 1
	snapshotDataMin     = 1 + 8 + 4
)

// errSnapshotCorrupt marks a raft snapshot whose data this package did not write.
var errSnapshotCorrupt = errors.New("replica: snapshot data corrupt")

// producerSnapshotName is the path of the producer snapshot file at offset.
func producerSnapshotName(dir string, offset int64) string {
	return path.Join(dir, fmt.Sprintf("%s%020d%s", producerSnapshotPrefix, offset, producerSnapshotSuffix))
}

// parseProducerSnapshotName returns the offset a producer snapshot file's name holds.
func parseProducerSnapshotName(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, producerSnapshotPrefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, producerSnapshotSuffix); !ok || len(digits) != 20 {
		return 0, false
	}
	off, err := strconv.ParseInt(digits, 10, 64)
	return off, err == nil && off >= 0
}

// encodeSnapshotData is a raft snapshot's data: the log start offset and the producer
// state there.
func encodeSnapshotData(offset int64, producers []byte) []byte {
	b := make([]byte, 0, snapshotDataMin+len(producers))
	b = append(b, snapshotDataVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = append(b, producers...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeSnapshotData is the inverse of encodeSnapshotData; producers aliases data and has
// been checked to decode.
func decodeSnapshotData(data []byte) (offset int64, producers []byte, err error) {
	if len(data) < snapshotDataMin {
		return 0, nil, fmt.Errorf("%w: %d bytes", errSnapshotCorrupt, len(data))
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[len(body):]) {
		return 0, nil, fmt.Errorf("%w: crc", errSnapshotCorrupt)
	}
	if body[0] != snapshotDataVersion {
		return 0, nil, fmt.Errorf("%w: version %d", errSnapshotCorrupt, body[0])
	}
	offset = int64(binary.BigEndian.Uint64(body[1:]))
	producers = body[9:]
	if offset <= 0 {
		return 0, nil, fmt.Errorf("%w: start offset %d", errSnapshotCorrupt, offset)
	}
	if _, err := producer.Decode(producers); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errSnapshotCorrupt, err)
	}
	return offset, producers, nil
}

// Snapshot implements raft.Storage: the snapshot at the log start (index first-1), for a
// follower that needs entries retention removed. Before any retention there is none.
func (s *Storage) Snapshot() (pb.Snapshot, error) {
	if s.first == 1 {
		return pb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	return pb.Snapshot{
		Data: encodeSnapshotData(s.startOffset, s.producers),
		Metadata: pb.SnapshotMetadata{
			Index:     s.first - 1,
			Term:      s.prevTerm,
			ConfState: s.state.conf,
		},
	}, nil
}

// StartOffset is the log start offset in Raft's view: the offset of entry FirstIndex.
// Log().StartOffset() may be below it while a retention deletion is unfinished.
func (s *Storage) StartOffset() int64 { return s.startOffset }

// ProducerSnapshot is the producer state at StartOffset (core/producer's encoding), nil
// for the empty state. The caller must not modify it.
func (s *Storage) ProducerSnapshot() []byte { return s.producers }

// recoverStart is Open's step between opening the log and rebuilding from it: it redoes an
// interrupted reset, checks the log against the recorded start, goes on with an
// unfinished retention deletion, and loads the producer snapshot.
func (s *Storage) recoverStart() error {
	rec := s.state.start
	if rec.reset && (s.log.StartOffset() != rec.startOffset || s.log.StartOrdinal() != int64(rec.firstIndex)) {
		if err := s.log.ResetTo(rec.startOffset, int64(rec.firstIndex)); err != nil {
			return fmt.Errorf("replica: open: redo snapshot reset: %w", err)
		}
	}
	if s.log.StartOffset() > rec.startOffset || rec.startOffset > s.log.EndOffset() {
		return fmt.Errorf("%w: state says %d, log holds [%d, %d)", errLogStartMoved, rec.startOffset, s.log.StartOffset(), s.log.EndOffset())
	}
	ord, err := s.boundaryOrdinal(rec.startOffset)
	if err != nil {
		return err
	}
	s.startOrd = ord
	if err := s.maybeDeleteBefore(); err != nil {
		return err
	}
	return s.loadProducerSnapshot()
}

// boundaryOrdinal is the ordinal of the batch that starts at offset, in [log start, log
// end]; an offset inside a batch is errLogStartMoved.
func (s *Storage) boundaryOrdinal(offset int64) (int64, error) {
	ord, err := s.log.OrdinalOfOffset(offset)
	if err != nil {
		return 0, fmt.Errorf("replica: ordinal of %d: %w", offset, err)
	}
	base, err := s.log.OffsetOfOrdinal(ord)
	if err != nil {
		return 0, fmt.Errorf("replica: offset of ordinal %d: %w", ord, err)
	}
	if base != offset {
		return 0, fmt.Errorf("%w: %d is inside the batch at %d", errLogStartMoved, offset, base)
	}
	return ord, nil
}

// maybeDeleteBefore goes on with an unfinished retention deletion: it deletes the whole
// segments below the recorded start that core/log may delete now.
func (s *Storage) maybeDeleteBefore() error {
	if s.log.StartOffset() >= s.startOffset {
		return nil
	}
	if err := s.log.DeleteBefore(s.startOffset); err != nil {
		return fmt.Errorf("replica: retention: %w", err)
	}
	return nil
}

// loadProducerSnapshot reads the producer snapshot at the recorded start and removes every
// other producer snapshot file (left by a crash in the middle of a start move).
func (s *Storage) loadProducerSnapshot() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("replica: open: %w", err)
	}
	found := false
	for _, name := range names {
		off, ok := parseProducerSnapshotName(name)
		switch {
		case name == producerSnapshotTemp || ok && (off != s.startOffset || s.first == 1):
			if err := s.fs.Remove(path.Join(s.dir, name)); err != nil {
				return fmt.Errorf("replica: open: %w", err)
			}
		case ok:
			found = true
		}
	}
	if s.first == 1 {
		return nil
	}
	if !found {
		return fmt.Errorf("%w: no producer snapshot at the log start %d", errStateCorrupt, s.startOffset)
	}
	b, err := readWhole(s.fs, producerSnapshotName(s.dir, s.startOffset))
	if err != nil {
		return err
	}
	if _, err := producer.Decode(b); err != nil {
		return fmt.Errorf("replica: open: producer snapshot at %d: %w", s.startOffset, err)
	}
	s.producers = b
	return nil
}

// readWhole returns the contents of the file name.
func readWhole(fsys log.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("replica: open: %w", err)
	}
	size, err := f.Size()
	b := make([]byte, max(size, 0))
	if err == nil {
		_, err = f.ReadAt(b, 0)
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return nil, fmt.Errorf("replica: read %s: %w", name, err)
	}
	return b, nil
}

// writeProducerSnapshot writes b as the producer snapshot at offset, durably.
func (s *Storage) writeProducerSnapshot(offset int64, b []byte) error {
	tmp := path.Join(s.dir, producerSnapshotTemp)
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("replica: write producer snapshot: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = s.fs.Rename(tmp, producerSnapshotName(s.dir, offset))
	}
	if err == nil {
		err = s.fs.SyncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("replica: write producer snapshot at %d: %w", offset, err)
	}
	return nil
}

// removeProducerSnapshot removes the producer snapshot at offset, which the recorded start
// no longer needs. The removal need not be durable: Open removes a file that comes back.
func (s *Storage) removeProducerSnapshot(offset int64) error {
	if err := s.fs.Remove(producerSnapshotName(s.dir, offset)); err != nil {
		return fmt.Errorf("replica: remove producer snapshot at %d: %w", offset, err)
	}
	return nil
}

// producersAt folds the batch headers of [startOffset, offset) into the producer state
// at startOffset and returns the encoding of the result: the producer state at offset, a
// batch boundary at or above startOffset.
func (s *Storage) producersAt(offset int64) ([]byte, error) {
	st := producer.New()
	if s.producers != nil {
		var err error
		if st, err = producer.Decode(s.producers); err != nil {
			return nil, fmt.Errorf("replica: producer snapshot at %d: %w", s.startOffset, err)
		}
	}
	var werr error
	err := s.log.Batches(s.startOffset, func(h record.Header) bool {
		if h.BaseOffset >= offset {
			return false
		}
		if h.LastOffset() >= offset {
			werr = fmt.Errorf("replica: retention point %d inside the batch at %d", offset, h.BaseOffset)
			return false
		}
		st.Append(h)
		return true
	})
	if err = errors.Join(err, werr); err != nil {
		return nil, fmt.Errorf("replica: producer state at %d: %w", offset, err)
	}
	return st.MarshalBinary()
}

// retain moves the log start up to offset, a batch boundary in (startOffset, end] whose
// entries are all committed, as "Snapshots and retention" says: producer snapshot, log
// start record, then the deletion of the whole segments below it (which may finish only
// after later SyncJobs: maybeDeleteBefore).
func (s *Storage) retain(offset int64) error {
	if offset <= s.startOffset {
		return nil
	}
	ord, err := s.boundaryOrdinal(offset)
	if err != nil {
		return err
	}
	first := s.first + uint64(ord-s.startOrd)
	prevTerm, err := s.Term(first - 1)
	if err != nil {
		return fmt.Errorf("replica: retention: term of entry %d: %w", first-1, err)
	}
	producers, err := s.producersAt(offset)
	if err != nil {
		return err
	}
	if err := s.writeProducerSnapshot(offset, producers); err != nil {
		return err
	}
	if err := s.state.setStart(logStart{firstIndex: first, prevTerm: prevTerm, startOffset: offset}); err != nil {
		return err
	}
	if s.first > 1 {
		if err := s.removeProducerSnapshot(s.startOffset); err != nil {
			return err
		}
	}
	s.moveStart(first, prevTerm, offset, ord, producers)
	return s.maybeDeleteBefore()
}

// moveStart moves the in-memory view of the log start forward to entry first at offset
// (ordinal ord): entries before it are gone for raft.
func (s *Storage) moveStart(first, prevTerm uint64, offset, ord int64, producers []byte) {
	s.first, s.prevTerm, s.startOffset, s.startOrd, s.producers = first, prevTerm, offset, ord, producers
	// The epoch in force at first now starts there.
	k := 0
	for k+1 < len(s.epochs) && s.epochs[k+1].index <= first {
		k++
	}
	s.epochs = s.epochs[k:]
	switch {
	case first > s.lastIndex():
		s.epochs = s.epochs[:0]
	case len(s.epochs) > 0:
		s.epochs[0].index, s.epochs[0].offset = first, offset
	}
	if s.recentFirst < first {
		drop := min(first-s.recentFirst, uint64(len(s.recent)))
		s.recent = s.recent[drop:]
		s.recentFirst = first
	}
	if len(s.cache) > 0 && s.cacheFirst < first {
		n := int(min(first-s.cacheFirst, uint64(len(s.cache))))
		for i := range s.cache[:n] {
			s.cacheBytes -= len(s.cache[i].Data)
		}
		// Resliced, never cleared: slices Entries returned alias the array.
		s.cache = s.cache[n:]
		s.cacheFirst = first
		s.account()
	}
}

// install installs a snapshot from the leader (the follower is behind the leader's log
// start): the log is emptied and restarts at the snapshot's offset, entry
// snap.Metadata.Index+1. It returns the new start offset and the producer state there.
// Every step is durable when it returns.
func (s *Storage) install(snap pb.Snapshot) (offset int64, producers []byte, err error) {
	offset, producers, err = decodeSnapshotData(snap.Data)
	if err != nil {
		return 0, nil, err
	}
	// raft installs only a snapshot above its commit index, so above every entry this
	// replica could have removed from the front.
	first := snap.Metadata.Index + 1
	producers = append([]byte(nil), producers...)
	if err := s.writeProducerSnapshot(offset, producers); err != nil {
		return 0, nil, err
	}
	old, oldFirst := s.startOffset, s.first
	s.state.conf = snap.Metadata.ConfState
	if err := s.state.setStart(logStart{firstIndex: first, prevTerm: snap.Metadata.Term, startOffset: offset, reset: true}); err != nil {
		return 0, nil, err
	}
	if err := s.log.ResetTo(offset, int64(first)); err != nil {
		return 0, nil, fmt.Errorf("replica: install snapshot: %w", err)
	}
	if oldFirst > 1 && old != offset {
		if err := s.removeProducerSnapshot(old); err != nil {
			return 0, nil, err
		}
	}
	s.first, s.prevTerm, s.startOffset, s.startOrd, s.producers = first, snap.Metadata.Term, offset, int64(first), producers
	s.epochs = s.epochs[:0]
	s.recent, s.recentFirst = s.recent[:0], first
	// A new array: slices Entries returned alias the old one.
	s.cache, s.cacheFirst, s.cacheBytes = nil, first, 0
	s.account()
	s.installs++
	return offset, producers, nil
}
