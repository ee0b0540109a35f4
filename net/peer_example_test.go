package net_test

import (
	"fmt"
	gonet "net"

	"go.etcd.io/raft/v3/raftpb"

	chroniknet "chronik/net"
)

// A loop iteration on node 1 sends its messages for node 2 in one call; node 2's loop
// takes the batch from Received and steps each message into its group.
func ExamplePeerTransport() {
	ln1, _ := gonet.Listen("tcp", "127.0.0.1:0")
	ln2, _ := gonet.Listen("tcp", "127.0.0.1:0")
	n1, err := chroniknet.NewPeerTransport(chroniknet.PeerConfig{ID: 1, ClusterID: "example",
		Peers: map[chroniknet.NodeID]string{2: ln2.Addr().String()}, Listener: ln1})
	if err != nil {
		panic(err)
	}
	defer n1.Close()
	n2, err := chroniknet.NewPeerTransport(chroniknet.PeerConfig{ID: 2, ClusterID: "example",
		Peers: map[chroniknet.NodeID]string{1: ln1.Addr().String()}, Listener: ln2})
	if err != nil {
		panic(err)
	}
	defer n2.Close()

	// Node 1, end of a loop iteration: every group's Ready messages whose To is 2.
	out := []chroniknet.GroupMessage{
		{Group: 7, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 10}},
		{Group: 9, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 4, Index: 5, LogTerm: 4,
			Entries: []raftpb.Entry{{Term: 4, Index: 6, Data: []byte("batch")}}}},
	}
	if n := n1.Send(2, out); n < len(out) {
		// The loop would ReportUnreachable the groups of out[n:].
		fmt.Println("dropped", len(out)-n)
	}

	// Node 2's loop: one PeerBatch per frame.
	b := <-n2.Received()
	for _, gm := range b.Msgs {
		fmt.Printf("from node %d, group %d: %v term %d\n", b.From, gm.Group, gm.Msg.Type, gm.Msg.Term)
	}
	// Output:
	// from node 1, group 7: MsgHeartbeat term 3
	// from node 1, group 9: MsgApp term 4
}
