package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path"
)

// A reset is committed by a marker file, resetName, written whole and synced under
// resetTmpName and renamed into place:
//
//	magic uint32 | offset int64 | ordinal int64 | crc uint32 (CRC-32C of the first 20 bytes)
//
// Once it exists the reset happens: ResetTo, or the next Open if a crash interrupts it,
// removes every segment file, creates the empty segment at the offset with the ordinal in
// its .index header, makes that durable and only then removes the marker. Before the rename
// is durable, Open finds the old log (and removes a leftover temporary file).
const (
	resetName    = "log.reset"
	resetTmpName = "log.reset.tmp"
	resetBytes   = 24
	resetMagic   = 0x52534554 // "RSET"
)

// ResetTo durably empties the log and restarts it at offset, its next batch getting
// ordinal ord: Kafka's truncateFullyAndStartAt, for installing a snapshot. Like TruncateTo
// it waits for I/O; when it returns nil, StartOffset = EndOffset = DurableOffset = offset
// and StartOrdinal = EndOrdinal = ord, durably. A crash leaves the old log or the reset
// one, never a mix. An outstanding SyncJob may still be run and reported; it makes nothing
// of the old log durable. A failure fails the log (the disk then holds the old log or the
// reset one; Open finishes a committed reset).
func (l *Log) ResetTo(offset, ord int64) error {
	if l.failed != nil {
		return ErrFailed
	}
	if offset < 0 || ord < 0 {
		return fmt.Errorf("log: reset to offset %d, ordinal %d: negative", offset, ord)
	}
	if err := commitReset(l.fs, l.dir, offset, ord); err != nil {
		return l.fail(err)
	}
	// Committed: from here the old segments are gone whatever happens.
	for _, s := range l.segs {
		s.removed = true
		if err := l.closeSegment(s); err != nil {
			return l.fail(err)
		}
	}
	clear(l.segs)
	clear(l.pending)
	l.segs, l.pending, l.bytes, l.doomed = l.segs[:0], l.pending[:0], 0, nil
	if l.job != nil {
		// The outstanding job syncs old files: it must neither raise DurableOffset past
		// offset nor remove the index files it captured (a new segment may share a name).
		l.jobCap = min(l.jobCap, offset)
		l.dropJobDoomed = true
	}
	s, err := finishReset(l.fs, l.dir, offset, ord)
	if err != nil {
		// The log is failed; an empty segment without files keeps its accessors working.
		s = newSegment(offset)
		s.firstOrd = ord
		l.segs = append(l.segs, s)
		l.durable = offset
		return l.fail(err)
	}
	s.rollBaseMs = l.nowMs
	l.segs = append(l.segs, s)
	l.durable = offset
	l.dirDirty = false
	return nil
}

// commitReset writes the reset marker durably (see resetName).
func commitReset(fsys FS, dir string, offset, ord int64) error {
	b := make([]byte, resetBytes)
	binary.BigEndian.PutUint32(b[0:], resetMagic)
	binary.BigEndian.PutUint64(b[4:], uint64(offset))
	binary.BigEndian.PutUint64(b[12:], uint64(ord))
	binary.BigEndian.PutUint32(b[20:], crc32.Checksum(b[:20], crc32c))
	tmp := path.Join(dir, resetTmpName)
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("log: reset: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = fsys.Rename(tmp, path.Join(dir, resetName))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("log: reset: commit: %w", err)
	}
	return nil
}

// finishReset carries out a committed reset: it removes every segment file in dir, creates
// the empty segment at offset with first ordinal ord, durably, then removes the marker.
// The new segment is active, its files open.
func finishReset(fsys FS, dir string, offset, ord int64) (*segment, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("log: reset: %w", err)
	}
	for _, name := range names {
		if isSegmentFile(name) {
			if err := fsys.Remove(path.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("log: reset: %w", err)
			}
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("log: reset: sync dir: %w", err)
	}
	l := Log{fs: fsys, dir: dir}
	s, err := l.createSegment(offset, ord)
	if err != nil {
		return nil, fmt.Errorf("log: reset: %w", err)
	}
	for _, f := range [...]File{s.log, s.idx, s.tidx} {
		if err == nil {
			err = f.Sync()
		}
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err == nil {
		err = fsys.Remove(path.Join(dir, resetName))
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("log: reset: %w", err), s.closeFiles())
	}
	s.idxDirty = false
	return s, nil
}

// isSegmentFile reports whether name is a segment's .log, .index or .timeindex.
func isSegmentFile(name string) bool {
	for _, suffix := range [...]string{logSuffix, indexSuffix, timeIndexSuffix} {
		if _, ok := parseSegmentName(name, suffix); ok {
			return true
		}
	}
	return false
}

// recoverReset is Open's first step: it removes a reset marker that was never committed,
// and finishes a committed reset. It reports whether it changed dir.
func recoverReset(fsys FS, dir string, names []string) (bool, error) {
	changed := false
	for _, name := range names {
		switch name {
		case resetTmpName:
			if err := fsys.Remove(path.Join(dir, name)); err != nil {
				return changed, fmt.Errorf("log: open: %w", err)
			}
			changed = true
		case resetName:
			offset, ord, err := readReset(fsys, path.Join(dir, name))
			if err != nil {
				return changed, err
			}
			s, err := finishReset(fsys, dir, offset, ord)
			if err != nil {
				return true, err
			}
			if err := s.closeFiles(); err != nil {
				return true, fmt.Errorf("log: open: %w", err)
			}
			changed = true
		}
	}
	return changed, nil
}

// readReset returns the offset and ordinal a reset marker records.
func readReset(fsys FS, name string) (offset, ord int64, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return 0, 0, fmt.Errorf("log: open: %w", err)
	}
	b := make([]byte, resetBytes)
	err = readFull(f, b, 0)
	if err = errors.Join(err, f.Close()); err != nil {
		return 0, 0, fmt.Errorf("log: open: read %s: %w", name, err)
	}
	be := binary.BigEndian
	offset, ord = int64(be.Uint64(b[4:])), int64(be.Uint64(b[12:]))
	if be.Uint32(b) != resetMagic || be.Uint32(b[20:]) != crc32.Checksum(b[:20], crc32c) || offset < 0 || ord < 0 {
		// The marker is synced before it is renamed into place: this is not a torn write.
		return 0, 0, fmt.Errorf("%w: %s", ErrCorrupt, name)
	}
	return offset, ord, nil
}
