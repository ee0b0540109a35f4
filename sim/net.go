package sim

import (
	"math/rand/v2"

	"chronik/kafka"
)

// Directions a link carries bytes in.
const (
	toServer uint8 = 0
	toClient uint8 = 1
)

// chunkKind is what a segment on a link carries: TCP reduced to what the broker can see.
type chunkKind uint8

const (
	chData   chunkKind = iota
	chSyn              // a client opens the connection
	chSynAck           // the server's kernel accepted it
	chFin              // the sender closed: the receiver reads EOF after the data before it
	chRst              // the sender reset: the receiver's connection fails at once
)

var chunkNames = [...]string{"data", "syn", "synack", "fin", "rst"}

type chunk struct {
	at   int64
	kind chunkKind
	data []byte
}

// link is one simulated TCP connection between a client and a node: two ordered byte
// streams with latency, where every write may arrive split into several chunks.
type link struct {
	id   uint64 // also the server side's kafka.ConnID
	s    *Sim
	cl   *nodeConn
	node *simNode
	rng  *rand.Rand
	// baseUs is this link's one-way latency.
	baseUs int64
	// q holds the chunks in flight in each direction.
	// Invariant: q[d] is sorted by at, and each has one evDeliver of this epoch pending.
	q      [2]chunkQueue
	lastAt [2]int64
	// epoch bumps on reset, voiding the deliveries of chunks it dropped.
	epoch uint64
	srv   *serverConn // the server side once accepted; nil after it ends
	dead  [2]bool     // dead[d]: the receiving end of direction d is gone; chunks are dropped
}

func (s *Sim) newLink(cl *nodeConn, n *simNode) *link {
	s.nextLink++
	l := &link{id: s.nextLink, s: s, cl: cl, node: n, rng: newRand(s.cfg.Seed, streamNet, s.nextLink)}
	l.baseUs = between(l.rng, 50, 400)
	return l
}

// latency is the one-way delay of a chunk sent now in direction dir.
func (l *link) latency(dir uint8) int64 {
	d := l.baseUs + l.rng.Int64N(150)
	if l.rng.IntN(50) == 0 {
		d += between(l.rng, 1000, 20000) // an occasional retransmission
	}
	if l.s.now < l.s.spikeUntil {
		d += l.s.spikeExtraUs
	}
	return d
}

// heldUntil is when a cut in direction dir lets bytes through again; 0 when none holds.
func (l *link) heldUntil(dir uint8) int64 {
	var until int64
	for _, c := range l.s.cuts {
		if c.untilUs <= l.s.now || (c.client >= 0 && c.client != l.cl.cc.idx) || (c.node >= 0 && c.node != l.node.idx) {
			continue
		}
		if c.both || c.toSrv == (dir == toServer) {
			until = max(until, c.untilUs)
		}
	}
	return until
}

// send puts bytes (or a control segment) on the wire in direction dir. Data may be split
// into up to four chunks; every chunk arrives in order.
func (l *link) send(dir uint8, kind chunkKind, data []byte) {
	if l.dead[dir] {
		return
	}
	at := l.s.now
	if h := l.heldUntil(dir); h > at {
		at = h
	}
	at += l.latency(dir)
	at = max(at, l.lastAt[dir])
	if kind == chData && len(data) > 1 && l.rng.IntN(2) == 0 {
		pieces := 2 + l.rng.IntN(3)
		for p := 0; p < pieces-1 && len(data) > 1; p++ {
			cut := 1 + l.rng.IntN(len(data)-1)
			l.enqueue(dir, chunk{at: at, kind: chData, data: data[:cut]})
			data = data[cut:]
			at += l.rng.Int64N(60)
		}
	}
	l.enqueue(dir, chunk{at: at, kind: kind, data: data})
}

func (l *link) enqueue(dir uint8, c chunk) {
	l.lastAt[dir] = c.at
	l.q[dir].push(c)
	l.s.push(event{at: c.at, kind: evDeliver, dir: dir, gen: l.epoch, link: l})
}

// deliver hands the head chunk of a direction to its receiver.
func (l *link) deliver(ev event) {
	if ev.gen != l.epoch {
		return
	}
	d := ev.dir
	c := l.q[d].pop()
	if l.dead[d] {
		return
	}
	who := l.node.who
	if d == toClient {
		who = l.cl.cc.who
	}
	l.s.tr.line(l.s.now, who, "recv").i("link", int64(l.id)).s("seg", chunkNames[c.kind]).i("len", int64(len(c.data))).end()
	if d == toServer {
		l.node.receive(l, c)
	} else {
		l.cl.receive(l, c)
	}
}

// reset aborts the link from one end (the client's when byClient): what is in flight is
// lost both ways, that end receives nothing more, and the other end gets the reset after
// the latency (later, if a cut holds it).
func (l *link) reset(byClient bool) {
	l.epoch++
	l.q[0].clear()
	l.q[1].clear()
	l.lastAt = [2]int64{}
	mine, theirs := toServer, toClient
	if byClient {
		mine, theirs = toClient, toServer
	}
	l.dead[mine] = true
	l.send(theirs, chRst, nil)
}

// closeFrom closes the link gracefully from one end: that end stops reading, and the
// other end reads EOF after the data already sent.
func (l *link) closeFrom(byClient bool) {
	mine, theirs := toServer, toClient
	if byClient {
		mine, theirs = toClient, toServer
	}
	l.dead[mine] = true
	l.send(theirs, chFin, nil)
}

func connID(l *link) kafka.ConnID { return kafka.ConnID(l.id) }

// chunkQueue is a FIFO of chunks that reuses its array once drained.
type chunkQueue struct {
	buf  []chunk
	head int
}

func (q *chunkQueue) push(c chunk) { q.buf = append(q.buf, c) }

func (q *chunkQueue) pop() chunk {
	c := q.buf[q.head]
	q.buf[q.head] = chunk{}
	q.head++
	if q.head == len(q.buf) {
		q.clear()
	}
	return c
}

func (q *chunkQueue) clear() {
	clear(q.buf)
	q.buf, q.head = q.buf[:0], 0
}
