package net

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	gonet "net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// The peer transport carries Raft messages between nodes (docs/transport.md).
//
// The model:
//  1. The loop calls Send once per iteration per peer with every message for that peer,
//     from every Raft group, each tagged with its group id. Send never blocks and never
//     encodes: it queues the messages, up to MaxPeerQueuedMessages and MaxPeerQueuedBytes
//     per peer, and drops (and counts) what does not fit. Raft tolerates lost messages;
//     the loop may ReportUnreachable the groups of dropped ones.
//  2. One writer goroutine per peer owns one outbound TCP (or TLS) connection: it dials
//     with capped, jittered exponential backoff, shakes hands (cluster id, node ids,
//     version), then encodes whatever is queued into batch frames and writes them.
//     Heartbeats and their responses travel as compact tuples; large entry data goes to
//     the socket from the entries' own bytes (writev), not copied. While the peer is
//     unreachable, what is queued is discarded at each failed attempt, so stale messages
//     do not pile up.
//  3. An accept goroutine takes inbound connections on the peer listener; each has one
//     reader goroutine that checks the handshake, decodes frames (never on the loop) and
//     posts one PeerBatch per frame to Received, waiting at most PeerInboundWait for room
//     before it drops the batch and counts it. A malformed frame closes that connection
//     only.
//  4. A read or write error ends the connection's goroutines at once; the writer dials
//     again after its backoff. Close stops everything and waits for every goroutine.

// NodeID identifies a broker node; it is also the node's Raft id in every group. Never 0.
type NodeID uint64

// GroupMessage is one Raft message of one group.
type GroupMessage struct {
	Group uint64
	Msg   raftpb.Message
}

// PeerBatch is the messages one frame from a peer carried, in the order they were sent.
// The receiver owns Msgs and everything they reference: large entry data aliases the
// frame it arrived in, which the transport hands over and never touches again.
type PeerBatch struct {
	From NodeID
	Msgs []GroupMessage
}

// Limits and timings of the peer transport.
const (
	// PeerProtocolVersion is the wire format version in every frame.
	PeerProtocolVersion = 2
	// MaxPeerFrameBytes is the largest frame sent or accepted. A single message that does
	// not fit is dropped (raft's MaxSizePerMsg, 1 MiB, keeps MsgApp far below it).
	MaxPeerFrameBytes = 32 << 20
	// MaxPeerFrameMessages bounds the messages in one frame, so a decoded frame holds at
	// most this many 168-byte GroupMessages.
	MaxPeerFrameMessages = 16384
	// MaxPeerQueuedMessages bounds the messages queued for one peer.
	MaxPeerQueuedMessages = 16384
	// MaxPeerQueuedBytes bounds the approximate bytes queued for one peer (see
	// peerQueuedBytes): with two peers, 32 MiB of a node's memory budget.
	MaxPeerQueuedBytes = 16 << 20
	// MaxPeerInboundBatches bounds the decoded batches waiting for the loop: frames are
	// about peerFrameTargetBytes (256 KiB), or one MsgApp of up to raft's MaxSizePerMsg
	// (1 MiB), so at most about 40 MiB. A full queue holds the reader back (TCP
	// backpressure) for up to PeerInboundWait before it drops.
	MaxPeerInboundBatches = 32
	// PeerInboundWait is how long a reader waits for room in Received before it drops.
	PeerInboundWait = time.Second
	// PeerHandshakeTimeout bounds the dial plus handshake of a connection.
	PeerHandshakeTimeout = 5 * time.Second
	// PeerWriteTimeout bounds one write to a peer; a peer that reads nothing for this long
	// loses its connection.
	PeerWriteTimeout = 10 * time.Second
	// PeerBackoffMin and PeerBackoffMax bound the reconnect backoff: it doubles from
	// PeerBackoffMin up to PeerBackoffMax, and each wait is drawn uniformly in [d/2, d].
	PeerBackoffMin = 50 * time.Millisecond
	PeerBackoffMax = 5 * time.Second
	// peerHealthyAfter is how long a connection must last for the backoff to start over.
	peerHealthyAfter = time.Second
	// peerFrameTargetBytes is the size at which a batch frame is closed and written.
	peerFrameTargetBytes = 256 << 10
	// maxPeerBufBytes is the largest buffer a connection keeps between frames.
	maxPeerBufBytes = 1 << 20
)

// ErrPeerClosed is returned by a closed transport's methods.
var ErrPeerClosed = errors.New("net: peer transport closed")

