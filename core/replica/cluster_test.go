package replica

import (
	"errors"
	"testing"
	"testing/cryptotest"

	"chronik/core/record"
	"chronik/disk"
)

// Raft draws election jitter from crypto/rand (raft.go, globalRand); every test that
// builds RawNodes pins it so that a seed replays.

func testConfig() Config {
	return Config{ElectionTicks: 10, HeartbeatTicks: 1, MaxSizePerMsgBytes: 64 << 10}
}

func TestReplicateIdenticalLogs(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	c := newCluster(t, 1, 3, testConfig())
	l := c.elect()
	var tokens []uint64
	for i := 0; i < 300; i++ {
		if tok := c.propose(l, randomSpec(c.rng)); tok != 0 {
			tokens = append(tokens, tok)
		}
		if i%7 == 0 {
			c.step(false)
		}
	}
	if len(tokens) != 300 {
		t.Fatalf("leader refused %d proposals", 300-len(tokens))
	}
	c.runUntil("settled", 5000, c.settled)
	for _, tok := range tokens {
		if c.outcomes[tok].Err != nil || !c.durable[tok] {
			t.Fatalf("token %d: outcome %+v, durable %v", tok, c.outcomes[tok], c.durable[tok])
		}
	}
	// Offsets are handed out in proposal order, without gaps but for the leader's one
	// control batch.
	prev := c.acked[tokens[0]]
	for _, tok := range tokens[1:] {
		a := c.acked[tok]
		if a.BaseOffset != prev.LastOffset+1 || a.Index != prev.Index+1 {
			t.Fatalf("token %d at %d (entry %d) after %d (entry %d)", tok, a.BaseOffset, a.Index, prev.LastOffset, prev.Index)
		}
		prev = a
	}
	c.checkLogs()
	if got := l.r.Storage().Log().StartOffset(); got != 0 {
		t.Fatalf("start offset %d", got)
	}
	// The first batch is the leader's empty entry: a control batch of one offset.
	first := readAll(t, l.r.Storage())[0]
	if h, _ := record.ParseHeader(first); !h.Control() || h.NumRecords != 1 {
		t.Fatalf("first batch %+v, want the leader's control batch", h)
	}
}

// TestLeaderCrashRestart crashes the leader while proposals are in flight (its unsynced
// writes kept, dropped or torn), lets another leader take over, restarts it from what
// its disk kept, and checks that no acknowledged entry is lost or moved.
func TestLeaderCrashRestart(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run("", func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, seed)
			c := newCluster(t, seed, 3, testConfig())
			c.syncProb = 0.5
			c.holdProb = 0.2
			l := c.elect()
			for i := 0; i < 40+c.rng.IntN(40); i++ {
				c.propose(l, randomSpec(c.rng))
				if c.rng.IntN(3) == 0 {
					c.step(false)
				}
			}
			ackedBefore := len(c.acked)
			endBefore := l.r.Storage().Log().EndOffset()
			durableBefore := l.r.Storage().Log().DurableOffset()
			c.crash(l.id, disk.CrashOptions{KeepProb: 0.4, TearProb: 0.3})
			nl := c.elect()
			if nl.id == l.id {
				t.Fatalf("the crashed node leads")
			}
			for i := 0; i < 30; i++ {
				c.propose(nl, randomSpec(c.rng))
				c.step(false)
			}
			c.restart(l.id)
			endAfter := l.r.Storage().Log().EndOffset()
			if endAfter < durableBefore || endAfter > endBefore {
				t.Fatalf("restarted with end %d; before the crash end %d, durable %d", endAfter, endBefore, durableBefore)
			}
			t.Logf("seed %d: crash kept %d of %d unsynced offsets; %d acked before", seed, endAfter-durableBefore, endBefore-durableBefore, ackedBefore)
			for i := 0; i < 30; i++ {
				if ld := c.leader(); ld != nil {
					c.propose(ld, randomSpec(c.rng))
				}
				c.step(i%3 == 0)
			}
			c.holdProb, c.syncProb = 0, 1
			c.runUntil("settled", 20000, c.settled)
			c.checkLogs()
			if len(c.acked) < ackedBefore || len(c.acked) == 0 {
				t.Fatalf("acked %d, %d before the crash", len(c.acked), ackedBefore)
			}
		})
	}
}

