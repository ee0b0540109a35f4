package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Addresses of the veth pair between the test's two namespaces; they exist only there.
const (
	netnsBrokerAddr = "10.213.7.1"
	netnsClientAddr = "10.213.7.2"
	netnsPrefix     = "/24"
)

// TestNetnsPartition runs a broker in one network namespace and the workload's clients
// in another, joined by a veth pair, and partitions them by taking the link down: a
// partition below TCP, not a proxy's. It needs root and iproute2; elsewhere it skips.
func TestNetnsPartition(t *testing.T) {
	netnsPreflight(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ip := ipCmd
	id := strconv.Itoa(os.Getpid() % 1_000_000)
	nsBroker, nsClient := "chaos-b-"+id, "chaos-c-"+id
	vethBroker, vethClient := "chb"+id, "chc"+id // interface names: at most 15 bytes
	if err := ip("netns", "add", nsBroker); err != nil {
		t.Skipf("`ip netns add` does not work on this machine (%v): no network namespace test", err)
	}
	t.Cleanup(func() { logErr(t, ip("netns", "del", nsBroker)) })
	if err := ip("netns", "add", nsClient); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logErr(t, ip("netns", "del", nsClient)) }) // deleting a namespace deletes its veth end
	if err := ip("link", "add", vethBroker, "type", "veth", "peer", "name", vethClient); err != nil {
		t.Skipf("veth pairs are not available (%v): no network namespace test", err)
	}
	for _, args := range [][]string{
		{"link", "set", vethBroker, "netns", nsBroker},
		{"link", "set", vethClient, "netns", nsClient},
		{"-n", nsBroker, "addr", "add", netnsBrokerAddr + netnsPrefix, "dev", vethBroker},
		{"-n", nsClient, "addr", "add", netnsClientAddr + netnsPrefix, "dev", vethClient},
		{"-n", nsBroker, "link", "set", "lo", "up"},
		{"-n", nsClient, "link", "set", "lo", "up"},
		{"-n", nsBroker, "link", "set", vethBroker, "up"},
		{"-n", nsClient, "link", "set", vethClient, "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}

	bin := chronikBinary(t, ctx)
	dir := t.TempDir()
	listen := net.JoinHostPort(netnsBrokerAddr, "9092")
	logf, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// `ip netns exec` switches namespace and execs the broker in place: the PID is the broker's.
	cmd := exec.Command("ip", "netns", "exec", nsBroker, bin, "-listen", listen, "-data-dir", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		logErr(t, syscall.Kill(pid, syscall.SIGKILL))
		_ = cmd.Wait() // killed: the status is non-zero by design
	})

	dial := dialerIn("/run/netns/" + nsClient)
	for i := 0; ; i++ { // wait for the broker's port, from the client's namespace
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := dial(dctx, "tcp", listen)
		dcancel()
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the broker in %s did not accept within 100 tries: %v", nsBroker, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cfg := DefaultConfig(1, time.Second)
	hist := NewHistory(time.Now())
	w := &workload{cfg: &cfg, hist: hist, topic: "netns", seeds: []string{listen}, runID: 2,
		opts: []kgo.Opt{kgo.Dialer(dial)}}
	if err := w.createTopic(ctx, topicTimeout); err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("%v\nbroker log:\n%s", err, b)
	}
	stop := w.start(ctx)
	time.Sleep(2 * time.Second)
	t.Logf("partition: %s down", vethBroker)
	if err := ip("-n", nsBroker, "link", "set", vethBroker, "down"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := ip("-n", nsBroker, "link", "set", vethBroker, "up"); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	t.Logf("healed")
	r := &Report{}
	waitProgress(ctx, hist, cfg.Writers, healed, cfg.Recovery, r)
	if err := stop(stopTimeout); err != nil {
		t.Fatal(err)
	}
	final, err := w.readAll(ctx, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	chk := Check(hist.Ops(), final, hist.TailReads(), "")
	gap := longestAckGap(hist.Ops())
	t.Logf("writes %v; longest time without an ack %v; violations %v %v", hist.Counts(), gap, r.Counts, chk.Counts)
	if gap < 2*time.Second {
		t.Errorf("the longest time without an acknowledged write is %v: the 3 s partition did not bite", gap)
	}
	if !r.OK() || !chk.OK() {
		t.Fatalf("violations: %v %v (broker log %s)", r.Violations, chk.Violations, logf.Name())
	}
}

// netnsPreflight skips t when it may not build network namespaces: under -short, when
// not root, without a known setns(2) number, or without iproute2's ip.
func netnsPreflight(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real brokers in network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skipf("network namespaces need root (CAP_SYS_ADMIN): run `sudo go test ./chaos -run %s` to include this test", t.Name())
	}
	if setnsSyscall[runtime.GOARCH] == 0 {
		t.Skipf("no setns syscall number known for %s: no network namespace test", runtime.GOARCH)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2's `ip` is not installed: no network namespace test")
	}
}

// ipCmd runs `ip args...` for at most 10 s, on a context of its own: Cleanup calls it
// after the test's context has ended.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %v: %w: %s", args, err, out)
	}
	return nil
}

// setnsSyscall is setns(2)'s number by architecture (the syscall package lacks it; x/sys is
// not a direct dependency).
var setnsSyscall = map[string]uintptr{"amd64": 308, "arm64": 268}

// dialerIn returns a dialer whose sockets live in the network namespace at nsPath: each
// dial runs on a locked OS thread that joins the namespace, dials, and joins its own
// namespace again before it is unlocked. The thread must survive: a thread that exits
// fires the Pdeathsig of any process it started.
func dialerIn(nsPath string) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() { // ends after one dial
			runtime.LockOSThread()
			own, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer own.Close()
			if err := setns(nsPath); err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, host)
			if _, _, errno := syscall.RawSyscall(setnsSyscall[runtime.GOARCH], own.Fd(), syscall.CLONE_NEWNET, 0); errno == 0 {
				runtime.UnlockOSThread() // back home; otherwise the thread stays locked and exits with this goroutine
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// setns moves the calling thread into the network namespace at path.
func setns(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, errno := syscall.RawSyscall(setnsSyscall[runtime.GOARCH], f.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
		return fmt.Errorf("setns %s: %w", path, errno)
	}
	return nil
}

// longestAckGap is the longest time between two successive acknowledgements.
func longestAckGap(ops []Op) time.Duration {
	var rets []int64
	for _, op := range ops {
		if op.Outcome == Acked {
			rets = append(rets, op.RetNs)
		}
	}
	slices.Sort(rets)
	var gap int64
	for i := 1; i < len(rets); i++ {
		gap = max(gap, rets[i]-rets[i-1])
	}
	return time.Duration(gap)
}

func logErr(t *testing.T, err error) {
	if err != nil {
		t.Log(err)
	}
}
