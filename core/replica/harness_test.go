package replica

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/log"
	"chronik/core/record"
	"chronik/disk"
)

// The harness drives replicas of one partition on one goroutine: each has its own
// disk.MemFS, messages travel through a queue (marshaled and unmarshaled, as a transport
// would), and sync jobs complete when the harness says. Time is a tick of tickMs.

const (
	tickMs  = 100
	dataDir = "/data/t-0"
	// attrLogAppendTime is the timestamp-type bit of a batch's attributes.
	attrLogAppendTime = 0x8
)

type node struct {
	id  uint64
	fs  *disk.MemFS
	r   *Replica // nil while down
	job *SyncJob // the outstanding job, or nil
	// hw is the highest high watermark seen since the last restart.
	hw int64
	// snaps are the snapshots installed since the node was created (Config.OnSnapshot).
	snaps []installed
}

// installed is a snapshot a node installed.
type installed struct {
	offset    int64
	producers []byte
}

type envelope struct {
	from, to uint64
	msg      []byte
}

// ack is a proposal's committed outcome.
type ack struct {
	Outcome
	data []byte // the batch as proposed
}

// tb is what the harness needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

type cluster struct {
	t    tb
	rng  *rand.Rand // the harness's choices: delivery order, job completion, crashes
	cfg  Config
	n    []*node
	net  []envelope
	down map[uint64]bool // isolated from the network (messages to and from are dropped)

	nowMs     int64
	nextToken uint64
	proposed  map[uint64][]byte // token -> batch
	acked     map[uint64]ack    // committed, Err == nil
	outcomes  map[uint64]Outcome
	durable   map[uint64]bool
	trace     hash.Hash64 // every delivered message and outcome, for the determinism test

	// inject, when set for a node, fails the operations it picks on that node's disk.
	inject map[uint64]disk.Injector
	// failed are the nodes whose replica failed; collect tolerates it for them only.
	mayFail map[uint64]bool

	// syncProb is the chance that an outstanding job completes in a step; dropProb and
	// the chance that a message is held back a step.
	syncProb, dropProb, holdProb float64
}

func newCluster(t tb, seed uint64, size int, cfg Config) *cluster {
	t.Helper()
	c := &cluster{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)),
		cfg:      cfg,
		down:     map[uint64]bool{},
		inject:   map[uint64]disk.Injector{},
		mayFail:  map[uint64]bool{},
		proposed: map[uint64][]byte{},
		acked:    map[uint64]ack{},
		outcomes: map[uint64]Outcome{},
		durable:  map[uint64]bool{},
		trace:    fnv.New64a(),
		syncProb: 1,
	}
	var peers []uint64
	for i := range size {
		peers = append(peers, uint64(i+1))
	}
	for _, id := range peers {
		n := &node{id: id, fs: disk.NewMem()}
		c.n = append(c.n, n)
		c.start(n, peers)
	}
	return c
}

func (c *cluster) node(id uint64) *node { return c.n[id-1] }

func (c *cluster) start(n *node, peers []uint64) {
	c.t.Helper()
	cfg := c.cfg
	cfg.ID, cfg.Peers = n.id, peers
	cfg.OnSnapshot = func(offset int64, producers []byte) {
		n.snaps = append(n.snaps, installed{offset, slices.Clone(producers)})
	}
	var fsys log.FS = n.fs
	if inj := c.inject[n.id]; inj != nil {
		fsys = disk.NewErrorFS(n.fs, inj)
	}
	r, err := Open(fsys, dataDir, cfg, c.nowMs)
	if err != nil {
		c.t.Fatalf("node %d: open: %v", n.id, err)
	}
	n.r, n.job, n.hw = r, nil, r.HighWatermark()
}

// crash cuts n's power: its unsynced writes are kept, dropped or torn, and the messages
// it has not yet sent or received are lost.
func (c *cluster) crash(id uint64, opts disk.CrashOptions) {
	n := c.node(id)
	n.fs = n.fs.CrashClone(c.rng, opts)
	n.r, n.job = nil, nil // abandoned, files and all: the old MemFS goes with it
	c.net = slices.DeleteFunc(c.net, func(e envelope) bool { return e.from == id || e.to == id })
}

func (c *cluster) restart(id uint64) {
	c.start(c.node(id), nil)
}

// step lets every live node produce its work, delivers the messages in flight (some held
// back, some dropped as the probabilities say), completes sync jobs, and ticks when tick.
func (c *cluster) step(tick bool) {
	c.t.Helper()
	if tick {
		c.nowMs += tickMs
	}
	for _, n := range c.n {
		if n.r == nil {
			continue
		}
		if tick {
			n.r.Tick(c.nowMs)
		}
		c.collect(n)
	}
	net := c.net
	c.net = nil
	for _, e := range net {
		switch {
		case c.down[e.from] || c.down[e.to] || c.node(e.to).r == nil:
		case c.dropProb > 0 && c.rng.Float64() < c.dropProb:
		case c.holdProb > 0 && c.rng.Float64() < c.holdProb:
			c.net = append(c.net, e)
		default:
			var m pb.Message
			if err := m.Unmarshal(e.msg); err != nil {
				c.t.Fatalf("unmarshal: %v", err)
			}
			c.trace.Write(e.msg)
			_ = c.node(e.to).r.Step(m) // stale or unknown-peer messages are refused; fine
		}
	}
	for _, n := range c.n {
		if n.r != nil && n.job != nil && c.rng.Float64() < c.syncProb {
			j := n.job
			n.job = nil
			n.r.SyncDone(j, j.Run())
			c.collect(n)
		}
	}
}

