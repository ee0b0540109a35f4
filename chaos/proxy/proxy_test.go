package proxy

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() { // ends when the listener closes in Cleanup
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { // ends when c closes
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string, maxConns int) *Proxy {
	t.Helper()
	p, err := New(Config{Listen: "127.0.0.1:0", Target: target, Seed: 1, MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads its echo within timeout.
func roundTrip(c net.Conn, msg string, timeout time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestForwards(t *testing.T) {
	p := newProxy(t, echoServer(t), 0)
	c := dial(t, p.Addr())
	for _, m := range []string{"a", "hello", string(make([]byte, 100<<10))} {
		got, err := roundTrip(c, m, 2*time.Second)
		if err != nil || got != m {
			t.Fatalf("round trip of %d bytes: %v (got %d bytes)", len(m), err, len(got))
		}
	}
}

func TestDelay(t *testing.T) {
	p := newProxy(t, echoServer(t), 0)
	c := dial(t, p.Addr())
	p.SetFaults(Faults{Delay: 50 * time.Millisecond, Jitter: 20 * time.Millisecond})
	start := time.Now()
	if _, err := roundTrip(c, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond { // delayed both ways
		t.Fatalf("round trip took %v, want >= 100ms", took)
	}
	p.Heal()
	start = time.Now()
	if _, err := roundTrip(c, "y", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 90*time.Millisecond {
		t.Fatalf("healed round trip took %v", took)
	}
}

func TestBlackholeThenHealClosesTainted(t *testing.T) {
	for _, f := range []Faults{{Blackhole: true}, {BlackholeUp: true}, {BlackholeDown: true}} {
		t.Run(f.String(), func(t *testing.T) {
			p := newProxy(t, echoServer(t), 0)
			c := dial(t, p.Addr())
			if _, err := roundTrip(c, "ok", 2*time.Second); err != nil {
				t.Fatal(err)
			}
			p.SetFaults(f)
			if _, err := roundTrip(c, "lost", 200*time.Millisecond); !isTimeout(err) {
				t.Fatalf("through a %v: %v, want a timeout", f, err)
			}
			// A connection opened during the partition is accepted and forwards nothing.
			c2 := dial(t, p.Addr())
			if _, err := roundTrip(c2, "lost", 200*time.Millisecond); !isTimeout(err) {
				t.Fatalf("new connection through a %v: %v, want a timeout", f, err)
			}
			p.Heal()
			// The tainted connections are closed; a new one works.
			if _, err := roundTrip(c, "after", time.Second); err == nil || isTimeout(err) {
				t.Fatalf("tainted connection after heal: %v, want closed", err)
			}
			c3 := dial(t, p.Addr())
			if got, err := roundTrip(c3, "fresh", 2*time.Second); err != nil || got != "fresh" {
				t.Fatalf("fresh connection after heal: %q %v", got, err)
			}
			if p.Stats().DiscardedBytes == 0 {
				t.Fatal("no bytes counted as discarded")
			}
		})
	}
}

func TestDropAndReset(t *testing.T) {
	p := newProxy(t, echoServer(t), 0)
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "ok", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.DropAll(); n != 1 {
		t.Fatalf("DropAll closed %d connections, want 1", n)
	}
	if _, err := roundTrip(c, "x", time.Second); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after drop: %v, want EOF", err)
	}
	c2 := dial(t, p.Addr())
	if _, err := roundTrip(c2, "ok", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.ResetAll(); n != 1 {
		t.Fatalf("ResetAll aborted %d connections, want 1", n)
	}
	buf := make([]byte, 1)
	if err := c2.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after reset: %v, want ECONNRESET", err)
	}
}

func TestTargetDownAndMaxConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := newProxy(t, dead, 0)
	// The proxy accepts, fails to dial and aborts: the client's dial or first read fails.
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		defer c.Close()
		if _, err := roundTrip(c, "x", time.Second); err == nil || isTimeout(err) {
			t.Fatalf("through a proxy to a dead target: %v, want closed", err)
		}
	}

	p2 := newProxy(t, echoServer(t), 2)
	a, b := dial(t, p2.Addr()), dial(t, p2.Addr())
	for _, c := range []net.Conn{a, b} {
		if _, err := roundTrip(c, "ok", 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	third := dial(t, p2.Addr())
	if _, err := roundTrip(third, "x", time.Second); err == nil || isTimeout(err) {
		t.Fatalf("connection over the limit: %v, want closed", err)
	}
	if s := p2.Stats(); s.Refused != 1 || s.Accepted != 2 {
		t.Fatalf("stats %+v, want 2 accepted and 1 refused", s)
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	target := echoServer(t)
	before := runtime.NumGoroutine()
	p, err := New(Config{Listen: "127.0.0.1:0", Target: target})
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 10 {
		c := dial(t, p.Addr())
		if _, err := roundTrip(c, "ok", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	p.SetFaults(Faults{Delay: time.Hour})
	for _, c := range conns[:5] {
		if _, err := c.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	if p.Conns() != 0 {
		t.Fatalf("%d connections left after Close", p.Conns())
	}
	// The echo server's goroutines for the closed connections end too; allow them time.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
