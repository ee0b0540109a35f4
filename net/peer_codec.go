package net

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// The peer wire format (docs/transport.md). Every frame is a 4-byte big-endian length n
// followed by n bytes of body; the body starts with a frame type and the protocol version.
//
//	hello, ack:  type | version | magic "CRFT" | from u64 | to u64 | cluster len u8 | cluster id
//	reject:      type | version | reason len u8 | reason
//	batch:       type | version | from uvarint | count u32 | count entries
//	entry:       kind u8 | group uvarint | kind's payload
//	  kind 0 (full message):   length uvarint | raftpb.Message (gogoproto Marshal)
//	  kind 1 (heartbeat):      term uvarint | commit uvarint
//	  kind 2 (heartbeat resp): term uvarint
//
// A heartbeat entry rebuilds raftpb.Message{Type, To: receiver, From: sender, Term,
// Commit}; only messages that are exactly that are encoded so (compactPeerHeartbeat).
const (
	peerFrameHello  byte = 1
	peerFrameAck    byte = 2
	peerFrameReject byte = 3
	peerFrameBatch  byte = 16

	peerEntryFull          byte = 0
	peerEntryHeartbeat     byte = 1
	peerEntryHeartbeatResp byte = 2

	peerMagic = "CRFT"
	// maxPeerClusterIDBytes bounds the cluster id in a handshake.
	maxPeerClusterIDBytes = 255
	// peerBatchHeaderMaxBytes is a batch frame's largest header: length, type, version, from
	// (uvarint of a uint64: at most 10 bytes), count.
	peerBatchHeaderMaxBytes = 4 + 2 + binary.MaxVarintLen64 + 4
	// maxPeerEntryArena bounds the entries decodePeerFull allocates at once.
	maxPeerEntryArena = 256
	// minPeerEntryBytes is the smallest encoded entry: kind, group, one payload byte.
	minPeerEntryBytes = 3
)

// ErrPeerFrame marks a malformed frame from a peer; the connection that sent it is closed.
var ErrPeerFrame = errors.New("net: malformed peer frame")

func peerFrameErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrPeerFrame}, args...)...)
}

// peerHello is the handshake both ends send: the dialer a hello, the acceptor an ack.
type peerHello struct {
	from, to  NodeID
	clusterID string
}

// appendPeerHello appends a whole hello or ack frame (typ) to buf.
func appendPeerHello(buf []byte, typ byte, h peerHello) []byte {
	body := 2 + len(peerMagic) + 8 + 8 + 1 + len(h.clusterID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(body))
	buf = append(buf, typ, PeerProtocolVersion)
	buf = append(buf, peerMagic...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(h.from))
	buf = binary.BigEndian.AppendUint64(buf, uint64(h.to))
	buf = append(buf, byte(len(h.clusterID)))
	return append(buf, h.clusterID...)
}

// appendPeerReject appends a reject frame carrying reason (cut to 255 bytes).
func appendPeerReject(buf []byte, reason string) []byte {
	reason = reason[:min(len(reason), 255)]
	buf = binary.BigEndian.AppendUint32(buf, uint32(2+1+len(reason)))
	buf = append(buf, peerFrameReject, PeerProtocolVersion, byte(len(reason)))
	return append(buf, reason...)
}

// parsePeerHello decodes a hello or ack body of type typ. A reject body yields an error that
// carries the peer's reason.
func parsePeerHello(body []byte, typ byte) (peerHello, error) {
	if len(body) < 2 {
		return peerHello{}, peerFrameErr("short handshake")
	}
	if body[1] != PeerProtocolVersion {
		return peerHello{}, peerFrameErr("protocol version %d, want %d", body[1], PeerProtocolVersion)
	}
	if body[0] == peerFrameReject && typ == peerFrameAck {
		if len(body) < 3 || len(body) != 3+int(body[2]) {
			return peerHello{}, peerFrameErr("bad reject frame")
		}
		return peerHello{}, fmt.Errorf("net: peer rejected the handshake: %s", body[3:])
	}
	if body[0] != typ {
		return peerHello{}, peerFrameErr("frame type %d, want handshake %d", body[0], typ)
	}
	p := body[2:]
	if len(p) < len(peerMagic)+17 || string(p[:len(peerMagic)]) != peerMagic {
		return peerHello{}, peerFrameErr("bad handshake")
	}
	p = p[len(peerMagic):]
	h := peerHello{from: NodeID(binary.BigEndian.Uint64(p)), to: NodeID(binary.BigEndian.Uint64(p[8:]))}
	n := int(p[16])
	if len(p) != 17+n {
		return peerHello{}, peerFrameErr("bad handshake cluster id")
	}
	h.clusterID = string(p[17:])
	return h, nil
}

