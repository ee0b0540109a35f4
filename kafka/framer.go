package kafka

// Framer splits a byte stream into Kafka frames (a 4-byte big-endian length, then that
// many bytes), whatever chunks the stream arrives in. It is the incremental twin of the
// production edge's io.ReadFull pair: the simulator feeds it the chunks its network
// delivers. It is pure and deterministic; the zero value is not usable, call NewFramer.
//
// The same length prefix frames requests and responses, so a simulated client uses it too.
type Framer struct {
	maxBytes int
	// buf holds bytes fed but not yet returned as a frame; start is where the next frame
	// begins. Invariant: 0 <= start <= len(buf).
	buf   []byte
	start int
	err   error // sticky: a bad length prefix ends the stream
}

// NewFramer returns a Framer that refuses frames longer than maxBytes (a length prefix
// over it is ErrFrameTooLarge, which ends the connection, as in production).
func NewFramer(maxBytes int) *Framer { return &Framer{maxBytes: maxBytes} }

// Feed appends a chunk of the stream. The Framer copies what it keeps; the caller may
// reuse p.
func (f *Framer) Feed(p []byte) {
	if f.err != nil || len(p) == 0 {
		return
	}
	if f.start > 0 && f.start == len(f.buf) {
		f.buf, f.start = f.buf[:0], 0
	}
	f.buf = append(f.buf, p...)
}

// Next returns the next whole frame without its length prefix, or nil when the bytes fed
// so far do not complete one. The returned slice is the caller's: the Framer never writes
// to it again. After an error every call returns the same error.
func (f *Framer) Next() ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	rest := f.buf[f.start:]
	if len(rest) < 4 {
		f.compact()
		return nil, nil
	}
	n, err := FrameLength(rest[:4], f.maxBytes)
	if err != nil {
		f.err = err
		f.buf, f.start = nil, 0
		return nil, err
	}
	if len(rest) < 4+n {
		f.compact()
		return nil, nil
	}
	frame := make([]byte, n)
	copy(frame, rest[4:4+n])
	f.start += 4 + n
	return frame, nil
}

// Buffered is the number of bytes fed and not yet returned in a frame.
func (f *Framer) Buffered() int { return len(f.buf) - f.start }

// compact moves a partial frame to the front so that buf does not grow without bound.
func (f *Framer) compact() {
	if f.start == 0 {
		return
	}
	n := copy(f.buf, f.buf[f.start:])
	f.buf, f.start = f.buf[:n], 0
}
