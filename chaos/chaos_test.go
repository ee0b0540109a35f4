package chaos

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"chronik/chaos/cluster"
)

var (
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the fault schedule (0: $CHAOS_SEED, else the time)")
	flagDuration = flag.Duration("chaos.duration", 0, "length of the fault schedule (0: the short run, 25s)")
	flagNodes    = flag.Int("chaos.nodes", 3, "nodes in the cluster (1: a single node, no replication)")
	flagKeep     = flag.Bool("chaos.keep", false, "keep the run folder even when the run passes")
	flagFullDisk = flag.Bool("chaos.fulldisk", true, "add full-disk faults (node data on tmpfs) where this process may mount (root)")
)

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// chronikBinary builds cmd/chronik once per test process (cluster.Build; $CHAOS_CHRONIK_BIN
// skips the build).
func chronikBinary(t *testing.T, ctx context.Context) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "chaos-bin-")
		if build.err == nil {
			build.bin, build.err = cluster.Build(ctx, build.dir)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// shortDuration is the schedule of the run `make test` does: with start-up, recovery and
// the final read, about 70 s on a 2-core machine.
const shortDuration = 45 * time.Second

// seed is -chaos.seed, else $CHAOS_SEED, else the clock.
func seed(t *testing.T) uint64 {
	if *flagSeed != 0 {
		return *flagSeed
	}
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano()) % 1_000_000
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real brokers under faults; skipped with -short")
	}
	d := *flagDuration
	if d == 0 {
		d = shortDuration
	}
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	bin := chronikBinary(t, ctx)
	cfg := DefaultConfig(s, d)
	cfg.Nodes, cfg.Binary, cfg.Keep, cfg.Logf = *flagNodes, bin, *flagKeep, t.Logf
	if *flagFullDisk {
		if err := TmpfsAvailable(os.TempDir()); err != nil {
			t.Logf("no full-disk faults: %v", err)
		} else {
			cfg.FullDisk = true
		}
	}
	replay := "go test ./chaos -run 'TestChaos$' -count=1 -v -timeout 15m -chaos.seed=" + strconv.FormatUint(s, 10) + " -chaos.duration=" + d.String()
	if *flagNodes != 3 {
		replay += " -chaos.nodes=" + strconv.Itoa(*flagNodes)
	}
	t.Logf("seed %d; replay: %s", s, replay)
	res, err := Run(ctx, cfg)
	if res != nil {
		t.Logf("schedule:\n%s", FormatSchedule(res.Schedule))
		t.Logf("%s", res.Summary())
	}
	if err != nil || res.Failed() {
		why := "violations (report above)"
		if err != nil {
			why = "harness error: " + err.Error()
		}
		dir := "(none)"
		if res != nil {
			if abs, aerr := filepath.Abs(res.Dir); aerr == nil {
				dir = abs
			}
		}
		t.Fatalf("chaos run failed (seed %d): %s\nnode logs, history and report kept in %s\nreplay: %s", s, why, dir, replay)
	}
}
