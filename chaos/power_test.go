package chaos

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"chronik/chaos/cluster"
)

// TestChecksCatchTruncatedLog measures the harness on a planted loss: it writes to a real
// node, kills it, cuts every partition log file in half behind its back, restarts it, and
// requires the checks to report the acknowledged writes that are gone.
func TestChecksCatchTruncatedLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := chronikBinary(t, ctx)
	cfg := DefaultConfig(1, time.Second)
	cfg.Binary = bin
	dir := t.TempDir()
	cl, err := cluster.Start(ctx, cluster.Config{Binary: bin, Dir: dir, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cl.Close(); err != nil {
			t.Error(err)
		}
	}()
	hist := NewHistory(time.Now())
	w := &workload{cfg: &cfg, hist: hist, topic: "power", seeds: cl.Bootstrap(), runID: 1}
	if err := w.createTopic(ctx, topicTimeout); err != nil {
		t.Fatal(err)
	}
	stop := w.start(ctx)
	time.Sleep(2 * time.Second)
	if err := stop(stopTimeout); err != nil {
		t.Fatal(err)
	}
	n := cl.Nodes()[0]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	logs, err := filepath.Glob(filepath.Join(n.DataDir(), "power-*", "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no partition logs under %s: %v", n.DataDir(), err)
	}
	for _, path := range logs {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	final, err := w.readAll(ctx, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(hist.Ops(), final, nil, "")
	t.Logf("%d writes; violations %v", len(hist.Ops()), r.Counts)
	if r.Counts["lost-write"] == 0 {
		t.Fatalf("half of every log was cut and no lost write was reported: %v", r.Violations)
	}
}