// appendPeerBatchStart opens a batch frame from node from; finishPeerBatch closes it. It returns
// the offset of the frame in buf.
func appendPeerBatchStart(buf []byte, from NodeID) ([]byte, int) {
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0, peerFrameBatch, PeerProtocolVersion)
	buf = binary.AppendUvarint(buf, uint64(from))
	return append(buf, 0, 0, 0, 0), at
}

// finishPeerBatch writes the length and the count of the batch frame that starts at at.
func finishPeerBatch(buf []byte, at, count int) {
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	_, n := binary.Uvarint(buf[at+6:])
	binary.BigEndian.PutUint32(buf[at+6+n:], uint32(count))
}

// compactPeerHeartbeat reports whether m travels as a heartbeat entry from node from to node
// to: it must be exactly what the receiver rebuilds, field for field.
func compactPeerHeartbeat(m *raftpb.Message, from, to NodeID) bool {
	switch {
	case m.Type != raftpb.MsgHeartbeat && m.Type != raftpb.MsgHeartbeatResp:
		return false
	case m.From != uint64(from) || m.To != uint64(to):
		return false
	case m.Type == raftpb.MsgHeartbeatResp && m.Commit != 0:
		return false
	}
	return m.LogTerm == 0 && m.Index == 0 && m.Entries == nil && m.Vote == 0 &&
		m.Snapshot == nil && !m.Reject && m.RejectHint == 0 && m.Context == nil &&
		m.Responses == nil
}

// appendPeerEntry appends gm to an open batch frame from node from to node to.
func appendPeerEntry(buf []byte, from, to NodeID, gm *GroupMessage) ([]byte, error) {
	compact, size, _ := peerEntrySize(gm, from, to)
	return appendPeerSizedEntry(buf, gm, compact, size)
}

// peerEntrySize says how gm is encoded: compact, or full with a marshaled size of size; max
// bounds the whole entry's bytes.
func peerEntrySize(gm *GroupMessage, from, to NodeID) (compact bool, size, max int) {
	if compactPeerHeartbeat(&gm.Msg, from, to) {
		return true, 0, 1 + 3*binary.MaxVarintLen64
	}
	size = gm.Msg.Size()
	return false, size, 1 + 2*binary.MaxVarintLen64 + size
}

// appendPeerSizedEntry appends gm as peerEntrySize classified it.
func appendPeerSizedEntry(buf []byte, gm *GroupMessage, compact bool, size int) ([]byte, error) {
	m := &gm.Msg
	if compact {
		if m.Type == raftpb.MsgHeartbeat {
			buf = append(buf, peerEntryHeartbeat)
			buf = binary.AppendUvarint(buf, gm.Group)
			buf = binary.AppendUvarint(buf, m.Term)
			return binary.AppendUvarint(buf, m.Commit), nil
		}
		buf = append(buf, peerEntryHeartbeatResp)
		buf = binary.AppendUvarint(buf, gm.Group)
		return binary.AppendUvarint(buf, m.Term), nil
	}
	buf = append(buf, peerEntryFull)
	buf = binary.AppendUvarint(buf, gm.Group)
	buf = binary.AppendUvarint(buf, uint64(size))
	buf = growPeerBuf(buf, size)
	if _, err := m.MarshalToSizedBuffer(buf[len(buf)-size:]); err != nil {
		return buf[:len(buf)-size], fmt.Errorf("net: marshal raft message: %w", err)
	}
	return buf, nil
}

// growPeerBuf extends buf by n bytes, reallocating at most once.
func growPeerBuf(buf []byte, n int) []byte {
	if cap(buf)-len(buf) < n {
		nb := make([]byte, len(buf), 2*cap(buf)+n)
		copy(nb, buf)
		buf = nb
	}
	return buf[:len(buf)+n]
}

