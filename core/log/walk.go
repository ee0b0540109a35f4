package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"chronik/core/record"
)

// windowBytes is the size of the window through which headers are walked: a walk over
// batches smaller than this costs one ReadAt per window, not one per batch.
const windowBytes = 32 << 10

// minBatchLength is the smallest batchLength a v2 batch can have: its header after the
// length field.
const minBatchLength = record.HeaderSize - 12

// peekHeader decodes the batch header at the start of b without checking the CRC or that
// the whole batch is in b. It reports false when b is shorter than a header, the magic is
// not 2 or the length is below the header's own. Unlike record.ParseHeader it never
// allocates, which keeps header walks free of garbage.
func peekHeader(b []byte) (record.Header, bool) {
	if len(b) < record.HeaderSize || b[16] != 2 {
		return record.Header{}, false
	}
	be := binary.BigEndian
	h := record.Header{
		BaseOffset:           int64(be.Uint64(b[0:])),
		Length:               int32(be.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  be.Uint32(b[17:]),
		Attributes:           int16(be.Uint16(b[21:])),
		LastOffsetDelta:      int32(be.Uint32(b[23:])),
		FirstTimestamp:       int64(be.Uint64(b[27:])),
		MaxTimestamp:         int64(be.Uint64(b[35:])),
		ProducerID:           int64(be.Uint64(b[43:])),
		ProducerEpoch:        int16(be.Uint16(b[51:])),
		BaseSequence:         int32(be.Uint32(b[53:])),
		NumRecords:           int32(be.Uint32(b[57:])),
	}
	if h.Length < minBatchLength || h.LastOffsetDelta < 0 {
		return record.Header{}, false
	}
	return h, true
}

// readFull reads len(p) bytes at off.
func readFull(f File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// walker reads the batch headers of one segment through a window buffer.
type walker struct {
	buf   []byte // the window; owned by the Log, reused across walks
	s     *segment
	start int64 // file position of buf[0]
	n     int   // valid bytes in buf
}

func (l *Log) walker(s *segment) walker {
	return walker{buf: l.win, s: s}
}

// header returns the header of the batch at pos, which must lie whole within the
// segment.
func (w *walker) header(pos int64) (record.Header, error) {
	size := w.s.size
	if pos < 0 || pos+record.HeaderSize > size {
		return record.Header{}, w.corrupt(pos, "header past the end")
	}
	if pos < w.start || pos+record.HeaderSize > w.start+int64(w.n) {
		n := int(min(int64(len(w.buf)), size-pos))
		if err := readFull(w.s.log, w.buf[:n], pos); err != nil {
			w.n = 0
			return record.Header{}, fmt.Errorf("log: read segment %d: %w", w.s.base, err)
		}
		w.start, w.n = pos, n
	}
	h, ok := peekHeader(w.buf[pos-w.start : w.n])
	if !ok {
		return record.Header{}, w.corrupt(pos, "bad batch header")
	}
	if pos+int64(h.Size()) > size {
		return record.Header{}, w.corrupt(pos, "batch past the end")
	}
	return h, nil
}

func (w *walker) corrupt(pos int64, what string) error {
	return fmt.Errorf("%w: segment %d position %d: %s", ErrCorrupt, w.s.base, pos, what)
}

// seek returns the position and header of the batch that holds offset, which must be in
// [s.base, s.end).
func (w *walker) seek(offset int64) (int64, record.Header, error) {
	pos := w.s.lookup(offset)
	for {
		h, err := w.header(pos)
		if err != nil {
			return 0, h, err
		}
		if h.LastOffset() >= offset {
			if h.BaseOffset > offset {
				return 0, h, w.corrupt(pos, "offset missing")
			}
			return pos, h, nil
		}
		pos += int64(h.Size())
	}
}
