// Package raft37 is BenchmarkRaftOnly and BenchmarkIdleTick of chronik/core/replica on
// go.etcd.io/raft/v3 v3.7.0 (protobuf-go pointer fields): same workload, same storage,
// same message handling as the v3.6.0 code in core/replica/bench_test.go.
package raft37

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const benchBatchBytes = 1024

type discardLogger struct{}

func (discardLogger) Debug(...any)              {}
func (discardLogger) Debugf(string, ...any)     {}
func (discardLogger) Info(...any)               {}
func (discardLogger) Infof(string, ...any)      {}
func (discardLogger) Warning(...any)            {}
func (discardLogger) Warningf(string, ...any)   {}
func (discardLogger) Error(...any)              {}
func (discardLogger) Errorf(string, ...any)     {}
func (discardLogger) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (discardLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }

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
		data[i] = makeBatch(10, benchBatchBytes/10-8)
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
		if i%4096 == 4095 { // keep MemoryStorage small, as a real log's cache is
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
		if err := st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
			ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}, Index: new(uint64(1)), Term: new(uint64(1)),
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
	var queue []*pb.Message
	deliver := func(m *pb.Message) {
		if wire {
			buf, err := proto.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			m = &pb.Message{}
			if err := proto.Unmarshal(buf, m); err != nil {
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
						switch m.GetTo() {
						case raft.LocalAppendThread:
							if hs := (&pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}); m.Term != nil {
								_ = n.st.SetHardState(hs)
							}
							if err := n.st.Append(m.GetEntries()); err != nil {
								b.Fatal(err)
							}
							for _, r := range m.GetResponses() {
								if r.GetTo() == id {
									_ = n.rn.Step(r)
								} else {
									deliver(r)
								}
							}
						case raft.LocalApplyThread:
							for _, r := range m.GetResponses() {
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
				_ = nodes[m.GetTo()].rn.Step(m)
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

func makeBatch(records, valueBytes int) []byte {
	var recs []byte
	value := make([]byte, valueBytes)
	for i := 0; i < records; i++ {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, -1)
		body = binary.AppendVarint(body, int64(len(value)))
		body = append(body, value...)
		body = binary.AppendVarint(body, 0)
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	be := binary.BigEndian
	b := make([]byte, 0, 61+len(recs))
	b = be.AppendUint64(b, 0)
	b = be.AppendUint32(b, uint32(61-12+len(recs)))
	b = be.AppendUint32(b, 0)
	b = append(b, 2)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint16(b, 0)
	b = be.AppendUint32(b, uint32(records-1))
	b = be.AppendUint64(b, 1_700_000_000_000)
	b = be.AppendUint64(b, 1_700_000_000_000+uint64(records-1))
	b = be.AppendUint64(b, ^uint64(0))
	b = be.AppendUint16(b, ^uint16(0))
	b = be.AppendUint32(b, ^uint32(0))
	b = be.AppendUint32(b, uint32(records))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
