package sim

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
)

// owner is what a client connection reports to: a producer, a consumer, the admin.
type owner interface {
	// reply is the answer to c.
	reply(c *call, resp kmsg.Response)
	// lost says c's outcome is unknown: its connection closed, reset or timed out.
	lost(c *call)
	// wake is the owner's timer firing.
	wake()
}

// call is one request on a client connection.
type call struct {
	corr   int32
	req    kmsg.Request
	frame  []byte
	tag    int64 // the owner's
	node   int   // the node it went to
	sentUs int64
	// timeoutUs is how long the answer may take before the connection is reset; 0 is
	// requestTimeoutUs. JoinGroup and SyncGroup park for up to the rebalance timeout.
	timeoutUs int64
}

// connectToken marks a connection attempt's timeout (request timeouts carry the
// correlation id).
const connectToken = ^uint64(0)

// clientConn is one simulated client: its identity, its one timer, and a connection to
// each node it talks to (nodeConn), opened when first needed.
type clientConn struct {
	s        *Sim
	idx      int
	who      string
	owner    owner
	conns    []*nodeConn // by node index
	nextCorr int32
	timerGen uint64
	clientID string
	// done is set once the client has left: it opens no more connections.
	done bool
	// tornWrite, when set, makes the next request go out cut short, then the connection
	// closes: a client that dies mid-write (its draws come from this generator).
	tornWrite *rand.Rand
}

// nodeConn is a client's connection to one node: it speaks the Kafka protocol in bytes,
// pipelining requests and matching answers by correlation id, and it resets the
// connection when an answer is late, as franz-go does.
type nodeConn struct {
	cc        *clientConn
	node      *simNode
	l         *link // nil when not connected
	connected bool
	framer    *kafka.Framer
	calls     []*call // sent, oldest first; answers come in this order
	queued    []*call // waiting for the connection
}

func (s *Sim) newClient(name string, o owner) *clientConn {
	cc := &clientConn{s: s, idx: len(s.clients), owner: o, clientID: name}
	cc.who = "c" + itoa(cc.idx)
	for _, n := range s.nodes {
		cc.conns = append(cc.conns, &nodeConn{cc: cc, node: n})
	}
	s.clients = append(s.clients, cc)
	return cc
}

// wakeIn arms the client's one timer dUs from now, replacing any earlier arming.
func (cc *clientConn) wakeIn(dUs int64) {
	cc.timerGen++
	cc.s.after(dUs, event{kind: evWake, idx: int32(cc.idx), token: cc.timerGen})
}

// send queues req for node; the connection is opened when needed.
func (cc *clientConn) send(node int, req kmsg.Request, tag int64) *call {
	return cc.sendTimeout(node, req, tag, 0)
}

// sendTimeout is send with a request timeout of its own (0: requestTimeoutUs).
func (cc *clientConn) sendTimeout(node int, req kmsg.Request, tag int64, timeoutUs int64) *call {
	cc.nextCorr++
	c := &call{corr: cc.nextCorr, req: req, tag: tag, node: node, timeoutUs: timeoutUs}
	c.frame = appendRequest(nil, c.corr, cc.clientID, req)
	nc := cc.conns[node]
	if nc.l == nil {
		nc.dial()
	}
	if nc.connected {
		nc.transmit(c)
	} else {
		nc.queued = append(nc.queued, c)
	}
	return c
}

// close closes every connection of the client gracefully.
func (cc *clientConn) close() {
	for _, nc := range cc.conns {
		nc.close()
	}
}

// drop resets every connection of the client.
func (cc *clientConn) drop() {
	for _, nc := range cc.conns {
		nc.drop(true)
	}
}

func (nc *nodeConn) dial() {
	cc := nc.cc
	nc.l = cc.s.newLink(nc, nc.node)
	nc.connected = false
	nc.framer = kafka.NewFramer(kafka.MaxFrameBytes)
	cc.s.tr.line(cc.s.now, cc.who, "dial").i("link", int64(nc.l.id)).i("node", int64(nc.node.idx)).end()
	nc.l.send(toServer, chSyn, nil)
	cc.s.after(connectTimeoutUs, event{kind: evTimeout, link: nc.l, token: connectToken})
}

func (nc *nodeConn) transmit(c *call) {
	cc := nc.cc
	c.sentUs = cc.s.now
	nc.calls = append(nc.calls, c)
	cc.s.tr.line(cc.s.now, cc.who, "send").i("link", int64(nc.l.id)).i("key", int64(c.req.Key())).
		i("v", int64(c.req.GetVersion())).i("corr", int64(c.corr)).i("len", int64(len(c.frame))).end()
	if r := cc.tornWrite; r != nil {
		cc.tornWrite = nil
		cut := 1 + r.IntN(len(c.frame)-1)
		cc.s.tr.line(cc.s.now, cc.who, "torn-write").i("link", int64(nc.l.id)).i("sent", int64(cut)).end()
		nc.l.send(toServer, chData, c.frame[:cut])
		nc.close()
		return
	}
	nc.l.send(toServer, chData, c.frame)
	timeout := c.timeoutUs
	if timeout == 0 {
		timeout = requestTimeoutUs
	}
	cc.s.after(timeout, event{kind: evTimeout, link: nc.l, token: uint64(c.corr)})
}

