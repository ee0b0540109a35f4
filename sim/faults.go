package sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FaultKind names a fault the simulator injects.
type FaultKind uint8

const (
	// FaultCrash is a power loss of a node: synced data survives, each unsynced sector is
	// kept or dropped (never torn), then the node restarts after DurMs.
	FaultCrash FaultKind = iota
	// FaultTorn is a power loss that may also tear unsynced sectors.
	FaultTorn
	// FaultEIO makes a node's next fsync (or, with Write, its next write) fail with EIO;
	// a supervisor then kills and restarts the node DurMs later, as an operator would.
	FaultEIO
	// FaultClose closes one client's connection gracefully, from the client's side or,
	// with ServerSide, the broker's.
	FaultClose
	// FaultReset resets one client's connection: bytes in flight are lost both ways.
	FaultReset
	// FaultDelay adds ExtraMs of latency to every link for DurMs.
	FaultDelay
	// FaultPartition cuts a client (Client -1: every client) from the node both ways for
	// DurMs: bytes are held, connections attempted meanwhile time out.
	FaultPartition
	// FaultOneWay cuts one direction only (ToServer: client to node).
	FaultOneWay
	// FaultPause stops a node's loop for DurMs: nothing is processed, the kernel still
	// buffers bytes.
	FaultPause
	// FaultSkew moves a node's clock forward by SkewMs and sets its drift to DriftPPM.
	FaultSkew
	// FaultSkewBack steps a node's clock back by -SkewMs (an NTP step): not in the
	// default mix, see docs/simulator.md.
	FaultSkewBack
	// The peer network's faults (cluster mode; drawn only for runs of several nodes).
	//
	// FaultIsolate cuts a node from every other node both ways for DurMs (its clients
	// still reach it); with Leader, the node is the one leading partition Client mod
	// partitions when the fault fires: an isolated leader.
	FaultIsolate
	// FaultSplit cuts the link between Node and Peer both ways for DurMs.
	FaultSplit
	// FaultPeerOneWay drops what Node sends to Peer (not the reverse) for DurMs.
	FaultPeerOneWay
	// FaultPeerDrop drops each peer message with probability Prob for DurMs.
	FaultPeerDrop
	numFaultKinds
)

var faultNames = [numFaultKinds]string{"crash", "torn", "eio", "close", "reset", "delay", "partition", "oneway", "pause", "skew", "skewback",
	"isolate", "split", "peeroneway", "peerdrop"}

// peerFault reports whether k is a fault of the peer network.
func peerFault(k FaultKind) bool { return k >= FaultIsolate && k <= FaultPeerDrop }

func (k FaultKind) String() string {
	if k < numFaultKinds {
		return faultNames[k]
	}
	return "fault(" + strconv.Itoa(int(k)) + ")"
}

// faultRatePerS is how many faults of each kind a random schedule holds per simulated
// second of the fault window, on average.
var faultRatePerS = [numFaultKinds]float64{
	FaultCrash: 0.3, FaultTorn: 0.3, FaultEIO: 0.2, FaultClose: 1, FaultReset: 1,
	FaultDelay: 0.4, FaultPartition: 0.3, FaultOneWay: 0.2, FaultPause: 0.3, FaultSkew: 0.3, FaultSkewBack: 0.3,
	FaultIsolate: 0.4, FaultSplit: 0.3, FaultPeerOneWay: 0.2, FaultPeerDrop: 0.2,
}

// Profiles are named fault mixes for -faults.
var Profiles = map[string]string{
	"none":    "",
	"default": "crash,torn,eio,close,reset,delay,partition,oneway,pause,skew,isolate,split,peeroneway,peerdrop",
	"all":     "crash,torn,eio,close,reset,delay,partition,oneway,pause,skew,skewback,isolate,split,peeroneway,peerdrop",
	"clock":   "skew,skewback",
	"disk":    "crash,torn,eio",
	"net":     "close,reset,delay,partition,oneway,pause,isolate,split,peeroneway,peerdrop",
	"peer":    "isolate,split,peeroneway,peerdrop",
	"crash":   "crash,torn",
}

// ParseFaults turns a profile name or a comma-separated list of fault kinds into a set.
func ParseFaults(mix string) ([numFaultKinds]bool, error) {
	var set [numFaultKinds]bool
	if p, ok := Profiles[mix]; ok {
		mix = p
	}
	for _, name := range strings.Split(mix, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for k := FaultKind(0); k < numFaultKinds; k++ {
			if faultNames[k] == name {
				set[k], found = true, true
			}
		}
		if !found {
			return set, fmt.Errorf("sim: unknown fault %q (kinds: %s; profiles: default, all, disk, net, peer, crash, clock, none)", name, strings.Join(faultNames[:], ","))
		}
	}
	return set, nil
}

