package log

import (
	"errors"
	"fmt"
)

// ErrOrdinalOutOfRange is returned for an ordinal outside [StartOrdinal, EndOrdinal].
var ErrOrdinalOutOfRange = errors.New("log: ordinal out of range")

// Ordinals number the log's batches: the batch at StartOffset has ordinal StartOrdinal,
// each next batch the next ordinal. A new log starts at ordinal 0; ResetTo restarts it at
// any. Retention and TruncateTo keep every remaining batch's ordinal. They are persisted
// in each .index (its header holds the segment's first ordinal, each entry its batch's
// ordinal, the seal the segment's batch count: seal.go), so Open reads no sealed .log to
// find them and OffsetOfOrdinal walks at most IndexIntervalBytes of headers.

// StartOrdinal is the ordinal of the batch at StartOffset.
func (l *Log) StartOrdinal() int64 { return l.segs[0].firstOrd }

// EndOrdinal is the ordinal the next appended batch will get.
func (l *Log) EndOrdinal() int64 {
	a := l.active()
	return a.firstOrd + a.batches
}

// segOrdIndex returns the index of the segment that holds ordinal ord, which must be in
// [StartOrdinal, EndOrdinal]; at EndOrdinal it is the active segment.
func (l *Log) segOrdIndex(ord int64) int {
	lo, hi := 0, len(l.segs) // first segment with firstOrd > ord
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.segs[m].firstOrd <= ord {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// OffsetOfOrdinal returns the base offset of the batch with ordinal ord, or EndOffset for
// EndOrdinal. ord outside [StartOrdinal, EndOrdinal] is ErrOrdinalOutOfRange.
func (l *Log) OffsetOfOrdinal(ord int64) (int64, error) {
	if ord < l.StartOrdinal() || ord > l.EndOrdinal() {
		return 0, fmt.Errorf("%w: %d not in [%d, %d]", ErrOrdinalOutOfRange, ord, l.StartOrdinal(), l.EndOrdinal())
	}
	if ord == l.EndOrdinal() {
		return l.EndOffset(), nil
	}
	s := l.segs[l.segOrdIndex(ord)]
	rel := ord - s.firstOrd
	pos, at := s.lookupOrd(rel)
	w := l.walker(s)
	for {
		h, err := w.header(pos)
		if err != nil {
			return 0, err
		}
		if at == rel {
			return h.BaseOffset, nil
		}
		pos += int64(h.Size())
		at++
	}
}

// OrdinalOfOffset returns the ordinal of the batch that holds offset, or EndOrdinal for
// EndOffset. offset outside [StartOffset, EndOffset] is ErrOffsetOutOfRange.
func (l *Log) OrdinalOfOffset(offset int64) (int64, error) {
	if offset < l.StartOffset() || offset > l.EndOffset() {
		return 0, ErrOffsetOutOfRange
	}
	if offset == l.EndOffset() {
		return l.EndOrdinal(), nil
	}
	s := l.segs[l.segIndex(offset)]
	pos, at := s.lookupEntry(offset)
	w := l.walker(s)
	for {
		h, err := w.header(pos)
		if err != nil {
			return 0, err
		}
		if h.LastOffset() >= offset {
			if h.BaseOffset > offset {
				return 0, w.corrupt(pos, "offset missing")
			}
			return s.firstOrd + at, nil
		}
		pos += int64(h.Size())
		at++
	}
}

// ReadOrdinals returns whole batches from the one with ordinal from up to, not including,
// the one with ordinal to (one above EndOrdinal counts as EndOrdinal), as Read does: at
// most maxBytes except that the first batch is whole, from one segment only, so it may
// return fewer batches than asked for. from == to, or from == EndOrdinal, returns nil.
// from outside [StartOrdinal, EndOrdinal] is ErrOrdinalOutOfRange. The caller owns the
// returned slice.
func (l *Log) ReadOrdinals(from, to int64, maxBytes int) ([]byte, error) {
	offset, err := l.OffsetOfOrdinal(from)
	if err != nil {
		return nil, err
	}
	to = min(to, l.EndOrdinal())
	if to <= from {
		return nil, nil
	}
	limit, err := l.OffsetOfOrdinal(to)
	if err != nil {
		return nil, err
	}
	return l.Read(offset, maxBytes, limit)
}
