package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"chronik/chaos/cluster"
	"chronik/chaos/proxy"
)

// Kind is a kind of fault.
type Kind string

// The faults a schedule draws from. The client-link kinds act on the proxy between the
// clients and one node; the peer-link kinds (cluster runs only) on the proxies between
// nodes.
const (
	Delay         Kind = "delay"          // client link: delay with jitter
	Blackhole     Kind = "blackhole"      // client link: discard both directions (a partition)
	BlackholeUp   Kind = "blackhole-up"   // client link: one-way partition, client to broker
	BlackholeDown Kind = "blackhole-down" // client link: one-way partition, broker to client
	Drop          Kind = "drop"           // client link: close every connection, repeatedly
	Reset         Kind = "reset"          // client link: abort every connection with an RST, repeatedly
	Kill          Kind = "kill"           // kill -9, restart on the same data dir after Length
	Pause         Kind = "pause"          // SIGSTOP, SIGCONT after Length
	// Isolate blackholes every peer link from and to the node: it hears no peer and no
	// peer hears it, while clients still reach it.
	Isolate Kind = "isolate"
	// OneWay blackholes the link from Node to Peer only: Node's messages to Peer are lost,
	// Peer's to Node arrive.
	OneWay Kind = "one-way"
	// LinkDelay delays every peer link from and to the node, with jitter.
	LinkDelay Kind = "link-delay"
	// LinkReset aborts every peer connection from and to the node with an RST, repeatedly.
	LinkReset Kind = "link-reset"
	// KillAll kills every node with kill -9 at once (a power loss of the whole cluster)
	// and restarts them all after Length: what acks=all acknowledged was fsynced on a
	// quorum and must survive.
	KillAll Kind = "kill-all"
	// FullDisk shrinks the node's tmpfs to what it holds; the heal grows it and restarts
	// the node. Drawn only when Config.FullDisk is set (it needs root).
	FullDisk Kind = "full-disk"
)

// AllKinds lists the kinds every schedule draws from, in order.
var AllKinds = []Kind{Delay, Blackhole, BlackholeUp, BlackholeDown, Drop, Reset, Kill, Pause}

// PeerKinds lists the kinds a schedule of more than one peered node adds.
var PeerKinds = []Kind{Isolate, OneWay, LinkDelay, LinkReset, KillAll}

// leaderKinds may strike the leader of a partition instead of a drawn node (Fault.Leader).
var leaderKinds = map[Kind]bool{Kill: true, Pause: true, Blackhole: true, Isolate: true, OneWay: true, LinkDelay: true, FullDisk: true}

// DefaultKinds is what a schedule draws from by default: AllKinds, PeerKinds when the
// nodes form a cluster, and FullDisk when the nodes' disks can fill.
func DefaultKinds(peered, fullDisk bool) []Kind {
	kinds := append([]Kind(nil), AllKinds...)
	if peered {
		kinds = append(kinds, PeerKinds...)
	}
	if fullDisk {
		kinds = append(kinds, FullDisk)
	}
	return kinds
}

// repeatEvery is how often Drop, Reset and LinkReset strike during their Length.
const repeatEvery = 300 * time.Millisecond

// Fault is one fault of a schedule: Kind on Node (0-based) from At for Length.
type Fault struct {
	At, Length time.Duration
	Kind       Kind
	Node       int
	// Peer is the other end of a OneWay fault (0-based; Peer != Node).
	Peer int
	// Leader makes the fault strike the node that leads Partition when it is applied
	// (Node is the fallback when no leader is known); a OneWay fault then cuts the
	// leader's link to Peer, or to the node after Peer when Peer is the leader.
	Leader    bool
	Partition int32
	// Delay and Jitter parameterize Delay and LinkDelay faults.
	Delay, Jitter time.Duration
}

func (f Fault) String() string {
	who := fmt.Sprintf("node %d", f.Node+1)
	switch {
	case f.Kind == KillAll:
		who = "every node"
	case f.Leader:
		who = fmt.Sprintf("leader of p%d (else node %d)", f.Partition, f.Node+1)
	}
	s := fmt.Sprintf("at %8v for %7v: %-14s %s", f.At.Round(time.Millisecond), f.Length.Round(time.Millisecond), f.Kind, who)
	switch f.Kind {
	case Delay, LinkDelay:
		s += fmt.Sprintf(" delay %v jitter %v", f.Delay, f.Jitter)
	case OneWay:
		s += fmt.Sprintf(" -> node %d", f.Peer+1)
	}
	return s
}

