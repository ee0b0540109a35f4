package log

import (
	"fmt"

	"chronik/core/record"
)

// Read returns whole batches starting with the one that contains offset and ending before
// limit (an exclusive offset; one above EndOffset counts as EndOffset). It returns at most
// maxBytes, except that the first batch is returned whole even when larger (KIP-74), and
// it reads from one segment only, so it may return less than maxBytes before limit.
// Reading at or past limit, up to EndOffset, returns nil. offset outside [StartOffset,
// EndOffset] is ErrOffsetOutOfRange. The caller owns the returned slice; Read allocates
// nothing else.
func (l *Log) Read(offset int64, maxBytes int, limit int64) ([]byte, error) {
	if offset < l.StartOffset() || offset > l.EndOffset() {
		return nil, ErrOffsetOutOfRange
	}
	limit = min(limit, l.EndOffset())
	if offset >= limit {
		return nil, nil
	}
	s := l.segs[l.segIndex(offset)]
	maxBytes = max(maxBytes, 0)
	if interval := l.cfg.IndexIntervalBytes; maxBytes >= interval {
		return l.readAhead(s, offset, maxBytes, limit, interval)
	}
	return l.readWalk(s, offset, maxBytes, limit)
}

// readWalk serves Read by walking headers to the batch that holds offset, then reading
// from there.
func (l *Log) readWalk(s *segment, offset int64, maxBytes int, limit int64) ([]byte, error) {
	w := l.walker(s)
	pos, h, err := w.seek(offset)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, max(int64(h.Size()), min(int64(maxBytes), s.size-pos)))
	if err := readFull(s.log, buf, pos); err != nil {
		return nil, fmt.Errorf("log: read segment %d: %w", s.base, err)
	}
	return buf[:wholeBatches(buf, h.Size(), limit)], nil
}

// readAhead serves Read in one ReadAt when maxBytes is at least the index interval: the
// batch that holds offset starts less than interval bytes after the index entry at or
// before it (an unindexed batch starts within interval of the previous entry), so reading
// maxBytes+interval bytes from the entry holds the answer, unless its first batch is bigger
// than maxBytes. The returned slice may start inside the buffer read. When the index is
// sparser than the interval (written under another config), it falls back to a walk.
func (l *Log) readAhead(s *segment, offset int64, maxBytes int, limit int64, interval int) ([]byte, error) {
	pos := s.lookup(offset)
	buf := make([]byte, min(s.size-pos, int64(maxBytes)+int64(interval)+record.HeaderSize))
	if err := readFull(s.log, buf, pos); err != nil {
		return nil, fmt.Errorf("log: read segment %d: %w", s.base, err)
	}
	p := 0
	h, ok := peekHeader(buf)
	for ok && h.LastOffset() < offset {
		p += h.Size()
		h, ok = peekHeader(buf[min(p, len(buf)):])
	}
	if !ok || h.BaseOffset > offset {
		return l.readWalk(s, offset, maxBytes, limit)
	}
	n := h.Size()
	if p+n > len(buf) { // bigger than maxBytes: read it whole (KIP-74)
		whole := make([]byte, n)
		copy(whole, buf[p:])
		if err := readFull(s.log, whole[len(buf)-p:], pos+int64(len(buf))); err != nil {
			return nil, fmt.Errorf("log: read segment %d: %w", s.base, err)
		}
		return whole, nil
	}
	out := buf[p : p+max(n, min(maxBytes, len(buf)-p))]
	return out[:wholeBatches(out, n, limit)], nil
}

// wholeBatches returns the length of the longest run of whole batches at the start of b
// that begin below limit, the first (of size first) always included.
func wholeBatches(b []byte, first int, limit int64) int {
	end := first
	for end < len(b) {
		h, ok := peekHeader(b[end:])
		if !ok || h.BaseOffset >= limit || end+h.Size() > len(b) {
			break
		}
		end += h.Size()
	}
	return end
}

// Batches calls fn for every batch header from offset from on (CRC not checked), starting
// with the batch that holds from, for rebuilding producer state after a restart. fn
// returning false stops the walk; fn may call l's read methods but must not change l. from
// outside [StartOffset, EndOffset] is ErrOffsetOutOfRange.
func (l *Log) Batches(from int64, fn func(h record.Header) bool) error {
	if from < l.StartOffset() || from > l.EndOffset() {
		return ErrOffsetOutOfRange
	}
	if from == l.EndOffset() {
		return nil
	}
	// fn may call back into l, so the walk has a window of its own rather than l.win.
	win := make([]byte, windowBytes)
	i := l.segIndex(from)
	w := walker{buf: win, s: l.segs[i]}
	pos, _, err := w.seek(from)
	if err != nil {
		return err
	}
	for {
		for pos < w.s.size {
			h, err := w.header(pos)
			if err != nil {
				return err
			}
			if !fn(h) {
				return nil
			}
			pos += int64(h.Size())
		}
		if i++; i == len(l.segs) {
			return nil
		}
		w = walker{buf: win, s: l.segs[i]}
		pos = 0
	}
}

// OffsetForTime returns the first offset whose batch's max timestamp is >= ts, with that
// timestamp; ok is false when no batch qualifies. The offset is the batch's base offset.
// An I/O error or corruption gives ok false and fails the log (see Err), as the signature
// has no room for it.
func (l *Log) OffsetForTime(ts int64) (offset, batchTs int64, ok bool) {
	for _, s := range l.segs {
		if s.size == 0 || s.maxTs < ts {
			continue
		}
		w := l.walker(s)
		pos, _, err := w.seek(s.lookupTime(ts))
		if err != nil {
			l.markFailed(err)
			return 0, 0, false
		}
		for pos < s.size {
			h, err := w.header(pos)
			if err != nil {
				l.markFailed(err)
				return 0, 0, false
			}
			if h.MaxTimestamp >= ts {
				return h.BaseOffset, h.MaxTimestamp, true
			}
			pos += int64(h.Size())
		}
	}
	return 0, 0, false
}