// collect takes n's Ready: messages into the network, the job, the outcomes.
func (c *cluster) collect(n *node) {
	c.t.Helper()
	rd := n.r.Ready()
	if err := n.r.Err(); err != nil && !c.mayFail[n.id] {
		c.t.Fatalf("node %d failed: %v", n.id, err)
	}
	for _, m := range rd.Messages {
		b, err := m.Marshal()
		if err != nil {
			c.t.Fatalf("marshal: %v", err)
		}
		c.net = append(c.net, envelope{from: n.id, to: m.To, msg: b})
	}
	if rd.Sync != nil {
		if n.job != nil {
			c.t.Fatalf("node %d: a second job while one is outstanding", n.id)
		}
		n.job = rd.Sync
	}
	if d := n.r.Storage().Log().DurableOffset(); rd.HighWatermark > d {
		c.t.Fatalf("node %d: high watermark %d above its durable offset %d", n.id, rd.HighWatermark, d)
	}
	if rd.HighWatermark < n.hw {
		c.t.Fatalf("node %d: high watermark went back from %d to %d", n.id, n.hw, rd.HighWatermark)
	}
	n.hw = rd.HighWatermark
	for _, o := range rd.Durable {
		if c.durable[o.Token] {
			c.t.Fatalf("token %d reported durable twice", o.Token)
		}
		c.durable[o.Token] = true
	}
	for _, o := range rd.Committed {
		if _, dup := c.outcomes[o.Token]; dup {
			c.t.Fatalf("token %d has two outcomes", o.Token)
		}
		c.outcomes[o.Token] = o
		fmt.Fprintf(c.trace, "outcome %d %d %d %d %v\n", o.Token, o.Index, o.Term, o.BaseOffset, o.Err)
		if o.Err == nil {
			c.acked[o.Token] = ack{Outcome: o, data: c.proposed[o.Token]}
		}
	}
}

// leader is the live, connected node that leads with the highest term, or nil.
func (c *cluster) leader() *node {
	var best *node
	for _, n := range c.n {
		if n.r != nil && !c.down[n.id] && n.r.IsLeader() && (best == nil || n.r.Term() > best.r.Term()) {
			best = n
		}
	}
	return best
}

// runUntil steps, ticking every tickEvery steps, until cond holds; it fails the test after
// maxSteps.
func (c *cluster) runUntil(what string, maxSteps int, cond func() bool) {
	c.t.Helper()
	for i := 0; i < maxSteps; i++ {
		if cond() {
			return
		}
		c.step(i%4 == 3)
	}
	c.t.Fatalf("after %d steps: not %s", maxSteps, what)
}

func (c *cluster) elect() *node {
	c.t.Helper()
	c.runUntil("a leader", 2000, func() bool { return c.leader() != nil })
	return c.leader()
}

// propose proposes a fresh batch at n, returning its token, or 0 when n refuses.
func (c *cluster) propose(n *node, spec batchSpec) uint64 {
	c.nextToken++
	b := makeBatch(spec)
	if err := n.r.Propose(c.nextToken, b); err != nil {
		return 0
	}
	c.proposed[c.nextToken] = b
	return c.nextToken
}

// settled reports whether every live node's high watermark is the leader's log end and
// nothing is in flight.
func (c *cluster) settled() bool {
	l := c.leader()
	if l == nil {
		return false
	}
	end := l.r.Storage().Log().EndOffset()
	for _, n := range c.n {
		if n.r == nil || c.down[n.id] {
			continue
		}
		if n.hw != end || n.r.Storage().Log().EndOffset() != end || n.job != nil {
			return false
		}
	}
	return true
}

