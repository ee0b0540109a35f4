package replica

import (
	"fmt"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The benchmarks measure allocations per proposed entry on a produce-like workload: the
// leader of a 3-voter group proposes 1 KiB record batches, perProposalRound at a time
// (the batches that arrive during one loop iteration), and every node's Ready is handled
// as Replica does (AsyncStorageWrites) until the group is quiet. One op is one entry.
//
// BenchmarkRaftOnly isolates the raft library (raft.MemoryStorage, storage writes
// acknowledged at once): the same code, ported to v3.7.0's pointer types, runs in a
// separate module (docs/replication.md gives the command and both results). "inproc"
// hands messages across as pointers; "wire" marshals and unmarshals each one, as a
// transport must. BenchmarkReplica is the whole spike: Storage over core/log on a MemFS.

const benchBatchBytes = 1024

func BenchmarkRaftOnly(b *testing.B) {
	for _, wire := range []bool{false, true} {
		for _, k := range []int{1, 16} {
			name := fmt.Sprintf("inproc/entries-per-round=%d", k)
			if wire {
				name = fmt.Sprintf("wire/entries-per-round=%d", k)
			}
			b.Run(name, func(b *testing.B) { benchRaftOnly(b, k, wire) })
		}
	}
}

type memNode struct {
	rn *raft.RawNode
	st *raft.MemoryStorage
}

// memGroup is three RawNodes over MemoryStorage, handled as Replica handles its RawNode.
type memGroup struct {
	nodes map[uint64]*memNode
	pump  func()
}

func benchRaftOnly(b *testing.B, perRound int, wire bool) {
	g := newMemGroup(b, wire)
	nodes, pump := g.nodes, g.pump
	data := make([][]byte, perRound)
	for i := range data {
		data[i] = makeBatch(batchSpec{records: 10, valueBytes: benchBatchBytes/10 - 8})
	}
	b.SetBytes(int64(len(data[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := nodes[1].rn.Propose(data[i%perRound]); err != nil {
			b.Fatal(err)
		}
		if i%perRound == perRound-1 {
			pump()
		}
		if i%4096 == 4095 {
			b.StopTimer()
			for _, n := range nodes {
				ap := n.rn.BasicStatus().Applied
				_ = n.st.Compact(ap)
			}
			b.StartTimer()
		}
	}
	pump()
}

// BenchmarkIdleTick is the cost of one tick of one idle group: each of its three nodes
// ticks, the leader's heartbeats (HeartbeatTicks 1) and their responses are exchanged,
// marshaled. 1,000 partitions with a 100 ms tick cost 10,000 ops per second.
func BenchmarkIdleTick(b *testing.B) {
	g := newMemGroup(b, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for id := uint64(1); id <= 3; id++ {
			g.nodes[id].rn.Tick()
		}
		g.pump()
	}
	b.StopTimer()
	if g.nodes[1].rn.BasicStatus().RaftState != raft.StateLeader {
		b.Fatal("leadership moved while idle")
	}
}

func newMemGroup(b *testing.B, wire bool) *memGroup {
	nodes := map[uint64]*memNode{}
	for id := uint64(1); id <= 3; id++ {
		st := raft.NewMemoryStorage()
		if err := st.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
			ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}, Index: 1, Term: 1,
		}}); err != nil {
			b.Fatal(err)
		}
		rn, err := raft.NewRawNode(&raft.Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, AsyncStorageWrites: true,
			CheckQuorum: true, PreVote: true, Logger: discardLogger{},
		})
		if err != nil {
			b.Fatal(err)
		}
		nodes[id] = &memNode{rn: rn, st: st}
	}
	var queue []pb.Message
	deliver := func(m pb.Message) {
		if wire {
			buf, err := m.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			m = pb.Message{}
			if err := m.Unmarshal(buf); err != nil {
				b.Fatal(err)
			}
		}
		queue = append(queue, m)
	}
	pump := func() {
		for {
			progress := false
			for id := uint64(1); id <= 3; id++ {
				n := nodes[id]
				for n.rn.HasReady() {
					progress = true
					rd := n.rn.Ready()
					for _, m := range rd.Messages {
						switch m.To {
						case raft.LocalAppendThread:
							if hs := (pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); !raft.IsEmptyHardState(hs) {
								_ = n.st.SetHardState(hs)
							}
							if err := n.st.Append(m.Entries); err != nil {
								b.Fatal(err)
							}
							for _, r := range m.Responses {
								if r.To == id {
									_ = n.rn.Step(r)
								} else {
									deliver(r)
								}
							}
						case raft.LocalApplyThread:
							for _, r := range m.Responses {
								_ = n.rn.Step(r)
							}
						default:
							deliver(m)
						}
					}
				}
			}
			for len(queue) > 0 {
				progress = true
				m := queue[0]
				queue = queue[1:]
				_ = nodes[m.To].rn.Step(m)
			}
			if !progress {
				return
			}
		}
	}
	if err := nodes[1].rn.Campaign(); err != nil {
		b.Fatal(err)
	}
	pump()
	if nodes[1].rn.BasicStatus().RaftState != raft.StateLeader {
		b.Fatal("node 1 is not the leader")
	}
	return &memGroup{nodes: nodes, pump: pump}
}

// BenchmarkReplica proposes through the whole spike: Replica, Storage, core/log on a
// MemFS (whose own bookkeeping allocates too), each SyncJob run at once, every message
// marshaled and unmarshaled.
func BenchmarkReplica(b *testing.B) {
	for _, k := range []int{1, 16} {
		b.Run(fmt.Sprintf("entries-per-round=%d", k), func(b *testing.B) {
			c := newCluster(b, 1, 3, testConfig())
			l := c.elect()
			c.runUntil("settled", 1000, c.settled)
			spec := batchSpec{records: 10, valueBytes: benchBatchBytes/10 - 8}
			batches := make([][]byte, b.N)
			for i := range batches {
				batches[i] = makeBatch(spec)
			}
			var queue [][]byte
			pump := func() {
				for progress := true; progress; {
					progress = false
					for _, n := range c.n {
						rd := n.r.Ready()
						for _, m := range rd.Messages {
							buf, err := m.Marshal()
							if err != nil {
								b.Fatal(err)
							}
							queue = append(queue, buf)
						}
						if rd.Sync != nil {
							progress = true
							n.r.SyncDone(rd.Sync, rd.Sync.Run())
						}
					}
					for _, buf := range queue {
						progress = true
						var m pb.Message
						if err := m.Unmarshal(buf); err != nil {
							b.Fatal(err)
						}
						_ = c.node(m.To).r.Step(m)
					}
					queue = queue[:0]
				}
			}
			b.SetBytes(int64(len(batches[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.r.Propose(uint64(i+1), batches[i]); err != nil {
					b.Fatal(err)
				}
				if i%k == k-1 {
					pump()
				}
			}
			pump()
			b.StopTimer()
			if l.r.HighWatermark() != l.r.Storage().Log().EndOffset() {
				b.Fatalf("high watermark %d, log end %d", l.r.HighWatermark(), l.r.Storage().Log().EndOffset())
			}
		})
	}
}