// ScheduleConfig shapes a drawn schedule.
type ScheduleConfig struct {
	// Duration is the span in which faults start; each one ends before Duration.
	Duration time.Duration
	// Nodes is the number of nodes to aim at; Partitions the partitions whose leaders
	// faults may aim at (none when Partitions is 0 or Nodes is 1).
	Nodes, Partitions int
	// MinGap and MaxGap bound the quiet time between two faults.
	MinGap, MaxGap time.Duration
	// MinLength and MaxLength bound a fault's length.
	MinLength, MaxLength time.Duration
	// Kinds are the kinds to draw from (AllKinds when empty).
	Kinds []Kind
	// MaxFaults bounds the schedule's length.
	MaxFaults int
}

// DrawSchedule draws a schedule of non-overlapping faults from seed. The same seed and
// config give the same schedule; the schedule has its own random stream, apart from the
// proxies' jitter and the workload. With more than one node and some partitions, half of
// the faults of the leaderKinds aim at a partition's leader.
func DrawSchedule(seed uint64, cfg ScheduleConfig) []Fault {
	rng := rand.New(rand.NewPCG(seed, 0x7363686564756c65)) // "schedule"
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = AllKinds
	}
	nodes := max(cfg.Nodes, 1)
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	var out []Fault
	t := time.Duration(0)
	for len(out) < cfg.MaxFaults {
		t += between(cfg.MinGap, cfg.MaxGap)
		f := Fault{At: t, Length: between(cfg.MinLength, cfg.MaxLength), Kind: kinds[rng.IntN(len(kinds))], Node: rng.IntN(nodes)}
		switch f.Kind {
		case Delay, LinkDelay:
			f.Delay = between(5*time.Millisecond, 300*time.Millisecond)
			f.Jitter = between(0, f.Delay)
		case OneWay:
			f.Peer = (f.Node + 1 + rng.IntN(max(nodes-1, 1))) % nodes
		}
		if leaderKinds[f.Kind] && nodes > 1 && cfg.Partitions > 0 && rng.IntN(2) == 0 {
			f.Leader, f.Partition = true, int32(rng.IntN(cfg.Partitions))
		}
		if f.At+f.Length > cfg.Duration {
			break
		}
		out = append(out, f)
		t += f.Length
	}
	return out
}