// TestFollowerCatchUp cuts a follower off while the others commit many entries, then
// heals it: the leader serves it from its log (no cache), across segment rolls.
func TestFollowerCatchUp(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 7)
	cfg := testConfig()
	cfg.MaxCacheBytes = -1
	cfg.MaxSizePerMsgBytes = 8 << 10
	cfg.Log.SegmentBytes = 64 << 10
	c := newCluster(t, 7, 3, cfg)
	l := c.elect()
	var lag uint64 = 1
	if lag == l.id {
		lag = 2
	}
	c.down[lag] = true
	for i := 0; i < 600; i++ {
		c.propose(l, randomSpec(c.rng))
		if i%10 == 0 {
			c.step(i%20 == 0)
		}
	}
	c.runUntil("committed without the lagging follower", 5000, func() bool {
		return l.hw == l.r.Storage().Log().EndOffset() && l.job == nil
	})
	if c.node(lag).r.Storage().Log().EndOffset() >= l.hw/2 {
		t.Fatalf("the follower did not fall behind")
	}
	reads := l.r.Storage().entriesRead
	delete(c.down, lag)
	c.runUntil("caught up", 20000, c.settled)
	if l.r.Storage().entriesRead == reads {
		t.Fatalf("the leader served the follower without reading its log")
	}
	if segs := l.r.Storage().Log().Stats().Segments; segs < 3 {
		t.Fatalf("%d segments: the catch-up did not cross a roll", segs)
	}
	c.checkLogs()
}

// TestDivergentSuffixTruncated isolates a leader that keeps appending proposals nobody
// else sees, lets the majority elect a leader and commit, then heals: the old leader's
// uncommitted suffix is cut, offsets below it do not move, and its proposals end with
// ErrNotLeader or ErrLost.
func TestDivergentSuffixTruncated(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 3)
	c := newCluster(t, 3, 3, testConfig())
	old := c.elect()
	for i := 0; i < 20; i++ {
		c.propose(old, randomSpec(c.rng))
		c.step(false)
	}
	c.runUntil("settled", 2000, c.settled)
	committedEnd := old.hw
	before := readAll(t, old.r.Storage())

	c.down[old.id] = true
	var stranded []uint64
	for i := 0; i < 15; i++ {
		stranded = append(stranded, c.propose(old, randomSpec(c.rng)))
		c.step(false)
	}
	if old.r.Storage().Log().EndOffset() <= committedEnd {
		t.Fatalf("the isolated leader appended nothing")
	}
	nl := c.elect()
	for i := 0; i < 25; i++ {
		c.propose(nl, batchSpec{records: 3, valueBytes: 10, fill: 0xee})
		c.step(false)
	}
	delete(c.down, old.id)
	c.runUntil("settled", 20000, c.settled)
	c.checkLogs()
	if old.r.Storage().truncations == 0 {
		t.Fatalf("the old leader never truncated")
	}
	after := readAll(t, old.r.Storage())
	for off, b := range before {
		if off < committedEnd && string(after[off]) != string(b) {
			t.Fatalf("committed batch at %d changed after truncation", off)
		}
	}
	for _, tok := range stranded {
		o, ok := c.outcomes[tok]
		if !ok || !(errors.Is(o.Err, ErrNotLeader) || errors.Is(o.Err, ErrLost)) {
			t.Fatalf("stranded token %d: outcome %+v (reported %v)", tok, o, ok)
		}
	}
}

// TestSeedReplays runs the same seeded scenario twice: the traces (every delivered
// message and outcome) must be identical, which needs raft's crypto/rand pinned.
func TestSeedReplays(t *testing.T) {
	run := func() uint64 {
		cryptotest.SetGlobalRandom(t, 42)
		c := newCluster(t, 42, 3, testConfig())
		c.holdProb, c.syncProb = 0.3, 0.5
		l := c.elect()
		for i := 0; i < 50; i++ {
			c.propose(l, randomSpec(c.rng))
			c.step(i%5 == 0)
		}
		c.crash(l.id, disk.CrashOptions{KeepProb: 0.5, TearProb: 0.2})
		c.elect()
		c.restart(l.id)
		c.holdProb, c.syncProb = 0, 1
		c.runUntil("settled", 20000, c.settled)
		return c.trace.Sum64()
	}
	if a, b := run(), run(); a != b {
		t.Fatalf("same seed, traces %x and %x", a, b)
	}
}

