// Package cluster launches real chronik processes on loopback for chaos tests, each
// behind a fault-injecting proxy (chaos/proxy) on its client port and, in cluster mode,
// every node-to-node link behind a proxy of its own.
//
// To run a cluster:
//  1. Build the broker once with Build (go build of chronik/cmd/chronik into a folder).
//  2. Start a Cluster with a Config naming the binary and a run folder. Node i listens on
//     a free loopback port, keeps its data in <run>/node-<i>/data, appends its stdout and
//     stderr to <run>/node-<i>.log, and advertises its proxy's address (-advertise), so
//     every client connection, including those a client opens after Metadata, crosses the
//     proxy.
//  3. With Config.Peered the nodes form one Raft cluster (-peers): node i listens for peers
//     on a port of its own (-peer-listen) and dials node j through the link proxy
//     Link(i, j), one per ordered pair, so a fault on Link(i, j) cuts what i sends to j
//     (the dialer is the sender) and leaves what j sends to i alone. Every node's -peers
//     names the client proxies as the Kafka addresses, so Metadata sends clients through
//     them too.
//  4. Inject faults: Node.Proxy().SetFaults, Link(i, j).SetFaults, Node.Kill (SIGKILL)
//     and Node.Restart (same data dir, same ports), Node.Pause (SIGSTOP) and Node.Resume
//     (SIGCONT).
//  5. Close the Cluster: it resumes paused nodes, stops every process (SIGTERM, then
//     SIGKILL after StopTimeout), waits for each, and closes the proxies. Processes are
//     only ever signalled by their own PID.
//
// Without Peered the nodes of a cluster of N are N independent brokers (each with its
// own -node-id), as the single-node chaos run uses.
package cluster

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
	"time"

	"chronik/chaos/proxy"
)

// Defaults of Config's durations.
const (
	DefaultStartTimeout = 15 * time.Second
	DefaultStopTimeout  = 5 * time.Second
)

// BinaryEnv names an environment variable that, when set, is the path of a prebuilt
// chronik binary that Build returns instead of building one.
const BinaryEnv = "CHAOS_CHRONIK_BIN"

// Build compiles chronik/cmd/chronik into dir and returns the binary's path. It runs in
// the current directory, which must be inside the chronik module. When $CHAOS_CHRONIK_BIN
// is set, Build returns it and compiles nothing.
func Build(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("cluster: $%s: %w", BinaryEnv, err)
		}
		return bin, nil
	}
	bin := filepath.Join(dir, "chronik")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "chronik/cmd/chronik")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cluster: go build: %w\n%s", err, out)
	}
	return bin, nil
}

// Config describes a cluster.
type Config struct {
	// Binary is the chronik executable (see Build).
	Binary string
	// Dir is the run folder; it is created if missing.
	Dir string
	// DataRoot, when set, holds the nodes' data dirs (<DataRoot>/node-<i>) instead of Dir:
	// a size-limited file system for a full-disk fault.
	DataRoot string
	// Nodes is the number of nodes (at least 1).
	Nodes int
	// Seed seeds the proxies' jitter.
	Seed uint64
	// Peered runs the nodes as one cluster (-peers, -peer-listen), with a proxy on every
	// node-to-node link.
	Peered bool
	// ElectionTimeout is each node's -election-timeout when Peered (0: the broker's
	// default).
	ElectionTimeout time.Duration
	// ArgsFor returns extra flags for node n (called at every start). May be nil.
	ArgsFor func(n *Node) []string
	// StartTimeout bounds how long a start waits for the node's port to accept.
	StartTimeout time.Duration
	// StopTimeout is how long a stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
}

