package net

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	gonet "net"
	"sync"
	"sync/atomic"
	"time"
)

// peer is the outbound side of one other node: its queue and its writer goroutine.
type peer struct {
	id   NodeID
	addr string
	t    *PeerTransport
	wake chan struct{} // capacity 1: something was queued
	rng  *rand.Rand    // owned by the writer goroutine

	mu sync.Mutex
	// queue holds messages not yet taken by the writer; guarded by mu.
	// Invariant: len(queue) <= MaxQueuedMessages, queueBytes <= MaxQueuedBytes.
	queue      []GroupMessage
	queueBytes int
	// spare is the writer's previous queue, cleared, for reuse; guarded by mu.
	spare []GroupMessage

	connected atomic.Bool // a handshaken connection is up

	// Counters (PeerStats).
	sent, sentBytes, frames, droppedFull, droppedDown, tooLarge, dials, connects atomic.Uint64
}

func newPeer(t *PeerTransport, id NodeID, addr string) *peer {
	return &peer{
		id:   id,
		addr: addr,
		t:    t,
		wake: make(chan struct{}, 1),
		rng:  rand.New(rand.NewPCG(t.cfg.JitterSeed, uint64(id))),
	}
}

// peerQueuedBytes approximates the encoded size of m without encoding it: the entries' and
// the context's data plus a fixed overhead per message and per entry.
func peerQueuedBytes(m *GroupMessage) int {
	n := 64 + len(m.Msg.Context)
	for i := range m.Msg.Entries {
		n += 24 + len(m.Msg.Entries[i].Data)
	}
	if m.Msg.Snapshot != nil {
		n += len(m.Msg.Snapshot.Data)
	}
	return n
}

func (p *peer) enqueue(msgs []GroupMessage) int {
	cfg := &p.t.cfg
	p.mu.Lock()
	n := 0
	for ; n < len(msgs); n++ {
		size := peerQueuedBytes(&msgs[n])
		if len(p.queue) >= cfg.MaxQueuedMessages || p.queueBytes+size > cfg.MaxQueuedBytes {
			break
		}
		if p.queue == nil && p.spare != nil {
			p.queue, p.spare = p.spare, nil
		}
		p.queue = append(p.queue, msgs[n])
		p.queueBytes += size
	}
	p.mu.Unlock()
	if dropped := len(msgs) - n; dropped > 0 {
		p.droppedFull.Add(uint64(dropped))
	}
	if n > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return n
}

// take removes everything queued.
func (p *peer) take() []GroupMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue, p.queueBytes = nil, 0
	return q
}

// giveBack keeps q's array for the next queue, unless it is large.
func (p *peer) giveBack(q []GroupMessage) {
	clear(q) // let the entries go
	if cap(q) > 4096 {
		return
	}
	p.mu.Lock()
	p.spare = q[:0]
	p.mu.Unlock()
}

// discard drops everything queued and counts it.
func (p *peer) discard() {
	q := p.take()
	p.droppedDown.Add(uint64(len(q)))
	p.giveBack(q)
}

func (p *peer) stats() PeerStats {
	p.mu.Lock()
	queued := len(p.queue)
	p.mu.Unlock()
	return PeerStats{
		Peer: p.id, Connected: p.connected.Load(), Queued: queued,
		Sent: p.sent.Load(), SentBytes: p.sentBytes.Load(), Frames: p.frames.Load(),
		DroppedFull: p.droppedFull.Load(), DroppedDown: p.droppedDown.Load(),
		TooLarge: p.tooLarge.Load(), Dials: p.dials.Load(), Connects: p.connects.Load(),
	}
}

// run is the writer goroutine: connect, stream, and again until Close. A failed dial, or
// a connection that ended within peerHealthyAfter, waits a backoff before the next dial;
// a connection that was up longer redials at once.
func (p *peer) run() {
	defer p.t.wg.Done()
	failures := 0
	for {
		nc, err := p.connect()
		if err == nil {
			p.connects.Add(1)
			up := time.Now()
			p.connected.Store(true)
			err = p.stream(nc)
			p.connected.Store(false)
			p.t.untrack(nc)
			if time.Since(up) >= peerHealthyAfter {
				failures = 0
			}
		}
		if p.t.ctx.Err() != nil {
			return
		}
		p.t.cfg.logf("peer %d at %s: %v", p.id, p.addr, err)
		p.discard()
		if failures == 0 && nc != nil {
			failures = 1 // a healthy connection ended: redial now, back off if that fails
			continue
		}
		if !p.sleep(peerBackoff(failures, p.rng)) {
			return
		}
		failures++
	}
}