// TestStorageFailureStopsReplica fails the leader's disk: a failed read under raft (while
// it serves a lagging follower from its log) and a failed fsync each stop that replica,
// never the process, and nothing it had not made durable is acknowledged.
func TestStorageFailureStopsReplica(t *testing.T) {
	for _, op := range []disk.Op{disk.OpRead, disk.OpSync} {
		t.Run(op.String(), func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 11)
			cfg := testConfig()
			cfg.MaxCacheBytes = -1
			fail := false
			inj := disk.InjectorFunc(func(o disk.Op, _ string) error {
				if fail && o == op {
					return disk.ErrInjected
				}
				return nil
			})
			c := newCluster(t, 11, 3, cfg)
			c.inject[1] = inj
			c.crash(1, disk.KeepAll) // restart node 1 on the error-injecting FS
			c.restart(1)
			c.mayFail[1] = true
			var l *node
			c.runUntil("node 1 leads", 5000, func() bool {
				if l = c.leader(); l != nil && l.id != 1 {
					l.r.rn.TransferLeader(1)
				}
				return l != nil && l.id == 1
			})
			lag := uint64(2)
			c.down[lag] = true
			for i := 0; i < 50; i++ {
				c.propose(l, randomSpec(c.rng))
				c.step(false)
			}
			c.runUntil("settled without node 2", 2000, func() bool { return l.hw == l.r.Storage().Log().EndOffset() && l.job == nil })
			acked := len(c.acked)
			fail = true
			delete(c.down, lag)
			for i := 0; i < 20; i++ {
				c.propose(l, randomSpec(c.rng))
				c.step(false)
			}
			c.runUntil("node 1 failed", 2000, func() bool { return l.r.Err() != nil })
			if !errors.Is(l.r.Err(), ErrFailed) || !errors.Is(l.r.Err(), disk.ErrInjected) {
				t.Fatalf("node 1: %v", l.r.Err())
			}
			if err := l.r.Propose(0, makeBatch(batchSpec{records: 1})); !errors.Is(err, ErrFailed) {
				t.Fatalf("propose on a failed replica: %v", err)
			}
			// The others carry on: one of them leads and commits.
			c.down[1] = true
			nl := c.elect()
			tok := c.propose(nl, randomSpec(c.rng))
			c.runUntil("committed by the survivors", 5000, func() bool { _, ok := c.acked[tok]; return ok })
			if len(c.acked) <= acked {
				t.Fatalf("nothing committed after the failure")
			}
			c.checkLogs()
		})
	}
}

// TestInSyncReplicas: a follower cut off drops out of the leader's in-sync count once an
// election timeout passes without word from it, and comes back once it replicates again.
func TestInSyncReplicas(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 5)
	c := newCluster(t, 5, 3, testConfig())
	l := c.elect()
	c.runUntil("all in sync", 2000, func() bool { return l.r.InSyncReplicas() == 3 })
	var lag uint64 = 1
	if lag == l.id {
		lag = 2
	}
	c.down[lag] = true
	c.runUntil("one out of sync", 2000, func() bool { return l.r.InSyncReplicas() == 2 })
	for _, n := range c.n {
		if n.id != l.id && n.r.InSyncReplicas() != 0 {
			t.Fatalf("follower %d counts %d in sync", n.id, n.r.InSyncReplicas())
		}
	}
	delete(c.down, lag)
	c.propose(l, randomSpec(c.rng))
	c.runUntil("all in sync again", 4000, func() bool { return l.r.InSyncReplicas() == 3 })
	// Steady: CheckQuorum clears raft's RecentActive at every election timeout; the count
	// must not dip until the next heartbeat answers (acks=all would be refused).
	for i := range 20 * testConfig().ElectionTicks {
		// The leader ticks alone, checked before the heartbeats it sends are answered.
		c.nowMs += tickMs
		l.r.Tick(c.nowMs)
		got := l.r.InSyncReplicas()
		c.step(false)
		if got != 3 || !l.r.IsLeader() {
			t.Fatalf("tick %d: %d in sync (leader %v)", i, got, l.r.IsLeader())
		}
	}
}

