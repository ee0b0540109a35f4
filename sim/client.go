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
	sentUs int64
}

// connectToken marks a connection attempt's timeout (request timeouts carry the
// correlation id).
const connectToken = ^uint64(0)

// clientConn is a simulated client's connection to a node: it speaks the Kafka protocol
// in bytes, pipelining requests and matching answers by correlation id, and it resets the
// connection when an answer is late, as franz-go does.
type clientConn struct {
	s     *Sim
	idx   int
	who   string
	owner owner
	node  *simNode

	l         *link // nil when not connected
	connected bool
	framer    *kafka.Framer
	calls     []*call // sent, oldest first; answers come in this order
	queued    []*call // waiting for the connection
	nextCorr  int32
	timerGen  uint64
	clientID  string
	// tornWrite, when set, makes the next request go out cut short, then the client
	// closes: a client that dies mid-write (its draws come from this generator).
	tornWrite *rand.Rand
}

func (s *Sim) newClient(name string, o owner) *clientConn {
	cc := &clientConn{s: s, idx: len(s.clients), owner: o, node: s.nodes[0], clientID: name}
	cc.who = "c" + itoa(cc.idx)
	s.clients = append(s.clients, cc)
	return cc
}

// wakeIn arms the client's one timer dUs from now, replacing any earlier arming.
func (cc *clientConn) wakeIn(dUs int64) {
	cc.timerGen++
	cc.s.after(dUs, event{kind: evWake, idx: int32(cc.idx), token: cc.timerGen})
}

// send queues req; the connection is opened when needed.
func (cc *clientConn) send(req kmsg.Request, tag int64) *call {
	cc.nextCorr++
	c := &call{corr: cc.nextCorr, req: req, tag: tag}
	c.frame = appendRequest(nil, c.corr, cc.clientID, req)
	if cc.l == nil {
		cc.dial()
	}
	if cc.connected {
		cc.transmit(c)
	} else {
		cc.queued = append(cc.queued, c)
	}
	return c
}

func (cc *clientConn) dial() {
	cc.l = cc.s.newLink(cc, cc.node)
	cc.connected = false
	cc.framer = kafka.NewFramer(kafka.MaxFrameBytes)
	cc.s.tr.line(cc.s.now, cc.who, "dial").i("link", int64(cc.l.id)).end()
	cc.l.send(toServer, chSyn, nil)
	cc.s.after(connectTimeoutUs, event{kind: evTimeout, link: cc.l, token: connectToken})
}

func (cc *clientConn) transmit(c *call) {
	c.sentUs = cc.s.now
	cc.calls = append(cc.calls, c)
	cc.s.tr.line(cc.s.now, cc.who, "send").i("link", int64(cc.l.id)).i("key", int64(c.req.Key())).
		i("v", int64(c.req.GetVersion())).i("corr", int64(c.corr)).i("len", int64(len(c.frame))).end()
	if r := cc.tornWrite; r != nil {
		cc.tornWrite = nil
		cut := 1 + r.IntN(len(c.frame)-1)
		cc.s.tr.line(cc.s.now, cc.who, "torn-write").i("link", int64(cc.l.id)).i("sent", int64(cut)).end()
		cc.l.send(toServer, chData, c.frame[:cut])
		cc.close()
		return
	}
	cc.l.send(toServer, chData, c.frame)
	cc.s.after(requestTimeoutUs, event{kind: evTimeout, link: cc.l, token: uint64(c.corr)})
}

// receive takes a chunk that reached the client.
func (cc *clientConn) receive(l *link, ch chunk) {
	if l != cc.l {
		return
	}
	switch ch.kind {
	case chSynAck:
		cc.connected = true
		queued := cc.queued
		cc.queued = nil
		for i, c := range queued {
			if cc.l != l { // a torn write closed the connection
				for _, rest := range queued[i:] {
					cc.owner.lost(rest)
				}
				return
			}
			cc.transmit(c)
		}
	case chData:
		cc.framer.Feed(ch.data)
		for cc.l == l {
			frame, err := cc.framer.Next()
			if err != nil {
				cc.s.violate("protocol", -1, "%s: response framing: %v", cc.who, err)
				cc.drop(true)
				return
			}
			if frame == nil {
				return
			}
			cc.answer(frame)
		}
	case chFin, chRst:
		cc.drop(false)
	}
}

// answer matches a response frame to the oldest call and hands it to the owner.
func (cc *clientConn) answer(frame []byte) {
	if len(cc.calls) == 0 || len(frame) < 4 {
		cc.s.violate("protocol", -1, "%s: a response nobody asked for (%d bytes)", cc.who, len(frame))
		cc.drop(true)
		return
	}
	c := cc.calls[0]
	corr := int32(binary.BigEndian.Uint32(frame))
	if corr != c.corr {
		cc.s.violate("protocol", -1, "%s: response correlation id %d, expected %d", cc.who, corr, c.corr)
		cc.drop(true)
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
		cc.drop(true)
		return
	}
	cc.calls[0] = nil
	cc.calls = cc.calls[1:]
	cc.s.tr.line(cc.s.now, cc.who, "answer").i("key", int64(c.req.Key())).i("corr", int64(c.corr)).
		i("rtt_us", cc.s.now-c.sentUs).end()
	cc.owner.reply(c, resp)
}

// timeout fires a request or connect timeout of link l.
func (cc *clientConn) timeout(l *link, token uint64) {
	if l != cc.l {
		return
	}
	if token == connectToken {
		if !cc.connected {
			cc.s.tr.line(cc.s.now, cc.who, "connect-timeout").i("link", int64(l.id)).end()
			cc.drop(true)
		}
		return
	}
	for _, c := range cc.calls {
		if uint64(c.corr) == token {
			cc.s.tr.line(cc.s.now, cc.who, "request-timeout").i("link", int64(l.id)).i("corr", int64(c.corr)).end()
			cc.drop(true)
			return
		}
	}
}

// drop ends the connection (resetting it when reset; otherwise the server ended it) and
// tells the owner every call on it is lost.
func (cc *clientConn) drop(reset bool) {
	l := cc.l
	if l == nil {
		return
	}
	cc.l = nil
	cc.connected = false
	if reset {
		l.reset(true)
	} else {
		l.dead[toClient] = true
	}
	cc.s.tr.line(cc.s.now, cc.who, "drop").i("link", int64(l.id)).i("lost", int64(len(cc.calls)+len(cc.queued))).end()
	cc.loseAll()
}

// close closes the connection gracefully.
func (cc *clientConn) close() {
	l := cc.l
	if l == nil {
		return
	}
	cc.l = nil
	cc.connected = false
	l.closeFrom(true)
	cc.s.tr.line(cc.s.now, cc.who, "close").i("link", int64(l.id)).i("lost", int64(len(cc.calls)+len(cc.queued))).end()
	cc.loseAll()
}

func (cc *clientConn) loseAll() {
	lost := append(cc.calls, cc.queued...)
	cc.calls, cc.queued = nil, nil
	for _, c := range lost {
		cc.owner.lost(c)
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
