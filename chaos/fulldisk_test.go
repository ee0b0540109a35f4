package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"chronik/chaos/cluster"
)

// fullDiskBytes is the size of the tmpfs the broker's data lives on while the disk is
// full; healing remounts it at healedDiskBytes.
const (
	fullDiskBytes   = 3 << 20
	healedDiskBytes = 256 << 20
)

// TestFullDisk runs the workload against a node whose data directory is a tmpfs of 3 MiB,
// so the disk fills within seconds; then it grows the tmpfs (mount -o remount,size=...),
// restarts the node (a storage error stops a replica until an operator acts), and checks
// the history: an acknowledged write must survive the full disk. It needs root to mount;
// elsewhere it skips.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real broker on a tmpfs")
	}
	if os.Geteuid() != 0 {
		t.Skip("a size-limited data directory needs a tmpfs mount, and mounting needs root: no full-disk test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mnt := t.TempDir()
	mount := func(args ...string) error {
		mctx, mcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer mcancel()
		out, err := exec.CommandContext(mctx, "mount", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mount %v: %w: %s", args, err, out)
		}
		return nil
	}
	if err := mount("-t", "tmpfs", "-o", fmt.Sprintf("size=%d", fullDiskBytes), "chaos-full-disk", mnt); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): no full-disk test", err)
	}
	t.Cleanup(func() { // runs after the cluster's Close below
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	bin := chronikBinary(t, ctx)
	dir := t.TempDir()
	cl, err := cluster.Start(ctx, cluster.Config{Binary: bin, Dir: dir, DataRoot: mnt, Nodes: 1,
		ArgsFor: func(*cluster.Node) []string { return []string{"-segment-bytes", "262144"} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg := DefaultConfig(1, time.Second)
	cfg.RecordTimeout = 3 * time.Second
	cfg.WriteInterval = 0 // fill the disk fast
	hist := NewHistory(time.Now())
	w := &workload{cfg: &cfg, hist: hist, topic: "full", seeds: cl.Bootstrap(), runID: 3}
	if err := w.createTopic(ctx, topicTimeout); err != nil {
		t.Fatal(err)
	}
	stop := w.start(ctx)
	full := false
	for i := 0; i < 300 && !full; i++ { // fills within seconds at the workload's pace
		time.Sleep(100 * time.Millisecond)
		var st syscall.Statfs_t
		if err := syscall.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		full = int64(st.Bavail)*int64(st.Bsize) < 64<<10
	}
	time.Sleep(2 * time.Second)
	t.Logf("disk full: %v; writes so far %v", full, hist.Counts())
	if err := mount("-o", fmt.Sprintf("remount,size=%d", healedDiskBytes), mnt); err != nil {
		t.Fatal(err)
	}
	n := cl.Nodes()[0]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
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
	t.Logf("writes %v; violations %v %v", hist.Counts(), r.Counts, chk.Counts)
	if !full {
		t.Errorf("the %d-byte disk did not fill in 30 s", fullDiskBytes)
	}
	if !r.OK() || !chk.OK() {
		t.Fatalf("violations: %v %v (node log %s)", r.Violations, chk.Violations, n.LogPath())
	}
}
