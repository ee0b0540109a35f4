// Package proxy is a fault-injecting TCP proxy for chaos tests: it listens on a loopback
// address, dials a target for every connection it accepts, and copies bytes both ways
// through faults that can be switched while it runs.
//
// Faults (Faults, set with SetFaults):
//   - Delay and Jitter hold every chunk of bytes for Delay plus a uniform draw in
//     [0, Jitter) before it is forwarded, in order.
//   - Blackhole (both directions) or BlackholeUp / BlackholeDown (one direction: a one-way
//     partition) read and discard the bytes. A connection that lost bytes is "tainted":
//     its stream can no longer be framed, so it is closed as soon as its direction heals,
//     as TCP gives up on a connection behind a long partition. Connections accepted during
//     a blackhole are kept open and forward nothing.
//
// Actions: DropAll closes every connection (FIN), ResetAll aborts every one with an RST
// (SO_LINGER 0).
//
// Goroutines: one accept loop, one dialer per connection while its target dial runs, and
// two copiers per connection; at most MaxConns connections (further ones are closed at
// once). Close ends them all and waits.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// DefaultMaxConns is the connection limit when Config.MaxConns is 0.
const DefaultMaxConns = 256

// chunkBytes is the copy buffer of one direction of one connection.
const chunkBytes = 32 << 10

// dialTimeout bounds the dial to the target.
const dialTimeout = 2 * time.Second

// Config says where a Proxy listens and forwards.
type Config struct {
	// Listen is the address to listen on, e.g. "127.0.0.1:0".
	Listen string
	// Target is the address every accepted connection is forwarded to.
	Target string
	// Seed seeds the jitter draws.
	Seed uint64
	// MaxConns bounds the open connections (DefaultMaxConns when 0).
	MaxConns int
}

// Faults are the faults a Proxy applies now. The zero value forwards everything at once.
type Faults struct {
	// Delay holds each chunk this long before forwarding it.
	Delay time.Duration
	// Jitter adds a uniform draw in [0, Jitter) to Delay.
	Jitter time.Duration
	// Blackhole discards the bytes of both directions (a partition).
	Blackhole bool
	// BlackholeUp discards bytes from client to target only.
	BlackholeUp bool
	// BlackholeDown discards bytes from target to client only.
	BlackholeDown bool
}

func (f Faults) discards(d direction) bool {
	return f.Blackhole || (d == up && f.BlackholeUp) || (d == down && f.BlackholeDown)
}

// String names the faults for logs.
func (f Faults) String() string {
	s := ""
	if f.Delay > 0 || f.Jitter > 0 {
		s += fmt.Sprintf("delay=%v+%v ", f.Delay, f.Jitter)
	}
	switch {
	case f.Blackhole:
		s += "blackhole "
	case f.BlackholeUp:
		s += "blackhole-up "
	case f.BlackholeDown:
		s += "blackhole-down "
	}
	if s == "" {
		return "none"
	}
	return s[:len(s)-1]
}

type direction int

const (
	up   direction = iota // client to target
	down                  // target to client
)

// Stats counts what a Proxy did.
type Stats struct {
	Accepted, Refused, Dropped, Reset int64
	// DiscardedBytes is the bytes blackholes threw away.
	DiscardedBytes int64
}

// Proxy forwards connections through faults. Its methods are safe for concurrent use.
type Proxy struct {
	cfg Config
	ln  net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	links  map[*link]struct{} // Invariant: len(links)+dialing <= cfg.MaxConns.
	// dialing counts accepted connections whose target dial is in progress.
	dialing int
	closed  bool
	// ctx ends with Close, cancelling dials in progress.
	ctx    context.Context
	cancel context.CancelFunc
	stats  Stats
}

// link is one proxied connection.
type link struct {
	client, target net.Conn
	done           chan struct{} // closed by shut
	once           sync.Once
	// tainted[d] is set (under Proxy.mu) once direction d discarded bytes.
	tainted [2]bool
}

