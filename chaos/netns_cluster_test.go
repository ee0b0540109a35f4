package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/chaos/cluster"
)

// The cluster test's network, 10.213.8.0/24, exists only inside the test's namespaces:
// node i is 10.213.8.i, the hub's bridge (where the clients dial from) 10.213.8.100.
const (
	netnsClusterNet  = "10.213.8."
	netnsHubHost     = "100"
	netnsKafkaPort   = "9092"
	netnsPeerPort    = "9093"
	netnsClusterSize = 3
)

// netnsFault is one step of TestNetnsCluster's fixed fault plan.
type netnsFault struct {
	// name is the kind, as the log prints it.
	name string
	// partition's leader is the victim (node 1 when no leader is known).
	partition int32
	// length is how long the fault lasts.
	length time.Duration
	// apply cuts the network around victim (1-based) and returns the heal.
	apply func(nc *netnsCluster, victim int) (heal func() error, err error)
	// mustMove: the partition's leader must change while the fault lasts (the victim
	// cannot reach a quorum, and the clients reach the others).
	mustMove bool
}

// netnsPlan is the fault plan: every fault is made by the kernel (a link down, blackhole
// routes), none by a proxy.
var netnsPlan = []netnsFault{
	{name: "link-down", partition: 0, length: 4 * time.Second, mustMove: true,
		apply: func(nc *netnsCluster, v int) (func() error, error) { return nc.linkDown(v) }},
	{name: "pair", partition: 1, length: 4 * time.Second,
		apply: func(nc *netnsCluster, v int) (func() error, error) {
			return nc.blackhole([2]int{v, nc.next(v)}, [2]int{nc.next(v), v})
		}},
	{name: "peers-cut", partition: 2, length: 4 * time.Second,
		apply: func(nc *netnsCluster, v int) (func() error, error) {
			a, b := nc.next(v), nc.next(nc.next(v))
			return nc.blackhole([2]int{v, a}, [2]int{a, v}, [2]int{v, b}, [2]int{b, v})
		}},
	{name: "one-way", partition: 0, length: 3 * time.Second,
		apply: func(nc *netnsCluster, v int) (func() error, error) { return nc.blackhole([2]int{v, nc.next(v)}) }},
}

// netnsGap is the time between two faults of the plan, and netnsLeaderWait how long a
// fault waits for its partition to have a leader before it falls back to node 1.
const (
	netnsGap        = 1500 * time.Millisecond
	netnsLeaderWait = 3 * time.Second
	// netnsBound bounds the test after the build (about 35 s when nothing is wrong): a
	// check that waits out its bound fails at the latest then.
	netnsBound = 90 * time.Second
)

