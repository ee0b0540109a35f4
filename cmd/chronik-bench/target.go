package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	gonet "net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"chronik/disk"
	"chronik/kafka"
	cnet "chronik/net"
)

// Limits on starting and stopping brokers.
const (
	buildTimeout   = 5 * time.Minute
	readyTimeout   = 30 * time.Second
	stopGrace      = 15 * time.Second
	dialTimeout    = time.Second
	readyPollEvery = 20 * time.Millisecond
	logTailBytes   = 4 << 10
)

// target is one broker under test, listening on 127.0.0.1: a single broker or a cluster
// of several.
type target struct {
	name string // "chronik" or "kfake"
	mode string // how it runs, for the report
	// addrs is every broker's Kafka address; clients are seeded with all of them.
	addrs []string
	// procs are the broker's own processes when it runs as children (one per node for a
	// Chronik cluster, one for kfake); empty otherwise.
	procs []*child
	// inProcess is set when the broker runs in this process, sharing its CPU and memory.
	inProcess bool
	stop      func() error
}

// peakRSS is each of the broker's processes' VmHWM, in the order of procs; nil when the
// broker has no process of its own. An unknown figure is -1 and its error is returned.
func (t *target) peakRSS() ([]int64, error) {
	var rss []int64
	var errs []error
	for _, c := range t.procs {
		b, err := c.peakRSS()
		if err != nil {
			errs = append(errs, err)
			b = -1
		}
		rss = append(rss, b)
	}
	return rss, errors.Join(errs...)
}

// cpu is the CPU time the broker's own processes have used so far, summed, or -1 when it
// has none or one cannot be read.
func (t *target) cpu() time.Duration {
	if len(t.procs) == 0 {
		return -1
	}
	var sum time.Duration
	for _, c := range t.procs {
		d, err := cpuTime(c.cmd.Process.Pid)
		if err != nil {
			return -1
		}
		sum += d
	}
	return sum
}

// exited is the first of the broker's processes that has exited, or nil.
func (t *target) exited() *child {
	for _, c := range t.procs {
		select {
		case <-c.done:
			return c
		default:
		}
	}
	return nil
}

// brokerLabels marks a broker's goroutines in a CPU profile: every goroutine a broker
// starts inherits them, so `go tool pprof -tagfocus target=chronik` isolates it.
func brokerLabels(name string) pprof.LabelSet {
	return pprof.Labels("target", name, "role", "broker")
}

// startChronikInProcess starts a broker in this process with its data in dataDir on the
// OS filesystem (fsync on).
func startChronikInProcess(ctx context.Context, dataDir string) (*target, error) {
	ln, err := gonet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var b *cnet.Broker
	pprof.Do(ctx, brokerLabels("chronik"), func(ctx context.Context) {
		b, err = cnet.StartBroker(ctx, ln, kafka.Config{NodeID: 1, DataDir: dataDir}, disk.OS(), 1, cnet.ServerConfig{})
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &target{name: "chronik", mode: "in-process (net.StartBroker, disk.OS, fsync on)", addrs: []string{b.Addr()}, inProcess: true, stop: b.Close}, nil
}

// startKfakeInProcess starts a kfake cluster of n brokers in this process.
func startKfakeInProcess(ctx context.Context, n int) (*target, error) {
	var c *kfake.Cluster
	var err error
	pprof.Do(ctx, brokerLabels("kfake"), func(context.Context) {
		c, err = kfake.NewCluster(kfake.NumBrokers(n))
	})
	if err != nil {
		return nil, err
	}
	mode := fmt.Sprintf("in-process (kfake.NewCluster(NumBrokers(%d)), in memory)", n)
	return &target{name: "kfake", mode: mode, addrs: c.ListenAddrs(), inProcess: true, stop: func() error { c.Close(); return nil }}, nil
}

// serveKfake is the body of a kfake child process: one kfake cluster with a broker on
// each of the comma-separated addrs until SIGTERM, SIGINT or the death of the parent
// (Pdeathsig).
func serveKfake(addrs string) error {
	var ports []int
	for _, addr := range strings.Split(addrs, ",") {
		_, portStr, err := gonet.SplitHostPort(addr)
		if err != nil {
			return err
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return err
		}
		ports = append(ports, port)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kfake.NewCluster(kfake.NumBrokers(len(ports)), kfake.Ports(ports...))
	if err != nil {
		return err
	}
	<-ctx.Done()
	c.Close()
	return nil
}

// buildChronik builds cmd/chronik into dir and returns the binary's path.
func buildChronik(ctx context.Context, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "chronik")
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildvcs=auto", "-o", bin, "chronik/cmd/chronik")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench: go build chronik/cmd/chronik (run from inside the chronik module, or pass -chronik-bin): %w\n%s", err, out.Bytes())
	}
	return bin, nil
}

// vcsOf says which commit a Go binary was built from, as the go command stamped it.
func vcsOf(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "an unknown revision"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "an unknown revision (no VCS stamp)"
	}
	rev = rev[:min(len(rev), 12)]
	if modified == "true" {
		return "commit " + rev + " plus uncommitted changes"
	}
	return "commit " + rev
}

// child is a broker running as a child process.
type child struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited; err is then set
	err     error
}

