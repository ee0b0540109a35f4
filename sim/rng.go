package sim

import "math/rand/v2"

// Random streams. Every source of randomness in a run is its own PCG stream derived from
// the seed, so that removing one fault or one client does not shift the draws of the
// others: a failing schedule then shrinks to a handful of faults and still fails.
const (
	streamNet     uint64 = iota + 1 // per link: latency, chunking (sub: link id)
	streamFaults                    // the fault schedule (sub: fault kind)
	streamClients                   // per client: what to produce, think times (sub: client)
	streamDisk                      // per node: fsync latency (sub: node)
	streamNode                      // the kafka.Node seed (sub: node<<32 | incarnation)
	streamSetup                     // per-seed broker settings
	streamFault                     // a fault's own draws, e.g. a crash clone (sub: fault seed)
	streamPeer                      // per peer link: latency, drops (sub: from*nodes+to)
	streamRaft                      // the Raft election jitter, crypto/rand.Reader's stand-in
)

// mix64 is splitmix64's finalizer: a bijective scrambler of 64-bit words.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// streamSeed is the 64-bit seed of stream's sub-stream sub.
func streamSeed(seed, stream, sub uint64) uint64 {
	return mix64(mix64(seed^stream<<56) ^ mix64(sub+stream))
}

// newRand returns the generator of stream's sub-stream sub under seed.
func newRand(seed, stream, sub uint64) *rand.Rand {
	s := streamSeed(seed, stream, sub)
	return rand.New(rand.NewPCG(s, mix64(s)))
}

// between draws uniformly from [lo, hi].
func between(r *rand.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int64N(hi-lo+1)
}