// PeerConfig configures a PeerTransport.
type PeerConfig struct {
	// ID is this node's id; non-zero.
	ID NodeID
	// ClusterID must match on both ends of a connection; at most 255 bytes.
	ClusterID string
	// Peers maps every other node's id to its peer address (host:port).
	Peers map[NodeID]string
	// Listener accepts inbound peer connections; the transport owns and closes it.
	Listener gonet.Listener
	// ServerTLS, when set, serves TLS on Listener; ClientTLS, when set, dials with TLS.
	ServerTLS, ClientTLS *tls.Config
	// Dial, when set, replaces the TCP dialer (tests, proxies).
	Dial func(ctx context.Context, addr string) (gonet.Conn, error)
	// MaxQueuedMessages, MaxQueuedBytes, MaxFrameBytes and InboundBatches default to the
	// MaxPeer* constants when zero.
	MaxQueuedMessages, MaxQueuedBytes, MaxFrameBytes, InboundBatches int
	// JitterSeed seeds the backoff jitter; zero draws a seed from crypto/rand.
	JitterSeed uint64
	// Logf logs connection problems; nil discards them.
	Logf func(format string, args ...any)
}

func (c *PeerConfig) validate() error {
	switch {
	case c.ID == 0:
		return errors.New("net: peer transport: node id 0")
	case len(c.ClusterID) > maxPeerClusterIDBytes:
		return errors.New("net: peer transport: cluster id over 255 bytes")
	case c.Listener == nil:
		return errors.New("net: peer transport: no listener")
	}
	for id, addr := range c.Peers {
		if id == 0 || id == c.ID || addr == "" {
			return fmt.Errorf("net: peer transport: bad peer %d at %q", id, addr)
		}
	}
	c.MaxQueuedMessages = peerLimitOr(c.MaxQueuedMessages, MaxPeerQueuedMessages)
	c.MaxQueuedBytes = peerLimitOr(c.MaxQueuedBytes, MaxPeerQueuedBytes)
	c.MaxFrameBytes = peerLimitOr(c.MaxFrameBytes, MaxPeerFrameBytes)
	c.InboundBatches = peerLimitOr(c.InboundBatches, MaxPeerInboundBatches)
	if c.MaxFrameBytes < 64 {
		return errors.New("net: peer transport: MaxFrameBytes below 64")
	}
	if c.JitterSeed == 0 {
		var b [8]byte
		rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		c.JitterSeed = binary.LittleEndian.Uint64(b[:])
	}
	return nil
}

func peerLimitOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func (c *PeerConfig) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// PeerTransport sends and receives Raft messages to and from the other nodes.
type PeerTransport struct {
	cfg     PeerConfig
	peers   map[NodeID]*peer // fixed after NewPeerTransport
	inbound chan PeerBatch
	ctx     context.Context // cancelled by Close; aborts dials
	cancel  context.CancelFunc
	closing chan struct{} // closed by Close
	once    sync.Once
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[gonet.Conn]struct{} // every open connection; guarded by mu
	closed bool                    // guarded by mu; no conn is registered once set

	// Transport-wide counters.
	received, receivedBatches, inboundDropped atomic.Uint64
	decodeErrors, rejected, unknownPeer       atomic.Uint64
	inboundConns                              atomic.Int64 // live inbound reader goroutines
}

// NewPeerTransport starts the accept goroutine and one writer per peer. The caller must
// Close it.
func NewPeerTransport(cfg PeerConfig) (*PeerTransport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &PeerTransport{
		cfg:     cfg,
		peers:   make(map[NodeID]*peer, len(cfg.Peers)),
		inbound: make(chan PeerBatch, cfg.InboundBatches),
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),
		conns:   make(map[gonet.Conn]struct{}),
	}
	for id, addr := range cfg.Peers {
		t.peers[id] = newPeer(t, id, addr)
	}
	ln := cfg.Listener
	if cfg.ServerTLS != nil {
		ln = tls.NewListener(ln, cfg.ServerTLS)
	}
	t.wg.Add(1 + len(t.peers))
	go t.accept(ln)
	for _, p := range t.peers {
		go p.run()
	}
	return t, nil
}

