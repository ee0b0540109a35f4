package e2e

import (
	"encoding/binary"
	gonet "net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
	cnet "chronik/net"
)

func withServer(f func(*cnet.ServerConfig)) brokerOption {
	return func(_ *kafka.Config, s *cnet.ServerConfig) { f(s) }
}

// Limits of the connection tests.
const (
	idleClients       = 1000
	maxDialers        = 64              // clients connecting at once
	goroutineSlack    = 5               // goroutines allowed above the baseline
	settleTimeout     = 5 * time.Second // for goroutines to come and go
	quietWindow       = 2 * time.Second
	maxQuietCPU       = 40 * time.Millisecond // 2% of one core over quietWindow
	pollInterval      = 10 * time.Millisecond
	idleTimeoutInTest = 500 * time.Millisecond
)

// halfFrame is a length prefix of 100 bytes followed by 10 of them.
var halfFrame = append(binary.BigEndian.AppendUint32(nil, 100), make([]byte, 10)...)

// ensureFDs raises the soft file descriptor limit to at least n, or skips the test.
func ensureFDs(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("file descriptor hard limit %d is below the %d this test needs (ulimit -Hn)", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot raise the file descriptor soft limit from %d to %d: %v", old.Cur, n, err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// cpuTime is the CPU (user + system) this process has used.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitGoroutines polls until cond holds for the goroutine count or settleTimeout passes,
// and returns the last count.
func waitGoroutines(cond func(int) bool) (int, bool) {
	deadline := time.Now().Add(settleTimeout)
	for {
		n := runtime.NumGoroutine()
		if cond(n) {
			return n, true
		}
		if time.Now().After(deadline) {
			return n, false
		}
		time.Sleep(pollInterval)
	}
}

// stableGoroutines waits until the goroutine count stops changing for 200 ms (bounded
// by settleTimeout) and returns it.
func stableGoroutines() int {
	last, since := runtime.NumGoroutine(), time.Now()
	deadline := since.Add(settleTimeout)
	for time.Now().Before(deadline) && time.Since(since) < 200*time.Millisecond {
		time.Sleep(pollInterval)
		if n := runtime.NumGoroutine(); n != last {
			last, since = n, time.Now()
		}
	}
	return last
}

// pingBroker checks with a raw ApiVersions round trip that the broker serves, then
// closes the connection.
func pingBroker(t *testing.T, addr string) {
	t.Helper()
	wc := dialWire(t, addr)
	defer wc.nc.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	if resp := wc.roundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: error %d", resp.ErrorCode)
	}
}

// TestClosedConnectionsEndAtOnce is the seed report's spin-loop bug: 1,000 clients
// connect, half send nothing and half send half a frame, then all close. Every handler
// must end (the goroutine count returns to its baseline) and, once they have, the broker
// must be idle: under 2% of one core over the next 2 s. The clients run in this process
// too, so the CPU is measured only after they are all closed.
func TestClosedConnectionsEndAtOnce(t *testing.T) {
	ensureFDs(t, 2*idleClients+256)
	b := startBroker(t)
	pingBroker(t, b.Addr())
	runtime.GC()
	base := stableGoroutines()

	conns := make([]gonet.Conn, idleClients)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		dialErr error
		slots   = make(chan struct{}, maxDialers)
	)
	for i := range conns {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			nc, err := gonet.DialTimeout("tcp", b.Addr(), wireTimeout)
			if err == nil && i%2 == 1 {
				if err = nc.SetWriteDeadline(time.Now().Add(wireTimeout)); err == nil {
					_, err = nc.Write(halfFrame)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if nc != nil {
				conns[i] = nc
			}
			if err != nil && dialErr == nil {
				dialErr = err
			}
		}()
	}
	wg.Wait()
	closeAll := func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}
	if dialErr != nil {
		closeAll()
		t.Fatalf("client: %v", dialErr)
	}
	// Each accepted connection runs at least one handler goroutine: wait until the broker
	// holds them all, so the test closes live handlers.
	if n, ok := waitGoroutines(func(n int) bool { return n >= base+idleClients }); !ok {
		closeAll()
		t.Fatalf("%d goroutines with %d clients connected; the broker did not take them all (baseline %d)", n, idleClients, base)
	}
	closeAll()

	if n, ok := waitGoroutines(func(n int) bool { return n <= base+goroutineSlack }); !ok {
		buf := make([]byte, 64<<10) // the first stacks are enough to see what still runs
		t.Fatalf("%d goroutines %v after the clients closed, baseline %d: handlers of closed sockets still run\n%s",
			n, settleTimeout, base, buf[:runtime.Stack(buf, true)])
	}
	before := cpuTime(t)
	time.Sleep(quietWindow)
	used := cpuTime(t) - before
	t.Logf("CPU over the %v after the clients closed: %v (%.2f%% of one core); goroutines %d, baseline %d",
		quietWindow, used, 100*used.Seconds()/quietWindow.Seconds(), runtime.NumGoroutine(), base)
	if used >= maxQuietCPU {
		t.Fatalf("the broker used %v of CPU in the %v after every client closed; want < %v (2%% of one core)", used, quietWindow, maxQuietCPU)
	}
	pingBroker(t, b.Addr())
}

// TestIdleTimeoutClosesConnections checks that a connection that sends half a frame, or
// nothing, and then stays silent is closed by the idle timeout; a connection that keeps
// sending requests is not.
func TestIdleTimeoutClosesConnections(t *testing.T) {
	b := startBroker(t, withServer(func(s *cnet.ServerConfig) { s.IdleTimeout = idleTimeoutInTest }))
	pingBroker(t, b.Addr())
	base := stableGoroutines()

	for _, tc := range []struct {
		name string
		send []byte
	}{{"half-frame", halfFrame}, {"nothing", nil}, {"length-prefix-only", halfFrame[:4]}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			wc := dialWire(t, b.Addr())
			if len(tc.send) > 0 {
				wc.write(tc.send)
			}
			wc.expectClosed()
			if took := time.Since(start); took < idleTimeoutInTest {
				t.Fatalf("closed after %v, before the %v idle timeout", took, idleTimeoutInTest)
			}
		})
	}

	t.Run("active-stays-open", func(t *testing.T) {
		wc := dialWire(t, b.Addr())
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(3)
		for deadline := time.Now().Add(3 * idleTimeoutInTest); time.Now().Before(deadline); {
			if resp := wc.roundTrip(req).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("ApiVersions: error %d", resp.ErrorCode)
			}
			time.Sleep(idleTimeoutInTest / 4)
		}
	})

	if n, ok := waitGoroutines(func(n int) bool { return n <= base+goroutineSlack }); !ok {
		t.Fatalf("%d goroutines after the idle connections were closed, baseline %d", n, base)
	}
}
