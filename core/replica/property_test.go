package replica

import (
	"testing"
	"testing/cryptotest"

	"pgregory.net/rapid"

	"chronik/disk"
)

// TestPropertyReplication drives three replicas through a random schedule of proposals,
// ticks, message delays and drops, isolations, crashes (of any number of nodes, with
// unsynced writes kept, dropped or torn, sometimes between the two syncs of a SyncJob),
// restarts and retention (so followers catch up by snapshot); then heals everything and
// checks
// that the cluster settles, that the logs agree byte for byte below the high
// watermarks, and that every proposal acknowledged as committed is at its acknowledged
// offset on every node. Replay a failure with -rapid.seed.
func TestPropertyReplication(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Uint64().Draw(rt, "seed")
		cryptotest.SetGlobalRandom(t, seed)
		cfg := testConfig()
		cfg.MaxCacheBytes = rapid.SampledFrom([]int{-1, 4 << 10, 4 << 20}).Draw(rt, "cacheBytes")
		cfg.Log.SegmentBytes = rapid.SampledFrom([]int64{4 << 10, 8 << 10, 16 << 10, 1 << 30}).Draw(rt, "segmentBytes")
		cfg.Log.RetentionBytes = rapid.SampledFrom([]int64{0, 8 << 10, 16 << 10, 32 << 10}).Draw(rt, "retentionBytes")
		c := newCluster(rt, seed, 3, cfg)
		c.syncProb = rapid.Float64Range(0.2, 1).Draw(rt, "syncProb")
		c.holdProb = rapid.Float64Range(0, 0.5).Draw(rt, "holdProb")
		c.dropProb = rapid.Float64Range(0, 0.2).Draw(rt, "dropProb")
		steps := rapid.IntRange(50, 400).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			id := uint64(rapid.IntRange(1, 3).Draw(rt, "node"))
			n := c.node(id)
			switch op := rapid.IntRange(0, 99).Draw(rt, "op"); {
			case op < 35:
				if l := c.leader(); l != nil {
					for range rapid.IntRange(1, 5).Draw(rt, "proposals") {
						c.propose(l, randomSpec(c.rng))
					}
				}
			case op < 75:
				c.step(op%2 == 0)
			case op < 80:
				if n.r != nil {
					if n.job != nil && n.job.logJob != nil && rapid.Bool().Draw(rt, "midJob") {
						// The power goes inside SyncJob.Run, between its two syncs.
						if err := n.job.logJob.Run(); err != nil {
							rt.Fatalf("sync: %v", err)
						}
					}
					keep := rapid.Float64Range(0, 1).Draw(rt, "keep")
					tear := rapid.Float64Range(0, 1-keep).Draw(rt, "tear")
					c.crash(id, disk.CrashOptions{KeepProb: keep, TearProb: tear})
				}
			case op < 86:
				if n.r == nil {
					c.restart(id)
				}
			case op < 93:
				// Retention moves this node's log start; followers behind a leader's
				// start catch up by snapshot.
				if n.r != nil {
					if err := n.r.EnforceRetention(c.nowMs); err != nil {
						rt.Fatalf("node %d: retention: %v", id, err)
					}
				}
			case op < 97:
				c.down[id] = true
			default:
				delete(c.down, id)
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
	})
}