// Fault is one entry of a fault schedule. Every field a fault needs is drawn when the
// schedule is made (Seed covers its draws at run time), so the schedule alone, with the
// run's seed, replays it.
type Fault struct {
	AtMs int64
	Kind FaultKind
	Node int
	// Client is the index of the workload client a connection fault targets (modulo
	// their number); -1 for every client (partitions).
	Client     int
	DurMs      int64   // restart delay (crash, torn, eio) or length (delay, partition, oneway, pause)
	Keep       float64 // crash, torn, eio: probability an unsynced sector or entry survives
	Tear       float64 // torn: probability an unsynced sector is torn
	Write      bool    // eio: fail a write rather than an fsync
	ServerSide bool    // close: the broker closes
	Partial    bool    // close (client side): the client dies mid-write, its last bytes never sent
	ToServer   bool    // oneway: the cut direction is client to node
	ExtraMs    int64   // delay: added one-way latency
	SkewMs     int64   // skew: clock jump
	DriftPPM   int64   // skew: new drift
	Seed       uint64  // the fault's own randomness (crash clone)
	Leader     bool    // isolate: the node leading partition Client mod partitions
	Peer       int     // split, peeroneway: the other node
	Prob       float64 // peerdrop: the probability a message is dropped
}

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%dms %s n%d", f.AtMs, f.Kind, f.Node)
	switch f.Kind {
	case FaultCrash:
		fmt.Fprintf(&b, " keep=%.2f restart=%dms", f.Keep, f.DurMs)
	case FaultTorn:
		fmt.Fprintf(&b, " keep=%.2f tear=%.2f restart=%dms", f.Keep, f.Tear, f.DurMs)
	case FaultEIO:
		fmt.Fprintf(&b, " write=%v keep=%.2f restart=%dms", f.Write, f.Keep, f.DurMs)
	case FaultClose:
		fmt.Fprintf(&b, " client=%d server=%v partial=%v", f.Client, f.ServerSide, f.Partial)
	case FaultReset:
		fmt.Fprintf(&b, " client=%d", f.Client)
	case FaultDelay:
		fmt.Fprintf(&b, " extra=%dms for=%dms", f.ExtraMs, f.DurMs)
	case FaultPartition:
		fmt.Fprintf(&b, " client=%d for=%dms", f.Client, f.DurMs)
	case FaultOneWay:
		fmt.Fprintf(&b, " client=%d toserver=%v for=%dms", f.Client, f.ToServer, f.DurMs)
	case FaultPause:
		fmt.Fprintf(&b, " for=%dms", f.DurMs)
	case FaultSkew, FaultSkewBack:
		fmt.Fprintf(&b, " skew=%dms drift=%dppm", f.SkewMs, f.DriftPPM)
	case FaultIsolate:
		fmt.Fprintf(&b, " leader=%v client=%d for=%dms", f.Leader, f.Client, f.DurMs)
	case FaultSplit, FaultPeerOneWay:
		fmt.Fprintf(&b, " peer=n%d for=%dms", f.Peer, f.DurMs)
	case FaultPeerDrop:
		fmt.Fprintf(&b, " prob=%.2f for=%dms", f.Prob, f.DurMs)
	}
	return b.String()
}

// drawSchedule draws a random schedule of the kinds in mix over [fromMs, toMs): each kind
// from its own stream, so that dropping a kind leaves the others' faults unchanged.
func drawSchedule(seed uint64, mix [numFaultKinds]bool, nodes int, fromMs, toMs int64) []Fault {
	var out []Fault
	for k := FaultKind(0); k < numFaultKinds; k++ {
		if !mix[k] || (peerFault(k) && nodes < 2) {
			continue
		}
		r := newRand(seed, streamFaults, uint64(k))
		t := float64(fromMs)
		for len(out) < maxFaults {
			t += r.ExpFloat64() / faultRatePerS[k] * 1000
			if t >= float64(toMs) {
				break
			}
			f := Fault{AtMs: int64(t), Kind: k, Node: r.IntN(nodes), Client: r.IntN(1 << 16), Seed: r.Uint64()}
			switch k {
			case FaultCrash:
				f.Keep, f.DurMs = r.Float64(), between(r, 5, 400)
			case FaultTorn:
				f.Keep = r.Float64() * 0.7
				f.Tear = 0.05 + r.Float64()*0.25
				f.DurMs = between(r, 5, 400)
			case FaultEIO:
				f.Write = r.IntN(3) == 0
				f.Keep, f.DurMs = r.Float64(), between(r, 20, 600)
			case FaultClose:
				f.ServerSide = r.IntN(3) == 0
				f.Partial = !f.ServerSide && r.IntN(2) == 0
			case FaultDelay:
				f.ExtraMs, f.DurMs = between(r, 1, 150), between(r, 20, 1000)
			case FaultPartition:
				if r.IntN(4) == 0 {
					f.Client = -1
				}
				f.DurMs = between(r, 20, 1500)
			case FaultOneWay:
				f.ToServer = r.IntN(2) == 0
				f.DurMs = between(r, 20, 1500)
			case FaultPause:
				f.DurMs = between(r, 5, 1200)
			case FaultSkew:
				f.SkewMs, f.DriftPPM = between(r, 0, 5000), between(r, -500, 500)
			case FaultSkewBack:
				f.SkewMs, f.DriftPPM = between(r, -5000, -1), between(r, -500, 500)
			case FaultIsolate:
				f.Leader = r.IntN(3) != 0
				f.DurMs = between(r, 100, 3000)
			case FaultSplit, FaultPeerOneWay:
				f.Peer = (f.Node + 1 + r.IntN(nodes-1)) % nodes
				f.DurMs = between(r, 100, 2500)
			case FaultPeerDrop:
				f.Prob = 0.05 + r.Float64()*0.5
				f.DurMs = between(r, 100, 2000)
			}
			out = append(out, f)
		}
	}
	sortSchedule(out)
	return out
}

// sortSchedule orders faults by time, then kind; the sort is stable so equal faults keep
// their drawing order.
func sortSchedule(fs []Fault) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].AtMs != fs[j].AtMs {
			return fs[i].AtMs < fs[j].AtMs
		}
		return fs[i].Kind < fs[j].Kind
	})
}
