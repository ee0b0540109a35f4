package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// peerCodecMessages are messages that survive a gogoproto round trip field for field (nil
// where raftpb's Unmarshal leaves nil), heartbeats in both the compact and the full form.
func peerCodecMessages(from, to NodeID) []GroupMessage {
	f, t := uint64(from), uint64(to)
	return []GroupMessage{
		{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: f, To: t, Term: 7, Commit: 1234}},
		{Group: 1 << 40, Msg: raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: f, To: t, Term: 1<<63 + 5}},
		{Group: 0, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: f, To: t}},
		// Not compact: a context (ReadIndex), a foreign sender, a commit on a response.
		{Group: 2, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: f, To: t, Term: 3, Commit: 9, Context: []byte("ctx")}},
		{Group: 3, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: f + 100, To: t, Term: 3}},
		{Group: 4, Msg: raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: f, To: t, Term: 3, Commit: 2}},
		{Group: 5, Msg: raftpb.Message{Type: raftpb.MsgApp, From: f, To: t, Term: 2, LogTerm: 2, Index: 10, Commit: 9,
			Entries: []raftpb.Entry{{Term: 2, Index: 11, Data: bytes.Repeat([]byte{0xab}, 1024)}, {Term: 2, Index: 12, Type: raftpb.EntryConfChange, Data: []byte{1}}}}},
		{Group: 6, Msg: raftpb.Message{Type: raftpb.MsgAppResp, From: f, To: t, Term: 2, Index: 12, Reject: true, RejectHint: 4, LogTerm: 1}},
		{Group: 7, Msg: raftpb.Message{Type: raftpb.MsgPreVote, From: f, To: t, Term: 9, LogTerm: 8, Index: 100}},
		{Group: 8, Msg: raftpb.Message{Type: raftpb.MsgVoteResp, From: f, To: t, Term: 9}},
		{Group: 9, Msg: raftpb.Message{Type: raftpb.MsgSnap, From: f, To: t, Term: 9, Snapshot: &raftpb.Snapshot{
			Data: []byte("start offset"), Metadata: raftpb.SnapshotMetadata{Index: 50, Term: 4, ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}}},
	}
}

// encodePeerBatch encodes msgs as one batch frame, as a writer on a TCP connection does
// (data over peerEntryCopyMaxBytes referenced, then gathered by writeTo).
func encodePeerBatch(t testing.TB, from, to NodeID, msgs []GroupMessage) []byte {
	return encodePeerBatchPlanned(t, from, to, msgs, planPeerEntry)
}

// encodePeerBatchPlanned is encodePeerBatch with each message encoded as plan says.
func encodePeerBatchPlanned(t testing.TB, from, to NodeID, msgs []GroupMessage, plan func(*GroupMessage, NodeID, NodeID) peerEntryPlan) []byte {
	if len(msgs) == 0 { // a writer sends no such frame, but it is valid
		buf, at := appendPeerBatchStart(nil, from)
		finishPeerBatch(buf, at, 0, 0)
		return buf
	}
	f := peerFrames{copyMax: peerEntryCopyMaxBytes}
	f.openFrame(from)
	for i := range msgs {
		if err := f.appendEntry(&msgs[i], plan(&msgs[i], from, to)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.closeFrame(); n != len(msgs) {
		t.Fatalf("frame of %d messages, want %d", n, len(msgs))
	}
	want := f.len()
	var w bytes.Buffer
	if n, err := f.writeTo(&w); err != nil || n != int64(want) {
		t.Fatalf("wrote %d bytes of %d: %v", n, want, err)
	}
	buf := w.Bytes()
	if got := binary.BigEndian.Uint32(buf); int(got) != len(buf)-4 {
		t.Fatalf("frame length %d, body %d", got, len(buf)-4)
	}
	return buf
}

func TestPeerBatchRoundTrip(t *testing.T) {
	msgs := peerCodecMessages(3, 1)
	frame := encodePeerBatch(t, 3, 1, msgs)
	got, _, err := decodePeerBatch(frame[4:], 3, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, msgs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, msgs)
	}
}

func TestPeerHeartbeatCompact(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       raftpb.Message
		compact bool
		bytes   int // encoded entry size
	}{
		{"heartbeat", raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 1, Term: 5, Commit: 300}, true, 1 + 1 + 1 + 2},
		{"response", raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: 5}, true, 1 + 1 + 1},
		{"context", raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 1, Context: []byte{}}, false, 0},
		{"to another", raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 3}, false, 0},
		{"reject", raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Reject: true}, false, 0},
		{"entries", raftpb.Message{Type: raftpb.MsgHeartbeat, From: 2, To: 1, Entries: []raftpb.Entry{}}, false, 0},
		{"app", raftpb.Message{Type: raftpb.MsgApp, From: 2, To: 1}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := compactPeerHeartbeat(&tc.m, 2, 1); got != tc.compact {
				t.Fatalf("compact = %v, want %v", got, tc.compact)
			}
			if !tc.compact {
				return
			}
			var f peerFrames
			gm := &GroupMessage{Group: 100, Msg: tc.m}
			if err := f.appendEntry(gm, planPeerEntry(gm, 2, 1)); err != nil {
				t.Fatal(err)
			}
			if len(f.buf) != tc.bytes {
				t.Fatalf("entry is %d bytes, want %d", len(f.buf), tc.bytes)
			}
		})
	}
}

