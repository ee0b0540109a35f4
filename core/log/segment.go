package log

import (
	"encoding/binary"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"chronik/core/record"
)

// File name suffixes of a segment's three files.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// Index entry sizes. An offset index entry is relative offset uint32 | file position
// uint32 | relative ordinal uint32 (the batch's ordinal minus the segment's first); a time
// index entry is timestamp int64 | relative offset uint32. Both big-endian. (Format 1, up
// to the ordinals, had 8-byte offset index entries: see seal.go for how Open reads it.)
const (
	idxEntryBytes  = 12
	tidxEntryBytes = 12
)

// sealState is where a non-active segment is on its way to being sealed: its .log synced,
// then a seal appended to its .index (see seal.go), then .index and .timeindex synced.
type sealState uint8

const (
	stateActive      sealState = iota // the last segment, or one made last by TruncateTo
	stateRolled                       // rolled; its .log may hold unsynced writes
	stateSyncing                      // the outstanding SyncJob syncs its .log
	stateSealWritten                  // .log durable, seal written, .index/.timeindex unsynced
	stateSealSyncing                  // the outstanding SyncJob syncs its .index/.timeindex
	stateSealed                       // everything durable; retention may delete it
	// stateSealSeen: Open found a valid seal. The .log is durable (the seal was written
	// after it was synced) but the seal may not be: a restart without a crash shows
	// unsynced writes. Retention syncs it (stateSealWritten) before deleting the segment.
	stateSealSeen
)

// segment is one .log file with its sparse indexes, which it keeps in memory encoded
// exactly as in the .index and .timeindex files.
type segment struct {
	base int64 // offset of the first batch; names the files
	end  int64 // offset after the last batch. Invariant: end == next segment's base.
	size int64 // bytes in .log, unsynced ones included. Invariant: size <= math.MaxUint32.
	// firstOrd is the ordinal of the segment's first batch (its position in the log),
	// batches the number of batches in it.
	// Invariant: firstOrd + batches == next segment's firstOrd; batches <= math.MaxUint32.
	firstOrd, batches int64

	log, idx, tidx File

	// idxBuf holds the offset index entries: one for the first batch that starts at least
	// IndexIntervalBytes after the previous entry's batch. tidxBuf holds a time index
	// entry beside each offset index entry: the largest MaxTimestamp of the batches up to
	// and including that batch. A rolled segment's time index ends with an entry for its
	// last batch, so its last entry holds the segment's max timestamp.
	// Invariant: entries strictly increase in relative offset and position; timestamps
	// never decrease.
	idxBuf, tidxBuf []byte
	// sinceIndex is the bytes from the last offset index entry's batch (or the segment
	// start) to the end.
	sinceIndex int64
	maxTs      int64  // largest batch MaxTimestamp; math.MinInt64 when empty
	lastRel    uint32 // relative offset of the last batch; meaningful when size > 0
	rollBaseMs int64  // the time SegmentMs is counted from: the first append's

	state sealState
	// gen counts the times the segment was rolled or reactivated, so that a SyncJob can
	// tell whether the segment it captured is still the one it synced.
	gen      uint64
	logDirty bool // .log has writes or truncates no SyncJob has captured yet
	idxDirty bool // .index has its header (createSegment) and no SyncJob captured it yet
	removed  bool // deleted by retention or TruncateTo
}

func newSegment(base int64) *segment {
	return &segment{base: base, end: base, maxTs: math.MinInt64}
}

// segmentName returns the file name of the segment at base with suffix: the base offset
// as 20 zero-padded digits.
func segmentName(dir string, base int64, suffix string) string {
	return path.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseSegmentName returns the base offset named by a segment file name with suffix.
func parseSegmentName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// track records in s the batch h just placed at pos: the index entries it earns, the
// running max timestamp, the end. h must follow the previous batch.
func (s *segment) track(h record.Header, pos int64, intervalBytes int64) {
	rel := uint32(h.BaseOffset - s.base)
	s.maxTs = max(s.maxTs, h.MaxTimestamp)
	if s.sinceIndex >= intervalBytes {
		s.idxBuf = appendIdxEntry(s.idxBuf, rel, uint32(pos), uint32(s.batches))
		s.tidxBuf = appendTidxEntry(s.tidxBuf, s.maxTs, rel)
		s.sinceIndex = 0
	}
	n := int64(h.Size())
	s.sinceIndex += n
	s.lastRel = rel
	s.batches++
	s.end = h.LastOffset() + 1
	s.size = pos + n
}

// finishTimeIndex appends the time index entry for the last batch, so that the time
// index's last entry holds the segment's max timestamp. It is called when the segment
// stops being the active one.
func (s *segment) finishTimeIndex() {
	if s.size == 0 {
		return
	}
	if n := s.tidxEntries(); n > 0 {
		if _, rel := s.tidxEntry(n - 1); rel == s.lastRel {
			return
		}
	}
	s.tidxBuf = appendTidxEntry(s.tidxBuf, s.maxTs, s.lastRel)
}

func appendIdxEntry(b []byte, rel, pos, relOrd uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, rel)
	b = binary.BigEndian.AppendUint32(b, pos)
	return binary.BigEndian.AppendUint32(b, relOrd)
}

