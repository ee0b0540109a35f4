package sim

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
)

// maxInflightPerConn mirrors net.MaxInflightPerConn: the requests of one connection the
// loop holds at once; the handler stops reading beyond it.
const maxInflightPerConn = 32

// serverConn is the broker's side of one connection: the simulated twin of net/conn.go.
// It frames and decodes requests as they arrive in chunks, hands them to the node with
// per-connection sequence numbers, and writes responses back in Seq order.
type serverConn struct {
	id     kafka.ConnID
	n      *simNode
	l      *link
	framer *kafka.Framer
	seq    uint64 // Seq of the next request
	next   uint64 // Seq of the next response to write
	// pending are responses that finished before an earlier Seq; at most
	// maxInflightPerConn.
	pending  []kafka.Response
	inflight int
	eof, rst bool // the client closed or reset; the handler ends once it sees it
	closed   bool
	zombie   bool // planted bug spin-on-close: ended but never released
}

func newServerConn(n *simNode, l *link) *serverConn {
	return &serverConn{id: connID(l), n: n, l: l, framer: kafka.NewFramer(kafka.MaxFrameBytes)}
}

// pump hands the node every whole request buffered, up to the in-flight bound, and ends
// the connection on EOF, reset or a bad frame. It reports whether it handed any request.
func (c *serverConn) pump() bool {
	if c.closed {
		return false
	}
	if c.rst {
		c.end(false)
		return false
	}
	handled := false
	for c.inflight < maxInflightPerConn {
		frame, err := c.framer.Next()
		if err != nil {
			c.n.s.tr.line(c.n.s.now, c.n.who, "bad-frame").i("conn", int64(c.id)).s("err", err.Error()).end()
			c.end(true)
			return handled
		}
		if frame == nil {
			if c.eof {
				c.end(true) // EOF (or EOF inside a frame): the connection is over
			}
			return handled
		}
		req, err := kafka.Decode(frame)
		if err != nil && !(errors.Is(err, kafka.ErrUnsupportedVersion) && req != nil) {
			c.n.s.tr.line(c.n.s.now, c.n.who, "bad-request").i("conn", int64(c.id)).s("err", err.Error()).end()
			c.end(true)
			return handled
		}
		req.Conn, req.Seq = c.id, c.seq
		c.seq++
		c.inflight++
		c.n.s.tr.line(c.n.s.now, c.n.who, "req").i("conn", int64(c.id)).i("seq", int64(req.Seq)).
			i("key", int64(req.Key)).i("v", int64(req.Version)).i("corr", int64(req.CorrelationID)).end()
		c.n.node.Handle(req)
		handled = true
	}
	return handled
}

// deliver takes one of the node's responses and writes what is now in Seq order.
func (c *serverConn) deliver(r kafka.Response) {
	if fr, ok := r.Msg.(*kmsg.FetchResponse); ok && len(c.n.s.nodes) > 1 && !c.closed {
		// The oracle judges a fetch answer when the node hands it out, which is when it
		// decided it: the answer may then wait here, behind an earlier answer of the
		// connection that is parked (a group member's OffsetCommit), while the node
		// loses its leadership (finding 8).
		c.n.s.oracle.answered(c.n, fr)
	}
	c.pending = append(c.pending, r)
	for !c.closed {
		i := c.find(c.next)
		if i < 0 {
			return
		}
		r := c.pending[i]
		c.pending[i] = c.pending[len(c.pending)-1]
		c.pending[len(c.pending)-1] = kafka.Response{}
		c.pending = c.pending[:len(c.pending)-1]
		c.next++
		c.inflight--
		if r.Close {
			c.n.s.tr.line(c.n.s.now, c.n.who, "resp-close").i("conn", int64(c.id)).i("seq", int64(r.Seq)).end()
			c.end(true)
			return
		}
		if r.Msg == nil {
			continue
		}
		buf := kafka.AppendResponse(nil, r.CorrelationID, r.Msg)
		c.n.s.tr.line(c.n.s.now, c.n.who, "resp").i("conn", int64(c.id)).i("seq", int64(r.Seq)).
			i("key", int64(r.Msg.Key())).i("corr", int64(r.CorrelationID)).i("len", int64(len(buf))).end()
		c.l.send(toClient, chData, buf)
	}
}

func (c *serverConn) find(seq uint64) int {
	for i := range c.pending {
		if c.pending[i].Seq == seq {
			return i
		}
	}
	return -1
}

// end ends the handler: the caller's duty 4, ConnClosed, then the connection is
// forgotten. graceful sends a FIN to the client (a reset sends nothing back).
func (c *serverConn) end(graceful bool) {
	c.closed = true
	c.pending = nil
	c.n.s.tr.line(c.n.s.now, c.n.who, "conn-end").i("conn", int64(c.id)).end()
	if graceful {
		c.l.send(toClient, chFin, nil)
	}
	c.l.dead[toServer] = true
	if bugSpinOnClose {
		// Planted bug: the handler does not end; it keeps reading the dead socket.
		c.zombie = true
		c.n.s.after(1000, event{kind: evSpin, gen: c.n.gen, link: c.l})
		return
	}
	c.n.node.ConnClosed(c.id)
	c.n.forget(c)
}

// spin is the planted bug's dead handler reading EOF again and again.
func (c *serverConn) spin(ev event) {
	if ev.gen != c.n.gen || !c.zombie {
		return // the process died, and its handlers with it
	}
	c.n.s.tr.line(c.n.s.now, c.n.who, "spin").i("conn", int64(c.id)).end()
	c.n.s.after(1000, event{kind: evSpin, gen: c.n.gen, link: c.l})
}
