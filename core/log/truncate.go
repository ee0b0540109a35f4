package log

import (
	"fmt"
	"math"
)

// TruncateTo removes every offset >= offset (used by replication on divergence). offset
// must be in [StartOffset, EndOffset] (else ErrOffsetOutOfRange) and start a batch or equal
// EndOffset (else ErrNotBoundary). The segment holding offset becomes the active one.
//
// Unlike Append, TruncateTo waits for I/O: the truncation is durable when it returns, so no
// crash can bring cut bytes back under a segment that grows again, nor a stale seal. A
// crash in the middle leaves a prefix of the log as it was before. Divergence is rare; the
// syncs cost little. DurableOffset drops to offset if it was above, and an outstanding
// SyncJob will not raise it past offset. A failure after the first change to the files
// fails the log.
func (l *Log) TruncateTo(offset int64) error {
	if l.failed != nil {
		return ErrFailed
	}
	if offset < l.StartOffset() || offset > l.EndOffset() {
		return ErrOffsetOutOfRange
	}
	if offset == l.EndOffset() {
		return nil
	}
	i := l.segIndex(offset)
	s := l.segs[i]
	var pos int64
	if offset > s.base {
		w := l.walker(s)
		p, h, err := w.seek(offset)
		if err != nil {
			return err
		}
		if h.BaseOffset != offset {
			return fmt.Errorf("%w: %d is inside batch [%d, %d]", ErrNotBoundary, offset, h.BaseOffset, h.LastOffset())
		}
		pos = p
	}
	if err := l.truncate(i, offset, pos); err != nil {
		return l.fail(err)
	}
	l.durable = min(l.durable, offset)
	if l.job != nil {
		l.jobCap = min(l.jobCap, offset)
	}
	return nil
}

// truncate cuts the log at offset, position pos of segment i, in an order that keeps every
// intermediate state on disk a prefix of the old log that Open recovers as such:
//  1. durably remove the seals of segment i and of every later one, so that no gap the
//     next steps leave can pass for a front gap left by retention (recover.go);
//  2. remove the later segments' .log files and sync the directory;
//  3. truncate segment i's files and sync them;
//  4. remove the later segments' index files.
func (l *Log) truncate(i int, offset, pos int64) error {
	s, later := l.segs[i], l.segs[i+1:]
	for _, r := range l.segs[i:] {
		if r.state != stateActive {
			keep := int64(0)
			if r == s {
				keep = idxHeaderBytes // s stays, active: its header records its first ordinal
			}
			if err := truncateSync(r.idx, keep); err != nil {
				return fmt.Errorf("log: truncate: unseal segment %d: %w", r.base, err)
			}
			r.idxDirty = false
		}
	}
	for _, r := range later {
		r.removed = true
		l.bytes -= r.size
		if err := l.fs.Remove(segmentName(l.dir, r.base, logSuffix)); err != nil {
			return fmt.Errorf("log: truncate: remove segment %d: %w", r.base, err)
		}
	}
	if len(later) > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("log: truncate: sync dir: %w", err)
		}
	}
	if err := l.cut(s, offset, pos); err != nil {
		return err
	}
	for _, r := range later {
		for _, suffix := range [...]string{indexSuffix, timeIndexSuffix} {
			if err := l.fs.Remove(segmentName(l.dir, r.base, suffix)); err != nil {
				return fmt.Errorf("log: truncate: remove segment %d: %w", r.base, err)
			}
		}
		if err := l.closeSegment(r); err != nil {
			return err
		}
		l.dirDirty = true
	}
	clear(later)
	l.segs = l.segs[:i+1]
	return nil
}

// truncateSync truncates f to size bytes, durably.
func truncateSync(f File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// cut truncates s at the batch boundary offset, at file position pos, durably, and makes
// it the active segment. Its index files end up empty: the active segment's indexes live
// in memory.
func (l *Log) cut(s *segment, offset, pos int64) error {
	l.bytes -= s.size - pos
	if err := truncateSync(s.log, pos); err != nil {
		return fmt.Errorf("log: truncate segment %d: %w", s.base, err)
	}
	if s.state != stateActive {
		if err := truncateSync(s.tidx, 0); err != nil {
			return fmt.Errorf("log: truncate time index of segment %d: %w", s.base, err)
		}
	}
	s.state = stateActive
	s.gen++
	s.logDirty = false
	s.rollBaseMs = l.nowMs
	s.cutIndexes(offset)
	s.end, s.size = offset, pos
	s.maxTs, s.sinceIndex = math.MinInt64, pos
	var from int64 // the last indexed batch: the time index holds the max up to it
	s.batches = 0
	if n := s.idxEntries(); n > 0 {
		_, p := s.idxEntry(n - 1)
		from = int64(p)
		s.sinceIndex = pos - from
		s.batches = s.idxOrd(n - 1)
	}
	if n := s.tidxEntries(); n > 0 {
		s.maxTs, _ = s.tidxEntry(n - 1)
	}
	w := l.walker(s)
	for p := from; p < pos; {
		h, err := w.header(p)
		if err != nil {
			return err
		}
		s.maxTs = max(s.maxTs, h.MaxTimestamp)
		s.lastRel = uint32(h.BaseOffset - s.base)
		s.batches++
		p += int64(h.Size())
	}
	return nil
}

// closeSegment closes the files of a removed segment: now, or in SyncDone when a job is
// outstanding, as it may be syncing them.
func (l *Log) closeSegment(s *segment) error {
	if l.job != nil {
		l.closeLater = append(l.closeLater, s.log, s.idx, s.tidx)
		return nil
	}
	if err := s.closeFiles(); err != nil {
		return fmt.Errorf("log: close segment %d: %w", s.base, err)
	}
	return nil
}