// TestCrashBetweenLogAndStateSync: a follower that never voted learns the leader's term
// and then entries that the third node lacks; its log is synced, and the power goes before
// its state file is. Its log now holds entries of a term whose HardState record is lost:
// recovery must raise its term to the log's (recoveredHardState). Without that it restarts
// in term 0 with entries of term 1, and raft panics when it refuses the lagging node's
// pre-vote (a refusal carries its term, which must not be 0).
func TestCrashBetweenLogAndStateSync(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		cryptotest.SetGlobalRandom(t, seed)
		c := newCluster(t, seed, 3, testConfig())
		const late = 3
		c.down[late] = true
		l := c.elect()
		other := c.node(3 - l.id) // the node that is neither the leader nor late
		c.runUntil("settled without the late follower", 2000, c.settled)
		// The late follower joins; the other node leaves, so it misses what comes next.
		c.down[other.id] = true
		delete(c.down, late)
		f := c.node(late)
		c.syncProb = 0 // hold every job: nothing new becomes durable
		for i := 0; i < 5; i++ {
			c.propose(l, randomSpec(c.rng))
		}
		c.runUntil("the late follower has the leader's term and entries", 200, func() bool {
			return f.r.st.log.EndOffset() > other.r.st.log.EndOffset() && f.r.st.state.hard.Term > 0
		})
		// Sync the follower's log alone, as the first half of a SyncJob does, and cut the
		// power of the follower and the leader.
		if f.job != nil && f.job.logJob != nil {
			if err := f.job.logJob.Run(); err != nil {
				t.Fatal(err)
			}
		} else if lj := f.r.st.log.PrepareSync(); lj != nil {
			f.r.st.log.SyncDone(lj, lj.Run())
		}
		c.crash(late, disk.CrashOptions{})
		c.crash(l.id, disk.CrashOptions{})
		c.restart(late)
		if hs := f.r.st.state.hard; hs.Term == 0 || hs.Term < f.r.st.lastTerm() {
			t.Fatalf("seed %d: recovered %+v with a log of term %d", seed, hs, f.r.st.lastTerm())
		}
		// The lagging node and the follower elect without the leader.
		delete(c.down, other.id)
		c.syncProb = 1
		c.runUntil("a leader without the old one", 5000, func() bool { return c.leader() != nil })
		c.restart(l.id)
		c.runUntil("settled", 20000, c.settled)
		c.checkLogs()
	}
}

// TestLargeEntriesInPlace replicates entries above inPlaceBytes, which every replica
// writes from the entry's own bytes (the harness hands all replicas the same ones), mixed
// with small ones, through a leader change that truncates a divergent suffix of large
// entries: the logs end identical and the committed batches never change.
func TestLargeEntriesInPlace(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 5)
	c := newCluster(t, 5, 3, testConfig())
	spec := func(i int) batchSpec {
		if i%3 == 0 {
			return randomSpec(c.rng)
		}
		return batchSpec{records: 1 + i%4, valueBytes: inPlaceBytes/2 + 1000*i, fill: byte(i)}
	}
	old := c.elect()
	for i := range 30 {
		c.propose(old, spec(i))
		if i%2 == 0 {
			c.step(false)
		}
	}
	c.runUntil("settled", 5000, c.settled)
	c.checkLogs()
	committedEnd := old.hw
	before := readAll(t, old.r.Storage())

	c.down[old.id] = true
	for i := range 10 {
		c.propose(old, spec(100+i))
		c.step(false)
	}
	nl := c.elect()
	for i := range 20 {
		c.propose(nl, spec(200+i))
		c.step(false)
	}
	delete(c.down, old.id)
	c.runUntil("settled", 20000, c.settled)
	c.checkLogs()
	if old.r.Storage().truncations == 0 {
		t.Fatalf("the old leader never truncated")
	}
	after := readAll(t, old.r.Storage())
	for off, b := range before {
		if off < committedEnd && string(after[off]) != string(b) {
			t.Fatalf("committed batch at %d changed", off)
		}
	}
}

// TestCommittedBeforeLeaderDurable: a proposal is answered Committed once both followers
// have it durably, while the leader's own sync is still outstanding (and its high
// watermark has not moved: it applies only what it has durably); the later apply does not
// answer it again, and a leader change after that does not either.
func TestCommittedBeforeLeaderDurable(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 7)
	c := newCluster(t, 7, 3, testConfig())
	l := c.elect()
	c.runUntil("settled", 2000, c.settled)
	hw := l.hw
	c.syncProb = 0 // jobs complete only below, followers' only
	tok := c.propose(l, batchSpec{records: 2, valueBytes: 100})
	for range 50 {
		c.step(false)
		for _, n := range c.n {
			if n != l && n.job != nil {
				j := n.job
				n.job = nil
				n.r.SyncDone(j, j.Run())
				c.collect(n)
			}
		}
		if _, ok := c.acked[tok]; ok {
			break
		}
	}
	if _, ok := c.acked[tok]; !ok {
		t.Fatalf("not committed with both followers durable; leader job outstanding: %v", l.job != nil)
	}
	if l.job == nil || l.hw != hw {
		t.Fatalf("leader job %v, hw %d -> %d: the leader's own sync should still be outstanding", l.job, hw, l.hw)
	}
	c.syncProb = 1
	c.runUntil("settled", 2000, c.settled) // "two outcomes" fails the harness
	if l.hw <= hw {
		t.Fatalf("leader hw %d did not move past %d", l.hw, hw)
	}
	c.down[l.id] = true
	c.elect()
	delete(c.down, l.id)
	c.runUntil("settled", 5000, c.settled)
	c.checkLogs()
}

