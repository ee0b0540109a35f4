// Command chronik-idle measures what an idle Chronik cluster costs: the CPU and memory of
// each node while it hosts many partitions and no client sends anything.
//
// One run:
//  1. Builds cmd/chronik (or takes -chronik-bin) and starts -nodes processes of it in
//     cluster mode on free 127.0.0.1 ports (a Kafka and a peer port each), each with its
//     own data dir under a fresh temp dir.
//  2. Creates one topic with -partitions partitions and replication factor -rf through
//     kadm, retrying while the cluster has no metadata leader, and waits until metadata
//     shows a leader for every partition. Then it closes its client.
//  3. Waits -settle for the partitions to quiesce, then reads each process's CPU time
//     (utime+stime, /proc/<pid>/stat) at the start and end of -measure, and its RSS.
//  4. Prints a markdown report (and writes it to -out) with % of one core per node, the
//     -goal, and exits non-zero only when a step fails; never because of a figure.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	gonet "net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits.
const (
	maxNodes      = 9
	maxPartitions = 100_000
	buildTimeout  = 5 * time.Minute
	// listenTimeout bounds waiting for a node's Kafka port to accept connections.
	listenTimeout = 30 * time.Second
	// createTimeout bounds creating the topic, retries included (the cluster answers
	// NOT_CONTROLLER until its metadata group has a leader).
	createTimeout = 2 * time.Minute
	// leadersTimeout bounds waiting for every partition to have a leader.
	leadersTimeout = 3 * time.Minute
	// requestTimeout bounds one admin request.
	requestTimeout = 30 * time.Second
	retryEvery     = 500 * time.Millisecond
	stopGrace      = 15 * time.Second
	logTailBytes   = 4 << 10
	// timelineSteps is how many equal parts of the window the report shows CPU for, to
	// tell a cluster still settling from a steady one.
	timelineSteps = 6
	idleTopic     = "idle"
	// userHZ is the unit of utime and stime in /proc/<pid>/stat (100 on every Linux
	// architecture Go supports).
	userHZ = 100
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chronik-idle:", err)
		os.Exit(1)
	}
}

