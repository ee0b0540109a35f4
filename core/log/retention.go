package log

import (
	"fmt"
	"slices"
)

// EnforceRetention deletes whole segments past the retention limits, oldest first, never
// the active one nor one whose seal is not known durable (so never one an outstanding
// SyncJob syncs; a segment Open found sealed is queued for the next SyncJob first):
//   - by size, as Kafka does: the oldest segment goes while the log without it still
//     holds at least RetentionBytes;
//   - by time: the oldest segment goes while its newest batch's MaxTimestamp is below
//     nowMs - RetentionMs.
//
// StartOffset moves to the first remaining segment. A deletion is two-phase: the .log goes
// now; its index files go once a SyncJob has made that durable (SyncDone), so that a
// crash that brings back a deleted .log brings back its seal too (recover.go). A failed
// removal fails the log.
func (l *Log) EnforceRetention(nowMs int64) error {
	return l.deleteFront(func(s *segment) bool { return l.expired(s, l.bytes, nowMs) })
}

// expired reports whether the retention rules delete s, the oldest segment of a log of
// bytes bytes.
func (l *Log) expired(s *segment, bytes, nowMs int64) bool {
	bySize := l.cfg.RetentionBytes > 0 && bytes-s.size >= l.cfg.RetentionBytes
	byTime := l.cfg.RetentionMs > 0 && s.maxTs < nowMs-l.cfg.RetentionMs
	return bySize || byTime
}

// RetentionPoint returns the start offset EnforceRetention(nowMs) would leave once every
// segment it deletes is sealed: the base of the first segment the size and time rules
// keep. ok is false when they delete nothing. It changes nothing; a replicated log's
// replica agrees on the point (a snapshot at or above it) and then calls DeleteBefore.
func (l *Log) RetentionPoint(nowMs int64) (offset int64, ok bool) {
	bytes, n := l.bytes, 0
	for n < len(l.segs)-1 && l.expired(l.segs[n], bytes, nowMs) {
		bytes -= l.segs[n].size
		n++
	}
	return l.segs[n].base, n > 0
}

// DeleteBefore deletes the whole segments that end at or below offset, oldest first, as
// EnforceRetention does (never the active one, two-phase, only sealed segments: one whose
// seal is not known durable stops it, and a seal Open found is queued for the next
// SyncJob). StartOffset says how far it got; calling it again after the next SyncJobs
// goes on. Offsets below StartOffset delete nothing. A failed removal fails the log.
func (l *Log) DeleteBefore(offset int64) error {
	return l.deleteFront(func(s *segment) bool { return s.end <= offset })
}

// deleteFront deletes segments from the oldest while expired says so and they are sealed,
// never the active one.
func (l *Log) deleteFront(expired func(s *segment) bool) error {
	if l.failed != nil {
		return ErrFailed
	}
	n := 0
	var err error
	for n < len(l.segs)-1 {
		s := l.segs[n]
		if !expired(s) {
			break
		}
		if s.state == stateSealSeen {
			// Its seal must be durable first: a crash that brings the .log back must
			// bring a valid seal with it (recover.go).
			s.state = stateSealWritten
			l.pending = append(l.pending, s)
		}
		if s.state != stateSealed {
			break
		}
		n++
		if err = l.deleteSegment(s); err != nil {
			break
		}
	}
	if n > 0 {
		l.segs = slices.Delete(l.segs, 0, n)
		l.dirDirty = true
	}
	if err != nil {
		return l.fail(err)
	}
	return nil
}

// deleteSegment removes a sealed segment's .log and queues its index files for removal.
func (l *Log) deleteSegment(s *segment) error {
	s.removed = true
	l.bytes -= s.size
	if err := l.fs.Remove(segmentName(l.dir, s.base, logSuffix)); err != nil {
		return fmt.Errorf("log: retention: remove segment %d: %w", s.base, err)
	}
	l.doomed = append(l.doomed,
		segmentName(l.dir, s.base, indexSuffix), segmentName(l.dir, s.base, timeIndexSuffix))
	return l.closeSegment(s)
}