// TestProposeWriteAcksAll: a proposal that needs all three voters (acks=all with
// min.insync.replicas 3) is not reported committed while one follower's sync is held,
// though a quorum has it; it is once that follower's sync completes. With a follower cut
// off, a proposal needing three ends with ErrTooFewAfterAppend once that follower falls
// out of sync, and one needing two is answered as usual.
func TestProposeWriteAcksAll(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 9)
	c := newCluster(t, 9, 3, testConfig())
	l := c.elect()
	c.runUntil("settled", 2000, c.settled)
	proposeAcks := func(need int) uint64 {
		t.Helper()
		c.nextToken++
		b := makeBatch(batchSpec{records: 1, valueBytes: 50})
		if _, _, err := l.r.ProposeWriteAcks(c.nextToken, b, need); err != nil {
			t.Fatal(err)
		}
		c.proposed[c.nextToken] = b
		return c.nextToken
	}
	var slow *node
	for _, n := range c.n {
		if n != l {
			slow = n
		}
	}
	c.syncProb = 0
	tok := proposeAcks(3)
	for range 50 {
		c.step(false)
		for _, n := range c.n {
			if n != slow && n.job != nil {
				j := n.job
				n.job = nil
				n.r.SyncDone(j, j.Run())
				c.collect(n)
			}
		}
	}
	if _, ok := c.outcomes[tok]; ok {
		t.Fatalf("reported %+v with one of three replicas not durable", c.outcomes[tok])
	}
	if l.hw == 0 {
		t.Fatalf("the quorum did not commit")
	}
	c.syncProb = 1
	c.runUntil("acked by all three", 200, func() bool { _, ok := c.acked[tok]; return ok })

	c.down[slow.id] = true
	tooFew := proposeAcks(3)
	two := proposeAcks(2)
	c.runUntil("answered", 2000, func() bool {
		c.step(true)
		_, a := c.outcomes[tooFew]
		_, b := c.outcomes[two]
		return a && b
	})
	if err := c.outcomes[tooFew].Err; !errors.Is(err, ErrTooFewAfterAppend) {
		t.Fatalf("needing three with one cut off: %v, want ErrTooFewAfterAppend", err)
	}
	if err := c.outcomes[two].Err; err != nil {
		t.Fatalf("needing two with one cut off: %v", err)
	}
	delete(c.down, slow.id)
	c.runUntil("settled", 5000, c.settled)
	c.checkLogs()
}

// TestCatchUp: after a full restart, a replica's own commit index is what it last
// persisted (with a term or vote change) and the new leader's heartbeats carry nothing it
// does not know the follower matches, so CaughtUp must wait for CatchUp's answer: whenever
// a replica reports CaughtUp, it has applied everything committed before the restart.
func TestCatchUp(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 11)
	c := newCluster(t, 11, 3, testConfig())
	l := c.elect()
	for range 20 {
		c.propose(l, randomSpec(c.rng))
		c.step(false)
	}
	c.runUntil("settled", 5000, c.settled)
	committed := l.hw
	for _, n := range c.n {
		c.crash(n.id, disk.CrashOptions{})
	}
	for _, n := range c.n {
		c.restart(n.id)
		if n.r.CaughtUp() {
			t.Fatalf("node %d caught up right after the restart", n.id)
		}
	}
	c.runUntil("all caught up", 5000, func() bool {
		all := true
		for _, n := range c.n {
			if n.r.CatchUp() {
				c.collect(n)
			}
			if !n.r.CaughtUp() {
				all = false
				continue
			}
			if n.hw < committed {
				t.Fatalf("node %d caught up at high watermark %d, below %d committed before the restart", n.id, n.hw, committed)
			}
		}
		c.step(true)
		return all
	})
}