type options struct {
	nodes, partitions, rf int
	settle, measure       time.Duration
	goalPct               float64
	chronikBin            string
	chronikArgs           string
	out                   string
	timeout               time.Duration
	commandLine           string
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik-idle", flag.ContinueOnError)
	fs.IntVar(&o.nodes, "nodes", 3, "chronik processes in the cluster")
	fs.IntVar(&o.partitions, "partitions", 1000, "partitions of the one topic")
	fs.IntVar(&o.rf, "rf", 3, "replication factor of the topic")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "wait this long after every partition has a leader before measuring")
	fs.DurationVar(&o.measure, "measure", 30*time.Second, "measure CPU over this long")
	fs.Float64Var(&o.goalPct, "goal", 5, "the goal, in % of one core per node, printed beside the figures")
	fs.StringVar(&o.chronikBin, "chronik-bin", "", "chronik binary; default: go build chronik/cmd/chronik into a temp dir")
	fs.StringVar(&o.chronikArgs, "chronik-args", "", "extra space-separated flags for every node, e.g. \"-raft-tick 50ms\"")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to this file (e.g. docs/benchmarks/cluster-idle-YYYY-MM-DD.md)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.nodes < 1 || o.nodes > maxNodes:
		return nil, fmt.Errorf("-nodes must be 1 to %d", maxNodes)
	case o.partitions < 1 || o.partitions > maxPartitions:
		return nil, fmt.Errorf("-partitions must be 1 to %d", maxPartitions)
	case o.rf < 1 || o.rf > o.nodes:
		return nil, errors.New("-rf must be 1 to -nodes")
	case o.settle < 0 || o.measure < time.Second || o.timeout <= 0:
		return nil, errors.New("-settle must be >= 0, -measure >= 1s, -timeout > 0")
	}
	o.commandLine = "go run ./cmd/chronik-idle"
	for _, a := range args {
		o.commandLine += " " + a
	}
	return o, nil
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "chronik-idle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := o.chronikBin
	if bin == "" {
		fmt.Fprintln(os.Stderr, "chronik-idle: building chronik/cmd/chronik")
		if bin, err = buildChronik(ctx, tmp); err != nil {
			return err
		}
	}
	c, err := startCluster(ctx, bin, tmp, o.nodes, o.chronikArgs)
	defer func() {
		if err := c.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "chronik-idle: stop:", err)
		}
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "chronik-idle: %d nodes on %s\n", o.nodes, strings.Join(c.addrs, ","))

	rep := &report{opts: o, loadStart: loadAverage(), started: time.Now(), bin: bin}
	t0 := time.Now()
	leaders, err := createAndWait(ctx, c.addrs, o)
	if err != nil {
		return c.explain(err)
	}
	rep.ready, rep.before = time.Since(t0), leaders
	fmt.Fprintf(os.Stderr, "chronik-idle: %d partitions with a leader after %v; settling %v\n", o.partitions, rep.ready.Round(time.Millisecond), o.settle)
	if err := sleep(ctx, o.settle); err != nil {
		return err
	}
	cpu0, err := c.cpu()
	if err != nil {
		return c.explain(err)
	}
	w0 := time.Now()
	fmt.Fprintf(os.Stderr, "chronik-idle: measuring for %v\n", o.measure)
	rep.nodes = make([]nodeFigures, o.nodes)
	prev, prevAt := cpu0, w0
	for k := 1; k <= timelineSteps; k++ {
		if err := sleep(ctx, time.Until(w0.Add(o.measure*time.Duration(k)/timelineSteps))); err != nil {
			return err
		}
		cur, err := c.cpu()
		if err != nil {
			return c.explain(err)
		}
		now := time.Now()
		for i := range rep.nodes {
			rep.nodes[i].timeline = append(rep.nodes[i].timeline, 100*float64(cur[i]-prev[i])/float64(now.Sub(prevAt)))
		}
		prev, prevAt = cur, now
	}
	cpu1, wall := prev, prevAt.Sub(w0)
	for i := range c.procs {
		rss, hwm, err := rssBytes(c.procs[i].cmd.Process.Pid)
		if err != nil {
			return c.explain(err)
		}
		n := &rep.nodes[i]
		n.pct = 100 * float64(cpu1[i]-cpu0[i]) / float64(wall)
		n.cpu, n.rss, n.hwm = cpu1[i]-cpu0[i], rss, hwm
	}
	rep.wall, rep.loadEnd = wall, loadAverage()
	if rep.after, err = leadersAt(ctx, c.addrs, o.partitions); err != nil {
		fmt.Fprintln(os.Stderr, "chronik-idle: warning: leaders after the window:", err)
	}
	doc := rep.markdown()
	fmt.Print(doc)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(doc), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "chronik-idle: wrote", o.out)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// createAndWait creates the topic and waits until every partition has a leader, and
// returns the leadership it then saw.
func createAndWait(ctx context.Context, addrs []string, o *options) (leadership, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestTimeoutOverhead(requestTimeout))
	if err != nil {
		return leadership{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	const topic = idleTopic
	deadline := time.Now().Add(createTimeout)
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, err := adm.CreateTopic(rctx, int32(o.partitions), int16(o.rf), nil, topic)
		cancel()
		if err == nil || attempt > 1 && errors.Is(err, kerr.TopicAlreadyExists) {
			break
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(deadline) {
			return leadership{}, fmt.Errorf("create topic %s (attempt %d): %w", topic, attempt, err)
		}
		time.Sleep(retryEvery)
	}
	deadline = time.Now().Add(leadersTimeout)
	for {
		l, err := leadersOf(ctx, adm, topic, o.partitions)
		if err == nil && l.missing == 0 {
			return l, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return leadership{}, fmt.Errorf("topic %s: %d of %d partitions without a leader after %v (last error: %v)", topic, l.missing, o.partitions, leadersTimeout, err)
		}
		time.Sleep(retryEvery)
	}
}

// leadership is who leads what, as one Metadata answer shows it.
type leadership struct {
	byNode     map[int32]int // partitions led, by Kafka node id
	missing    int           // partitions without a leader
	controller int32         // the metadata group's leader; -1 unknown
}

// leadersAt is leadersOf with a client of its own.
func leadersAt(ctx context.Context, addrs []string, partitions int) (leadership, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return leadership{}, err
	}
	defer cl.Close()
	return leadersOf(ctx, kadm.NewClient(cl), idleTopic, partitions)
}

