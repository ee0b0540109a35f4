package replica

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"

	"pgregory.net/rapid"

	"chronik/core/producer"
	"chronik/core/record"
	"chronik/disk"
)

// retentionConfig has small segments, so that retention has whole segments to delete,
// and no entry cache, so that entries come from the log.
func retentionConfig() Config {
	cfg := testConfig()
	cfg.MaxCacheBytes = -1
	cfg.Log.SegmentBytes = 4 << 10
	cfg.Log.RetentionBytes = 16 << 10
	return cfg
}

// producing proposes batches at the leader, a third of them idempotent from three
// producers, and lets the live nodes settle.
type producing struct {
	c    *cluster
	seqs map[int64]int32
}

func (p *producing) run(n int) {
	c := p.c
	c.t.Helper()
	for i := range n {
		l := c.leader()
		if l == nil {
			l = c.elect()
		}
		sp := batchSpec{records: 1 + c.rng.IntN(4), valueBytes: 100 + c.rng.IntN(200), fill: byte(i)}
		if c.rng.IntN(3) == 0 {
			sp.pid = int64(1 + c.rng.IntN(3))
			sp.seq = p.seqs[sp.pid]
		}
		if c.propose(l, sp) == 0 {
			c.t.Fatalf("leader %d refused a proposal", l.id)
		}
		p.seqs[sp.pid] += int32(sp.records)
		if i%5 == 4 {
			c.step(false)
		}
	}
	c.runUntil("settled", 20000, c.settled)
}

// producersBefore is the producer state folded over the acknowledged batches below
// offset, encoded: what a producer snapshot at offset must hold.
func (c *cluster) producersBefore(offset int64) []byte {
	var acks []ack
	for _, a := range c.acked {
		if a.BaseOffset < offset {
			acks = append(acks, a)
		}
	}
	slices.SortFunc(acks, func(a, b ack) int { return int(a.BaseOffset - b.BaseOffset) })
	st := producer.New()
	for _, a := range acks {
		h, err := record.ParseHeader(a.data)
		if err != nil {
			c.t.Fatalf("parse: %v", err)
		}
		h.BaseOffset = a.BaseOffset
		st.Append(h)
	}
	b, _ := st.MarshalBinary()
	return b
}

// retainAll runs retention on every live connected node until each log's files start at
// its recorded start (a deletion may wait for seals to become durable).
func (c *cluster) retainAll() {
	c.t.Helper()
	c.runUntil("retention done", 2000, func() bool {
		done := true
		for _, n := range c.n {
			if n.r == nil || c.down[n.id] {
				continue
			}
			if err := n.r.EnforceRetention(c.nowMs); err != nil {
				c.t.Fatalf("node %d: retention: %v", n.id, err)
			}
			st := n.r.Storage()
			if _, more := st.Log().RetentionPoint(c.nowMs); more || st.Log().StartOffset() != st.StartOffset() {
				done = false
			}
		}
		return done
	})
}

// checkProducers checks that every live node's producer snapshot is the producer state
// folded over the log below its start: that of the node whose log starts lowest, from
// its own snapshot on (after settling, logs agree below the high watermarks).
func (c *cluster) checkProducers() {
	c.t.Helper()
	var ref *Storage
	for _, n := range c.n {
		if n.r != nil && n.r.Err() == nil && (ref == nil || n.r.Storage().StartOffset() < ref.StartOffset()) {
			ref = n.r.Storage()
		}
	}
	for _, n := range c.n {
		if n.r == nil || n.r.Err() != nil {
			continue
		}
		st := n.r.Storage()
		if st.first == 1 {
			continue
		}
		want, err := ref.producersAt(st.StartOffset())
		if err != nil {
			c.t.Fatalf("node %d: producer state at %d: %v", n.id, st.StartOffset(), err)
		}
		if !bytes.Equal(st.ProducerSnapshot(), want) {
			c.t.Fatalf("node %d: producer snapshot at %d differs from the fold of the log below it", n.id, st.StartOffset())
		}
	}
}

func followerOf(c *cluster, l *node) *node {
	for _, n := range c.n {
		if n != l {
			return n
		}
	}
	return nil
}