// New listens on cfg.Listen and starts forwarding to cfg.Target. The caller must Close it.
func New(cfg Config) (*Proxy, error) {
	if cfg.Target == "" {
		return nil, errors.New("proxy: no target")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &Proxy{cfg: cfg, ln: ln, rng: rand.New(rand.NewPCG(cfg.Seed, 0x70726f7879)), links: map[*link]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.accept() // ends when Close closes the listener
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.cfg.Target }

// Faults returns the faults in force.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// SetFaults replaces the faults in force. Connections that lost bytes in a direction that
// no longer discards are closed.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	var stale []*link
	for l := range p.links {
		if (l.tainted[up] && !f.discards(up)) || (l.tainted[down] && !f.discards(down)) {
			stale = append(stale, l)
		}
	}
	p.mu.Unlock()
	for _, l := range stale {
		l.shut(false)
	}
}

// Heal removes every fault.
func (p *Proxy) Heal() { p.SetFaults(Faults{}) }

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Conns is the number of open connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// DropAll closes every open connection with a FIN and returns how many it closed.
func (p *Proxy) DropAll() int { return p.closeAll(false) }

// ResetAll aborts every open connection with an RST and returns how many it aborted.
func (p *Proxy) ResetAll() int { return p.closeAll(true) }

func (p *Proxy) closeAll(rst bool) int {
	p.mu.Lock()
	ls := make([]*link, 0, len(p.links))
	for l := range p.links {
		ls = append(ls, l)
	}
	if rst {
		p.stats.Reset += int64(len(ls))
	} else {
		p.stats.Dropped += int64(len(ls))
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.shut(rst)
	}
	return len(ls)
}

// Close stops listening, closes every connection and waits for every goroutine.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	p.closeAll(false)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		p.admit(c)
	}
}

// admit reserves a connection slot for c and dials the target on a goroutine of its own
// (a slow target does not hold up the accept loop), or closes c when the proxy is full or
// closed.
func (p *Proxy) admit(c net.Conn) {
	p.mu.Lock()
	full := p.closed || len(p.links)+p.dialing >= p.cfg.MaxConns
	if full {
		p.stats.Refused++
	} else {
		p.dialing++
	}
	p.mu.Unlock()
	if full {
		c.Close()
		return
	}
	p.wg.Add(1)
	go p.connect(c) // ends after one dial of at most dialTimeout
}

// connect dials the target for c and starts its copiers, or aborts c when the target
// does not answer or the proxy closed meanwhile.
func (p *Proxy) connect(c net.Conn) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", p.cfg.Target)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing--
	if err != nil || p.closed {
		// The target is down: the client sees its connection aborted, as a refused dial.
		abort(c)
		if t != nil {
			t.Close()
		}
		p.stats.Refused++
		return
	}
	l := &link{client: c, target: t, done: make(chan struct{})}
	p.links[l] = struct{}{}
	p.stats.Accepted++
	p.wg.Add(2)
	go p.pump(l, up)   // ends when l is shut or a side closes
	go p.pump(l, down) // likewise
}

// pump copies one direction of l until either side fails or l is shut.
func (p *Proxy) pump(l *link, d direction) {
	defer p.wg.Done()
	defer func() {
		l.shut(false)
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	src, dst := l.client, l.target
	if d == down {
		src, dst = l.target, l.client
	}
	buf := make([]byte, chunkBytes)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.forward(l, d, dst, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// forward applies the faults in force to one chunk and writes it to dst; false means the
// link is finished.
func (p *Proxy) forward(l *link, d direction, dst net.Conn, b []byte) bool {
	p.mu.Lock()
	f := p.faults
	if f.discards(d) {
		l.tainted[d] = true
		p.stats.DiscardedBytes += int64(len(b))
		p.mu.Unlock()
		return true
	}
	tainted := l.tainted[d]
	wait := f.Delay
	if f.Jitter > 0 {
		wait += time.Duration(p.rng.Int64N(int64(f.Jitter)))
	}
	p.mu.Unlock()
	if tainted {
		return false
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return false
		}
	}
	_, err := dst.Write(b)
	return err == nil
}

// shut closes both sides of l once; rst aborts them with an RST instead of a FIN.
func (l *link) shut(rst bool) {
	l.once.Do(func() {
		close(l.done)
		if rst {
			abort(l.client)
			abort(l.target)
			return
		}
		l.client.Close()
		l.target.Close()
	})
}

// abort closes c with an RST: SO_LINGER 0 discards unsent data and resets the peer.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			c.Close()
			return
		}
	}
	c.Close()
}

var _ io.Closer = (*Proxy)(nil)
