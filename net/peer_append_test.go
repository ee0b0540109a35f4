package net

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// peerTestData is n bytes that differ from those of another seed.
func peerTestData(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func peerTestApp(from, to NodeID, group uint64, ents ...raftpb.Entry) GroupMessage {
	return GroupMessage{Group: group, Msg: raftpb.Message{Type: raftpb.MsgApp, From: uint64(from), To: uint64(to),
		Term: 5, LogTerm: 4, Index: 99, Commit: 90, Entries: ents}}
}

// peerAppendMessages are messages with entries around both data thresholds, mixed with
// heartbeats and messages without entries.
func peerAppendMessages(from, to NodeID) []GroupMessage {
	many := make([]raftpb.Entry, 100)
	for i := range many {
		many[i] = raftpb.Entry{Term: 5, Index: 100 + uint64(i), Data: peerTestData(i, byte(i))}
	}
	hb := GroupMessage{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: uint64(from), To: uint64(to), Term: 5, Commit: 90}}
	hbResp := GroupMessage{Group: 9, Msg: raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: uint64(from), To: uint64(to), Term: 5}}
	prop := peerTestApp(from, to, 8, raftpb.Entry{Data: []byte("proposal")})
	prop.Msg.Type, prop.Msg.Context = raftpb.MsgProp, []byte("ctx")
	return []GroupMessage{
		hb,
		peerTestApp(from, to, 2, raftpb.Entry{Term: 5, Index: 100, Data: peerTestData(1024, 1)}),
		peerTestApp(from, to, 3, many...),
		peerTestApp(from, to, 4, raftpb.Entry{Term: 5, Index: 100}, raftpb.Entry{Term: 5, Index: 101, Data: []byte{}},
			raftpb.Entry{Term: 5, Index: 102, Type: raftpb.EntryConfChangeV2, Data: []byte{7}}),
		peerTestApp(from, to, 5, raftpb.Entry{Data: peerTestData(peerEntryCopyMaxBytes, 2)},
			raftpb.Entry{Data: peerTestData(peerEntryCopyMaxBytes+1, 3)}),
		hbResp,
		peerTestApp(from, to, 6, raftpb.Entry{Term: 1, Index: 1, Data: peerTestData(peerEntryAliasMinBytes, 4)},
			raftpb.Entry{Term: 1, Index: 2, Data: peerTestData(peerEntryAliasMinBytes+1, 5)},
			raftpb.Entry{Term: 1<<63 + 1, Index: 1<<64 - 1, Type: raftpb.EntryType(-1), Data: []byte{1, 2}}),
		prop,
		hb,
		peerTestApp(from, to, 7), // no entries: a full message
		{Group: 10, Msg: raftpb.Message{Type: raftpb.MsgAppResp, From: uint64(from), To: uint64(to), Term: 5, Index: 102}},
	}
}

