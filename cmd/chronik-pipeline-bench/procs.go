package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	gonet "net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits of the child processes.
const (
	buildTimeout = 5 * time.Minute
	// readyTimeout bounds waiting for a child to listen or answer /healthz.
	readyTimeout = 30 * time.Second
	// stopGrace is how long a child gets after SIGTERM before SIGKILL.
	stopGrace    = 30 * time.Second
	logTailBytes = 4 << 10
)

// binaries are the four programs of the pipeline, built once per run.
type binaries struct{ chronik, ingest, load, verify string }

// build builds the pipeline's commands into dir with one go build.
func build(ctx context.Context, dir string) (binaries, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", dir+string(filepath.Separator),
		"chronik/cmd/chronik", "chronik/cmd/chronik-ingest", "chronik/cmd/chronik-load", "chronik/cmd/chronik-verify")
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build (run from inside the chronik module): %w\n%s", err, out)
	}
	return binaries{
		chronik: filepath.Join(dir, "chronik"), ingest: filepath.Join(dir, "chronik-ingest"),
		load: filepath.Join(dir, "chronik-load"), verify: filepath.Join(dir, "chronik-verify"),
	}, nil
}

// child is one process of the pipeline. Its stdout and stderr go to files.
type child struct {
	name    string // "node1", "ingest2", "verify", "load-http"
	cmd     *exec.Cmd
	logPath string
	outPath string
	done    chan struct{} // closed when the process has exited; err is then set
	err     error
}

// start runs path with args; stdout goes to dir/name.out and stderr to dir/name.log.
// A goroutine waits for the process; it ends when the process exits.
func start(dir, name, path string, args ...string) (*child, error) {
	logPath, outPath := filepath.Join(dir, name+".log"), filepath.Join(dir, name+".out")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	outf, err := os.Create(outPath)
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = outf, logf
	// The child dies with us even if we are killed before we can stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		outf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ch := &child{name: name, cmd: cmd, logPath: logPath, outPath: outPath, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		logf.Close()
		outf.Close()
		close(ch.done)
	}()
	return ch, nil
}

func (ch *child) pid() int { return ch.cmd.Process.Pid }

func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit by itself.
func (ch *child) wait(ctx context.Context) error {
	select {
	case <-ch.done:
		return ch.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends SIGTERM, kills after stopGrace, and waits. It reports a process that had
// already exited, or that had to be killed.
func (ch *child) stop() error {
	if ch.exited() {
		return fmt.Errorf("%s (pid %d) exited early: %v%s", ch.name, ch.pid(), ch.err, ch.logTail())
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
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", ch.name, ch.pid(), stopGrace)
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

// cpu is the CPU time the process has used: from /proc while it runs, from its rusage
// once it has exited.
func (ch *child) cpu() (time.Duration, error) {
	if ch.exited() {
		st := ch.cmd.ProcessState
		if st == nil {
			return 0, fmt.Errorf("%s: no process state", ch.name)
		}
		return st.UserTime() + st.SystemTime(), nil
	}
	return procCPU(ch.pid())
}

// waitListening waits until addr accepts a TCP connection.
func (ch *child) waitListening(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var d gonet.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ch.done:
			return fmt.Errorf("%s exited before listening on %s: %v%s", ch.name, addr, ch.err, ch.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not listening on %s after %v: %w", ch.name, addr, readyTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitHealthy waits until GET url answers 200.
func (ch *child) waitHealthy(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ch.done:
			return fmt.Errorf("%s exited before %s answered: %v%s", ch.name, url, ch.err, ch.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not healthy after %v: %v", ch.name, url, readyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// procCPU reads the user plus system CPU time of pid from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
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
	const userHZ = 100 // the unit of utime and stime on every Linux architecture Go supports
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// peakRSS reads VmHWM, the peak resident set size in bytes, of pid.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmHWM line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
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

// machineCPU reads the first line of /proc/stat: the CPU time every process on the
// machine has used (busy) and the time all CPUs have existed (total), in ticks.
func machineCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	for i, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			busy += n
		}
	}
	return busy, total, nil
}