// TestRetentionSnapshotCatchUp cuts a follower off while the leader retains past the
// follower's log end; on healing the follower gets a snapshot (log start offset and
// producer state), then entries, and ends byte-identical above the new start.
func TestRetentionSnapshotCatchUp(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 3)
	c := newCluster(t, 3, 3, retentionConfig())
	p := &producing{c: c, seqs: map[int64]int32{}}
	l := c.elect()
	p.run(20)
	f := followerOf(c, l)
	c.down[f.id] = true
	fEnd := f.r.Storage().Log().EndOffset()
	p.run(200)
	c.retainAll()
	start := l.r.Storage().StartOffset()
	if start <= fEnd {
		t.Fatalf("leader's log starts at %d, the follower's ends at %d: no snapshot needed", start, fEnd)
	}
	if l.r.Storage().Log().Stats().Bytes > 2*retentionConfig().Log.RetentionBytes {
		t.Fatalf("leader keeps %d bytes", l.r.Storage().Log().Stats().Bytes)
	}
	// Every proposal was acknowledged (no leader change): the acknowledged batches are
	// the ground truth.
	if want := c.producersBefore(start); !bytes.Equal(l.r.Storage().ProducerSnapshot(), want) {
		t.Fatalf("leader's producer snapshot at %d is not the fold of the batches below it", start)
	}
	if len(l.r.Storage().ProducerSnapshot()) <= 9 {
		t.Fatalf("producer snapshot holds no producer")
	}

	delete(c.down, f.id)
	c.runUntil("caught up", 20000, c.settled)
	if len(f.snaps) == 0 {
		t.Fatalf("follower installed no snapshot")
	}
	got := f.snaps[len(f.snaps)-1]
	fst := f.r.Storage()
	if got.offset != fst.StartOffset() || fst.Log().StartOffset() != got.offset || !bytes.Equal(got.producers, fst.ProducerSnapshot()) {
		t.Fatalf("follower: snapshot at %d, log starts at %d (recorded %d)", got.offset, fst.Log().StartOffset(), fst.StartOffset())
	}
	if got.offset < start || got.offset > l.r.Storage().StartOffset() {
		t.Fatalf("snapshot at %d, leader's start was %d, is %d", got.offset, start, l.r.Storage().StartOffset())
	}
	c.checkProducers()
	c.checkLogs()

	// Entries after the snapshot, a restart from disk, more entries.
	p.run(30)
	c.checkLogs()
	c.crash(f.id, disk.CrashOptions{})
	c.restart(f.id)
	if fst := f.r.Storage(); fst.StartOffset() != got.offset || !bytes.Equal(fst.ProducerSnapshot(), got.producers) {
		t.Fatalf("after restart: start %d, producer snapshot differs", fst.StartOffset())
	}
	p.run(30)
	c.retainAll()
	c.checkProducers()
	c.checkLogs()
}

// TestRetentionCrashBeforeDeletion fails a node's disk after the new log start is
// recorded and before (or while) the segments below it are deleted, cuts its power and
// restarts it: Open finishes the deletion, and the node serves on.
func TestRetentionCrashBeforeDeletion(t *testing.T) {
	for _, failAt := range []int{1, 3} {
		t.Run("", func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 5)
			c := newCluster(t, 5, 3, retentionConfig())
			p := &producing{c: c, seqs: map[int64]int32{}}
			l := c.elect()
			p.run(150)
			id := followerOf(c, l).id
			if failAt == 3 {
				id = l.id
			}
			removes := 0
			c.inject[id] = disk.InjectorFunc(func(op disk.Op, path string) error {
				if op == disk.OpRemove && strings.HasSuffix(path, ".log") {
					if removes++; removes == failAt {
						return disk.ErrInjected
					}
				}
				return nil
			})
			c.mayFail[id] = true
			c.crash(id, disk.CrashOptions{})
			c.restart(id)
			c.runUntil("settled", 20000, c.settled)
			n := c.node(id)
			before := n.r.Storage().Log().StartOffset()
			// Seals Open found are made durable by a SyncJob before their segment goes.
			var err error
			c.runUntil("retention failed", 200, func() bool {
				err = n.r.EnforceRetention(c.nowMs)
				return err != nil || n.r.Err() != nil
			})
			if n.r.Err() != nil {
				err = n.r.Err()
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, disk.ErrInjected) {
				t.Fatalf("retention with a failing remove: %v", err)
			}
			recorded := n.r.Storage().StartOffset()
			if recorded <= before {
				t.Fatalf("recorded start %d, log started at %d", recorded, before)
			}
			delete(c.inject, id)
			delete(c.mayFail, id)
			c.crash(id, disk.CrashOptions{KeepProb: 0.5, TearProb: 0.3})
			c.restart(id)
			st := c.node(id).r.Storage()
			if st.StartOffset() != recorded {
				t.Fatalf("after restart: recorded start %d, want %d", st.StartOffset(), recorded)
			}
			if failAt == 3 && st.Log().StartOffset() == before {
				t.Fatalf("the deletion that got as far as the third segment came back whole")
			}
			c.runUntil("settled", 20000, c.settled)
			c.runUntil("deletion finished", 200, func() bool { return st.Log().StartOffset() == recorded })
			p.run(40)
			c.retainAll()
			c.checkProducers()
			c.checkLogs()
		})
	}
}