// TestNetnsCluster runs a 3-node cluster with each node in a network namespace of its
// own, joined to a bridge in a hub namespace by a veth pair, and the workload's clients
// dialing from the hub. It partitions nodes with the kernel, not with a proxy, following
// netnsPlan: a node's veth down (cut from clients and peers), blackhole routes between
// two nodes (a partial partition: both still reach the third and the clients), between a
// node and both peers (clients still reach it), and from a node to one peer (one way).
// Then it heals and runs the checks of a chaos run. It needs root and iproute2; elsewhere
// it skips and says why.
func TestNetnsCluster(t *testing.T) {
	netnsPreflight(t)
	bctx, bcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer bcancel()
	bin := chronikBinary(t, bctx)
	ctx, cancel := context.WithTimeout(context.Background(), netnsBound)
	defer cancel()
	dir := filepath.Join("out", "netns-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered first, so it runs after the brokers are gone
		if t.Failed() || *flagKeep {
			t.Logf("node logs and history kept in %s", dir)
			return
		}
		logErr(t, os.RemoveAll(dir))
	})
	nc := newNetnsCluster(t, dir, bin)
	nc.startAll(ctx)
	t.Logf("%d nodes up, each in its own namespace; clients dial from %s", netnsClusterSize, nc.hub)

	cfg := DefaultConfig(1, time.Minute)
	cfg.ReplicationFactor = netnsClusterSize
	start := time.Now()
	hist := NewHistory(start)
	dial := dialerIn("/run/netns/" + nc.hub)
	w := &workload{cfg: &cfg, hist: hist, topic: "netns", seeds: nc.kafkaAddrs(), runID: uint32(start.Unix()),
		opts: []kgo.Opt{kgo.Dialer(dial)}}
	if err := w.createTopic(ctx, topicTimeout); err != nil {
		t.Fatal(err)
	}
	adm, err := kgo.NewClient(w.clientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	closeAdm := sync.OnceFunc(adm.Close)
	defer closeAdm()
	stop := w.start(ctx)
	stopGroup := w.startGroup(ctx)
	time.Sleep(2 * time.Second)

	r := &Report{}
	for _, f := range netnsPlan {
		nc.runFault(ctx, adm, w.topic, f, r)
		time.Sleep(netnsGap)
	}
	healed := time.Now()
	waitProgress(ctx, hist, cfg.Writers, healed, cfg.Recovery, r)
	waitInSync(ctx, adm, w.topic, netnsClusterSize, netnsClusterSize, inSyncWait, r)
	t.Logf("%.1fs: recovered: %v", time.Since(start).Seconds(), r.Counts)
	if err := stop(stopTimeout); err != nil {
		t.Fatal(err)
	}
	final, err := w.readAll(ctx, readTimeout)
	if err != nil {
		t.Fatal(errors.Join(err, stopGroup(), hist.WriteFiles(dir, final)))
	}
	end := map[int32]int64{} // one past the last record that is not a control record
	for p, rs := range final {
		for _, rd := range rs {
			if !rd.Control {
				end[p] = rd.Offset + 1
			}
		}
	}
	for gdeadline := time.Now().Add(groupCatchUp); !hist.GroupReached(end) && time.Now().Before(gdeadline); {
		sleepUntil(ctx, time.Now().Add(100*time.Millisecond))
	}
	if !hist.GroupReached(end) {
		r.violate("group-behind", -1, "the consumer group had not read to the end offsets %v within %v of the final read", end, groupCatchUp)
	}
	if err := stopGroup(); err != nil {
		t.Fatal(err)
	}
	closeAdm()
	nc.stopAll(r) // before the log scan: a panic at shutdown counts
	for i := 1; i <= netnsClusterSize; i++ {
		if err := scanLog(r, i, nc.logPath(i)); err != nil {
			t.Fatal(err)
		}
	}
	CheckGroup(r, hist.GroupReads(), final)
	chk := Check(hist.Ops(), final, hist.TailReads(), dir)
	if err := hist.WriteFiles(dir, final); err != nil {
		t.Fatal(err)
	}
	if hist.Counts()[Acked] == 0 {
		r.violate("no-acks", -1, "no write was acknowledged in the whole run")
	}
	t.Logf("%.1fs: writes %v; final log ends at %v; violations %v %v", time.Since(start).Seconds(), hist.Counts(), end, r.Counts, chk.Counts)
	if !r.OK() || !chk.OK() {
		t.Fatalf("violations:\n%s", formatViolations(append(r.Violations, chk.Violations...)))
	}
}

// runFault applies f to the leader of f.partition (node 1 when none is known within
// netnsLeaderWait), holds it for f.length while asking
// the clients' view of that leader every 250 ms, and heals it. A fault that must move
// the leader and did not is reported as a violation of kind fault-did-not-bite.
func (nc *netnsCluster) runFault(ctx context.Context, adm *kgo.Client, topic string, f netnsFault, r *Report) {
	victim, aim := 1, fmt.Sprintf("no leader of p%d known", f.partition)
	for deadline := time.Now().Add(netnsLeaderWait); ; sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
		l, err := leaderOf(ctx, adm, topic, f.partition, netnsClusterSize)
		if err == nil {
			victim, aim = l+1, fmt.Sprintf("the leader of p%d", f.partition)
			break
		}
		if !time.Now().Before(deadline) {
			nc.t.Logf("leader of p%d unknown for %v (%v): node 1 takes the fault", f.partition, netnsLeaderWait, err)
			break
		}
	}
	heal, err := f.apply(nc, victim)
	if err != nil {
		nc.t.Fatalf("%s on node %d: %v", f.name, victim, err)
	}
	nc.t.Logf("%s on node %d (%s) for %v", f.name, victim, aim, f.length)
	leaders := map[int]bool{}
	for end := time.Now().Add(f.length); time.Now().Before(end); sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		if l, err := leaderOf(qctx, adm, topic, f.partition, netnsClusterSize); err == nil {
			leaders[l+1] = true
		}
		cancel()
	}
	if err := heal(); err != nil {
		nc.t.Fatalf("heal %s on node %d: %v", f.name, victim, err)
	}
	nc.t.Logf("healed %s; leaders of p%d seen meanwhile: %v", f.name, f.partition, leaders)
	delete(leaders, victim)
	if f.mustMove && len(leaders) == 0 {
		r.violate("fault-did-not-bite", f.partition, "%s on node %d for %v: no other leader of p%d was seen", f.name, victim, f.length, f.partition)
	}
}

