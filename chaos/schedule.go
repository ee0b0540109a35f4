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

// The faults a schedule draws from.
const (
	Delay         Kind = "delay"          // proxy delay with jitter
	Blackhole     Kind = "blackhole"      // proxy discards both directions: a partition
	BlackholeUp   Kind = "blackhole-up"   // one-way partition, client to broker
	BlackholeDown Kind = "blackhole-down" // one-way partition, broker to client
	Drop          Kind = "drop"           // proxy closes every connection, repeatedly
	Reset         Kind = "reset"          // proxy aborts every connection with an RST, repeatedly
	Kill          Kind = "kill"           // kill -9, restart on the same data dir after Length
	Pause         Kind = "pause"          // SIGSTOP, SIGCONT after Length
	// FullDisk shrinks the node's tmpfs to what it holds; the heal grows it and restarts
	// the node. Drawn only when Config.FullDisk is set (it needs root).
	FullDisk Kind = "full-disk"
)

// AllKinds lists the kinds every schedule draws from, in order.
var AllKinds = []Kind{Delay, Blackhole, BlackholeUp, BlackholeDown, Drop, Reset, Kill, Pause}

// repeatEvery is how often Drop and Reset strike during their Length.
const repeatEvery = 300 * time.Millisecond

// Fault is one fault of a schedule: Kind on Node (0-based) from At for Length.
type Fault struct {
	At, Length time.Duration
	Kind       Kind
	Node       int
	// Delay and Jitter parameterize Delay faults.
	Delay, Jitter time.Duration
}

func (f Fault) String() string {
	s := fmt.Sprintf("at %8v for %7v: %-14s node %d", f.At.Round(time.Millisecond), f.Length.Round(time.Millisecond), f.Kind, f.Node+1)
	if f.Kind == Delay {
		s += fmt.Sprintf(" delay %v jitter %v", f.Delay, f.Jitter)
	}
	return s
}

// ScheduleConfig shapes a drawn schedule.
type ScheduleConfig struct {
	// Duration is the span in which faults start; each one ends before Duration.
	Duration time.Duration
	// Nodes is the number of nodes to aim at.
	Nodes int
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
// proxies' jitter and the workload.
func DrawSchedule(seed uint64, cfg ScheduleConfig) []Fault {
	rng := rand.New(rand.NewPCG(seed, 0x7363686564756c65)) // "schedule"
	kinds := cfg.Kinds
	if len(kinds) == 0 {
		kinds = AllKinds
	}
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
		f := Fault{At: t, Length: between(cfg.MinLength, cfg.MaxLength), Kind: kinds[rng.IntN(len(kinds))], Node: rng.IntN(max(cfg.Nodes, 1))}
		if f.Kind == Delay {
			f.Delay = between(5*time.Millisecond, 300*time.Millisecond)
			f.Jitter = between(0, f.Delay)
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
	logf  func(string, ...any)
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

// applyFault applies f, waits its length (or until ctx is done) and heals it.
func applyFault(ctx context.Context, tg *target, start time.Time, f Fault) error {
	c, logf := tg.c, tg.logf
	n := c.Nodes()[f.Node]
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
	case Drop, Reset:
		for i := 0; i < 1000 && time.Now().Before(end) && ctx.Err() == nil; i++ {
			var k int
			if f.Kind == Drop {
				k = n.Proxy().DropAll()
			} else {
				k = n.Proxy().ResetAll()
			}
			logf("  %s closed %d connections of node %d", f.Kind, k, f.Node+1)
			sleepUntil(ctx, time.Now().Add(repeatEvery))
		}
	case Kill:
		if err := n.Kill(); err != nil {
			return err
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

// healFault undoes f. A killed node restarts with a fresh context: healing must happen
// even when the run is ending.
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
	case Pause:
		if err := n.Resume(); err != nil {
			return err
		}
	default:
		n.Proxy().Heal()
	}
	logf("heal %s node %d", f.Kind, f.Node+1)
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