func startChild(path string, args []string, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The child dies with us even if we are killed before we can stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

// stop asks the child to exit (SIGTERM), kills it after stopGrace, and waits for it.
func (c *child) stop() error {
	select {
	case <-c.done:
		return fmt.Errorf("bench: %s exited early: %v%s", filepath.Base(c.cmd.Path), c.err, c.logTail())
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-c.done:
		return nil // a signalled exit is the expected one
	case <-time.After(stopGrace):
	}
	if err := c.cmd.Process.Kill(); err != nil {
		return err
	}
	<-c.done
	return fmt.Errorf("bench: %s ignored SIGTERM for %v and was killed", filepath.Base(c.cmd.Path), stopGrace)
}

// peakRSS is the child's VmHWM. Once it has exited, its VmHWM is gone from /proc and the
// peak comes from the ru_maxrss that wait4 returned, the same figure.
func (c *child) peakRSS() (int64, error) {
	rss, err := peakRSSBytes(strconv.Itoa(c.cmd.Process.Pid))
	if err == nil {
		return rss, nil
	}
	select {
	case <-c.done:
		if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return ru.Maxrss << 10, nil // kilobytes on Linux
		}
	default:
	}
	return -1, err
}

func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return "\n--- " + c.logPath + " ---\n" + string(b)
}

// waitReady waits until addr accepts a connection, the child exits, or readyTimeout.
func (c *child) waitReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var d gonet.Dialer
	for {
		dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
		conn, err := d.DialContext(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			return conn.Close()
		}
		select {
		case <-c.done:
			return fmt.Errorf("bench: %s exited before listening: %v%s", filepath.Base(c.cmd.Path), c.err, c.logTail())
		case <-ctx.Done():
			return fmt.Errorf("bench: %s not listening on %s after %v: %w%s", filepath.Base(c.cmd.Path), addr, readyTimeout, err, c.logTail())
		case <-time.After(readyPollEvery):
		}
	}
}

// freeLoopbackAddrs finds n distinct ports on 127.0.0.1 that are free now. It holds every
// listener until it has all n, so it never returns the same port twice.
func freeLoopbackAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []gonet.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := gonet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// startChildTarget starts one child process per entry of args (entry i must make it
// listen on addrs[i]) and waits until every one listens. On error it stops the children
// it started.
func startChildTarget(ctx context.Context, name, mode, path string, args [][]string, addrs, logPaths []string) (*target, error) {
	t := &target{name: name, mode: mode, addrs: addrs}
	t.stop = func() error { return stopAll(t.procs) }
	for i := range args {
		c, err := startChild(path, args[i], logPaths[i])
		if err != nil {
			return nil, errors.Join(err, t.stop())
		}
		t.procs = append(t.procs, c)
	}
	for i, c := range t.procs {
		if err := c.waitReady(ctx, addrs[i]); err != nil {
			return nil, errors.Join(err, t.stop())
		}
	}
	return t, nil
}

// stopAll stops the children at once, so that no node of a cluster outlives its peers for
// long, and waits for all of them.
func stopAll(cs []*child) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { errs[i] = c.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startChronikChild runs the chronik binary bin with its data in dataDir.
func startChronikChild(ctx context.Context, bin, dataDir, extraArgs, logPath string) (*target, error) {
	addrs, err := freeLoopbackAddrs(1)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-listen", addrs[0], "-data-dir", dataDir, "-quiet"}, strings.Fields(extraArgs)...)
	mode := "child process: " + filepath.Base(bin) + " " + strings.Join(args, " ") + " (fsync on); binary built from " + vcsOf(bin)
	return startChildTarget(ctx, "chronik", mode, bin, [][]string{args}, addrs, []string{logPath})
}

// startChronikCluster runs n chronik processes from bin in cluster mode on free loopback
// ports (a Kafka and a peer port each), node i (from 1) with its data in dir/node<i> and
// its log in dir/node<i>.log.
func startChronikCluster(ctx context.Context, bin, dir string, n int, extraArgs string) (*target, error) {
	ports, err := freeLoopbackAddrs(2 * n)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	kafkaAddrs, peerAddrs := ports[:n], ports[n:]
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s/%s", i+1, kafkaAddrs[i], peerAddrs[i]))
	}
	var args [][]string
	var logs []string
	for i := range n {
		node := fmt.Sprintf("node%d", i+1)
		a := []string{"-node-id", strconv.Itoa(i + 1), "-peers", strings.Join(peers, ","), "-data-dir", filepath.Join(dir, node), "-quiet"}
		args = append(args, append(a, strings.Fields(extraArgs)...))
		logs = append(logs, filepath.Join(dir, node+".log"))
	}
	extra := ""
	if extraArgs != "" {
		extra = extraArgs + " "
	}
	mode := fmt.Sprintf("%d child processes in cluster mode: %s -node-id <i> -peers %s -data-dir <dir>/node<i> -quiet %s(fsync on); binary built from %s",
		n, filepath.Base(bin), strings.Join(peers, ","), extra, vcsOf(bin))
	return startChildTarget(ctx, "chronik", mode, bin, args, kafkaAddrs, logs)
}

// startKfakeChild runs this program again in -serve-kfake mode: one process holding a
// kfake cluster of n brokers.
func startKfakeChild(ctx context.Context, n int, logPath string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addrs, err := freeLoopbackAddrs(n)
	if err != nil {
		return nil, err
	}
	mode := fmt.Sprintf("child process: kfake.NewCluster(NumBrokers(%d)), in memory", n)
	t, err := startChildTarget(ctx, "kfake", mode, self, [][]string{{"-serve-kfake", strings.Join(addrs, ",")}}, addrs[:1], []string{logPath})
	if err != nil {
		return nil, err
	}
	for _, a := range addrs[1:] {
		if err := t.procs[0].waitReady(ctx, a); err != nil {
			return nil, errors.Join(err, t.stop())
		}
	}
	t.addrs = addrs
	return t, nil
}