func (c *Config) validate() error {
	if c.Binary == "" || c.Dir == "" || c.Nodes < 1 {
		return fmt.Errorf("cluster: config needs Binary, Dir and Nodes >= 1: %+v", *c)
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	return nil
}

// Cluster is a set of nodes. Its methods are safe for concurrent use.
type Cluster struct {
	cfg   Config
	nodes []*Node
	// links holds the node-to-node proxies by [from, to] node id (Peered only): from
	// dials to's peer listener through links[[2]int{from, to}].
	links map[[2]int]*proxy.Proxy

	closeOnce sync.Once
	closeErr  error
}

// Node is one chronik process and the proxy in front of its client port.
type Node struct {
	// ID is the node's id (1-based), passed as -node-id.
	ID     int
	cfg    *Config
	listen string // the broker's own listener
	// peerListen is the broker's own peer listener and peers its -peers (Peered only).
	peerListen, peers string
	dataDir           string
	logPath           string
	proxy             *proxy.Proxy

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while the node is down
	exited chan struct{} // closed when cmd's process has been waited for
	paused bool
	starts int
	// crashMu guards expectExit, crashes and the starts count noteExit reads (the waiter
	// goroutine cannot take mu: Kill holds it while waiting for that goroutine).
	crashMu sync.Mutex
	// expectExit is set before Kill or Stop signals the process; an exit without it is
	// a crash.
	expectExit bool
	crashes    []string
}

// Start creates the run folder and starts every node, each waiting until its port
// accepts. On error it stops what it started.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{cfg: cfg, links: map[[2]int]*proxy.Proxy{}}
	// Every address, the brokers' and the proxies', is drawn at once, so no two collide (a
	// proxy on ":0" could be given a port drawn for a broker that has not bound it yet).
	ports := 2 * cfg.Nodes // each node's listener and client proxy
	if cfg.Peered {
		ports += cfg.Nodes * cfg.Nodes // each node's peer listener and its links to the others
	}
	addrs, err := freeAddrs(ports)
	if err != nil {
		return nil, err
	}
	take := func() string { a := addrs[0]; addrs = addrs[1:]; return a }
	for i := 1; i <= cfg.Nodes; i++ {
		listen, proxyAddr, peerListen := take(), take(), ""
		if cfg.Peered {
			peerListen = take()
		}
		n, err := c.newNode(i, listen, proxyAddr, peerListen)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	if cfg.Peered {
		if err := c.wire(take); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.start(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// wire creates a proxy per ordered pair of nodes, listening on addresses from take, and
// each node's -peers: its own entry
// names its peer listener, every other entry the link proxy to that node, and every
// entry's Kafka address is that node's client proxy.
func (c *Cluster) wire(take func() string) error {
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			p, err := proxy.New(proxy.Config{Listen: take(), Target: to.peerListen,
				Seed: c.cfg.Seed + uint64(1000*from.ID+to.ID)})
			if err != nil {
				return err
			}
			c.links[[2]int{from.ID, to.ID}] = p
		}
	}
	for _, n := range c.nodes {
		entries := make([]string, 0, len(c.nodes))
		for _, m := range c.nodes {
			peerAddr := n.peerListen
			if m != n {
				peerAddr = c.links[[2]int{n.ID, m.ID}].Addr()
			}
			entries = append(entries, fmt.Sprintf("%d=%s/%s", m.ID, m.proxy.Addr(), peerAddr))
		}
		n.peers = strings.Join(entries, ",")
	}
	return nil
}

// newNode creates node id, whose broker listens on listen (and peerListen when Peered),
// behind a client proxy listening on proxyAddr.
func (c *Cluster) newNode(id int, listen, proxyAddr, peerListen string) (*Node, error) {
	p, err := proxy.New(proxy.Config{Listen: proxyAddr, Target: listen, Seed: c.cfg.Seed + uint64(id)})
	if err != nil {
		return nil, err
	}
	root := c.cfg.Dir
	if c.cfg.DataRoot != "" {
		root = c.cfg.DataRoot
	}
	dir := filepath.Join(root, fmt.Sprintf("node-%d", id))
	n := &Node{
		ID: id, cfg: &c.cfg, listen: listen, peerListen: peerListen, proxy: p,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(c.cfg.Dir, fmt.Sprintf("node-%d.log", id)),
	}
	if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
		p.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return n, nil
}

// Nodes returns the nodes; the caller must not modify the slice.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Bootstrap is the list of proxy addresses clients should use as seed brokers.
func (c *Cluster) Bootstrap() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.proxy.Addr()
	}
	return addrs
}