// netnsCluster is TestNetnsCluster's network and brokers. The hub namespace holds a
// bridge with address .100; node i's namespace holds eth0 (10.213.8.i), whose veth peer
// n<i> is a port of the bridge. Every interface is created inside the test's namespaces,
// so the host's interfaces and routes are never touched, and deleting the namespaces
// deletes everything.
type netnsCluster struct {
	t   *testing.T
	dir string
	bin string
	hub string
	// ns[i-1] is node i's namespace.
	ns    []string
	nodes []*netnsNode
}

// netnsNode is one broker process, started by `ip netns exec`, which execs in place: the
// PID is the broker's.
type netnsNode struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	// mu guards stopping and crash.
	mu       sync.Mutex
	stopping bool   // set before the test signals the process
	crash    string // how the process exited when nobody asked it to
}

// newNetnsCluster creates the hub and node namespaces, the bridge and the veth pairs,
// and registers their deletion. It skips t when the first namespace cannot be created.
func newNetnsCluster(t *testing.T, dir, bin string) *netnsCluster {
	id := strconv.Itoa(os.Getpid() % 1_000_000)
	nc := &netnsCluster{t: t, dir: dir, bin: bin, hub: "chaos-hub-" + id}
	if err := ipCmd("netns", "add", nc.hub); err != nil {
		t.Skipf("`ip netns add` does not work on this machine (%v): no network namespace test", err)
	}
	t.Cleanup(func() { logErr(t, ipCmd("netns", "del", nc.hub)) })
	hub := func(args ...string) error { return ipCmd(append([]string{"-n", nc.hub}, args...)...) }
	if err := hub("link", "add", "br0", "type", "bridge"); err != nil {
		t.Skipf("bridges are not available (%v): no network namespace cluster test", err)
	}
	for _, args := range [][]string{
		{"addr", "add", netnsClusterNet + netnsHubHost + "/24", "dev", "br0"},
		{"link", "set", "br0", "up"},
		{"link", "set", "lo", "up"},
	} {
		if err := hub(args...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= netnsClusterSize; i++ {
		ns := fmt.Sprintf("chaos-n%d-%s", i, id)
		if err := ipCmd("netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logErr(t, ipCmd("netns", "del", ns)) })
		nc.ns = append(nc.ns, ns)
		port := "n" + strconv.Itoa(i)
		if err := hub("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
			t.Skipf("veth pairs are not available (%v): no network namespace cluster test", err)
		}
		for _, args := range [][]string{
			{"-n", nc.hub, "link", "set", port, "master", "br0"},
			{"-n", nc.hub, "link", "set", port, "up"},
			{"-n", ns, "addr", "add", nc.host(i) + "/24", "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		} {
			if err := ipCmd(args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nc
}

// host is node i's address.
func (nc *netnsCluster) host(i int) string { return netnsClusterNet + strconv.Itoa(i) }

// next is the node after i, round the ring.
func (nc *netnsCluster) next(i int) int { return i%netnsClusterSize + 1 }

// kafkaAddrs are the nodes' Kafka listeners, reachable from the hub.
func (nc *netnsCluster) kafkaAddrs() []string {
	addrs := make([]string, netnsClusterSize)
	for i := range addrs {
		addrs[i] = net.JoinHostPort(nc.host(i+1), netnsKafkaPort)
	}
	return addrs
}

func (nc *netnsCluster) logPath(i int) string {
	return filepath.Join(nc.dir, fmt.Sprintf("node-%d.log", i))
}

// startAll starts every node and waits until each accepts a connection from the hub.
func (nc *netnsCluster) startAll(ctx context.Context) {
	var peers []string
	for i := 1; i <= netnsClusterSize; i++ {
		peers = append(peers, fmt.Sprintf("%d=%s/%s", i, net.JoinHostPort(nc.host(i), netnsKafkaPort), net.JoinHostPort(nc.host(i), netnsPeerPort)))
	}
	for i := 1; i <= netnsClusterSize; i++ {
		nc.nodes = append(nc.nodes, nc.start(i, strings.Join(peers, ",")))
	}
	dial := dialerIn("/run/netns/" + nc.hub)
	for i, addr := range nc.kafkaAddrs() {
		for try := 0; ; try++ {
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			c, err := dial(dctx, "tcp", addr)
			dcancel()
			if err == nil {
				c.Close()
				break
			}
			if try == 100 {
				nc.t.Fatalf("node %d did not accept on %s within 100 tries: %v; see %s", i+1, addr, err, nc.logPath(i+1))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// start starts node i in its namespace and registers its kill.
func (nc *netnsCluster) start(i int, peers string) *netnsNode {
	logf, err := os.Create(nc.logPath(i))
	if err != nil {
		nc.t.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	kafka := net.JoinHostPort(nc.host(i), netnsKafkaPort)
	args := []string{"netns", "exec", nc.ns[i-1], nc.bin,
		"-listen", kafka, "-advertise", kafka,
		"-data-dir", filepath.Join(nc.dir, fmt.Sprintf("node-%d", i), "data"),
		"-node-id", strconv.Itoa(i), "-peers", peers,
		"-peer-listen", net.JoinHostPort(nc.host(i), netnsPeerPort),
		"-election-timeout", "1s",
	}
	fmt.Fprintf(logf, "=== chaos: start of node %d: ip %v\n", i, args)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: the broker dies with the test process (see cluster.Node.start).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		nc.t.Fatal(err)
	}
	n := &netnsNode{cmd: cmd, exited: make(chan struct{})}
	go func() { // ends when the process exits
		werr := cmd.Wait()
		n.mu.Lock()
		if !n.stopping {
			n.crash = fmt.Sprintf("exited by itself at %s: %v", time.Now().UTC().Format(time.RFC3339Nano), werr)
		}
		n.mu.Unlock()
		close(n.exited)
	}()
	nc.t.Cleanup(func() { n.signal(syscall.SIGKILL); <-n.exited })
	return n
}

// signal sends sig to the node's process unless it has exited (never to a reaped PID).
func (n *netnsNode) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopping = true
	select {
	case <-n.exited:
	default:
		_ = syscall.Kill(n.cmd.Process.Pid, sig) // ESRCH only: it exited meanwhile
	}
}

// stopAll stops every node (SIGTERM, SIGKILL after 5 s) and reports node-crashed for
// one that had exited by itself or ignored SIGTERM.
func (nc *netnsCluster) stopAll(r *Report) {
	for i, n := range nc.nodes {
		n.mu.Lock()
		crash := n.crash
		n.mu.Unlock()
		if crash != "" {
			r.violate("node-crashed", -1, "node %d: %s; see %s", i+1, crash, nc.logPath(i+1))
		}
		n.signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(cluster.DefaultStopTimeout):
			n.signal(syscall.SIGKILL)
			<-n.exited
			r.violate("node-crashed", -1, "node %d ignored SIGTERM for %v; killed", i+1, cluster.DefaultStopTimeout)
		}
	}
}

// linkDown takes node v's bridge port down: nothing reaches v and nothing leaves it,
// clients and peers alike. The heal takes it up again.
func (nc *netnsCluster) linkDown(v int) (func() error, error) {
	port := "n" + strconv.Itoa(v)
	if err := ipCmd("-n", nc.hub, "link", "set", port, "down"); err != nil {
		return nil, err
	}
	return func() error { return ipCmd("-n", nc.hub, "link", "set", port, "up") }, nil
}

// blackhole adds, for each [from, to], a blackhole route to node to's address in node
// from's namespace: from's kernel drops every packet it would send to to (new
// connections fail at once, established ones retransmit into nothing). The heal deletes
// the routes.
func (nc *netnsCluster) blackhole(pairs ...[2]int) (func() error, error) {
	route := func(op string, p [2]int) error {
		return ipCmd("-n", nc.ns[p[0]-1], "route", op, "blackhole", nc.host(p[1])+"/32")
	}
	heal := func(added [][2]int) error {
		var errs []error
		for _, p := range added {
			errs = append(errs, route("del", p))
		}
		return errors.Join(errs...)
	}
	for i, p := range pairs {
		if err := route("add", p); err != nil {
			return nil, errors.Join(err, heal(pairs[:i]))
		}
	}
	return func() error { return heal(pairs) }, nil
}

// formatViolations is one violation a line.
func formatViolations(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  %v\n", v)
	}
	return b.String()
}