// receive takes a chunk that reached the client.
func (nc *nodeConn) receive(l *link, ch chunk) {
	if l != nc.l {
		return
	}
	cc := nc.cc
	switch ch.kind {
	case chSynAck:
		nc.connected = true
		queued := nc.queued
		nc.queued = nil
		for i, c := range queued {
			if nc.l != l { // a torn write closed the connection
				for _, rest := range queued[i:] {
					cc.owner.lost(rest)
				}
				return
			}
			nc.transmit(c)
		}
	case chData:
		nc.framer.Feed(ch.data)
		for nc.l == l {
			frame, err := nc.framer.Next()
			if err != nil {
				cc.s.violate("protocol", -1, "%s: response framing: %v", cc.who, err)
				nc.drop(true)
				return
			}
			if frame == nil {
				return
			}
			nc.answer(frame)
		}
	case chFin, chRst:
		nc.drop(false)
	}
}

// answer matches a response frame to the oldest call and hands it to the owner.
func (nc *nodeConn) answer(frame []byte) {
	cc := nc.cc
	if len(nc.calls) == 0 || len(frame) < 4 {
		cc.s.violate("protocol", -1, "%s: a response nobody asked for (%d bytes)", cc.who, len(frame))
		nc.drop(true)
		return
	}
	c := nc.calls[0]
	corr := int32(binary.BigEndian.Uint32(frame))
	if corr != c.corr {
		cc.s.violate("protocol", -1, "%s: response correlation id %d, expected %d", cc.who, corr, c.corr)
		nc.drop(true)
		return
	}
	resp := c.req.ResponseKind()
	resp.SetVersion(c.req.GetVersion())
	body := frame[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		cc.s.violate("protocol", -1, "%s: key %d v%d response does not parse: %v", cc.who, c.req.Key(), c.req.GetVersion(), err)
		nc.drop(true)
		return
	}
	nc.calls[0] = nil
	nc.calls = nc.calls[1:]
	cc.s.tr.line(cc.s.now, cc.who, "answer").i("key", int64(c.req.Key())).i("corr", int64(c.corr)).
		i("rtt_us", cc.s.now-c.sentUs).end()
	cc.owner.reply(c, resp)
}

// timeout fires a request or connect timeout of link l.
func (nc *nodeConn) timeout(l *link, token uint64) {
	if l != nc.l {
		return
	}
	cc := nc.cc
	if token == connectToken {
		if !nc.connected {
			cc.s.tr.line(cc.s.now, cc.who, "connect-timeout").i("link", int64(l.id)).end()
			nc.drop(true)
		}
		return
	}
	for _, c := range nc.calls {
		if uint64(c.corr) == token {
			cc.s.tr.line(cc.s.now, cc.who, "request-timeout").i("link", int64(l.id)).i("corr", int64(c.corr)).end()
			nc.drop(true)
			return
		}
	}
}

// drop ends the connection (resetting it when reset; otherwise the server ended it) and
// tells the owner every call on it is lost.
func (nc *nodeConn) drop(reset bool) {
	l := nc.l
	if l == nil {
		return
	}
	nc.l = nil
	nc.connected = false
	if reset {
		l.reset(true)
	} else {
		l.dead[toClient] = true
	}
	nc.cc.s.tr.line(nc.cc.s.now, nc.cc.who, "drop").i("link", int64(l.id)).i("lost", int64(len(nc.calls)+len(nc.queued))).end()
	nc.loseAll()
}

// close closes the connection gracefully.
func (nc *nodeConn) close() {
	l := nc.l
	if l == nil {
		return
	}
	nc.l = nil
	nc.connected = false
	l.closeFrom(true)
	nc.cc.s.tr.line(nc.cc.s.now, nc.cc.who, "close").i("link", int64(l.id)).i("lost", int64(len(nc.calls)+len(nc.queued))).end()
	nc.loseAll()
}

func (nc *nodeConn) loseAll() {
	lost := append(nc.calls, nc.queued...)
	nc.calls, nc.queued = nil, nil
	for _, c := range lost {
		nc.cc.owner.lost(c)
	}
}

// appendRequest appends req's frame: length, request header (v1, or v2 with empty tags
// when the request is flexible) and body.
func appendRequest(dst []byte, corr int32, clientID string, req kmsg.Request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func itoa(i int) string { return strconv.Itoa(i) }
