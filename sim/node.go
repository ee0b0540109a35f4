package sim

import (
	"fmt"
	"math/rand/v2"

	"chronik/disk"
	"chronik/kafka"
)

// epochUs is where node clocks start: a wall-clock-like time, as production passes the
// Unix time in ms.
const epochUs = 1_700_000_000_000_000

// simNode is one broker: the real kafka.Node over the real core/log on a crashable MemFS,
// driven the way net/loop.go drives it, with a simulated disk and clock.
type simNode struct {
	s   *Sim
	idx int
	who string
	cfg kafka.Config

	mem *disk.MemFS // what the disk holds; a crash replaces it by a crash clone
	fs  disk.FS     // mem behind the error injector
	// failSync and failWrite arm the injector: the next fsync or write fails with EIO.
	failSync, failWrite bool
	// eio is the EIO fault whose error has fired since the last crash, or nil: the
	// supervisor must restart the node.
	eio *Fault
	// armed is the EIO fault armed and not yet fired, or nil.
	armed *Fault

	node *kafka.Node // nil while down
	// gen is the incarnation: it bumps on every crash, voiding the old one's events.
	gen    uint64
	paused bool
	// pauseEndUs is when the current pause ends. Invariant: paused implies up.
	pauseEndUs int64

	// conns are the accepted connections by id; order lists them by id (ids grow).
	conns   map[kafka.ConnID]*serverConn
	order   []*serverConn
	scratch []*serverConn
	// tickAt is the time of the pending deadline tick; 0 when none.
	tickAt int64
	// deferred are sync completions that arrived while paused.
	deferred []kafka.SyncTask
	// peerInbox holds the peer messages that arrived while paused, in arrival order.
	peerInbox []kafka.PeerMessage

	// The clock: nodeUs(t) = clockBase + (t-clockFrom)*(1e6+driftPPM)/1e6.
	clockBase, clockFrom, driftPPM int64

	diskRng *rand.Rand
}

func newSimNode(s *Sim, idx int) (*simNode, error) {
	r := newRand(s.cfg.Seed, streamSetup, uint64(idx))
	n := &simNode{
		s: s, idx: idx, who: "n" + itoa(idx),
		mem:       disk.NewMem(),
		conns:     map[kafka.ConnID]*serverConn{},
		clockBase: epochUs,
		diskRng:   newRand(s.cfg.Seed, streamDisk, uint64(idx)),
	}
	n.fs = disk.NewErrorFS(n.mem, disk.InjectorFunc(n.inject))
	windows := []int64{0, 0, 1, 2, 10}
	n.cfg = kafka.Config{
		NodeID:              int32(idx),
		DataDir:             "/data",
		GroupCommitWindowMs: windows[r.IntN(len(windows))],
		SegmentBytes:        between(r, 4<<10, 96<<10),
		// The group workload's sessions are short, so that a crashed member's session
		// times out within the fault window; its internal topic is small, so that a
		// cluster runs few more Raft groups.
		GroupMinSessionTimeoutMs:     minSessionMs,
		GroupInitialRebalanceDelayMs: initialRebalanceDelayMs,
		OffsetsTopicPartitions:       offsetsTopicPartitions,
	}
	if s.cfg.Nodes > 1 {
		for i := range s.cfg.Nodes {
			name := "n" + itoa(i)
			n.cfg.Peers = append(n.cfg.Peers, kafka.Peer{ID: int32(i), Host: name, Port: 9092, PeerAddr: name + ":9093"})
		}
	}
	s.tr.line(0, n.who, "config").i("group_commit_ms", n.cfg.GroupCommitWindowMs).i("segment_bytes", n.cfg.SegmentBytes).end()
	node, err := kafka.NewNode(n.cfg, n.fs, n.nowMs(), n.nodeSeed())
	if err != nil {
		return nil, fmt.Errorf("sim: node %d: %w", idx, err)
	}
	n.node = node
	return n, nil
}

func (n *simNode) up() bool { return n.node != nil }

func (n *simNode) nodeSeed() uint64 {
	return streamSeed(n.s.cfg.Seed, streamNode, uint64(n.idx)<<32|n.gen)
}