func appendTidxEntry(b []byte, ts int64, rel uint32) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	return binary.BigEndian.AppendUint32(b, rel)
}

func (s *segment) idxEntries() int  { return len(s.idxBuf) / idxEntryBytes }
func (s *segment) tidxEntries() int { return len(s.tidxBuf) / tidxEntryBytes }

func (s *segment) idxEntry(i int) (rel, pos uint32) {
	e := s.idxBuf[i*idxEntryBytes:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

// idxOrd returns the relative ordinal of offset index entry i.
func (s *segment) idxOrd(i int) int64 {
	return int64(binary.BigEndian.Uint32(s.idxBuf[i*idxEntryBytes+8:]))
}

func (s *segment) tidxEntry(i int) (ts int64, rel uint32) {
	e := s.tidxBuf[i*tidxEntryBytes:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

// lookup returns the position of the last indexed batch that starts at or before offset,
// or 0. The batch holding offset starts there or later.
func (s *segment) lookup(offset int64) int64 {
	pos, _ := s.lookupEntry(offset)
	return pos
}

// lookupEntry returns the position and relative ordinal of the last indexed batch that
// starts at or before offset, or 0, 0.
func (s *segment) lookupEntry(offset int64) (pos, relOrd int64) {
	target := uint32(offset - s.base)
	lo, hi := 0, s.idxEntries() // first entry with rel > target, by binary search
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rel, _ := s.idxEntry(m); rel <= target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0
	}
	_, p := s.idxEntry(lo - 1)
	return int64(p), s.idxOrd(lo - 1)
}

// lookupOrd returns the position and relative ordinal of the last indexed batch whose
// relative ordinal is at most relOrd, or 0, 0.
func (s *segment) lookupOrd(relOrd int64) (pos, entryOrd int64) {
	lo, hi := 0, s.idxEntries() // first entry with ordinal > relOrd
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.idxOrd(m) <= relOrd {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, 0
	}
	_, p := s.idxEntry(lo - 1)
	return int64(p), s.idxOrd(lo - 1)
}

// lookupTime returns an offset from which a walk finds the first batch with MaxTimestamp
// >= ts: the batch of the last time index entry whose timestamp is below ts (every batch
// up to it is below ts), or the segment's base.
func (s *segment) lookupTime(ts int64) int64 {
	lo, hi := 0, s.tidxEntries() // first entry with timestamp >= ts
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t, _ := s.tidxEntry(m); t < ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return s.base
	}
	_, rel := s.tidxEntry(lo - 1)
	return s.base + int64(rel)
}

// cutIndexes drops the index entries of batches at or after offset.
func (s *segment) cutIndexes(offset int64) {
	rel := offset - s.base
	n := s.idxEntries()
	for n > 0 {
		if r, _ := s.idxEntry(n - 1); int64(r) < rel {
			break
		}
		n--
	}
	s.idxBuf = s.idxBuf[:n*idxEntryBytes]
	n = s.tidxEntries()
	for n > 0 {
		if _, r := s.tidxEntry(n - 1); int64(r) < rel {
			break
		}
		n--
	}
	s.tidxBuf = s.tidxBuf[:n*tidxEntryBytes]
}

// checkIndexes reports whether the loaded indexes keep their invariants for a segment of
// size bytes, relEnd offsets and s.batches batches.
func (s *segment) checkIndexes(relEnd int64) bool {
	if len(s.idxBuf)%idxEntryBytes != 0 || len(s.tidxBuf)%tidxEntryBytes != 0 {
		return false
	}
	for i := range s.idxEntries() {
		rel, pos := s.idxEntry(i)
		if int64(rel) >= relEnd || int64(pos) >= s.size || s.idxOrd(i) >= s.batches {
			return false
		}
		if i > 0 {
			if prel, ppos := s.idxEntry(i - 1); rel <= prel || pos <= ppos || s.idxOrd(i) <= s.idxOrd(i-1) {
				return false
			}
		}
	}
	for i := range s.tidxEntries() {
		ts, rel := s.tidxEntry(i)
		if int64(rel) >= relEnd {
			return false
		}
		if i > 0 {
			if pts, prel := s.tidxEntry(i - 1); rel <= prel || ts < pts {
				return false
			}
		}
	}
	return true
}

// closeFiles closes the segment's files, returning the first error.
func (s *segment) closeFiles() error {
	var first error
	for _, f := range [...]File{s.log, s.idx, s.tidx} {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
