package net

// Cluster mode at the edge: a broker whose kafka.Config has Peers also runs a
// PeerTransport (peer.go) and the loop moves Raft messages between it and the node.
//
//  1. StartBroker listens for peers on PeerOptions.Listener, or PeerOptions.Listen, or this
//     node's PeerAddr, and dials every other node at its PeerAddr. A node's id on the
//     transport is kafka.RaftID of its Kafka node id.
//  2. The loop takes inbound batches from Received alongside its other events and steps
//     each message into the node (kafka.Node.Step), in the order they arrived.
//  3. After each Ready the loop groups Ready.Messages by destination and calls Send once
//     per peer; when Send drops messages, or a peer it sends to has lost its connection,
//     it tells the node (kafka.Node.Unreachable) so Raft probes that peer instead of
//     streaming to it.
//  4. The transport closes after the loop has stopped, before the node's files close.

import (
	"context"
	"crypto/tls"
	"fmt"
	gonet "net"
	"slices"
	"strings"

	"chronik/kafka"
)

// PeerOptions configures a clustered broker's peer transport. They are ignored on a
// single node (kafka.Config.Peers empty).
type PeerOptions struct {
	// Listener accepts peer connections; the broker owns and closes it. Nil: the broker
	// listens on Listen.
	Listener gonet.Listener
	// Listen is the peer listener's address when Listener is nil; empty means this
	// node's PeerAddr in kafka.Config.Peers. Set it when peers reach this node through
	// another address (a proxy, NAT).
	Listen string
	// Dial, when set, replaces the TCP dialer (tests, proxies).
	Dial func(ctx context.Context, addr string) (gonet.Conn, error)
	// ServerTLS and ClientTLS, when set, secure the peer connections.
	ServerTLS, ClientTLS *tls.Config
	// JitterSeed seeds the reconnect backoff jitter; zero draws one from crypto/rand.
	JitterSeed uint64
}

// startPeerTransport starts the transport of the node described by cfg. The caller owns
// the returned transport and must Close it.
func startPeerTransport(cfg kafka.Config, opts PeerOptions, logf func(string, ...any)) (*PeerTransport, error) {
	peers := make(map[NodeID]string, len(cfg.Peers))
	listen := opts.Listen
	for _, p := range cfg.Peers {
		if p.ID == cfg.NodeID {
			if listen == "" {
				listen = p.PeerAddr
			}
			continue
		}
		peers[NodeID(kafka.RaftID(p.ID))] = p.PeerAddr
	}
	ln := opts.Listener
	if ln == nil {
		if listen == "" {
			return nil, fmt.Errorf("net: node %d has no peer address to listen on", cfg.NodeID)
		}
		var err error
		if ln, err = gonet.Listen("tcp", listen); err != nil {
			return nil, fmt.Errorf("net: peer listener: %w", err)
		}
	}
	clusterID := cfg.ClusterID
	if clusterID == "" {
		clusterID = "chronik" // kafka.Config's default
	}
	t, err := NewPeerTransport(PeerConfig{
		ID:         NodeID(kafka.RaftID(cfg.NodeID)),
		ClusterID:  clusterID,
		Peers:      peers,
		Listener:   ln,
		ServerTLS:  opts.ServerTLS,
		ClientTLS:  opts.ClientTLS,
		Dial:       opts.Dial,
		JitterSeed: opts.JitterSeed,
		Logf:       nodeLogf(logf),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return t, nil
}

// nodeLogf makes the transport's log lines name peers by Kafka node id, as the flags and
// Metadata do, instead of by Raft id (node id + 1). nil stays nil.
func nodeLogf(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return nil
	}
	return func(format string, args ...any) {
		if id, ok := firstArg(args).(NodeID); ok && strings.HasPrefix(format, "peer %d") {
			format = "peer node %d" + strings.TrimPrefix(format, "peer %d")
			args = append([]any{kafka.NodeOfRaftID(uint64(id))}, args[1:]...)
		}
		logf(format, args...)
	}
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// unreachableEveryMs bounds how often the loop reports one peer Unreachable because Send
// dropped messages for it: each report walks every Raft group of the node, and a peer
// whose queue stays full would otherwise cost that walk on every iteration.
const unreachableEveryMs = 100

// peerLink is the loop's side of the peer transport. Owned by the loop goroutine.
type peerLink struct {
	t  *PeerTransport
	in <-chan PeerBatch // nil once the transport closed it
	// outbox holds one iteration's messages per peer, reused across iterations.
	// Invariant: every slice is empty between flushes.
	outbox map[NodeID][]GroupMessage
	order  []NodeID        // the keys of outbox, sorted
	up     map[NodeID]bool // whether the peer was reachable at the last Send to it
	// reportedMs is when each peer was last reported Unreachable.
	reportedMs map[NodeID]int64
}

func newPeerLink(t *PeerTransport) *peerLink {
	return &peerLink{t: t, in: t.Received(), outbox: map[NodeID][]GroupMessage{}, up: map[NodeID]bool{}, reportedMs: map[NodeID]int64{}}
}

// step hands one inbound batch to the node. A message whose sender is not the
// connection's node is dropped: a peer speaks only for itself.
func (pl *peerLink) step(node *kafka.Node, b PeerBatch) {
	for _, m := range b.Msgs {
		if m.Msg.From != uint64(b.From) {
			continue
		}
		node.Step(m.Group, m.Msg)
	}
}

// send queues msgs, one Send per destination, and reports to node the peers that lost
// their connection, or messages (at most every unreachableEveryMs). nowMs is the loop's
// clock.
func (pl *peerLink) send(node *kafka.Node, msgs []kafka.PeerMessage, nowMs int64) {
	if len(msgs) == 0 {
		return
	}
	for _, m := range msgs {
		to := NodeID(m.To)
		q, ok := pl.outbox[to]
		if !ok {
			pl.order = append(pl.order, to)
			slices.Sort(pl.order)
		}
		pl.outbox[to] = append(q, GroupMessage{Group: m.Group, Msg: m.Msg})
	}
	for _, to := range pl.order {
		q := pl.outbox[to]
		if len(q) == 0 {
			continue
		}
		sent := pl.t.Send(to, q)
		up := pl.t.Reachable(to)
		lost := pl.up[to] && !up
		dropped := sent < len(q) && nowMs-pl.reportedMs[to] >= unreachableEveryMs
		if lost || dropped {
			node.Unreachable(uint64(to))
			pl.reportedMs[to] = nowMs
		}
		pl.up[to] = up
		clear(q) // drop references to entries: the transport holds its own copy
		pl.outbox[to] = q[:0]
	}
}
