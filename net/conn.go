package net

import (
	"bufio"
	"errors"
	"io"
	gonet "net"
	"sync/atomic"
	"time"

	"chronik/core/record"
	"chronik/kafka"
)

// conn is one client connection: a reader goroutine, a writer goroutine, and the loop's
// handle on them.
type conn struct {
	id   kafka.ConnID
	nc   gonet.Conn
	loop *Loop
	cfg  *ServerConfig

	// out carries responses from the loop to the writer. It never blocks the loop: a
	// connection has at most MaxInflightPerConn requests in the loop, so at most that many
	// responses queue here.
	out chan kafka.Response
	// inflight is a semaphore the reader takes per request and the writer gives back.
	inflight chan struct{}
	done     chan struct{} // closed when the reader exits
	timer    *reqTimer     // request metrics; nil measures nothing
}

func (c *conn) deliver(r kafka.Response) { c.out <- r }

// serve runs the connection until it ends; it returns once both goroutines have exited.
func (c *conn) serve() {
	if !c.loop.post(event{kind: evConnOpen, conn: c}) {
		c.nc.Close()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()
	c.read()
	close(c.done)
	c.nc.Close()
	<-writerDone
	c.loop.post(event{kind: evConnClosed, conn: c})
}

// read reads, decodes and posts requests until the connection fails, closes, idles out, or
// sends something undecodable.
func (c *conn) read() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var prefix [4]byte
	var seq uint64
	var validator record.Validator
	for {
		if c.cfg.IdleTimeout > 0 {
			if err := c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout)); err != nil {
				return
			}
		}
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			return // EOF, reset, idle timeout: the connection is over
		}
		size, err := kafka.FrameLength(prefix[:], c.cfg.MaxFrameBytes)
		if err != nil {
			c.cfg.logf("conn %s: %v", c.nc.RemoteAddr(), err)
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(br, frame); err != nil {
			return
		}
		start := c.timer.now()
		req, err := kafka.DecodeWith(frame, &validator)
		if err != nil && !(errors.Is(err, kafka.ErrUnsupportedVersion) && req != nil) {
			c.cfg.Metrics.decodeFailed()
			c.cfg.logf("conn %s: %v", c.nc.RemoteAddr(), err)
			return
		}
		req.Conn, req.Seq = c.id, seq
		seq++
		select {
		case c.inflight <- struct{}{}:
		case <-c.done:
			return
		}
		c.timer.begin(req.Seq, req.Key, start, 4+size)
		if !c.loop.post(event{kind: evRequest, req: req}) {
			return
		}
	}
}

// write writes responses in Seq order, batching what is ready into one write.
func (c *conn) write() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	pending := map[uint64]kafka.Response{}
	var next uint64
	var buf []byte
	for {
		var r kafka.Response
		select {
		case r = <-c.out:
		case <-c.done:
			return
		}
		pending[r.Seq] = r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			c.timer.answered(r.Seq) // before the token goes back: see reqTimer
			<-c.inflight
			if r.Close {
				bw.Flush()
				c.nc.Close()
				return
			}
			if r.Msg == nil {
				continue
			}
			if need := kafka.EncodedSizeHint(r.Msg); cap(buf) < need {
				buf = make([]byte, 0, need) // one allocation, not a doubling series of copies
			}
			buf = kafka.AppendResponse(buf[:0], r.CorrelationID, r.Msg)
			if _, err := bw.Write(buf); err != nil {
				c.nc.Close()
				return
			}
			c.timer.sent(r.Msg.Key(), len(buf))
			if cap(buf) > 1<<20 {
				buf = nil // do not pin a large fetch's buffer
			}
		}
		if len(c.out) == 0 {
			if err := bw.Flush(); err != nil {
				c.nc.Close()
				return
			}
			c.timer.flushed()
		}
	}
}

// connIDs hands out connection ids; they are never reused.
var connIDs atomic.Uint64