// TestSnapshotInstallCrash fails the follower's disk in the middle of installing a
// snapshot (before the log reset is committed, or after, while the old segments are
// removed), cuts its power and restarts it: Open completes the reset that the state file
// records, and the follower catches up.
func TestSnapshotInstallCrash(t *testing.T) {
	for _, failOn := range []string{"log.reset.tmp", ".index"} {
		t.Run(failOn, func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 7)
			c := newCluster(t, 7, 3, retentionConfig())
			p := &producing{c: c, seqs: map[int64]int32{}}
			l := c.elect()
			p.run(10)
			f := followerOf(c, l)
			c.inject[f.id] = disk.InjectorFunc(func(op disk.Op, path string) error {
				if (op == disk.OpCreate || op == disk.OpRemove) && strings.HasSuffix(path, failOn) {
					return disk.ErrInjected
				}
				return nil
			})
			c.mayFail[f.id] = true
			c.crash(f.id, disk.CrashOptions{})
			c.restart(f.id)
			c.runUntil("settled", 20000, c.settled)
			c.down[f.id] = true
			p.run(200)
			c.retainAll()
			delete(c.down, f.id)
			c.runUntil("follower failed", 20000, func() bool { return f.r.Err() != nil })
			if !errors.Is(f.r.Err(), disk.ErrInjected) {
				t.Fatalf("follower failed with %v", f.r.Err())
			}
			delete(c.inject, f.id)
			delete(c.mayFail, f.id)
			c.crash(f.id, disk.CrashOptions{KeepProb: 0.5, TearProb: 0.3})
			c.restart(f.id)
			st := f.r.Storage()
			if st.Log().StartOffset() != st.StartOffset() || st.Log().EndOffset() != st.StartOffset() || st.first == 1 {
				t.Fatalf("after restart: log [%d, %d), recorded start %d (entry %d)", st.Log().StartOffset(), st.Log().EndOffset(), st.StartOffset(), st.first)
			}
			c.runUntil("caught up", 20000, c.settled)
			p.run(20)
			c.checkProducers()
			c.checkLogs()
		})
	}
}

// TestPropertyRetention drives three replicas through rounds of bursts of proposals,
// retention on any node, isolations, crashes (unsynced writes kept, dropped or torn) and
// restarts, with message delays and drops; then heals everything and checks that the
// cluster settles, that logs agree above their starts, that producer snapshots are the
// fold of the log below them, and that acknowledged proposals stay where they were
// acknowledged. Followers behind a leader's start catch up by snapshot. Replay a failure
// with -rapid.seed.
func TestPropertyRetention(t *testing.T) {
	installs := 0
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Uint64().Draw(rt, "seed")
		cryptotest.SetGlobalRandom(t, seed)
		cfg := retentionConfig()
		cfg.MaxCacheBytes = rapid.SampledFrom([]int{-1, 4 << 10, 4 << 20}).Draw(rt, "cacheBytes")
		cfg.Log.RetentionBytes = rapid.SampledFrom([]int64{6 << 10, 16 << 10}).Draw(rt, "retentionBytes")
		c := newCluster(rt, seed, 3, cfg)
		c.syncProb = rapid.Float64Range(0.3, 1).Draw(rt, "syncProb")
		c.holdProb = rapid.Float64Range(0, 0.3).Draw(rt, "holdProb")
		c.dropProb = rapid.Float64Range(0, 0.1).Draw(rt, "dropProb")
		rounds := rapid.IntRange(4, 20).Draw(rt, "rounds")
		for range rounds {
			id := uint64(rapid.IntRange(1, 3).Draw(rt, "node"))
			n := c.node(id)
			switch op := rapid.IntRange(0, 9).Draw(rt, "op"); op {
			case 0, 1, 2:
				for i := range 10 + c.rng.IntN(40) {
					if l := c.leader(); l != nil {
						c.propose(l, randomSpec(c.rng))
					}
					if i%4 == 3 {
						c.step(i%8 == 7)
					}
				}
			case 3, 4:
				for _, n := range c.n {
					if n.r != nil {
						if err := n.r.EnforceRetention(c.nowMs); err != nil {
							rt.Fatalf("node %d: retention: %v", n.id, err)
						}
					}
				}
			case 5:
				c.down[id] = !c.down[id]
			case 6:
				if n.r == nil {
					c.restart(id)
					break
				}
				keep := rapid.Float64Range(0, 1).Draw(rt, "keep")
				tear := rapid.Float64Range(0, 1-keep).Draw(rt, "tear")
				c.crash(id, disk.CrashOptions{KeepProb: keep, TearProb: tear})
			default:
				for i := range 20 + c.rng.IntN(60) {
					c.step(i%4 == 3)
				}
			}
		}
		for _, n := range c.n {
			if n.r == nil {
				c.restart(n.id)
			}
		}
		c.down = map[uint64]bool{}
		c.syncProb, c.holdProb, c.dropProb = 1, 0, 0
		c.runUntil("settled after healing", 40000, c.settled)
		c.checkLogs()
		c.checkProducers()
		hw := c.leader().hw
		for tok, a := range c.acked {
			if a.LastOffset >= hw {
				rt.Fatalf("acknowledged token %d at %d-%d, high watermark %d", tok, a.BaseOffset, a.LastOffset, hw)
			}
		}
		for _, n := range c.n {
			installs += n.r.Storage().installs
		}
	})
	t.Logf("snapshots installed since the last restart, over all runs: %d", installs)
}