func TestPeerAppendRoundTrip(t *testing.T) {
	all := peerAppendMessages(3, 1)
	wantKinds := []byte{peerEntryHeartbeat, peerEntryAppend, peerEntryAppend, peerEntryAppend, peerEntryAppend,
		peerEntryHeartbeatResp, peerEntryAppend, peerEntryAppend, peerEntryHeartbeat, peerEntryFull, peerEntryFull}
	for i := range all {
		if k := planPeerEntry(&all[i], 3, 1).kind; k != wantKinds[i] {
			t.Fatalf("message %d is kind %d, want %d", i, k, wantKinds[i])
		}
	}
	big := peerTestApp(3, 1, 1, raftpb.Entry{Data: peerTestData(peerEntryAliasMinBytes+1, 9)})
	for _, tc := range []struct {
		name    string
		msgs    []GroupMessage
		aliased bool
	}{
		{"one entry", all[1:2], false},
		{"many entries", all[2:3], false},
		{"nil and empty data", all[3:4], false},
		{"copy threshold", all[4:5], false},
		{"alias threshold", all[6:7], true},
		{"big alone", []GroupMessage{big}, true},
		{"mixed", all, true},
		{"heartbeats", []GroupMessage{all[0], all[5]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := encodePeerBatch(t, 3, 1, tc.msgs)
			body := frame[4:]
			got, aliased, err := decodePeerBatch(body, 3, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.msgs) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.msgs)
			}
			if aliased != tc.aliased {
				t.Fatalf("aliased = %v, want %v", aliased, tc.aliased)
			}
			// The big data aliases the frame, capped; the rest was copied.
			for i := range body {
				body[i] ^= 0xff
			}
			for i := range got {
				for j, e := range got[i].Msg.Entries {
					changed := !bytes.Equal(e.Data, tc.msgs[i].Msg.Entries[j].Data)
					if alias := len(e.Data) > peerEntryAliasMinBytes; changed != alias || cap(e.Data) != len(e.Data) {
						t.Fatalf("message %d entry %d (%d bytes, cap %d): aliases the frame: %v, want %v",
							i, j, len(e.Data), cap(e.Data), changed, alias)
					}
				}
			}
		})
	}
	// A message whose Entries is empty but not nil travels whole; the receiver gets nil,
	// as from gogoproto alone.
	empty := peerTestApp(3, 1, 1)
	empty.Msg.Entries = []raftpb.Entry{}
	got, _, err := decodePeerBatch(encodePeerBatch(t, 3, 1, []GroupMessage{empty})[4:], 3, 1, nil)
	if err != nil || got[0].Msg.Entries != nil {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// TestPeerAppendSendsDataInPlace: data over peerEntryCopyMaxBytes is not copied into the
// frame buffer; a connection without writev copies everything.
func TestPeerAppendSendsDataInPlace(t *testing.T) {
	msgs := peerAppendMessages(3, 1)
	var refs, refBytes, total int
	for i := range msgs {
		total += planPeerEntry(&msgs[i], 3, 1).bytes
		for _, e := range msgs[i].Msg.Entries {
			if len(e.Data) > peerEntryCopyMaxBytes {
				refs, refBytes = refs+1, refBytes+len(e.Data)
			}
		}
	}
	if refs != 3 {
		t.Fatalf("%d entries over the copy threshold, want 3", refs)
	}
	for _, tc := range []struct {
		copyMax, refs, refBytes int
	}{{peerEntryCopyMaxBytes, refs, refBytes}, {peerFrameCopyMax(nil), 0, 0}} {
		f := peerFrames{copyMax: tc.copyMax}
		f.openFrame(3)
		for i := range msgs {
			if err := f.appendEntry(&msgs[i], planPeerEntry(&msgs[i], 3, 1)); err != nil {
				t.Fatal(err)
			}
		}
		f.closeFrame()
		if len(f.refs) != tc.refs || f.refBytes != tc.refBytes || f.len() != total+4+2+1+4 {
			t.Fatalf("copyMax %d: %d refs of %d bytes, %d bytes in all", tc.copyMax, len(f.refs), f.refBytes, f.len())
		}
		for _, r := range f.refs {
			if len(r.data) <= peerEntryCopyMaxBytes {
				t.Fatalf("referenced %d bytes", len(r.data))
			}
		}
	}
}

// TestPeerFrameReaderOwnership: a frame whose entries alias it is never read into again,
// so reading the next frames leaves its entries as they were; a frame nothing aliases
// lends its buffer to the next one.
func TestPeerFrameReaderOwnership(t *testing.T) {
	n := peerEntryAliasMinBytes + 1
	hbs := []GroupMessage{
		{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 3, To: 1, Term: 5, Commit: 90}},
		{Group: 2, Msg: raftpb.Message{Type: raftpb.MsgVote, From: 3, To: 1, Term: 6}},
	}
	first := []GroupMessage{peerTestApp(3, 1, 1, raftpb.Entry{Index: 1, Data: peerTestData(n, 1)},
		raftpb.Entry{Index: 2, Data: peerTestData(n, 2)}, raftpb.Entry{Index: 3, Data: peerTestData(10, 3)})}
	second := []GroupMessage{peerTestApp(3, 1, 1, raftpb.Entry{Index: 1, Data: peerTestData(n, 4)},
		raftpb.Entry{Index: 2, Data: peerTestData(n, 5)}, raftpb.Entry{Index: 3, Data: peerTestData(10, 6)})}
	var wire bytes.Buffer
	for _, msgs := range [][]GroupMessage{hbs, hbs, first, second, hbs} {
		wire.Write(encodePeerBatch(t, 3, 1, msgs))
	}
	fr := peerFrameReader{r: &wire, from: 3, to: 1, maxBytes: MaxPeerFrameBytes}
	next := func(want []GroupMessage) []GroupMessage {
		t.Helper()
		got, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatal("frame decoded to other messages")
		}
		return got
	}
	next(hbs)
	kept := fr.buf
	next(hbs)
	if kept == nil || &fr.buf[0] != &kept[0] {
		t.Fatal("a frame of heartbeats did not lend its buffer to the next")
	}
	got1 := next(first)
	if fr.buf != nil {
		t.Fatal("the reader kept a buffer that decoded entries alias")
	}
	// The receiver owns the data: it may write into it (replica storage stamps the leader
	// epoch in place) and append to it without reaching a neighbour.
	ents := got1[0].Msg.Entries
	d0 := ents[0].Data
	d0[n-1] ^= 0xff
	if grown := append(d0, 0xee); &grown[0] == &d0[0] || !bytes.Equal(ents[1].Data, peerTestData(n, 2)) {
		t.Fatal("a write or an append to one entry's data reached the next")
	}
	d0[n-1] ^= 0xff
	next(second)
	next(hbs)
	if _, err := fr.next(); err == nil {
		t.Fatal("read past the end")
	}
	if !bytes.Equal(ents[0].Data, peerTestData(n, 1)) || !bytes.Equal(ents[1].Data, peerTestData(n, 2)) ||
		!bytes.Equal(ents[2].Data, peerTestData(10, 3)) {
		t.Fatal("reading later frames changed an earlier frame's entries")
	}
}