// peerBackoff is the wait before attempt failures+1: drawn in [d/2, d] where d doubles from
// PeerBackoffMin and is capped at PeerBackoffMax.
func peerBackoff(failures int, rng *rand.Rand) time.Duration {
	d := PeerBackoffMax
	if failures < 30 {
		d = min(PeerBackoffMin<<failures, PeerBackoffMax)
	}
	return d/2 + time.Duration(rng.Int64N(int64(d/2)+1))
}

// sleep waits d; false if the transport closed first.
func (p *peer) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-p.t.closing:
		return false
	}
}

// connect dials the peer and shakes hands.
func (p *peer) connect() (gonet.Conn, error) {
	p.dials.Add(1)
	cfg := &p.t.cfg
	deadline := time.Now().Add(PeerHandshakeTimeout)
	var nc gonet.Conn
	var err error
	if cfg.Dial != nil {
		nc, err = cfg.Dial(p.t.ctx, p.addr)
	} else {
		d := gonet.Dialer{Deadline: deadline}
		nc, err = d.DialContext(p.t.ctx, "tcp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*gonet.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if cfg.ClientTLS != nil {
		nc = tls.Client(nc, cfg.ClientTLS)
	}
	if !p.t.track(nc) {
		return nil, ErrPeerClosed
	}
	if err := p.handshake(nc, deadline); err != nil {
		p.t.untrack(nc)
		return nil, err
	}
	return nc, nil
}

func (p *peer) handshake(nc gonet.Conn, deadline time.Time) error {
	cfg := &p.t.cfg
	if err := nc.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := nc.Write(appendPeerHello(nil, peerFrameHello, peerHello{from: cfg.ID, to: p.id, clusterID: cfg.ClusterID})); err != nil {
		return err
	}
	body, err := readPeerFrame(nc, nil, 1024)
	if err != nil {
		return err
	}
	h, err := parsePeerHello(body, peerFrameAck)
	if err != nil {
		return err
	}
	if h.from != p.id || h.to != cfg.ID || h.clusterID != cfg.ClusterID {
		return fmt.Errorf("net: peer answered as node %d to node %d of cluster %q, want node %d to node %d of cluster %q",
			h.from, h.to, h.clusterID, p.id, cfg.ID, cfg.ClusterID)
	}
	return nc.SetDeadline(time.Time{})
}

// stream writes queued messages to nc until a write fails, the peer closes, or the
// transport closes. A watcher goroutine reads nc: the peer sends nothing after its ack,
// so a read returns only when the connection ends, and then it wakes the writer at once.
func (p *peer) stream(nc gonet.Conn) error {
	dead := make(chan struct{})
	var watchErr error
	go func() {
		var b [1]byte
		_, err := nc.Read(b[:])
		if err == nil {
			err = errors.New("unexpected data from peer")
		}
		watchErr = err
		close(dead)
		nc.Close()
	}()
	defer func() { nc.Close(); <-dead }()
	f := peerFrames{copyMax: peerFrameCopyMax(nc)}
	for {
		select {
		case <-p.wake:
		case <-dead:
			return watchErr
		case <-p.t.closing:
			return ErrPeerClosed
		}
		q := p.take()
		err := p.writeAll(nc, &f, q)
		p.giveBack(q)
		f.release()
		if err != nil {
			return err
		}
	}
}

// writeAll encodes q into batch frames in f and writes them. A frame closes, and is
// written, once it holds peerFrameTargetBytes (a larger message travels alone, up to
// MaxFrameBytes), so both ends reuse their buffers. Sizes count referenced entry data
// (peerFrames) like copied bytes.
func (p *peer) writeAll(nc gonet.Conn, f *peerFrames, q []GroupMessage) error {
	cfg := &p.t.cfg
	from, to := cfg.ID, p.id
	pending := 0 // messages in closed frames not yet written
	write := func() error {
		if f.len() == 0 {
			return nil
		}
		if err := nc.SetWriteDeadline(time.Now().Add(PeerWriteTimeout)); err != nil {
			p.droppedDown.Add(uint64(pending))
			return err
		}
		n, err := f.writeTo(nc)
		if err != nil {
			p.droppedDown.Add(uint64(pending))
			return err
		}
		p.sent.Add(uint64(pending))
		p.sentBytes.Add(uint64(n))
		pending = 0
		return nil
	}
	closeFrame := func() {
		if n := f.closeFrame(); n > 0 {
			p.frames.Add(1)
			pending += n
		}
	}
	target := min(cfg.MaxFrameBytes, peerFrameTargetBytes)
	f.openFrame(from)
	for i := range q {
		gm := &q[i]
		pl := planPeerEntry(gm, from, to)
		if pl.bytes > cfg.MaxFrameBytes-peerBatchHeaderMaxBytes {
			p.tooLarge.Add(1)
			cfg.logf("peer %d: dropped a %d-byte message of group %d: over the frame limit", p.id, pl.bytes, gm.Group)
			continue
		}
		if f.count > 0 && (f.frameLen()+pl.bytes > target || f.count == MaxPeerFrameMessages) {
			closeFrame()
			if f.len() >= target {
				if err := write(); err != nil {
					p.droppedDown.Add(uint64(len(q) - i)) // not encoded yet
					return err
				}
			}
			f.openFrame(from)
		}
		if err := f.appendEntry(gm, pl); err != nil {
			p.tooLarge.Add(1)
			cfg.logf("peer %d: group %d: %v", p.id, gm.Group, err)
			continue
		}
	}
	closeFrame()
	return write()
}

// readPeerFrame reads one frame of at most maxBytes into buf (reused when large enough) and
// returns its body.
func readPeerFrame(r io.Reader, buf []byte, maxBytes int) ([]byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(prefix[:])
	if size < 2 || uint64(size) > uint64(maxBytes) {
		return nil, peerFrameErr("frame of %d bytes, limit %d", size, maxBytes)
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// accept takes inbound connections until the listener closes.
func (t *PeerTransport) accept(ln gonet.Listener) {
	defer t.wg.Done()
	var tempDelay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			var ne gonet.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				if !peerSleep(t.closing, tempDelay) {
					return
				}
				continue
			}
			t.cfg.logf("peer listener: %v", err)
			return
		}
		tempDelay = 0
		if tc, ok := nc.(*gonet.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		if !t.track(nc) {
			return
		}
		t.wg.Add(1)
		t.inboundConns.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.inboundConns.Add(-1)
			defer t.untrack(nc)
			t.serveInbound(nc)
		}()
	}
}

