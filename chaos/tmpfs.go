package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// tmpfsBytes is the size of a node's tmpfs while its disk is not full. A tmpfs only uses
// memory for what is written; a run writes tens of MB.
const tmpfsBytes = 1 << 30

// fillAttempts bounds the tries to shrink a tmpfs to its usage while the broker writes.
const fillAttempts = 20

// tmpfs is a node's data directory on a tmpfs of its own, whose size can be cut to what
// it holds (a full disk) and grown again, with mount -o remount. It needs root.
type tmpfs struct {
	dir string
}

// mountTmpfs mounts a tmpfs of tmpfsBytes on dir, creating dir.
func mountTmpfs(dir string) (*tmpfs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := mountCmd("-t", "tmpfs", "-o", fmt.Sprintf("size=%d", tmpfsBytes), "chaos-tmpfs", dir); err != nil {
		return nil, err
	}
	return &tmpfs{dir: dir}, nil
}

// TmpfsAvailable says whether this process can mount a tmpfs (root with CAP_SYS_ADMIN),
// by mounting and unmounting one under dir; the error says why not.
func TmpfsAvailable(dir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("chaos: mounting a tmpfs needs root")
	}
	probe, err := os.MkdirTemp(dir, "tmpfs-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(probe)
	t, err := mountTmpfs(probe)
	if err != nil {
		return err
	}
	return t.unmount()
}

// fill shrinks the tmpfs to the bytes it holds, so the next write fails with ENOSPC.
func (t *tmpfs) fill() error {
	var err error
	for i := range fillAttempts {
		var st syscall.Statfs_t
		if err = syscall.Statfs(t.dir, &st); err != nil {
			return err
		}
		// At least one block: size=0 would make the tmpfs unlimited, and an unlimited
		// tmpfs cannot be given a size again ("Cannot retroactively limit size").
		used := max(int64(st.Blocks-st.Bfree), 1)*int64(st.Bsize) + int64(i)*int64(st.Bsize)
		if err = mountCmd("-o", fmt.Sprintf("remount,size=%d", used), t.dir); err == nil {
			return nil
		}
	}
	return fmt.Errorf("chaos: fill %s: %w", t.dir, err)
}

// grow gives the tmpfs back its full size.
func (t *tmpfs) grow() error {
	return mountCmd("-o", fmt.Sprintf("remount,size=%d", tmpfsBytes), t.dir)
}

// unmount unmounts the tmpfs; what it held is gone.
func (t *tmpfs) unmount() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "umount", t.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: umount %s: %w: %s", t.dir, err, out)
	}
	return nil
}

// copyTo copies the tmpfs's contents to dst (kept in a failure folder before unmount).
func (t *tmpfs) copyTo(dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "cp", "-a", t.dir+"/.", dst).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: copy %s: %w: %s", t.dir, err, out)
	}
	return nil
}

func mountCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mount", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: mount %v: %w: %s", args, err, out)
	}
	return nil
}