// FormatSchedule writes a schedule one fault a line.
func FormatSchedule(s []Fault) string {
	var b strings.Builder
	for _, f := range s {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// target is what a schedule acts on.
type target struct {
	c *cluster.Cluster
	// disks are the nodes' tmpfs data dirs, by node index; nil without FullDisk.
	disks []*tmpfs
	// leaderOf returns the index of the node leading a partition now; nil when faults
	// never aim at leaders.
	leaderOf func(ctx context.Context, partition int32) (int, error)
	logf     func(string, ...any)
}

// runSchedule applies each fault at its time, relative to start, and heals it after its
// length; it stops early when ctx is done, healing what it applied. It returns an error
// when a fault or its heal fails (a node does not restart).
func runSchedule(ctx context.Context, tg *target, start time.Time, sched []Fault) error {
	for _, f := range sched {
		if !sleepUntil(ctx, start.Add(f.At)) {
			return nil
		}
		if err := applyFault(ctx, tg, start, f); err != nil {
			return err
		}
	}
	return nil
}

// leaderLookupTimeout bounds the Metadata request that finds a fault's leader.
const leaderLookupTimeout = 3 * time.Second

// resolve turns a fault aimed at a partition's leader into one aimed at a node: the
// leader now (the result has Leader false), or f.Node when none is known.
func resolve(ctx context.Context, tg *target, f Fault) Fault {
	if !f.Leader || tg.leaderOf == nil {
		return f
	}
	lctx, cancel := context.WithTimeout(ctx, leaderLookupTimeout)
	defer cancel()
	i, err := tg.leaderOf(lctx, f.Partition)
	if err != nil {
		tg.logf("  leader of p%d unknown (%v): node %d instead", f.Partition, err, f.Node+1)
		return f
	}
	tg.logf("  leader of p%d is node %d", f.Partition, i+1)
	f.Node, f.Leader = i, false // aimed: the log lines that follow name the node
	if f.Kind == OneWay && f.Peer == f.Node {
		f.Peer = (f.Peer + 1) % len(tg.c.Nodes())
	}
	return f
}

// repeatClose closes every connection of ps (RST when rst) every repeatEvery until end.
func repeatClose(ctx context.Context, tg *target, f Fault, end time.Time, rst bool, ps ...*proxy.Proxy) {
	for i := 0; i < 1000 && time.Now().Before(end) && ctx.Err() == nil; i++ {
		k := 0
		for _, p := range ps {
			if rst {
				k += p.ResetAll()
			} else {
				k += p.DropAll()
			}
		}
		tg.logf("  %s closed %d connections of node %d", f.Kind, k, f.Node+1)
		sleepUntil(ctx, time.Now().Add(repeatEvery))
	}
}

// applyFault applies f, waits its length (or until ctx is done) and heals it.
func applyFault(ctx context.Context, tg *target, start time.Time, f Fault) error {
	c, logf := tg.c, tg.logf
	f = resolve(ctx, tg, f)
	n := c.Nodes()[f.Node]
	links := c.LinksOf(n.ID)
	end := start.Add(f.At + f.Length)
	logf("apply %v", f)
	switch f.Kind {
	case Delay:
		n.Proxy().SetFaults(proxy.Faults{Delay: f.Delay, Jitter: f.Jitter})
	case Blackhole:
		n.Proxy().SetFaults(proxy.Faults{Blackhole: true})
	case BlackholeUp:
		n.Proxy().SetFaults(proxy.Faults{BlackholeUp: true})
	case BlackholeDown:
		n.Proxy().SetFaults(proxy.Faults{BlackholeDown: true})
	case Drop:
		repeatClose(ctx, tg, f, end, false, n.Proxy())
	case Reset:
		repeatClose(ctx, tg, f, end, true, n.Proxy())
	case Isolate:
		for _, p := range links {
			p.SetFaults(proxy.Faults{Blackhole: true})
		}
	case OneWay:
		if l := c.Link(n.ID, c.Nodes()[f.Peer].ID); l != nil {
			l.SetFaults(proxy.Faults{Blackhole: true})
		}
	case LinkDelay:
		for _, p := range links {
			p.SetFaults(proxy.Faults{Delay: f.Delay, Jitter: f.Jitter})
		}
	case LinkReset:
		repeatClose(ctx, tg, f, end, true, links...)
	case Kill:
		if err := n.Kill(); err != nil {
			return err
		}
	case KillAll:
		for _, m := range c.Nodes() {
			if err := m.Kill(); err != nil {
				return err
			}
		}
	case Pause:
		if err := n.Pause(); err != nil {
			return err
		}
	case FullDisk:
		if err := tg.disks[f.Node].fill(); err != nil {
			return err
		}
	}
	sleepUntil(ctx, end)
	return healFault(tg, f)
}

// healFault undoes f, whose node is resolved. A killed node restarts with a fresh
// context: healing must happen even when the run is ending.
func healFault(tg *target, f Fault) error {
	c, logf := tg.c, tg.logf
	n := c.Nodes()[f.Node]
	switch f.Kind {
	case FullDisk:
		// A storage error stops a replica until an operator acts: grow the disk, restart.
		if err := tg.disks[f.Node].grow(); err != nil {
			return err
		}
		if err := n.Kill(); err != nil {
			return err
		}
		fallthrough
	case Kill:
		rctx, cancel := context.WithTimeout(context.Background(), 2*cluster.DefaultStartTimeout)
		defer cancel()
		if err := n.Restart(rctx); err != nil {
			logf("heal %s node %d: restart failed: %v", f.Kind, f.Node+1, err)
			return err
		}
	case KillAll:
		for _, m := range c.Nodes() {
			rctx, cancel := context.WithTimeout(context.Background(), 2*cluster.DefaultStartTimeout)
			err := m.Restart(rctx)
			cancel()
			if err != nil {
				logf("heal %s: restart of node %d failed: %v", f.Kind, m.ID, err)
				return err
			}
		}
	case Pause:
		if err := n.Resume(); err != nil {
			return err
		}
	default:
		n.Proxy().Heal()
		for _, p := range c.LinksOf(n.ID) {
			p.Heal()
		}
	}
	if f.Kind == KillAll {
		logf("heal %s: every node restarted", f.Kind)
	} else {
		logf("heal %s node %d", f.Kind, f.Node+1)
	}
	return nil
}

// sleepUntil sleeps until t or until ctx is done; false means ctx is done.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