// rawPeerAppend is a batch body from node 3 to node 1 holding one append entry of group
// 1: head marshaled, then count and the entries as given.
func rawPeerAppend(t *testing.T, head raftpb.Message, count uint64, ents []byte) []byte {
	hb, err := head.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return rawPeerAppendHead(hb, uint64(len(hb)), count, ents)
}

func rawPeerAppendHead(hb []byte, hbLen, count uint64, ents []byte) []byte {
	b := []byte{peerFrameBatch, PeerProtocolVersion, 3, 0, 0, 0, 1, peerEntryAppend, 1}
	b = binary.AppendUvarint(b, hbLen)
	b = append(b, hb...)
	b = binary.AppendUvarint(b, count)
	return append(b, ents...)
}

// rawPeerEntry is an append's entry: term, index, type and data length+1 as given, then data.
func rawPeerEntry(term, index, typ, dataLen uint64, data []byte) []byte {
	b := binary.AppendUvarint(nil, term)
	b = binary.AppendUvarint(b, index)
	b = binary.AppendUvarint(b, typ)
	b = binary.AppendUvarint(b, dataLen)
	return append(b, data...)
}

func TestPeerAppendDecodeRejects(t *testing.T) {
	head := raftpb.Message{Type: raftpb.MsgApp, From: 3, To: 1, Term: 2}
	entry := rawPeerEntry(2, 10, 0, 4, []byte("abc"))
	if _, _, err := decodePeerBatch(rawPeerAppend(t, head, 1, entry), 3, 1, nil); err != nil {
		t.Fatalf("the valid frame: %v", err)
	}
	withEntries := head
	withEntries.Entries = []raftpb.Entry{{Index: 1}}
	hb, err := head.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 4*(maxPeerAppendEntries+1)) // entries of 4 bytes, nil data
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"message length past the frame", rawPeerAppendHead(hb, uint64(len(hb))+100, 1, entry)},
		{"message length huge", rawPeerAppendHead(hb, 1<<63, 1, entry)},
		{"message length overflows", append([]byte{peerFrameBatch, PeerProtocolVersion, 3, 0, 0, 0, 1, peerEntryAppend, 1},
			bytes.Repeat([]byte{0xff}, 11)...)},
		{"message not gogoproto", rawPeerAppendHead([]byte{0xff}, 1, 1, entry)},
		{"entries inside the message", rawPeerAppend(t, withEntries, 1, entry)},
		{"no entries", rawPeerAppend(t, head, 0, nil)},
		{"count past the bytes", rawPeerAppend(t, head, 2, entry)},
		{"count huge", rawPeerAppend(t, head, 1<<62, entry)},
		{"count over the limit", rawPeerAppend(t, head, maxPeerAppendEntries+1, zeros)},
		{"count cut", rawPeerAppendHead(hb, uint64(len(hb)), 1<<60, nil)[:len(hb)+12]},
		{"term cut", rawPeerAppend(t, head, 1, []byte{0x80, 0x80, 0x80, 0x80})},
		{"type over int32", rawPeerAppend(t, head, 1, rawPeerEntry(2, 10, 1<<32, 1, nil))},
		{"data length past the frame", rawPeerAppend(t, head, 1, rawPeerEntry(2, 10, 0, 5, []byte("abc")))},
		{"data length huge", rawPeerAppend(t, head, 1, rawPeerEntry(2, 10, 0, 1<<64-1, []byte("abc")))},
		{"data length overflows", rawPeerAppend(t, head, 1, append(rawPeerEntry(2, 10, 0, 0, nil)[:3], bytes.Repeat([]byte{0xff}, 11)...))},
		{"bytes after the entries", rawPeerAppend(t, head, 1, append(entry, 0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodePeerBatch(tc.body, 3, 1, nil); !errors.Is(err, ErrPeerFrame) {
				t.Fatalf("err = %v, want ErrPeerFrame", err)
			}
		})
	}
	if msgs, _, err := decodePeerBatch(rawPeerAppend(t, head, maxPeerAppendEntries, zeros[4:]), 3, 1, nil); err != nil ||
		len(msgs[0].Msg.Entries) != maxPeerAppendEntries {
		t.Fatalf("an append of maxPeerAppendEntries entries: %v", err)
	}
}