func TestPeerDecodeRejects(t *testing.T) {
	good := encodePeerBatch(t, 3, 1, peerCodecMessages(3, 1))[4:]
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"peerHello type", mutate(func(b []byte) []byte { b[0] = peerFrameHello; return b })},
		{"version", mutate(func(b []byte) []byte { b[1] = 9; return b })},
		{"other sender", mutate(func(b []byte) []byte { b[2] = 4; return b })},
		{"count too big", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[3:], 1<<30); return b })},
		{"count too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[3:], 2); return b })},
		{"truncated", good[:len(good)-1]},
		{"bad kind", mutate(func(b []byte) []byte { b[7] = 9; return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodePeerBatch(tc.body, 3, 1, nil); !errors.Is(err, ErrPeerFrame) {
				t.Fatalf("err = %v, want ErrPeerFrame", err)
			}
		})
	}
}

func TestPeerHandshakeRoundTrip(t *testing.T) {
	h := peerHello{from: 2, to: 3, clusterID: "chronik-test"}
	frame := appendPeerHello(nil, peerFrameHello, h)
	got, err := parsePeerHello(frame[4:], peerFrameHello)
	if err != nil || got != h {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := parsePeerHello(frame[4:], peerFrameAck); !errors.Is(err, ErrPeerFrame) {
		t.Fatalf("peerHello taken as an ack: %v", err)
	}
	rej := appendPeerReject(nil, "cluster id")
	if _, err := parsePeerHello(rej[4:], peerFrameAck); err == nil || !bytes.Contains([]byte(err.Error()), []byte("cluster id")) {
		t.Fatalf("reject: %v", err)
	}
}

// FuzzPeerDecodeBatch: decoding never panics, and what decodes re-encodes to a frame
// that decodes to the same messages.
func FuzzPeerDecodeBatch(f *testing.F) {
	f.Add(encodePeerBatch(f, 3, 1, peerCodecMessages(3, 1))[4:])
	f.Add(encodePeerBatch(f, 3, 1, peerCodecMessages(3, 1)[:3])[4:])
	// Appends (kind 3): small entries, nil and empty data, data just over the copy
	// threshold, heartbeats between them; and one entry over the alias threshold.
	app := peerAppendMessages(3, 1)
	f.Add(encodePeerBatch(f, 3, 1, []GroupMessage{app[0], app[1], app[3], app[5], app[7]})[4:])
	f.Add(encodePeerBatch(f, 3, 1, []GroupMessage{app[4], app[9], app[10]})[4:])
	f.Add(encodePeerBatch(f, 3, 1, []GroupMessage{peerTestApp(3, 1, 1, raftpb.Entry{Term: 1, Index: 2,
		Data: peerTestData(peerEntryAliasMinBytes+1, 1)})})[4:])
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, _, err := decodePeerBatch(body, 3, 1, nil)
		if err != nil {
			return
		}
		again, _, err := decodePeerBatch(encodePeerBatch(t, 3, 1, msgs)[4:], 3, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(msgs) {
			t.Fatalf("%d messages, then %d", len(msgs), len(again))
		}
		for i := range msgs {
			a, b := msgs[i].Msg, again[i].Msg
			if msgs[i].Group != again[i].Group || a.Type != b.Type || a.Term != b.Term || a.Commit != b.Commit || a.Index != b.Index || len(a.Entries) != len(b.Entries) {
				t.Fatalf("message %d: %+v, then %+v", i, msgs[i], again[i])
			}
			for j := range a.Entries {
				x, y := a.Entries[j], b.Entries[j]
				if x.Term != y.Term || x.Index != y.Index || x.Type != y.Type || !bytes.Equal(x.Data, y.Data) || (x.Data == nil) != (y.Data == nil) {
					t.Fatalf("message %d entry %d: %+v, then %+v", i, j, x, y)
				}
			}
		}
	})
}