// inject is the disk's error injector: it fails the armed operation once.
func (n *simNode) inject(op disk.Op, path string) error {
	switch {
	case op == disk.OpSync && n.failSync:
		n.failSync = false
	case op == disk.OpWrite && n.failWrite:
		n.failWrite = false
	default:
		return nil
	}
	n.eio, n.armed = n.armed, nil
	n.s.tr.line(n.s.now, n.who, "eio").s("op", op.String()).s("path", path).end()
	return disk.ErrInjected
}

// nodeUs is the node's clock at simulated time t.
func (n *simNode) nodeUs(t int64) int64 {
	return n.clockBase + (t-n.clockFrom)*(1_000_000+n.driftPPM)/1_000_000
}

func (n *simNode) nowMs() int64 { return n.nodeUs(n.s.now) / 1000 }

// simAt is the first simulated time at which the node's clock reads ms.
func (n *simNode) simAt(ms int64) int64 {
	t := n.clockFrom + (ms*1000-n.clockBase)*1_000_000/(1_000_000+n.driftPPM)
	for i := 0; i < 4 && n.nodeUs(t)/1000 < ms; i++ {
		t++
	}
	return t
}

// skew jumps the node's clock by dMs and sets its drift.
func (n *simNode) skew(dMs, driftPPM int64) {
	n.clockBase = n.nodeUs(n.s.now) + dMs*1000
	n.clockFrom = n.s.now
	n.driftPPM = driftPPM
}

// begin starts a batch of events: the caller's duty 2, Tick before each batch.
func (n *simNode) begin() { n.node.Tick(n.nowMs()) }

// maxFlushRounds bounds the Ready rounds of one flush: answering a response frees an
// in-flight slot, which may hand the node more requests.
const maxFlushRounds = 1000

// flush hands out the node's work: responses to their connections in Seq order, sync
// jobs to the simulated disk, and the next deadline to the scheduler.
func (n *simNode) flush() {
	for round := 0; ; round++ {
		if round == maxFlushRounds {
			panic("sim: flush did not settle")
		}
		rd := n.node.Ready()
		n.sendPeers(rd.Messages)
		for _, t := range rd.Syncs {
			n.startSync(t)
		}
		for _, r := range rd.Responses {
			if c := n.conns[r.Conn]; c != nil && !c.closed {
				c.deliver(r)
			}
		}
		n.armTick(rd.DeadlineMs)
		handled := false
		for _, c := range n.snapshotConns() {
			handled = c.pump() || handled
		}
		if !handled && len(rd.Responses) == 0 {
			return
		}
	}
}

func (n *simNode) armTick(deadlineMs int64) {
	if deadlineMs <= 0 {
		return
	}
	at := max(n.simAt(deadlineMs), n.s.now+1)
	if n.tickAt != 0 && n.tickAt <= at {
		return
	}
	n.tickAt = at
	n.s.push(event{at: at, kind: evTick, node: int32(n.idx), gen: n.gen})
}

func (n *simNode) onTick(ev event) {
	if ev.gen != n.gen || !n.up() || ev.at != n.tickAt {
		return
	}
	n.tickAt = 0
	if n.paused {
		return
	}
	n.s.tr.line(n.s.now, n.who, "tick").i("ms", n.nowMs()).end()
	n.begin()
	n.flush()
}

// startSync runs a sync job on the simulated disk: it completes after an fsync latency.
func (n *simNode) startSync(t kafka.SyncTask) {
	d := between(n.diskRng, 100, 2000)
	if n.diskRng.IntN(20) == 0 {
		d = between(n.diskRng, 5000, 60000) // a slow fsync
	}
	n.s.tr.line(n.s.now, n.who, "fsync-start").i("end", t.End()).i("us", d).end()
	n.s.after(d, event{kind: evSyncDone, node: int32(n.idx), gen: n.gen, task: t})
}

func (n *simNode) onSyncDone(ev event) {
	if ev.gen != n.gen || !n.up() {
		return // the node crashed meanwhile: the job never completed
	}
	if n.paused {
		n.deferred = append(n.deferred, ev.task)
		return
	}
	n.begin()
	n.completeSync(ev.task)
	n.flush()
}

// completeSync runs the job now, at its simulated completion time, and reports it.
func (n *simNode) completeSync(t kafka.SyncTask) {
	err := t.Run()
	l := n.s.tr.line(n.s.now, n.who, "fsync-done").i("end", t.End())
	if err != nil {
		l.s("err", "EIO")
	}
	l.end()
	n.node.SyncDone(t, err)
}