// Peered says whether the nodes form one cluster (Config.Peered).
func (c *Cluster) Peered() bool { return c.cfg.Peered }

// Link is the proxy node from (an id) dials node to through; nil without Peered or when
// from == to.
func (c *Cluster) Link(from, to int) *proxy.Proxy { return c.links[[2]int{from, to}] }

// LinksOf returns every link proxy from or to node id (none without Peered).
func (c *Cluster) LinksOf(id int) []*proxy.Proxy {
	if !c.cfg.Peered {
		return nil
	}
	var ps []*proxy.Proxy
	for _, m := range c.nodes {
		if m.ID == id {
			continue
		}
		ps = append(ps, c.links[[2]int{id, m.ID}], c.links[[2]int{m.ID, id}])
	}
	return ps
}

// HealNetwork removes every proxy fault, client and link.
func (c *Cluster) HealNetwork() {
	for _, n := range c.nodes {
		n.proxy.Heal()
	}
	for _, p := range c.links {
		p.Heal()
	}
}

// Close resumes paused nodes, stops every node, waits for the processes and closes the
// proxies. It returns the first error; a second Close does nothing and returns the same.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		for _, n := range c.nodes {
			errs = append(errs, n.Stop())
			errs = append(errs, n.proxy.Close())
		}
		for _, p := range c.links {
			errs = append(errs, p.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Proxy is the proxy in front of the node's client port.
func (n *Node) Proxy() *proxy.Proxy { return n.proxy }

// Addr is the address clients use: the proxy's.
func (n *Node) Addr() string { return n.proxy.Addr() }

// DirectAddr is the broker's own listener, bypassing the proxy.
func (n *Node) DirectAddr() string { return n.listen }

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// LogPath is the file the node's stdout and stderr are appended to.
func (n *Node) LogPath() string { return n.logPath }

// PID is the process id, or 0 while the node is down.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.upLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running says whether the process is up (paused counts as up).
func (n *Node) Running() bool { return n.PID() != 0 }

func (n *Node) start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.upLocked() {
		return fmt.Errorf("cluster: node %d already running", n.ID)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	n.starts++
	args := []string{
		"-listen", n.listen,
		"-advertise", n.proxy.Addr(),
		"-data-dir", n.dataDir,
		"-node-id", strconv.Itoa(n.ID),
	}
	if n.cfg.Peered {
		args = append(args, "-peers", n.peers, "-peer-listen", n.peerListen)
		if n.cfg.ElectionTimeout > 0 {
			args = append(args, "-election-timeout", n.cfg.ElectionTimeout.String())
		}
	}
	if n.cfg.ArgsFor != nil {
		args = append(args, n.cfg.ArgsFor(n)...)
	}
	cmd := exec.Command(n.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: the broker dies with the test process even if the test is killed. It
	// fires when the OS thread that forked it exits, which Go does only to a thread whose
	// goroutine ends while locked (runtime.LockOSThread): code beside a cluster must unlock
	// the threads it locks (see dialerIn in chaos/netns_test.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logf, "=== chaos: start %d of node %d at %s: %s %v\n", n.starts, n.ID, time.Now().UTC().Format(time.RFC3339Nano), n.cfg.Binary, args)
	n.crashMu.Lock()
	n.expectExit = false
	n.crashMu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start node %d: %w", n.ID, err)
	}
	startNo := n.starts
	exited := make(chan struct{})
	go func() { // ends when the process exits
		werr := cmd.Wait() // Kill and Stop expect a non-zero status
		n.noteExit(startNo, werr)
		close(exited)
	}()
	n.cmd, n.exited, n.paused = cmd, exited, false
	return n.waitReady(ctx, exited)
}

// noteExit records an exit that neither Kill nor Stop asked for.
func (n *Node) noteExit(startNo int, werr error) {
	n.crashMu.Lock()
	defer n.crashMu.Unlock()
	if !n.expectExit {
		n.crashes = append(n.crashes, fmt.Sprintf("start %d exited by itself at %s: %v", startNo, time.Now().UTC().Format(time.RFC3339Nano), werr))
	}
}

// Crashes describes each exit of the process that neither Kill nor Stop caused.
func (n *Node) Crashes() []string {
	n.crashMu.Lock()
	defer n.crashMu.Unlock()
	return append([]string(nil), n.crashes...)
}

// expect marks the coming exit as asked for.
func (n *Node) expect() {
	n.crashMu.Lock()
	n.expectExit = true
	n.crashMu.Unlock()
}

// waitReady waits until the broker's port accepts, the process exits, or the start
// timeout passes.
func (n *Node) waitReady(ctx context.Context, exited chan struct{}) error {
	deadline := time.Now().Add(n.cfg.StartTimeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", n.listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("cluster: node %d exited while starting; see %s", n.ID, n.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster: node %d did not accept on %s within %v; see %s", n.ID, n.listen, n.cfg.StartTimeout, n.logPath)
}

// upLocked says whether the process is up, forgetting one that exited by itself. The
// caller holds mu.
func (n *Node) upLocked() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		n.cmd, n.paused = nil, false
		return false
	default:
		return true
	}
}