// Send queues msgs for node to and returns how many were queued: msgs[:n] will be sent
// (unless the connection fails), msgs[n:] were dropped because the peer's queue is full
// or the peer is unknown. It never blocks. Send copies msgs but not the slices inside the
// messages (entries, context): raft never writes them after handing them out, and
// neither may the caller, since the writer goroutine reads them, and writes large entry
// data to the socket straight from them, after Send returns.
func (t *PeerTransport) Send(to NodeID, msgs []GroupMessage) int {
	p := t.peers[to]
	if p == nil {
		t.unknownPeer.Add(uint64(len(msgs)))
		return 0
	}
	return p.enqueue(msgs)
}

// Received delivers inbound batches, one per frame, in each connection's order. It is
// closed once Close has stopped every reader.
func (t *PeerTransport) Received() <-chan PeerBatch { return t.inbound }

// Reachable reports whether the transport holds a connection to node to now.
func (t *PeerTransport) Reachable(to NodeID) bool {
	p := t.peers[to]
	return p != nil && p.connected.Load()
}

// Addr is the peer listener's address.
func (t *PeerTransport) Addr() gonet.Addr { return t.cfg.Listener.Addr() }

// Close closes the listener and every connection, stops every goroutine, waits for them
// and closes Received. Queued messages are discarded.
func (t *PeerTransport) Close() error {
	t.once.Do(func() {
		close(t.closing)
		t.cancel()
		t.cfg.Listener.Close()
		t.mu.Lock()
		t.closed = true
		for c := range t.conns {
			c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
		close(t.inbound)
	})
	return nil
}

// track registers nc so Close can close it; false (and nc closed) if closing.
func (t *PeerTransport) track(nc gonet.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		nc.Close()
		return false
	}
	t.conns[nc] = struct{}{}
	return true
}

// untrack closes nc and forgets it.
func (t *PeerTransport) untrack(nc gonet.Conn) {
	nc.Close()
	t.mu.Lock()
	delete(t.conns, nc)
	t.mu.Unlock()
}

// deliver posts b to Received, waiting at most PeerInboundWait; false if it was dropped.
func (t *PeerTransport) deliver(b PeerBatch) bool {
	select {
	case t.inbound <- b:
		return true
	default:
	}
	timer := time.NewTimer(PeerInboundWait)
	defer timer.Stop()
	select {
	case t.inbound <- b:
		return true
	case <-timer.C:
	case <-t.closing:
	}
	t.inboundDropped.Add(uint64(len(b.Msgs)))
	return false
}

// PeerStats are one peer's counters, in messages unless named otherwise.
type PeerStats struct {
	Peer      NodeID
	Connected bool
	// Queued is the number of messages waiting now.
	Queued int
	// Sent counts messages written to the socket (they can still be lost with it).
	Sent, SentBytes, Frames uint64
	// DroppedFull counts messages Send refused: queue full.
	DroppedFull uint64
	// DroppedDown counts messages discarded because the peer was unreachable or a write
	// failed.
	DroppedDown uint64
	// TooLarge counts messages bigger than a frame.
	TooLarge uint64
	// Dials counts connection attempts, Connects the ones whose handshake succeeded.
	Dials, Connects uint64
}

// PeerTransportStats are the transport's counters.
type PeerTransportStats struct {
	Peers []PeerStats // by node id
	// Received counts messages delivered to Received, in ReceivedBatches frames.
	Received, ReceivedBatches uint64
	// InboundDropped counts messages decoded but dropped: Received stayed full.
	InboundDropped uint64
	// DecodeErrors counts connections closed for a malformed frame; Rejected counts
	// refused handshakes (cluster id, node id, version).
	DecodeErrors, Rejected uint64
	// UnknownPeer counts messages sent to a node that is not a peer.
	UnknownPeer uint64
	// InboundConns is the number of inbound connections whose reader is running now.
	InboundConns int
}

// Stats reads the counters; safe from any goroutine.
func (t *PeerTransport) Stats() PeerTransportStats {
	s := PeerTransportStats{
		Received:        t.received.Load(),
		ReceivedBatches: t.receivedBatches.Load(),
		InboundDropped:  t.inboundDropped.Load(),
		DecodeErrors:    t.decodeErrors.Load(),
		Rejected:        t.rejected.Load(),
		UnknownPeer:     t.unknownPeer.Load(),
		InboundConns:    int(t.inboundConns.Load()),
	}
	for _, p := range t.peers {
		s.Peers = append(s.Peers, p.stats())
	}
	slices.SortFunc(s.Peers, func(a, b PeerStats) int { return cmpNodeID(a.Peer, b.Peer) })
	return s
}

func cmpNodeID(a, b NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
