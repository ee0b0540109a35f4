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

// target is one broker under test, listening on 127.0.0.1.
type target struct {
	name string // "chronik" or "kfake"
	mode string // how it runs, for the report
	addr string
	pid  int // the broker's own process when it is a child; 0 otherwise
	// inProcess is set when the broker runs in this process, sharing its CPU and memory.
	inProcess bool
	proc      *child // set with pid
	stop      func() error
}

// peakRSS is the broker's own VmHWM, or -1 when it shares this process or is not ours.
// Once a child has exited, its VmHWM is gone from /proc and the peak comes from the
// ru_maxrss that wait4 returned, the same figure.
func (t *target) peakRSS() (int64, error) {
	if t.pid == 0 {
		return -1, nil
	}
	rss, err := peakRSSBytes(strconv.Itoa(t.pid))
	if err == nil {
		return rss, nil
	}
	select {
	case <-t.proc.done:
		if ru, ok := t.proc.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return ru.Maxrss << 10, nil // kilobytes on Linux
		}
	default:
	}
	return -1, err
}

// cpu is the broker's own CPU time so far, or -1 when it is not a child.
func (t *target) cpu() time.Duration {
	if t.pid == 0 {
		return -1
	}
	d, err := cpuTime(t.pid)
	if err != nil {
		return -1
	}
	return d
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
	return &target{name: "chronik", mode: "in-process (net.StartBroker, disk.OS, fsync on)", addr: b.Addr(), inProcess: true, stop: b.Close}, nil
}

// startKfakeInProcess starts a one-broker kfake cluster in this process.
func startKfakeInProcess(ctx context.Context) (*target, error) {
	var c *kfake.Cluster
	var err error
	pprof.Do(ctx, brokerLabels("kfake"), func(context.Context) {
		c, err = kfake.NewCluster(kfake.NumBrokers(1))
	})
	if err != nil {
		return nil, err
	}
	return &target{name: "kfake", mode: "in-process (kfake.NewCluster(NumBrokers(1)), in memory)", addr: c.ListenAddrs()[0], inProcess: true, stop: func() error { c.Close(); return nil }}, nil
}

// serveKfake is the body of a kfake child process: one broker on addr until SIGTERM,
// SIGINT or the death of the parent (Pdeathsig).
func serveKfake(addr string) error {
	_, portStr, err := gonet.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
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

// freeLoopbackAddr finds a port on 127.0.0.1 that is free now.
func freeLoopbackAddr() (string, error) {
	ln, err := gonet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// startChild starts path with args (which must make it listen on addr) and waits until it
// listens.
func startChildTarget(ctx context.Context, name, mode, path string, args []string, addr, logPath string) (*target, error) {
	c, err := startChild(path, args, logPath)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, addr); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return &target{name: name, mode: mode, addr: addr, pid: c.cmd.Process.Pid, proc: c, stop: c.stop}, nil
}

// startChronikChild runs the chronik binary bin with its data in dataDir.
func startChronikChild(ctx context.Context, bin, dataDir, extraArgs, logPath string) (*target, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-listen", addr, "-data-dir", dataDir, "-quiet"}, strings.Fields(extraArgs)...)
	mode := "child process: " + filepath.Base(bin) + " " + strings.Join(args, " ") + " (fsync on); binary built from " + vcsOf(bin)
	return startChildTarget(ctx, "chronik", mode, bin, args, addr, logPath)
}

// startKfakeChild runs this program again in -serve-kfake mode.
func startKfakeChild(ctx context.Context, logPath string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	return startChildTarget(ctx, "kfake", "child process: kfake.NewCluster(NumBrokers(1)), in memory", self, []string{"-serve-kfake", addr}, addr, logPath)
}