// decodePeerBatch decodes a batch body (type and version included) that node from sent to
// node to, appending its messages to msgs. On error msgs may hold a decoded prefix.
func decodePeerBatch(body []byte, from, to NodeID, msgs []GroupMessage) ([]GroupMessage, error) {
	if len(body) < 2 || body[0] != peerFrameBatch {
		return msgs, peerFrameErr("not a batch frame")
	}
	if body[1] != PeerProtocolVersion {
		return msgs, peerFrameErr("protocol version %d, want %d", body[1], PeerProtocolVersion)
	}
	p := body[2:]
	sender, n := binary.Uvarint(p)
	if n <= 0 || NodeID(sender) != from {
		return msgs, peerFrameErr("batch from node %d on node %d's connection", sender, from)
	}
	p = p[n:]
	if len(p) < 4 {
		return msgs, peerFrameErr("short batch header")
	}
	count := int(binary.BigEndian.Uint32(p))
	p = p[4:]
	if count > MaxPeerFrameMessages || count > len(p)/minPeerEntryBytes {
		return msgs, peerFrameErr("count %d in %d bytes", count, len(p))
	}
	msgs = growPeerMsgs(msgs, count)
	var arena []raftpb.Entry // entries of the frame's messages share it (decodePeerFull)
	for i := range count {
		if len(p) < 1 {
			return msgs, peerFrameErr("truncated entry")
		}
		kind := p[0]
		group, n := binary.Uvarint(p[1:])
		if n <= 0 {
			return msgs, peerFrameErr("bad group id")
		}
		p = p[1+n:]
		gm := GroupMessage{Group: group}
		var err error
		switch kind {
		case peerEntryFull:
			p, err = decodePeerFull(p, &gm.Msg, &arena, count-i)
		case peerEntryHeartbeat, peerEntryHeartbeatResp:
			p, err = decodePeerHeartbeat(p, kind, from, to, &gm.Msg)
		default:
			err = peerFrameErr("entry kind %d", kind)
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, gm)
	}
	if len(p) != 0 {
		return msgs, peerFrameErr("%d bytes after the last entry", len(p))
	}
	return msgs, nil
}

func growPeerMsgs(msgs []GroupMessage, n int) []GroupMessage {
	if cap(msgs)-len(msgs) < n {
		nm := make([]GroupMessage, len(msgs), len(msgs)+n)
		copy(nm, msgs)
		msgs = nm
	}
	return msgs
}

// decodePeerFull unmarshals one full message. Once a message of the frame has had
// entries, the following ones unmarshal theirs into *arena (sized for one entry per
// message left, left messages counting this one, at most maxPeerEntryArena) instead of a slice each; each message's
// Entries is capped at its length, so appending to it never writes into a neighbour's.
func decodePeerFull(p []byte, m *raftpb.Message, arena *[]raftpb.Entry, left int) ([]byte, error) {
	size, n := binary.Uvarint(p)
	if n <= 0 || size > uint64(len(p)-n) {
		return p, peerFrameErr("bad message length")
	}
	p = p[n:]
	m.Entries = (*arena)[:0:len(*arena)]
	if err := m.Unmarshal(p[:size]); err != nil {
		return p, fmt.Errorf("%w: %v", ErrPeerFrame, err)
	}
	switch k := len(m.Entries); {
	case k == 0:
		m.Entries = nil // as Unmarshal leaves a message without entries
	case k <= len(*arena):
		m.Entries = m.Entries[:k:k]
		*arena = (*arena)[k:]
	case *arena == nil:
		*arena = make([]raftpb.Entry, min(left-1, maxPeerEntryArena))
	default:
		*arena = nil // outgrown: Unmarshal moved the entries to a slice of their own
	}
	return p[size:], nil
}

func decodePeerHeartbeat(p []byte, kind byte, from, to NodeID, m *raftpb.Message) ([]byte, error) {
	term, n := binary.Uvarint(p)
	if n <= 0 {
		return p, peerFrameErr("bad heartbeat term")
	}
	p = p[n:]
	*m = raftpb.Message{Type: raftpb.MsgHeartbeatResp, To: uint64(to), From: uint64(from), Term: term}
	if kind == peerEntryHeartbeat {
		commit, n := binary.Uvarint(p)
		if n <= 0 {
			return p, peerFrameErr("bad heartbeat commit")
		}
		p = p[n:]
		m.Type, m.Commit = raftpb.MsgHeartbeat, commit
	}
	return p, nil
}
