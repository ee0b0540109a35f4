// Package net is the production edge of a broker: TCP and TLS listeners, one reader and
// one writer goroutine per connection, and the event loop that drives the deterministic
// kafka.Node.
//
// The model:
//  1. A connection's reader goroutine reads length-prefixed frames, decodes and validates
//     them (kafka.Decode: CRC checks run here, in parallel, never on the loop) and posts
//     them to the loop, at most MaxInflightPerConn at a time.
//  2. The loop goroutine owns the node: it feeds it events, then hands the responses to
//     their connections' writers and runs sync jobs on goroutines of their own, whose
//     completions come back as events. It sleeps when there is nothing to do: no polling.
//     In cluster mode it also steps the peers' Raft messages into the node and sends the
//     node's to the peer transport (cluster.go).
//  3. A writer goroutine encodes and writes responses in request order.
//  4. A read error or EOF ends the connection at once: both goroutines exit, and the loop
//     forgets it (the seed report's spin-loop bug cannot happen: nothing reads a dead
//     socket again).
package net

import (
	"context"
	"sync"
	"time"

	"chronik/kafka"
)

// Limits of the production edge.
const (
	// MaxInflightPerConn bounds the requests of one connection that the loop holds at once.
	MaxInflightPerConn = 32
	// MaxQueuedEvents bounds the loop's inbox; readers block (backpressure) beyond it.
	MaxQueuedEvents = 4096
	// MaxEventsPerBatch is how many events the loop takes before it flushes Ready.
	MaxEventsPerBatch = 512
	// MaxConcurrentSyncs bounds the fsyncs running at once.
	MaxConcurrentSyncs = 64
)

type eventKind uint8

const (
	evRequest eventKind = iota
	evSyncDone
	evConnOpen
	evConnClosed
	evCall
)

type event struct {
	kind eventKind
	req  *kafka.Request
	task kafka.SyncTask
	err  error
	conn *conn
	call func(*kafka.Node)
}

// Loop owns a kafka.Node and drives it from one goroutine.
type Loop struct {
	node   *kafka.Node
	events chan event
	conns  map[kafka.ConnID]*conn // owned by the loop goroutine
	syncs  chan struct{}          // semaphore of MaxConcurrentSyncs
	nowMs  func() int64
	wg     sync.WaitGroup // sync goroutines
	// metrics times sync jobs; nil measures nothing. Set before Run.
	metrics *Metrics
	// stopped is closed when Run returns; posts to a stopped loop are dropped.
	stopped chan struct{}
	// peers links the node to its peer transport in cluster mode; nil on a single node.
	// Set before Run (cluster.go).
	peers *peerLink
}

// NewLoop wraps node. nowMs is the wall clock in milliseconds.
func NewLoop(node *kafka.Node, nowMs func() int64) *Loop {
	return &Loop{
		node:   node,
		events: make(chan event, MaxQueuedEvents),
		conns:  make(map[kafka.ConnID]*conn),
		syncs:  make(chan struct{}, MaxConcurrentSyncs),
		nowMs:  nowMs,

		stopped: make(chan struct{}),
	}
}

// clockStart anchors WallClockMs: the wall time at start plus monotonic time since.
var clockStart = time.Now()

// WallClockMs is the production clock in milliseconds since the epoch. It reads the
// monotonic clock, so it never steps backwards when the system clock is set back (a node
// whose time stood still would hold its group-commit windows and long polls until the
// wall clock caught up, as the simulator's skewback fault showed); it does not follow
// steps of the system clock while the process runs.
func WallClockMs() int64 { return clockStart.UnixMilli() + time.Since(clockStart).Milliseconds() }

// Run drives the node until ctx ends. It waits for running sync jobs before returning.
func (l *Loop) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer close(l.stopped)
	var peerIn <-chan PeerBatch // nil (never ready) on a single node
	if l.peers != nil {
		peerIn = l.peers.in
	}
	for {
		select {
		case <-ctx.Done():
			l.drainSyncs()
			return nil
		case ev := <-l.events:
			l.node.Tick(l.nowMs())
			l.apply(ev)
			l.drain(peerIn)
		case b, ok := <-peerIn:
			if !ok {
				peerIn = nil // the transport closed
				continue
			}
			l.node.Tick(l.nowMs())
			l.peers.step(l.node, b)
			l.drain(peerIn)
		case <-timer.C:
			l.node.Tick(l.nowMs())
		}
		l.flush(timer)
	}
}

// drain applies the events and peer batches already waiting, up to MaxEventsPerBatch in
// all, without blocking.
func (l *Loop) drain(peerIn <-chan PeerBatch) {
	for i := 1; i < MaxEventsPerBatch; i++ {
		select {
		case ev := <-l.events:
			l.apply(ev)
		case b, ok := <-peerIn:
			if !ok {
				return
			}
			l.peers.step(l.node, b)
		default:
			return
		}
	}
}

// Do runs fn on the loop goroutine with the node and waits for it; for tests and admin.
func (l *Loop) Do(ctx context.Context, fn func(*kafka.Node)) error {
	done := make(chan struct{})
	select {
	case l.events <- event{kind: evCall, call: func(n *kafka.Node) { fn(n); close(done) }}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post hands ev to the loop; false if the loop has stopped.
func (l *Loop) post(ev event) bool {
	select {
	case l.events <- ev:
		return true
	case <-l.stopped:
		return false
	}
}

func (l *Loop) apply(ev event) {
	switch ev.kind {
	case evRequest:
		l.node.Handle(ev.req)
	case evSyncDone:
		l.node.SyncDone(ev.task, ev.err)
	case evConnOpen:
		l.conns[ev.conn.id] = ev.conn
	case evConnClosed:
		delete(l.conns, ev.conn.id)
		l.node.ConnClosed(ev.conn.id)
	case evCall:
		ev.call(l.node)
	}
}

// flush hands out the node's Raft messages, responses and sync jobs and arms the timer.
func (l *Loop) flush(timer *time.Timer) {
	rd := l.node.Ready()
	if l.peers != nil {
		// First: followers append and fsync in parallel with this node's sync jobs.
		l.peers.send(l.node, rd.Messages, l.nowMs())
	}
	for _, r := range rd.Responses {
		if c := l.conns[r.Conn]; c != nil {
			c.deliver(r)
		}
	}
	for _, t := range rd.Syncs {
		l.startSync(t)
	}
	if rd.DeadlineMs > 0 {
		wait := time.Duration(rd.DeadlineMs-l.nowMs()) * time.Millisecond
		timer.Reset(max(wait, 0))
	}
}

func (l *Loop) startSync(t kafka.SyncTask) {
	l.metrics.syncStarted(t)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.syncs <- struct{}{}
		start := l.metrics.now()
		err := t.Run()
		l.metrics.synced(start, err)
		<-l.syncs
		l.post(event{kind: evSyncDone, task: t, err: err})
	}()
}

// drainSyncs waits for running sync jobs, discarding their completions.
func (l *Loop) drainSyncs() {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-l.events:
		}
	}
}
