package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path"

	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/log"
)

// The state file (stateFileName in the partition's directory) holds what Raft must keep
// beside the log: the HardState (term, vote, commit), the ConfState, and where the log
// starts in Raft's numbering. It is an append-only sequence of records, each
//
//	length uint32 (of what follows the crc) | crc uint32 (CRC-32C of what follows it) |
//	kind uint8 | payload
//
// and the last valid record of each kind wins. Open reads records until the first that
// does not validate (a torn tail) and cuts the file there. Appends are volatile until the
// replica's next SyncJob syncs the file. When the file grows past maxStateFileBytes it is
// rewritten with one record of each kind: written to a temporary file, synced, renamed
// over the old one, and the directory synced.
const (
	stateFileName     = "raft.state"
	stateTempName     = "raft.state.tmp"
	maxStateFileBytes = 64 << 10
	// maxStateRecordBytes bounds one record: a ConfState of a few hundred voters.
	maxStateRecordBytes = 16 << 10
	stateRecordHeader   = 8
)

// Record kinds of the state file.
const (
	kindHardState byte = 1 // term, vote, commit: three uint64
	kindConfState byte = 2 // a marshaled raftpb.ConfState
	kindLogStart  byte = 3 // first index, term of the entry before it (uint64), start offset (int64)
	// kindLogReset is a log start that a snapshot install wrote before resetting the log
	// (payload as kindLogStart): Open resets a log that does not start there yet.
	kindLogReset byte = 4
)

// logStart says where the log starts in Raft's numbering.
type logStart struct {
	// firstIndex is the Raft index of the batch at the log's start offset.
	// Invariant: firstIndex >= 1.
	firstIndex uint64
	// prevTerm is the term of entry firstIndex-1: 0 when firstIndex is 1, otherwise the
	// term of the entry that retention or a snapshot removed last.
	prevTerm uint64
	// startOffset is the offset of entry firstIndex: the log's start offset once the
	// retention deletion or the reset that moved it is done (snapshot.go).
	startOffset int64
	// reset is set when a snapshot install wrote this start: the log is to be reset to
	// startOffset (core/log.ResetTo), its first ordinal firstIndex.
	reset bool
}

// stateFile is the open state file and the latest value of each record kind.
type stateFile struct {
	fs   log.FS
	dir  string
	f    log.File
	size int64 // bytes in the file, unsynced appends included

	hard  pb.HardState // empty until one is written
	conf  pb.ConfState
	start logStart

	dirty bool // appended since the last sync was prepared
	// syncing is set while a SyncJob holds f: a rewrite must not close f under it.
	syncing bool
	// closeLater are files replaced by a rewrite while a job held them; released closes
	// them.
	closeLater []log.File
	buf        []byte
}

var errStateCorrupt = errors.New("replica: state file corrupt")

// openState opens dir's state file, or creates it holding conf and start (durably, entry
// included) when there is none and create is set. It reports whether it created it.
func openState(fsys log.FS, dir string, create bool, conf pb.ConfState, start logStart) (*stateFile, bool, error) {
	name := path.Join(dir, stateFileName)
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, false, fmt.Errorf("replica: no state file in %s", dir)
		}
		s := &stateFile{fs: fsys, dir: dir, conf: conf, start: start}
		if err := s.rewrite(); err != nil {
			return nil, false, err
		}
		return s, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("replica: open state: %w", err)
	}
	s := &stateFile{fs: fsys, dir: dir, f: f}
	if err := s.load(); err != nil {
		return nil, false, errors.Join(err, f.Close())
	}
	return s, false, nil
}

// load reads every valid record, cuts a torn tail off durably and checks that the file
// holds a ConfState and a log start.
func (s *stateFile) load() error {
	size, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("replica: state size: %w", err)
	}
	data := make([]byte, size)
	if _, err := s.f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("replica: read state: %w", err)
	}
	var valid int64
	haveConf, haveStart := false, false
	for rest := data; ; {
		kind, payload, n, ok := parseStateRecord(rest)
		if !ok {
			break
		}
		switch kind {
		case kindHardState:
			if len(payload) != 24 {
				return fmt.Errorf("%w: hard state of %d bytes", errStateCorrupt, len(payload))
			}
			s.hard = pb.HardState{
				Term:   binary.BigEndian.Uint64(payload),
				Vote:   binary.BigEndian.Uint64(payload[8:]),
				Commit: binary.BigEndian.Uint64(payload[16:]),
			}
		case kindConfState:
			var cs pb.ConfState
			if err := cs.Unmarshal(payload); err != nil {
				return fmt.Errorf("%w: conf state: %w", errStateCorrupt, err)
			}
			s.conf, haveConf = cs, true
		case kindLogStart, kindLogReset:
			if len(payload) != 24 {
				return fmt.Errorf("%w: log start of %d bytes", errStateCorrupt, len(payload))
			}
			s.start = logStart{
				firstIndex:  binary.BigEndian.Uint64(payload),
				prevTerm:    binary.BigEndian.Uint64(payload[8:]),
				startOffset: int64(binary.BigEndian.Uint64(payload[16:])),
				reset:       kind == kindLogReset,
			}
			haveStart = s.start.firstIndex >= 1
		}
		rest = rest[n:]
		valid += int64(n)
	}
	if !haveConf || !haveStart {
		// The first records are written and synced before the file is renamed into
		// place, so they are always there.
		return fmt.Errorf("%w: no conf state or log start", errStateCorrupt)
	}
	s.size = valid
	if valid < size {
		if err := s.f.Truncate(valid); err != nil {
			return fmt.Errorf("replica: cut state: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("replica: cut state: %w", err)
		}
	}
	return nil
}

