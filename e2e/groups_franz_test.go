package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzMember is a franz-go group consumer on its own goroutine. Each poll's records are
// noted in the ledger and committed synchronously before the next poll, with rebalances
// blocked in between (BlockRebalanceOnPoll), so no record is handed to two members.
type franzMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	errs []error
}

func startFranzMember(t testing.TB, addr, groupID, topic, name string, balancer kgo.GroupBalancer, l *ledger) *franzMember {
	t.Helper()
	cl := newClient(t, addr,
		kgo.ClientID(name),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	ctx, cancel := context.WithCancel(context.Background())
	m := &franzMember{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				cl.AllowRebalance()
				return
			}
			fs.EachError(func(_ string, _ int32, err error) { m.note(err) })
			recs := fs.Records()
			for _, r := range recs {
				l.add(name, r.Partition, r.Offset)
			}
			if len(recs) > 0 {
				if err := cl.CommitRecords(ctx, recs...); err != nil {
					m.note(err)
				}
			}
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *franzMember) note(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, err)
}

// stop ends the poll loop and closes the client, which leaves the group.
func (m *franzMember) stop() {
	m.cancel()
	<-m.done
	m.cl.Close()
}

// TestGroupFranzHandoff runs two franz-go members of one group over a 4-partition topic,
// eager (range) and cooperative (cooperative-sticky): they split the partitions; one
// leaves; the other takes every partition over from the committed offsets. Every record
// is read exactly once, and the committed offsets end at the log ends.
func TestGroupFranzHandoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, withGroupTimers())
			cl := newClient(t, b.Addr())
			adm := kadm.NewClient(cl)
			topic, groupID := "handoff-"+tc.name, "g-"+tc.name
			createGroupTopic(t, adm, topic)
			l := newLedger()

			produceN(t, cl, topic, 200, 50)
			a := startFranzMember(t, b.Addr(), groupID, topic, "a", tc.balancer, l)
			waitFor(t, "a alone in the group", func() bool { return stableWith(t, adm, groupID, 1) })
			bm := startFranzMember(t, b.Addr(), groupID, topic, "b", tc.balancer, l)
			waitFor(t, "a and b to split the partitions", func() bool { return stableWith(t, adm, groupID, 2) })
			produceN(t, cl, topic, 200, 50)
			waitFor(t, "400 records", func() bool { return l.count() >= 400 })

			a.stop()
			waitFor(t, "b alone with every partition", func() bool { return stableWith(t, adm, groupID, 1) })
			before := l.by()["b"]
			produceN(t, cl, topic, 200, 50)
			waitFor(t, "600 records", func() bool { return l.count() >= 600 })
			if got := l.by()["b"] - before; got != 200 {
				t.Errorf("b read %d of the 200 records produced after a left", got)
			}
			ends := endOffsets(t, adm, topic)
			l.checkExactlyOnce(t, ends)
			bm.stop()

			ctx := testCtx(t, groupStepTimeout)
			offs, err := adm.FetchOffsets(ctx, groupID)
			if err != nil {
				t.Fatal(err)
			}
			for p, end := range ends {
				if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
					t.Errorf("partition %d: committed %+v, end %d", p, o, end)
				}
			}
			d := describeGroup(t, adm, groupID)
			if d.State != "Empty" {
				t.Errorf("group after both left: %s", d.State)
			}
		})
	}
}

// TestGroupFranzBrokerRestart restarts the broker under a live franz-go member: the
// committed offsets survive (they were durable before each commit was answered), the
// member's group is restored from __consumer_offsets, and consumption resumes where it
// stopped, every record exactly once.
func TestGroupFranzBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBrokerIn(t, dir, withGroupTimers())
	addr := b.Addr()
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	topic, groupID := "restart-topic", "restart-group"
	createGroupTopic(t, adm, topic)
	l := newLedger()
	produceN(t, cl, topic, 200, 50)
	m := startFranzMember(t, addr, groupID, topic, "a", kgo.CooperativeStickyBalancer(), l)
	waitFor(t, "200 records", func() bool { return l.count() >= 200 })
	ctx := testCtx(t, groupStepTimeout)
	waitFor(t, "commits to reach the end", func() bool {
		offs, err := adm.FetchOffsets(ctx, groupID)
		if err != nil {
			return false
		}
		total := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		return total == 200
	})
	before, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	startBrokerAt(t, dir, addr, withGroupTimers())
	cl2 := newClient(t, addr)
	adm2 := kadm.NewClient(cl2)
	after, err := adm2.FetchOffsets(testCtx(t, groupStepTimeout), groupID)
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At != o.At {
			t.Errorf("%s/%d: committed %d before the restart, %+v after", o.Topic, o.Partition, o.At, a)
		}
	})
	produceN(t, cl2, topic, 200, 50)
	waitFor(t, "400 records after the restart", func() bool { return l.count() >= 400 })
	l.checkExactlyOnce(t, endOffsets(t, adm2, topic))
	m.stop()
}
