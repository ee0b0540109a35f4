package net

import (
	"io"
	"math"
	gonet "net"
)

// peerFrames is the batch frames of one write being encoded: their bytes are buf with the
// data of refs spliced in, each ref's data before buf[ref.at]. Append entries reference
// data longer than copyMax instead of copying it (appendAppend), and writeTo hands
// everything to the socket with one writev. Owned by a peer's writer goroutine.
//
// The referenced data belongs to raft's entries: the caller of Send guarantees that nothing
// writes it once queued, so the writer reads it without a copy. writeTo and release drop
// the references, so a written entry is never pinned by the transport.
type peerFrames struct {
	buf []byte
	// refs are the referenced data, in order. Invariant: refs[i].at <= refs[i+1].at <=
	// len(buf), and refBytes is the sum of their lengths.
	refs     []peerRef
	refBytes int
	// copyMax is the most entry data copied into buf (peerFrameCopyMax).
	copyMax int
	// The open frame: its offset in buf, refBytes when it opened, and its messages.
	at, atRef, count int
	vecs             gonet.Buffers // scratch for writeTo
}

// peerRef is entry data that goes to the wire just before buf[at].
type peerRef struct {
	at   int
	data []byte
}

// peerFrameCopyMax is the copyMax for frames written to nc: peerEntryCopyMaxBytes on a
// TCP or Unix connection, whose net.Buffers write is one writev; on anything else (TLS,
// which copies as it encrypts anyway, or a wrapper) net.Buffers would make one Write per
// piece, so everything is copied and written at once.
func peerFrameCopyMax(nc gonet.Conn) int {
	switch nc.(type) {
	case *gonet.TCPConn, *gonet.UnixConn:
		return peerEntryCopyMaxBytes
	}
	return math.MaxInt
}

// len is the bytes encoded so far, referenced data included.
func (f *peerFrames) len() int { return len(f.buf) + f.refBytes }

// frameLen is the bytes of the open frame so far, its length prefix included.
func (f *peerFrames) frameLen() int { return len(f.buf) - f.at + f.refBytes - f.atRef }

// openFrame starts a batch frame from node from.
func (f *peerFrames) openFrame(from NodeID) {
	f.buf, f.at = appendPeerBatchStart(f.buf, from)
	f.atRef, f.count = f.refBytes, 0
}

// closeFrame finishes the open frame and returns its messages; a frame without any is
// removed.
func (f *peerFrames) closeFrame() int {
	n := f.count
	if n == 0 {
		f.buf = f.buf[:f.at] // no entry, so no ref, since the frame opened
	} else {
		finishPeerBatch(f.buf, f.at, n, f.refBytes-f.atRef)
	}
	f.count = 0
	return n
}

// writeTo writes every closed frame to w and empties f, whether or not the write succeeds.
func (f *peerFrames) writeTo(w io.Writer) (int64, error) {
	defer f.reset()
	if len(f.refs) == 0 {
		n, err := w.Write(f.buf)
		return int64(n), err
	}
	prev := 0
	for _, r := range f.refs {
		if r.at > prev {
			f.vecs = append(f.vecs, f.buf[prev:r.at])
		}
		f.vecs = append(f.vecs, r.data)
		prev = r.at
	}
	if prev < len(f.buf) {
		f.vecs = append(f.vecs, f.buf[prev:])
	}
	v := f.vecs // WriteTo consumes v
	return v.WriteTo(w)
}

// reset empties f and drops its references to entry data.
func (f *peerFrames) reset() {
	clear(f.refs)
	clear(f.vecs)
	f.buf, f.refs, f.refBytes, f.vecs = f.buf[:0], f.refs[:0], 0, f.vecs[:0]
	f.at, f.atRef, f.count = 0, 0, 0
}

// release resets f and lets go of a buffer too large to keep between writes.
func (f *peerFrames) release() {
	f.reset()
	if cap(f.buf) > maxPeerBufBytes {
		f.buf = nil
	}
	if cap(f.refs) > maxPeerBufRefs {
		f.refs, f.vecs = nil, nil
	}
}

// maxPeerBufRefs is the most refs (and twice as many write vectors) peerFrames keeps
// between writes.
const maxPeerBufRefs = 1024

// peerFrameReader reads and decodes the batch frames of one inbound connection from node
// from to node to. Owned by the connection's reader goroutine.
//
// Buffer ownership: a frame is read into buf if buf is large enough, else into a new
// buffer. Once decoded, a frame some entry's Data aliases (decodePeerAppend: data longer
// than peerEntryAliasMinBytes) belongs to the messages, and so to whoever receives the
// PeerBatch; the reader forgets it and reads the next frame into a fresh buffer. Only a
// frame nothing aliases (heartbeats, votes, responses, small entries, full messages,
// whose Unmarshal copies) is kept for the next frame.
type peerFrameReader struct {
	r        io.Reader
	from, to NodeID
	maxBytes int
	// buf is the buffer for the next frame. Invariant: no decoded message aliases it.
	buf []byte
}

// next reads and decodes one frame; the caller owns the messages and everything they
// reference. Errors are the reader's or ErrPeerFrame.
func (fr *peerFrameReader) next() ([]GroupMessage, error) {
	body, err := readPeerFrame(fr.r, fr.buf, fr.maxBytes)
	fr.buf = nil // body's until we know nothing aliases it
	if err != nil {
		return nil, err
	}
	msgs, aliased, err := decodePeerBatch(body, fr.from, fr.to, nil)
	if err != nil {
		return nil, err
	}
	if !aliased && cap(body) <= maxPeerBufBytes {
		fr.buf = body
	}
	return msgs, nil
}