func peerSleep(closing <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-closing:
		return false
	}
}

// serveInbound checks the handshake, then decodes frames and delivers them until the
// connection ends or sends something malformed.
func (t *PeerTransport) serveInbound(nc gonet.Conn) {
	from, err := t.acceptPeerHello(nc)
	if err != nil {
		t.cfg.logf("peer connection from %s: %v", nc.RemoteAddr(), err)
		return
	}
	// fr owns the frame buffers: a frame whose entries alias it is handed over with the
	// batch and never read into again (peerFrameReader).
	fr := peerFrameReader{r: bufio.NewReaderSize(nc, 64<<10), from: from, to: t.cfg.ID, maxBytes: t.cfg.MaxFrameBytes}
	for {
		msgs, err := fr.next()
		if err != nil {
			if errors.Is(err, ErrPeerFrame) {
				t.decodeErrors.Add(1)
				t.cfg.logf("peer %d at %s: %v", from, nc.RemoteAddr(), err)
			}
			return // EOF, reset, Close, malformed frame: the connection is over
		}
		if len(msgs) == 0 {
			continue
		}
		if !t.deliver(PeerBatch{From: from, Msgs: msgs}) {
			if t.ctx.Err() != nil {
				return
			}
			continue
		}
		t.received.Add(uint64(len(msgs)))
		t.receivedBatches.Add(1)
	}
}

// acceptPeerHello reads the dialer's hello, checks it and answers with an ack or a reject.
func (t *PeerTransport) acceptPeerHello(nc gonet.Conn) (NodeID, error) {
	if err := nc.SetDeadline(time.Now().Add(PeerHandshakeTimeout)); err != nil {
		return 0, err
	}
	body, err := readPeerFrame(nc, nil, 1024)
	if err != nil {
		if errors.Is(err, ErrPeerFrame) {
			t.decodeErrors.Add(1)
		}
		return 0, err
	}
	h, err := parsePeerHello(body, peerFrameHello)
	if err == nil {
		err = t.checkPeerHello(h)
	}
	if err != nil {
		t.rejected.Add(1)
		nc.Write(appendPeerReject(nil, err.Error())) // best effort: the connection ends anyway
		return 0, err
	}
	ack := appendPeerHello(nil, peerFrameAck, peerHello{from: t.cfg.ID, to: h.from, clusterID: t.cfg.ClusterID})
	if _, err := nc.Write(ack); err != nil {
		return 0, err
	}
	return h.from, nc.SetDeadline(time.Time{})
}

func (t *PeerTransport) checkPeerHello(h peerHello) error {
	switch {
	case h.clusterID != t.cfg.ClusterID:
		return fmt.Errorf("cluster id %q, this node is in %q", h.clusterID, t.cfg.ClusterID)
	case h.to != t.cfg.ID:
		return fmt.Errorf("dialed node %d, this is node %d", h.to, t.cfg.ID)
	case h.from == 0 || h.from == t.cfg.ID:
		return fmt.Errorf("bad sender node id %d", h.from)
	}
	return nil
}