// signal sends sig to the node's process; false when the node is down.
func (n *Node) signal(sig syscall.Signal) (bool, error) {
	if !n.upLocked() { // never signal a reaped (maybe reused) PID
		return false, nil
	}
	return true, syscall.Kill(n.cmd.Process.Pid, sig)
}

// Kill sends SIGKILL and waits for the process to exit. Killing a stopped node does
// nothing.
func (n *Node) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expect()
	up, err := n.signal(syscall.SIGKILL)
	if !up {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: kill node %d: %w", n.ID, err)
	}
	<-n.exited
	n.cmd, n.paused = nil, false
	return nil
}

// Restart starts a stopped or killed node again on the same data dir and ports.
func (n *Node) Restart(ctx context.Context) error { return n.start(ctx) }

// Pause stops the process with SIGSTOP: its sockets stay open and it answers nothing.
func (n *Node) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	up, err := n.signal(syscall.SIGSTOP)
	if up && err == nil {
		n.paused = true
	}
	return err
}

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	up, err := n.signal(syscall.SIGCONT)
	if up && err == nil {
		n.paused = false
	}
	return err
}

// Paused says whether the node is paused.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// Stop resumes the node if paused, sends SIGTERM, and SIGKILL after StopTimeout; it
// waits for the process either way. Stopping a stopped node does nothing.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expect()
	var errs []error
	if n.paused {
		_, err := n.signal(syscall.SIGCONT)
		errs = append(errs, err)
	}
	up, err := n.signal(syscall.SIGTERM)
	if !up {
		return nil
	}
	errs = append(errs, err)
	select {
	case <-n.exited:
	case <-time.After(n.cfg.StopTimeout):
		_, err := n.signal(syscall.SIGKILL)
		errs = append(errs, err, fmt.Errorf("cluster: node %d ignored SIGTERM for %v; killed", n.ID, n.cfg.StopTimeout))
		<-n.exited
	}
	n.cmd, n.paused = nil, false
	return errors.Join(errs...)
}

// maxFreeAddrs bounds freeAddrs.
const maxFreeAddrs = 1024

// freeAddrs asks the kernel for n distinct free loopback addresses, holding each until it
// has them all. Another process may take one before it is bound again; Start then fails
// and says so.
func freeAddrs(n int) ([]string, error) {
	if n > maxFreeAddrs {
		return nil, fmt.Errorf("cluster: %d addresses, more than %d", n, maxFreeAddrs)
	}
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
