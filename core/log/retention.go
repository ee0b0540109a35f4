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
	if l.failed != nil {
		return ErrFailed
	}
	n := 0
	var err error
	for n < len(l.segs)-1 {
		s := l.segs[n]
		bySize := l.cfg.RetentionBytes > 0 && l.bytes-s.size >= l.cfg.RetentionBytes
		byTime := l.cfg.RetentionMs > 0 && s.maxTs < nowMs-l.cfg.RetentionMs
		if !bySize && !byTime {
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