// checkLogs checks the replication invariants:
//   - every stored batch validates (CRC included) and has the term of its entry;
//   - any two live nodes hold identical bytes at identical offsets from the larger of
//     their log starts (retention and snapshots move them) to the smaller of their high
//     watermarks;
//   - every acknowledged proposal is in every live node's log between its log start and
//     its high watermark, at the acknowledged offset, with the proposed bytes (baseOffset
//     and epoch aside).
func (c *cluster) checkLogs() {
	c.t.Helper()
	var ref *node
	var refBatches map[int64][]byte
	for _, n := range c.n {
		if n.r == nil || n.r.Err() != nil {
			continue
		}
		batches := readAll(c.t, n.r.Storage())
		for off, b := range batches {
			if _, err := record.Validate(b); err != nil {
				c.t.Fatalf("node %d: batch at %d: %v", n.id, off, err)
			}
		}
		start := n.r.Storage().StartOffset()
		for tok, a := range c.acked {
			if a.BaseOffset >= n.hw || a.BaseOffset < start {
				continue
			}
			b := batches[a.BaseOffset]
			if b == nil || !bytes.Equal(b[16:], a.data[16:]) {
				c.t.Fatalf("node %d: acknowledged token %d not at offset %d", n.id, tok, a.BaseOffset)
			}
			if h, _ := record.ParseHeader(b); uint64(h.PartitionLeaderEpoch) != a.Term {
				c.t.Fatalf("node %d: token %d stored with epoch %d, acknowledged in term %d", n.id, tok, h.PartitionLeaderEpoch, a.Term)
			}
		}
		if ref == nil {
			ref, refBatches = n, batches
			continue
		}
		limit := min(ref.hw, n.hw)
		lo := max(start, ref.r.Storage().StartOffset())
		for off, b := range batches {
			if off >= lo && off < limit && !bytes.Equal(b, refBatches[off]) {
				c.t.Fatalf("nodes %d and %d differ at offset %d (in [%d, %d))", ref.id, n.id, off, lo, limit)
			}
		}
		for off := range refBatches {
			if off >= lo && off < limit && batches[off] == nil {
				c.t.Fatalf("node %d lacks the batch at %d that node %d has (in [%d, %d))", n.id, off, ref.id, lo, limit)
			}
		}
	}
}

// readAll returns every batch of s's Raft log (from its recorded start) by base offset,
// checking that the offsets follow one another and that the storage's index agrees.
func readAll(t tb, s *Storage) map[int64][]byte {
	t.Helper()
	l := s.Log()
	out := map[int64][]byte{}
	next := s.StartOffset()
	index := s.first
	for next < l.EndOffset() {
		data, err := l.Read(next, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("read %d: %v", next, err)
		}
		if err := record.Split(data, func(b []byte, h record.Header) bool {
			if h.BaseOffset != next {
				t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
			}
			if got := s.offsetOf(index); got != next {
				t.Fatalf("entry %d: index says offset %d, log has %d", index, got, next)
			}
			if term, _ := s.Term(index); term != uint64(h.PartitionLeaderEpoch) {
				t.Fatalf("entry %d: term %d, batch epoch %d", index, term, h.PartitionLeaderEpoch)
			}
			out[next] = slices.Clone(b)
			next = h.LastOffset() + 1
			index++
			return true
		}); err != nil {
			t.Fatalf("split at %d: %v", next, err)
		}
	}
	if index != s.lastIndex()+1 {
		t.Fatalf("log holds entries up to %d, index says %d", index-1, s.lastIndex())
	}
	return out
}

// batchSpec describes a test batch: records records of valueBytes bytes filled with fill.
type batchSpec struct {
	records    int
	valueBytes int
	fill       byte
	attrs      int16
	// pid, when above 0, makes the batch idempotent: producer id pid, epoch 0, base
	// sequence seq.
	pid int64
	seq int32
}

// makeBatch builds a valid uncompressed v2 record batch with base offset 0.
func makeBatch(sp batchSpec) []byte {
	var recs []byte
	value := make([]byte, sp.valueBytes)
	for i := range value {
		value[i] = sp.fill + byte(i)
	}
	for i := 0; i < sp.records; i++ {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1)
		body = binary.AppendVarint(body, int64(len(value)))
		body = append(body, value...)
		body = binary.AppendVarint(body, 0)
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	be := binary.BigEndian
	b := make([]byte, 0, record.HeaderSize+len(recs))
	b = be.AppendUint64(b, 0)
	b = be.AppendUint32(b, uint32(record.HeaderSize-12+len(recs)))
	b = be.AppendUint32(b, 0)
	b = append(b, 2)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint16(b, uint16(sp.attrs))
	b = be.AppendUint32(b, uint32(sp.records-1))
	b = be.AppendUint64(b, 1_700_000_000_000)
	b = be.AppendUint64(b, 1_700_000_000_000+uint64(sp.records-1))
	if sp.pid > 0 {
		b = be.AppendUint64(b, uint64(sp.pid))
		b = be.AppendUint16(b, 0)
		b = be.AppendUint32(b, uint32(sp.seq))
	} else {
		b = be.AppendUint64(b, ^uint64(0))
		b = be.AppendUint16(b, ^uint16(0))
		b = be.AppendUint32(b, ^uint32(0))
	}
	b = be.AppendUint32(b, uint32(sp.records))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// randomSpec draws a batch: 1-5 records of 0-300 bytes, one in eight LogAppendTime, one
// in four idempotent (producers 1-3; sequences are not checked by the replica).
func randomSpec(rng *rand.Rand) batchSpec {
	sp := batchSpec{records: 1 + rng.IntN(5), valueBytes: rng.IntN(300), fill: byte(rng.Uint32())}
	if rng.IntN(8) == 0 {
		sp.attrs = attrLogAppendTime
	}
	if rng.IntN(4) == 0 {
		sp.pid, sp.seq = int64(1+rng.IntN(3)), int32(rng.IntN(1000))
	}
	return sp
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, ^seed)) }