// leadersOf counts the partitions each node leads and those without a leader.
func leadersOf(ctx context.Context, adm *kadm.Client, topic string, partitions int) (leadership, error) {
	l := leadership{missing: partitions, controller: -1}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	md, err := adm.Metadata(rctx, topic)
	if err != nil {
		return l, err
	}
	l.controller = md.Controller
	td, ok := md.Topics[topic]
	if !ok {
		return l, errors.New("not in metadata")
	}
	if td.Err != nil {
		return l, td.Err
	}
	l.byNode = map[int32]int{}
	l.missing = partitions - len(td.Partitions)
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			l.missing++
			continue
		}
		l.byNode[p.Leader]++
	}
	return l, nil
}

// cluster is the chronik processes of one run.
type cluster struct {
	addrs []string // Kafka addresses, node i+1 at i
	peers string   // the -peers value
	procs []*child
}

type child struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited; err is then set
	err     error
}

// startCluster starts n nodes of bin in cluster mode; node i (from 1) keeps its data in
// dir/node<i> and its log in dir/node<i>.log. The caller stops the cluster, also when err
// is set.
func startCluster(ctx context.Context, bin, dir string, n int, extraArgs string) (*cluster, error) {
	c := &cluster{}
	ports, err := freeLoopbackAddrs(2 * n)
	if err != nil {
		return c, err
	}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s/%s", i+1, ports[i], ports[n+i]))
	}
	c.addrs, c.peers = ports[:n], strings.Join(peers, ",")
	for i := range n {
		node := fmt.Sprintf("node%d", i+1)
		args := append([]string{"-node-id", strconv.Itoa(i + 1), "-peers", c.peers, "-data-dir", filepath.Join(dir, node), "-quiet"}, strings.Fields(extraArgs)...)
		ch, err := startChild(bin, args, filepath.Join(dir, node+".log"))
		if err != nil {
			return c, err
		}
		c.procs = append(c.procs, ch)
	}
	for i, ch := range c.procs {
		if err := ch.waitListening(ctx, c.addrs[i]); err != nil {
			return c, err
		}
	}
	return c, nil
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
	ch := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		logf.Close()
		close(ch.done)
	}()
	return ch, nil
}

func (ch *child) waitListening(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	var d gonet.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ch.done:
			return fmt.Errorf("chronik exited before listening on %s: %v%s", addr, ch.err, ch.logTail())
		case <-ctx.Done():
			return fmt.Errorf("chronik not listening on %s after %v: %w", addr, listenTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, kills after stopGrace, and waits.
func (ch *child) stop() error {
	select {
	case <-ch.done:
		return fmt.Errorf("chronik pid %d exited early: %v%s", ch.cmd.Process.Pid, ch.err, ch.logTail())
	default:
	}
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-ch.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := ch.cmd.Process.Kill(); err != nil {
		return err
	}
	<-ch.done
	return fmt.Errorf("chronik pid %d ignored SIGTERM for %v and was killed", ch.cmd.Process.Pid, stopGrace)
}

func (ch *child) logTail() string {
	b, err := os.ReadFile(ch.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return "\n--- " + ch.logPath + " ---\n" + string(b)
}

// stop stops every node at once and waits for all.
func (c *cluster) stop() error {
	errs := make([]error, len(c.procs))
	var wg sync.WaitGroup
	for i, ch := range c.procs {
		wg.Go(func() { errs[i] = ch.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// explain adds the log tail of every node that has exited to err.
func (c *cluster) explain(err error) error {
	for i, ch := range c.procs {
		select {
		case <-ch.done:
			err = fmt.Errorf("%w; node %d exited: %v%s", err, i+1, ch.err, ch.logTail())
		default:
		}
	}
	return err
}

// cpu is each node's CPU time so far.
func (c *cluster) cpu() ([]time.Duration, error) {
	var ds []time.Duration
	for _, ch := range c.procs {
		d, err := cpuTime(ch.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// cpuTime reads the user plus system CPU time pid has used from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is parenthesised and may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	const utimeField, stimeField = 14 - 3, 15 - 3 // f[0] is field 3
	if len(f) <= stimeField {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range []string{f[utimeField], f[stimeField]} {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// rssBytes reads VmRSS (now) and VmHWM (peak) of pid from /proc/<pid>/status.
func rssBytes(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "VmRSS" && k != "VmHWM" {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("unexpected %s line %q", k, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// freeLoopbackAddrs finds n distinct ports on 127.0.0.1 that are free now.
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

// buildChronik builds cmd/chronik into dir and returns the binary's path.
func buildChronik(ctx context.Context, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "chronik")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "chronik/cmd/chronik")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build chronik/cmd/chronik (run from inside the chronik module, or pass -chronik-bin): %w\n%s", err, out)
	}
	return bin, nil
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