// TestPeerAppendTruncated: every proper prefix of a frame of appends is malformed.
func TestPeerAppendTruncated(t *testing.T) {
	all := peerAppendMessages(3, 1)
	msgs := []GroupMessage{all[0], all[1], all[3], peerTestApp(3, 1, 5, raftpb.Entry{Data: peerTestData(peerEntryCopyMaxBytes+1, 3)}),
		all[5], all[7]}
	body := encodePeerBatch(t, 3, 1, msgs)[4:]
	for n := range len(body) {
		if _, _, err := decodePeerBatch(body[:n], 3, 1, nil); !errors.Is(err, ErrPeerFrame) {
			t.Fatalf("%d of %d bytes: err = %v", n, len(body), err)
		}
	}
}

// peerBigTraffic is appends with data around both thresholds and up to 1 MiB, with
// heartbeats between them.
func peerBigTraffic(from, to NodeID) []GroupMessage {
	var msgs []GroupMessage
	for i, n := range []int{0, 100, peerEntryCopyMaxBytes, peerEntryCopyMaxBytes + 1, 20 << 10, peerEntryAliasMinBytes,
		peerEntryAliasMinBytes + 1, 300 << 10, 1 << 20, 10} {
		g := uint64(i)
		var data []byte
		if n > 0 {
			data = peerTestData(n, byte(i))
		}
		msgs = append(msgs, peerTestApp(from, to, g, raftpb.Entry{Term: 5, Index: 100, Data: data},
			raftpb.Entry{Term: 5, Index: 101, Data: peerTestData(n/2, byte(i+1))}),
			GroupMessage{Group: g, Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: uint64(from), To: uint64(to), Term: 5, Commit: g}})
	}
	return msgs
}

// peerWantSentBytes is what a writer from node 1 that sends msgs in frames frames reports
// as SentBytes: the entries plus an 11-byte frame header (length, type, version, from,
// count) each.
func peerWantSentBytes(msgs []GroupMessage, frames uint64) uint64 {
	n := 11 * frames
	for i := range msgs {
		n += uint64(planPeerEntry(&msgs[i], 1, 2).bytes)
	}
	return n
}

