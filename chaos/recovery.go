package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Checks of a cluster's health around a run: who leads a partition (for faults aimed at
// leaders), whether every node serves and every replica is in sync again after the heal,
// and whether a node's log shows a panic.

// leaderOf returns the index (0-based) of the node that leads partition p of topic, as
// Metadata says now.
func leaderOf(ctx context.Context, cl *kgo.Client, topic string, p int32, nodes int) (int, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return 0, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return 0, fmt.Errorf("chaos: metadata of %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[p]
	switch {
	case !ok:
		return 0, fmt.Errorf("chaos: metadata has no partition %d", p)
	case pd.Err != nil:
		return 0, pd.Err
	case pd.Leader < 1 || int(pd.Leader) > nodes:
		return 0, fmt.Errorf("chaos: partition %d has leader %d", p, pd.Leader)
	}
	return int(pd.Leader) - 1, nil
}

// inSyncPoll is how often waitInSync asks again.
const inSyncPoll = 250 * time.Millisecond

// waitInSync waits, for at most wait, until every node answers Metadata and every
// partition of topic has a leader and rf in-sync replicas; otherwise it reports
// not-recovered with what it saw last. It runs after the heal, with the writers still
// writing, so a replica that never catches up, or a node that never serves again, is
// found.
func waitInSync(ctx context.Context, cl *kgo.Client, topic string, nodes, rf int, wait time.Duration, r *Report) {
	deadline := time.Now().Add(wait)
	for {
		problem := inSyncProblem(ctx, cl, topic, nodes, rf)
		if problem == "" {
			return
		}
		if !time.Now().Before(deadline) || !sleepUntil(ctx, time.Now().Add(inSyncPoll)) {
			r.violate("not-recovered", -1, "%v after the heal: %s", wait, problem)
			return
		}
	}
}

// inSyncProblem describes the first thing not yet recovered, or returns "".
func inSyncProblem(ctx context.Context, cl *kgo.Client, topic string, nodes, rf int) string {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(qctx, topic)
	if err != nil {
		return fmt.Sprintf("metadata: %v", err)
	}
	td := md.Topics[topic]
	if td.Err != nil {
		return fmt.Sprintf("metadata of %s: %v", topic, td.Err)
	}
	for _, pd := range td.Partitions.Sorted() {
		if pd.Err != nil || pd.Leader < 0 || len(pd.ISR) < rf {
			return fmt.Sprintf("partition %d: leader %d, replicas %v, in sync %v, error %v", pd.Partition, pd.Leader, pd.Replicas, pd.ISR, pd.Err)
		}
	}
	for id := 1; id <= nodes; id++ { // the Metadata above told the client every node
		if _, err := cl.Broker(id).Request(qctx, kmsg.NewPtrMetadataRequest()); err != nil {
			return fmt.Sprintf("node %d answers no Metadata: %v", id, err)
		}
	}
	return ""
}

// panicMarkers are the log lines of a Go process that panicked or died of a fatal
// runtime error, and of the race detector.
var panicMarkers = []string{"panic:", "fatal error:", "WARNING: DATA RACE"}

// maxLogLineBytes bounds a node log line scanLog reads; longer lines are skipped past.
const maxLogLineBytes = 1 << 20

// scanLog reports node-panic for every line of node id's log at path that shows a panic.
func scanLog(r *Report, id int, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLogLineBytes)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		for _, m := range panicMarkers {
			if strings.Contains(text, m) {
				r.violate("node-panic", -1, "node %d, %s:%d: %s", id, path, line, text)
				break
			}
		}
	}
	return sc.Err()
}