// TestPeerDecodedEntriesIndependent: the messages of a frame share one entry array, but
// appending to one message's entries never changes another's; both as appends (kind 3)
// and as full messages (kind 0).
func TestPeerDecodedEntriesIndependent(t *testing.T) {
	var msgs []GroupMessage
	for g := uint64(0); g < 10; g++ {
		var ents []raftpb.Entry
		for i := uint64(0); i < g%3; i++ {
			ents = append(ents, raftpb.Entry{Term: 1, Index: g*10 + i, Data: []byte{byte(g), byte(i)}})
		}
		msgs = append(msgs, GroupMessage{Group: g, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 3, To: 1, Entries: ents}})
	}
	msgs = append(msgs, GroupMessage{Group: 99, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 3, To: 1,
		Entries: make([]raftpb.Entry, 300)}}) // outgrows the arena
	for i := range msgs[len(msgs)-1].Msg.Entries {
		msgs[len(msgs)-1].Msg.Entries[i] = raftpb.Entry{Index: uint64(i), Data: []byte{1}}
	}
	msgs = append(msgs, msgs[1], msgs[2])
	for _, plan := range []func(*GroupMessage, NodeID, NodeID) peerEntryPlan{
		planPeerEntry,
		func(gm *GroupMessage, _, _ NodeID) peerEntryPlan { return planPeerFull(gm) },
	} {
		got, _, err := decodePeerBatch(encodePeerBatchPlanned(t, 3, 1, msgs, plan)[4:], 3, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, msgs) {
			t.Fatal("round trip differs")
		}
		for i := range got {
			got[i].Msg.Entries = append(got[i].Msg.Entries, raftpb.Entry{Index: 1 << 40})
		}
		for i := range got {
			ents := got[i].Msg.Entries
			if !reflect.DeepEqual(ents[:len(ents)-1], msgs[i].Msg.Entries) && len(msgs[i].Msg.Entries) > 0 {
				t.Fatalf("message %d's entries changed by a neighbour's append", i)
			}
		}
	}
}

func TestPeerDecodeFrameMessageLimit(t *testing.T) {
	hb := GroupMessage{Msg: raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: 3, To: 1}}
	msgs := make([]GroupMessage, MaxPeerFrameMessages+1)
	for i := range msgs {
		msgs[i] = hb
	}
	if _, _, err := decodePeerBatch(encodePeerBatch(t, 3, 1, msgs)[4:], 3, 1, nil); !errors.Is(err, ErrPeerFrame) {
		t.Fatalf("a frame of %d messages: err = %v", len(msgs), err)
	}
	if _, _, err := decodePeerBatch(encodePeerBatch(t, 3, 1, msgs[1:])[4:], 3, 1, nil); err != nil {
		t.Fatalf("a frame of %d messages: %v", len(msgs)-1, err)
	}
}