// parseStateRecord parses the record at the start of b: its kind, payload and size. ok is
// false when b does not start with a whole valid record.
func parseStateRecord(b []byte) (kind byte, payload []byte, n int, ok bool) {
	if len(b) < stateRecordHeader+1 {
		return 0, nil, 0, false
	}
	length := int(binary.BigEndian.Uint32(b))
	if length < 1 || length > maxStateRecordBytes || len(b) < stateRecordHeader+length {
		return 0, nil, 0, false
	}
	body := b[stateRecordHeader : stateRecordHeader+length]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return 0, nil, 0, false
	}
	return body[0], body[1:], stateRecordHeader + length, true
}

// appendStateRecord appends a record of kind with payload to dst.
func appendStateRecord(dst []byte, kind byte, payload []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = append(dst, kind)
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+stateRecordHeader:], castagnoli))
	return dst
}

func hardStatePayload(dst []byte, hs pb.HardState) []byte {
	dst = binary.BigEndian.AppendUint64(dst, hs.Term)
	dst = binary.BigEndian.AppendUint64(dst, hs.Vote)
	return binary.BigEndian.AppendUint64(dst, hs.Commit)
}

func logStartPayload(dst []byte, ls logStart) []byte {
	dst = binary.BigEndian.AppendUint64(dst, ls.firstIndex)
	dst = binary.BigEndian.AppendUint64(dst, ls.prevTerm)
	return binary.BigEndian.AppendUint64(dst, uint64(ls.startOffset))
}

func confStatePayload(cs pb.ConfState) ([]byte, error) {
	b, err := cs.Marshal()
	if err != nil {
		return nil, fmt.Errorf("replica: marshal conf state: %w", err)
	}
	if len(b)+1 > maxStateRecordBytes {
		return nil, fmt.Errorf("replica: conf state of %d bytes over the %d limit", len(b), maxStateRecordBytes)
	}
	return b, nil
}

// setHardState appends hs (volatile: the next SyncJob syncs it), rewriting the file first
// when it has grown past maxStateFileBytes.
func (s *stateFile) setHardState(hs pb.HardState) error {
	s.hard = hs
	if s.size+64 > maxStateFileBytes {
		return s.rewrite()
	}
	s.buf = appendStateRecord(s.buf[:0], kindHardState, hardStatePayload(nil, s.hard))
	if _, err := s.f.Write(s.buf); err != nil {
		return fmt.Errorf("replica: write hard state: %w", err)
	}
	s.size += int64(len(s.buf))
	s.dirty = true
	return nil
}

// setStart records a new log start durably (by a rewrite: a log start moves on retention
// and snapshot installs only, and what follows it, deleting segments or resetting the log,
// must not start before it is durable).
func (s *stateFile) setStart(ls logStart) error {
	s.start = ls
	return s.rewrite()
}

// rewrite replaces the file durably with one record of each kind (the caller's duty 2 in
// package disk): write and sync a temporary file, rename it over the state file, sync the
// directory. It runs on the loop; it happens at creation, once per ~1,500 elections and
// when the log start moves (retention, snapshot installs).
func (s *stateFile) rewrite() error {
	conf, err := confStatePayload(s.conf)
	if err != nil {
		return err
	}
	var b []byte
	b = appendStateRecord(b, kindConfState, conf)
	startKind := kindLogStart
	if s.start.reset {
		startKind = kindLogReset
	}
	b = appendStateRecord(b, startKind, logStartPayload(nil, s.start))
	if s.hard != (pb.HardState{}) {
		b = appendStateRecord(b, kindHardState, hardStatePayload(nil, s.hard))
	}
	tmp, final := path.Join(s.dir, stateTempName), path.Join(s.dir, stateFileName)
	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("replica: rewrite state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		return errors.Join(fmt.Errorf("replica: rewrite state: %w", err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("replica: rewrite state: %w", err), f.Close())
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		return errors.Join(fmt.Errorf("replica: rewrite state: %w", err), f.Close())
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return errors.Join(fmt.Errorf("replica: rewrite state: %w", err), f.Close())
	}
	old := s.f
	s.f, s.size, s.dirty = f, int64(len(b)), false
	switch {
	case old == nil:
	case s.syncing:
		s.closeLater = append(s.closeLater, old)
	default:
		if err := old.Close(); err != nil {
			return fmt.Errorf("replica: rewrite state: close old: %w", err)
		}
	}
	return nil
}

// released is called when the SyncJob that held f is done: files a rewrite replaced
// meanwhile are closed.
func (s *stateFile) released() error {
	s.syncing = false
	var errs []error
	for _, f := range s.closeLater {
		errs = append(errs, f.Close())
	}
	clear(s.closeLater)
	s.closeLater = s.closeLater[:0]
	return errors.Join(errs...)
}

// close closes the file without syncing it.
func (s *stateFile) close() error {
	err := s.released()
	if s.f == nil {
		return err
	}
	return errors.Join(err, s.f.Close())
}
