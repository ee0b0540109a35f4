package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"chronik/core/record"
)

// Byte offsets in a v2 batch header of the fields Append rewrites.
const (
	offCRC          = 17
	offAttributes   = 21
	offMaxTimestamp = 35
)

var errEmptyAppend = errors.New("log: append: no batches")

// Append writes batches, one or more validated v2 record batches concatenated, assigning
// offsets from EndOffset on: each batch's baseOffset field is rewritten in place. It returns
// the first and last offsets assigned. It may roll to a new segment first. nowMs is the
// append time, used for segment age and for LogAppendTime: a batch whose attributes say
// LogAppendTime gets maxTimestamp = nowMs and its CRC recomputed, as Kafka does.
//
// Batches that do not frame (record.ParseHeader) are refused with the log unchanged
// (though earlier batches' offsets may have been rewritten); an I/O error fails the log.
func (l *Log) Append(batches []byte, nowMs int64) (first, last int64, err error) {
	return l.append(batches, nowMs, true)
}

// AppendAsIs is Append for a follower that stores its leader's bytes: it rewrites only each
// batch's baseOffset, never the max timestamp of a LogAppendTime batch nor the CRC (the
// CRC does not cover baseOffset). nowMs is used for segment age (SegmentMs) only.
func (l *Log) AppendAsIs(batches []byte, nowMs int64) (first, last int64, err error) {
	return l.append(batches, nowMs, false)
}

// append is Append; stamp says whether LogAppendTime batches get nowMs.
func (l *Log) append(batches []byte, nowMs int64, stamp bool) (first, last int64, err error) {
	if l.failed != nil {
		return 0, 0, ErrFailed
	}
	if len(batches) == 0 {
		return 0, 0, errEmptyAppend
	}
	if len(batches) > MaxAppendBytes {
		return 0, 0, fmt.Errorf("log: append: %d bytes over the %d limit", len(batches), MaxAppendBytes)
	}
	l.nowMs = nowMs
	first = l.EndOffset()
	next, err := assignOffsets(batches, first, nowMs, stamp)
	if err != nil {
		return 0, 0, err
	}
	s := l.active()
	if l.shouldRoll(s, int64(len(batches)), next, nowMs) {
		if err := l.roll(); err != nil {
			return 0, 0, l.fail(err)
		}
		s = l.active()
	}
	if s.size == 0 {
		s.rollBaseMs = nowMs
	}
	if _, err := s.log.Write(batches); err != nil {
		return 0, 0, l.fail(fmt.Errorf("log: append to segment %d: %w", s.base, err))
	}
	s.logDirty = true
	interval := int64(l.cfg.IndexIntervalBytes)
	pos := s.size
	for off := 0; off < len(batches); {
		h, _ := peekHeader(batches[off:]) // framed by assignOffsets
		s.track(h, pos+int64(off), interval)
		off += h.Size()
	}
	l.bytes += int64(len(batches))
	return first, next - 1, nil
}

// assignOffsets rewrites the base offset of each batch in b from offset on, and the max
// timestamp of LogAppendTime batches when stamp is set. It returns the offset after the
// last batch.
func assignOffsets(b []byte, offset, nowMs int64, stamp bool) (int64, error) {
	for len(b) > 0 {
		h, err := record.ParseHeader(b)
		if err != nil {
			return 0, fmt.Errorf("log: append: %w", err)
		}
		if h.LastOffsetDelta < 0 || h.NumRecords < 1 {
			return 0, fmt.Errorf("log: append: %w: lastOffsetDelta %d, %d records",
				record.ErrInvalid, h.LastOffsetDelta, h.NumRecords)
		}
		batch := b[:h.Size()]
		record.SetBaseOffset(batch, offset)
		if stamp && h.LogAppendTime() && h.MaxTimestamp != nowMs {
			binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(nowMs))
			binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], crc32c))
		}
		offset += int64(h.LastOffsetDelta) + 1
		b = b[h.Size():]
	}
	return offset, nil
}

// shouldRoll reports whether an append of n bytes ending before offset next must go to a
// new segment: the active one is not empty, and it would pass SegmentBytes, it is older
// than SegmentMs, or its relative offsets would pass uint32.
func (l *Log) shouldRoll(s *segment, n, next, nowMs int64) bool {
	if s.size == 0 {
		return false
	}
	return s.size+n > l.cfg.SegmentBytes ||
		nowMs-s.rollBaseMs > l.cfg.SegmentMs ||
		next-1-s.base > math.MaxUint32
}

// roll ends the active segment, writing its indexes, and starts a new one at EndOffset.
// The new files' entries become durable with the next SyncJob's SyncDir; the old segment
// waits in pending for the next SyncJob to sync its .log, after which SyncDone seals it.
func (l *Log) roll() error {
	old := l.active()
	old.finishTimeIndex()
	if _, err := old.idx.Write(old.idxBuf); err != nil {
		return fmt.Errorf("log: roll: write index of segment %d: %w", old.base, err)
	}
	if _, err := old.tidx.Write(old.tidxBuf); err != nil {
		return fmt.Errorf("log: roll: write time index of segment %d: %w", old.base, err)
	}
	s, err := l.createSegment(old.end, old.firstOrd+old.batches)
	if err != nil {
		return err
	}
	old.state = stateRolled
	old.gen++
	l.pending = append(l.pending, old)
	l.segs = append(l.segs, s)
	return nil
}

// createSegment creates the three files of an empty segment at base whose first batch
// will have ordinal firstOrd, and writes the .index header (volatile).
func (l *Log) createSegment(base, firstOrd int64) (*segment, error) {
	s := newSegment(base)
	s.firstOrd = firstOrd
	var err error
	l.dirDirty = true
	if s.log, err = l.fs.Create(segmentName(l.dir, base, logSuffix)); err == nil {
		if s.idx, err = l.fs.Create(segmentName(l.dir, base, indexSuffix)); err == nil {
			if s.tidx, err = l.fs.Create(segmentName(l.dir, base, timeIndexSuffix)); err == nil {
				_, err = s.idx.Write(s.idxHeader())
				s.idxDirty = true
			}
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("log: create segment %d: %w", base, err), s.closeFiles())
	}
	return s, nil
}
