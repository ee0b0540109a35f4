package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
)

// tracer writes the run's trace: one line per event (time in µs, who, kind, key fields).
// Every line is hashed; the same seed must give the same hash. Lines go to w only when
// it is set (-v), so a quiet run pays for the hash alone.
type tracer struct {
	h     hash.Hash
	w     io.Writer
	buf   []byte
	lines int64
}

func newTracer(w io.Writer) *tracer { return &tracer{h: sha256.New(), w: w} }

// line starts a line at time nowUs for who (e.g. "n0", "c3", "sim").
func (t *tracer) line(nowUs int64, who, kind string) *tracer {
	t.buf = strconv.AppendInt(t.buf[:0], nowUs, 10)
	t.buf = append(t.buf, ' ')
	t.buf = append(t.buf, who...)
	t.buf = append(t.buf, ' ')
	t.buf = append(t.buf, kind...)
	return t
}

// i appends key=v.
func (t *tracer) i(key string, v int64) *tracer {
	t.buf = append(t.buf, ' ')
	t.buf = append(t.buf, key...)
	t.buf = append(t.buf, '=')
	t.buf = strconv.AppendInt(t.buf, v, 10)
	return t
}

// s appends key=v.
func (t *tracer) s(key, v string) *tracer {
	t.buf = append(t.buf, ' ')
	t.buf = append(t.buf, key...)
	t.buf = append(t.buf, '=')
	t.buf = append(t.buf, v...)
	return t
}

// end finishes the line.
func (t *tracer) end() {
	t.buf = append(t.buf, '\n')
	t.h.Write(t.buf)
	if t.w != nil {
		t.w.Write(t.buf) // best effort: the trace printout is for humans
	}
	t.lines++
}

// sum is the hex sha256 of every line so far.
func (t *tracer) sum() string { return hex.EncodeToString(t.h.Sum(nil)) }
