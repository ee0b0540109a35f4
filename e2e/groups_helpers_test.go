package e2e

import (
	"fmt"
	gonet "net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"chronik/internal/brokertest"
	"chronik/kafka"
	cnet "chronik/net"
)

// Limits of the consumer group tests.
const (
	// groupPartitions is the partition count of every topic a group test consumes.
	groupPartitions = 4
	// groupStepTimeout bounds every wait of a group test.
	groupStepTimeout = 60 * time.Second
	// groupPoll is how often a group test rechecks a condition.
	groupPoll = 50 * time.Millisecond
)

// withGroupTimers makes group timers short enough for tests: no initial rebalance delay
// and a 1 s minimum session timeout.
func withGroupTimers() brokerOption {
	return withConfig(func(c *kafka.Config) {
		c.GroupInitialRebalanceDelayMs = -1
		c.GroupMinSessionTimeoutMs = 1000
	})
}

// startBrokerAt starts a broker on a fixed address (a restart on the port a client
// already knows), with its data in dir; it is closed when the test ends unless closed
// before.
func startBrokerAt(t testing.TB, dir, addr string, opts ...brokerOption) *testBroker {
	t.Helper()
	cfg := kafka.Config{NodeID: 1, DataDir: dir}
	var scfg cnet.ServerConfig
	for _, o := range opts {
		o(&cfg, &scfg)
	}
	var ln gonet.Listener
	var err error
	for i := 0; i < 100; i++ { // the old listener's port may take a moment to free
		if ln, err = gonet.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(groupPoll)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &testBroker{Broker: brokertest.Serve(t, ln, cfg, scfg), dir: dir, cfg: cfg}
}

// ledger records which consumer read each (partition, offset), from any goroutine.
type ledger struct {
	mu   sync.Mutex
	seen map[[2]int64][]string
}

func newLedger() *ledger { return &ledger{seen: map[[2]int64][]string{}} }

func (l *ledger) add(who string, partition int32, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]int64{int64(partition), offset}
	l.seen[k] = append(l.seen[k], who)
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// by returns how many records each consumer read.
func (l *ledger) by() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for _, who := range l.seen {
		for _, w := range who {
			m[w]++
		}
	}
	return m
}

// checkExactlyOnce fails unless every offset below ends[p] of every partition was read
// exactly once, and nothing else was read.
func (l *ledger) checkExactlyOnce(t testing.TB, ends map[int32]int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var dups []string
	for k, who := range l.seen {
		if len(who) > 1 {
			dups = append(dups, fmt.Sprintf("%d/%d by %v", k[0], k[1], who))
		}
		if k[1] >= ends[int32(k[0])] {
			t.Errorf("read %d/%d, past the end %d", k[0], k[1], ends[int32(k[0])])
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Errorf("%d records read more than once, e.g. %v", len(dups), dups[:min(len(dups), 5)])
	}
	for p, end := range ends {
		for o := int64(0); o < end; o++ {
			if len(l.seen[[2]int64{int64(p), o}]) == 0 {
				t.Errorf("record %d/%d never read", p, o)
				return
			}
		}
	}
}

// waitFor polls cond until it holds or groupStepTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(groupStepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(groupPoll)
	}
}

// endOffsets lists the end offset of every partition of topic.
func endOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx := testCtx(t, groupStepTimeout)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// describeGroup describes group g.
func describeGroup(t testing.TB, adm *kadm.Client, g string) kadm.DescribedGroup {
	t.Helper()
	ctx := testCtx(t, groupStepTimeout)
	ds, err := adm.DescribeGroups(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	return ds[g]
}

// stableWith reports whether group g is Stable with n members, each assigned at least
// one partition.
func stableWith(t testing.TB, adm *kadm.Client, g string, n int) bool {
	d := describeGroup(t, adm, g)
	if d.State != "Stable" || len(d.Members) != n {
		return false
	}
	for _, m := range d.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok || len(a.Topics) == 0 {
			return false
		}
	}
	return true
}

// createGroupTopic creates topic with groupPartitions partitions.
func createGroupTopic(t testing.TB, adm *kadm.Client, topic string) {
	t.Helper()
	ctx := testCtx(t, groupStepTimeout)
	if _, err := adm.CreateTopic(ctx, groupPartitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}
