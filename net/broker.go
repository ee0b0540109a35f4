package net

import (
	"context"
	"errors"
	"fmt"
	gonet "net"
	"strconv"

	"chronik/core/log"
	"chronik/kafka"
)

// Broker is a running node: its loop, its listener and, in cluster mode, its peer
// transport. Tests start brokers in-process with it; cmd/chronik runs one.
type Broker struct {
	Node  *kafka.Node
	Loop  *Loop
	Peers *PeerTransport // nil on a single node
	addr  gonet.Addr
	stop  context.CancelFunc
	done  chan struct{}
	err   error
	close func() error
}

// StartBroker opens a node on fsys and serves it on ln until ctx ends or Close is called.
// An unset advertised Host/Port in cfg is taken from ln's address. When cfg.Peers is set
// it also runs the peer transport that scfg.Peer describes (cluster.go).
func StartBroker(ctx context.Context, ln gonet.Listener, cfg kafka.Config, fsys log.FS, seed uint64, scfg ServerConfig) (*Broker, error) {
	if cfg.Host == "" || cfg.Port == 0 {
		host, port, err := gonet.SplitHostPort(ln.Addr().String())
		if err != nil {
			return nil, err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, err
		}
		if cfg.Host == "" {
			cfg.Host = host
		}
		if cfg.Port == 0 {
			cfg.Port = int32(p)
		}
	}
	node, err := kafka.NewNode(cfg, fsys, WallClockMs(), seed)
	if err != nil {
		return nil, fmt.Errorf("net: open node: %w", err)
	}
	b := &Broker{Node: node, Loop: NewLoop(node, WallClockMs), addr: ln.Addr(), done: make(chan struct{}), close: node.Close}
	if len(cfg.Peers) > 0 {
		if b.Peers, err = startPeerTransport(cfg, scfg.Peer, scfg.Logf); err != nil {
			return nil, errors.Join(err, node.Close())
		}
		b.Loop.peers = newPeerLink(b.Peers)
		b.close = func() error { return errors.Join(b.Peers.Close(), node.Close()) }
	}
	ctx, b.stop = context.WithCancel(ctx)
	stop := b.stop
	b.Loop.metrics = scfg.Metrics
	scfg.Metrics.watch(b.Loop)
	loopDone := make(chan error, 1)
	go func() { loopDone <- b.Loop.Run(ctx) }()
	go func() {
		defer close(b.done)
		serveErr := Serve(ctx, ln, b.Loop, scfg)
		stop()
		loopErr := <-loopDone
		closeErr := b.close()
		switch {
		case serveErr != nil:
			b.err = serveErr
		case loopErr != nil:
			b.err = loopErr
		default:
			b.err = closeErr
		}
	}()
	return b, nil
}

// Addr is the listener's address.
func (b *Broker) Addr() string { return b.addr.String() }

// Close stops the broker and waits for it: every connection closed, every sync finished,
// every file closed.
func (b *Broker) Close() error {
	b.stop()
	<-b.done
	return b.err
}

// Done is closed when the broker has stopped.
func (b *Broker) Done() <-chan struct{} { return b.done }

// Wait blocks until the broker stops and returns why.
func (b *Broker) Wait() error {
	<-b.done
	return b.err
}