// receive takes a chunk that reached the node's kernel.
func (n *simNode) receive(l *link, c chunk) {
	if !n.up() {
		if c.kind == chSyn {
			l.reset(false) // connection refused
		}
		return
	}
	if c.kind == chSyn {
		n.accept(l)
		return
	}
	srv := l.srv
	if srv == nil || srv.closed {
		return
	}
	switch c.kind {
	case chData:
		srv.framer.Feed(c.data)
	case chFin:
		srv.eof = true
	case chRst:
		srv.rst = true
	}
	if n.paused {
		return // the kernel buffers; the loop sees it on resume
	}
	n.begin()
	srv.pump()
	n.flush()
}

func (n *simNode) accept(l *link) {
	srv := newServerConn(n, l)
	l.srv = srv
	n.conns[srv.id] = srv
	n.order = append(n.order, srv)
	n.s.tr.line(n.s.now, n.who, "accept").i("conn", int64(srv.id)).end()
	l.send(toClient, chSynAck, nil)
}

// forget drops a connection the handler has ended.
func (n *simNode) forget(c *serverConn) {
	delete(n.conns, c.id)
	for i, o := range n.order {
		if o == c {
			n.order = append(n.order[:i], n.order[i+1:]...)
			break
		}
	}
}

// snapshotConns is a copy of order, for loops whose body may end connections.
func (n *simNode) snapshotConns() []*serverConn {
	n.scratch = append(n.scratch[:0], n.order...)
	return n.scratch
}

// liveConns counts the connections the node still holds.
func (n *simNode) liveConns() int { return len(n.order) }

// pause stops the loop until untilUs.
func (n *simNode) pause(untilUs int64) {
	if !n.up() {
		return
	}
	n.paused = true
	n.pauseEndUs = max(n.pauseEndUs, untilUs)
}

// resume ends a pause at its end time: the loop catches up on what arrived.
func (n *simNode) resume(force bool) {
	if !n.paused || (!force && n.s.now < n.pauseEndUs) {
		return
	}
	n.paused = false
	n.s.tr.line(n.s.now, n.who, "resume").i("deferred_syncs", int64(len(n.deferred))).end()
	n.begin()
	deferred := n.deferred
	n.deferred = nil
	for _, t := range deferred {
		n.completeSync(t)
	}
	inbox := n.peerInbox
	n.peerInbox = nil
	for _, m := range inbox {
		n.step(m)
	}
	for _, c := range n.snapshotConns() {
		c.pump()
	}
	n.flush()
}

// crash drops the node at once: a crash clone of its disk is what survives.
func (n *simNode) crash(opts disk.CrashOptions, seed uint64) {
	n.s.res.Crashes++
	n.gen++
	for _, c := range n.order {
		c.closed = true
		c.l.reset(false) // the kernel resets the dead process's sockets
	}
	n.conns = map[kafka.ConnID]*serverConn{}
	n.order = nil
	n.node = nil
	n.paused = false
	n.deferred = nil
	n.peerInbox = nil
	n.s.resetPeerLinks(n.idx)
	n.s.oracle.restarted(n.idx)
	n.tickAt = 0
	n.failSync, n.failWrite = false, false
	n.mem = n.mem.CrashClone(newRand(n.s.cfg.Seed, streamFault, seed), opts)
	n.fs = disk.NewErrorFS(n.mem, disk.InjectorFunc(n.inject))
	n.s.tr.line(n.s.now, n.who, "crash").i("gen", int64(n.gen)).end()
}

// restart reopens the node on what its disk holds.
func (n *simNode) restart() {
	if n.up() {
		return
	}
	node, err := kafka.NewNode(n.cfg, n.fs, n.nowMs(), n.nodeSeed())
	if err != nil {
		n.s.violate("recovery", -1, "node %d does not reopen after a crash: %v", n.idx, err)
		return
	}
	n.node = node
	n.s.tr.line(n.s.now, n.who, "restart").i("gen", int64(n.gen)).end()
	n.begin()
	n.flush()
}

// heal ends the node's faults: it comes back up, unpaused, with nothing armed. A node
// whose storage failed is restarted, as its supervisor would.
func (n *simNode) heal() {
	n.failSync, n.failWrite, n.armed = false, false, nil
	if f := n.eio; f != nil && n.up() {
		n.crash(disk.CrashOptions{KeepProb: f.Keep}, f.Seed)
	}
	n.restart()
	n.resume(true)
}