// TestPeerAppendOverTCP: large entries go by writev on TCP and are copied on TLS; both
// arrive exactly, with exact counters.
func TestPeerAppendOverTCP(t *testing.T) {
	cert := selfSignedPeerCert(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, tc := range []struct {
		name string
		tune func(*PeerConfig)
	}{
		{"tcp", nil},
		{"tls", func(cfg *PeerConfig) {
			cfg.ServerTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			cfg.ClientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPeerCluster(t, 2, tc.tune)
			var want []GroupMessage
			for range 3 {
				msgs := peerBigTraffic(1, 2)
				if n := c.trs[1].Send(2, msgs); n != len(msgs) {
					t.Fatalf("queued %d of %d", n, len(msgs))
				}
				want = append(want, msgs...)
			}
			got := receivePeer(t, c.trs[2], len(want))
			if !reflect.DeepEqual(flattenPeer(got, 1), want) {
				t.Fatal("received other messages than sent")
			}
			s := sentPeerStats(t, c.trs[1], uint64(len(want)))
			if s.Sent != uint64(len(want)) || s.DroppedFull+s.DroppedDown+s.TooLarge != 0 ||
				s.Frames != uint64(len(got)) || s.SentBytes != peerWantSentBytes(want, s.Frames) {
				t.Fatalf("stats %+v for %d batches, want %d bytes", s, len(got), peerWantSentBytes(want, s.Frames))
			}
		})
	}
}

// TestPeerAppendFrameLimit: referenced data counts towards the frame target and limit
// exactly: a message of exactly the limit goes, one byte more is dropped.
func TestPeerAppendFrameLimit(t *testing.T) {
	const maxFrame = 32 << 10
	c := newPeerCluster(t, 2, func(cfg *PeerConfig) { cfg.MaxFrameBytes = maxFrame })
	limit := maxFrame - peerBatchHeaderMaxBytes
	sized := func(g uint64, bytes int) GroupMessage {
		data := peerTestData(bytes, byte(g))
		for n := bytes; n > 0; n-- {
			gm := peerTestApp(1, 2, g, raftpb.Entry{Term: 1, Index: 1, Data: data[:n:n]})
			if planPeerAppend(&gm).bytes == bytes {
				return gm
			}
		}
		t.Fatalf("no message of %d bytes", bytes)
		return GroupMessage{}
	}
	var msgs []GroupMessage
	for g := range uint64(40) {
		msgs = append(msgs, peerTestApp(1, 2, g, raftpb.Entry{Term: 1, Index: g, Data: peerTestData(6<<10, byte(g))}))
	}
	fits, tooBig := sized(100, limit), sized(101, limit+1)
	send := append(append(msgs[:20:20], tooBig, fits), msgs[20:]...)
	if n := c.trs[1].Send(2, send); n != len(send) {
		t.Fatalf("queued %d of %d", n, len(send))
	}
	want := append(append(msgs[:20:20], fits), msgs[20:]...)
	got := receivePeer(t, c.trs[2], len(want))
	if !reflect.DeepEqual(flattenPeer(got, 1), want) {
		t.Fatal("received other messages than sent")
	}
	s := sentPeerStats(t, c.trs[1], uint64(len(want)))
	if s.TooLarge != 1 || s.Sent != uint64(len(want)) || s.Frames != uint64(len(got)) || s.Frames < 9 ||
		s.SentBytes != peerWantSentBytes(want, s.Frames) {
		t.Fatalf("stats %+v, %d batches", s, len(got))
	}
}

// BenchmarkPeerCodec: one frame of three MsgApps with a 1 MiB entry each, encoded, written
// to an in-memory wire (the copy a socket's write makes), read back as serveInbound reads
// (the copy a socket's read makes) and decoded; "full" marshals the whole message with
// gogoproto (kind 0, protocol 1's only encoding of entries), "append" is kind 3.
func BenchmarkPeerCodec(b *testing.B) {
	const entryBytes = 1 << 20
	msgs := make([]GroupMessage, 3)
	for g := range msgs {
		msgs[g] = peerTestApp(1, 2, uint64(g), raftpb.Entry{Term: 5, Index: 100, Data: peerTestData(entryBytes, byte(g))})
	}
	for _, bc := range []struct {
		name string
		plan func(*GroupMessage, NodeID, NodeID) peerEntryPlan
	}{
		{"full", func(gm *GroupMessage, _, _ NodeID) peerEntryPlan { return planPeerFull(gm) }},
		{"append", planPeerEntry},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := peerFrames{copyMax: peerEntryCopyMaxBytes}
			var wire bytes.Buffer
			fr := peerFrameReader{r: &wire, from: 1, to: 2, maxBytes: MaxPeerFrameBytes}
			b.SetBytes(int64(len(msgs)) * entryBytes)
			b.ReportAllocs()
			for b.Loop() {
				f.openFrame(1)
				for i := range msgs {
					if err := f.appendEntry(&msgs[i], bc.plan(&msgs[i], 1, 2)); err != nil {
						b.Fatal(err)
					}
				}
				f.closeFrame()
				wire.Reset()
				if _, err := f.writeTo(&wire); err != nil {
					b.Fatal(err)
				}
				f.release()
				got, err := fr.next()
				if err != nil || len(got) != len(msgs) || len(got[2].Msg.Entries[0].Data) != entryBytes {
					b.Fatalf("decoded %d messages: %v", len(got), err)
				}
			}
		})
	}
}

// sentPeerStats returns tr's stats for its first peer once they count sent messages (or
// after 5 s). The sender counts a write after it returns, so the receiver can have every
// message before the sender's counters do: reading them at once was flaky.
func sentPeerStats(t *testing.T, tr *PeerTransport, sent uint64) PeerStats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := tr.Stats().Peers[0]
		if s.Sent >= sent || time.Now().After(deadline) {
			return s
		}
		time.Sleep(time.Millisecond)
	}
}
