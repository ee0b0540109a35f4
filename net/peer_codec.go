package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

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
//	  kind 3 (append):         length uvarint | raftpb.Message without Entries (gogoproto) |
//	                           count uvarint | count × (term uvarint | index uvarint |
//	                           type uvarint | data length+1 uvarint, 0 for nil | data)
//
// A heartbeat entry rebuilds raftpb.Message{Type, To: receiver, From: sender, Term,
// Commit}; only messages that are exactly that are encoded so (compactPeerHeartbeat).
//
// An append carries a message's entries outside gogoproto so that their data need not be
// copied: the sender writes data longer than peerEntryCopyMaxBytes to the socket from the
// entry's own bytes (peerFrames, writev), and the receiver's entries alias the frame for
// data longer than peerEntryAliasMinBytes (peerFrameReader owns that buffer rule).
const (
	peerFrameHello  byte = 1
	peerFrameAck    byte = 2
	peerFrameReject byte = 3
	peerFrameBatch  byte = 16

	peerEntryFull          byte = 0
	peerEntryHeartbeat     byte = 1
	peerEntryHeartbeatResp byte = 2
	peerEntryAppend        byte = 3

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
	// maxPeerAppendEntries bounds the entries of one append; a message with more (raft's
	// MaxSizePerMsg keeps real ones far below) travels as a full message.
	maxPeerAppendEntries = MaxPeerFrameMessages
	// minPeerAppendEntryBytes is the smallest encoded entry of an append: term, index,
	// type and data length of one byte each.
	minPeerAppendEntryBytes = 4
	// peerEntryCopyMaxBytes is the most entry data the sender copies into the frame buffer
	// over a TCP connection; longer data goes to writev from the entry's own bytes.
	peerEntryCopyMaxBytes = 4 << 10
	// peerEntryAliasMinBytes: a decoded entry's data longer than this aliases the frame;
	// shorter data is copied, so that a small entry a replica keeps in its cache does not
	// pin a whole frame (up to peerFrameTargetBytes) that its byte count does not show.
	peerEntryAliasMinBytes = 64 << 10
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

// finishPeerBatch writes the length and the count of the batch frame that starts at at;
// referenced is the bytes of entry data the frame references instead of holding in buf
// (peerFrames).
func finishPeerBatch(buf []byte, at, count, referenced int) {
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4+referenced))
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

// peerEntryPlan is how one message is encoded as a batch entry.
type peerEntryPlan struct {
	kind byte
	// size is, for kinds full and append, the gogoproto size of the message (for an append,
	// of the message without its entries).
	size int
	// bytes is the whole entry's encoded size, referenced entry data included.
	bytes int
}

// planPeerEntry chooses the encoding of gm from node from to node to: a compact heartbeat
// if it is exactly one, an append if it has entries (at most maxPeerAppendEntries), else a
// full message (votes, responses, MsgSnap).
func planPeerEntry(gm *GroupMessage, from, to NodeID) peerEntryPlan {
	m := &gm.Msg
	switch {
	case compactPeerHeartbeat(m, from, to):
		if m.Type == raftpb.MsgHeartbeat {
			return peerEntryPlan{kind: peerEntryHeartbeat,
				bytes: 1 + uvarintLen(gm.Group) + uvarintLen(m.Term) + uvarintLen(m.Commit)}
		}
		return peerEntryPlan{kind: peerEntryHeartbeatResp, bytes: 1 + uvarintLen(gm.Group) + uvarintLen(m.Term)}
	case len(m.Entries) > 0 && len(m.Entries) <= maxPeerAppendEntries:
		return planPeerAppend(gm)
	}
	return planPeerFull(gm)
}

// planPeerFull plans gm as a full message (kind 0).
func planPeerFull(gm *GroupMessage) peerEntryPlan {
	size := gm.Msg.Size()
	return peerEntryPlan{kind: peerEntryFull, size: size,
		bytes: 1 + uvarintLen(gm.Group) + uvarintLen(uint64(size)) + size}
}

// planPeerAppend plans gm, which has entries, as an append (kind 3).
func planPeerAppend(gm *GroupMessage) peerEntryPlan {
	head := gm.Msg
	head.Entries = nil
	size := head.Size()
	n := 1 + uvarintLen(gm.Group) + uvarintLen(uint64(size)) + size + uvarintLen(uint64(len(gm.Msg.Entries)))
	for i := range gm.Msg.Entries {
		e := &gm.Msg.Entries[i]
		n += uvarintLen(e.Term) + uvarintLen(e.Index) + uvarintLen(uint64(e.Type)) +
			uvarintLen(peerDataLen(e.Data)) + len(e.Data)
	}
	return peerEntryPlan{kind: peerEntryAppend, size: size, bytes: n}
}

// peerDataLen is the data length field of an append's entry: 0 for nil data, else the
// length plus one, so that nil and empty data both survive the round trip.
func peerDataLen(data []byte) uint64 {
	if data == nil {
		return 0
	}
	return uint64(len(data)) + 1
}

// uvarintLen is the length of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// appendEntry appends gm, planned as pl, to the open frame. On error nothing was appended.
func (f *peerFrames) appendEntry(gm *GroupMessage, pl peerEntryPlan) error {
	before := f.len()
	m := &gm.Msg
	switch pl.kind {
	case peerEntryHeartbeat:
		f.buf = append(f.buf, peerEntryHeartbeat)
		f.buf = binary.AppendUvarint(f.buf, gm.Group)
		f.buf = binary.AppendUvarint(f.buf, m.Term)
		f.buf = binary.AppendUvarint(f.buf, m.Commit)
	case peerEntryHeartbeatResp:
		f.buf = append(f.buf, peerEntryHeartbeatResp)
		f.buf = binary.AppendUvarint(f.buf, gm.Group)
		f.buf = binary.AppendUvarint(f.buf, m.Term)
	case peerEntryFull:
		buf, err := appendPeerMarshaled(f.buf, peerEntryFull, gm.Group, m, pl.size)
		if err != nil {
			return err
		}
		f.buf = buf
	case peerEntryAppend:
		if err := f.appendAppend(gm, pl.size); err != nil {
			return err
		}
	default:
		panic(fmt.Sprintf("net: peer entry kind %d", pl.kind))
	}
	if got := f.len() - before; got != pl.bytes {
		panic(fmt.Sprintf("net: peer entry of kind %d took %d bytes, planned %d", pl.kind, got, pl.bytes))
	}
	f.count++
	return nil
}

// appendPeerMarshaled appends kind, group, size and m marshaled (size bytes) to buf. On
// error it returns buf as it was.
func appendPeerMarshaled(buf []byte, kind byte, group uint64, m *raftpb.Message, size int) ([]byte, error) {
	start := len(buf)
	buf = append(buf, kind)
	buf = binary.AppendUvarint(buf, group)
	buf = binary.AppendUvarint(buf, uint64(size))
	buf = growPeerBuf(buf, size)
	if _, err := m.MarshalToSizedBuffer(buf[len(buf)-size:]); err != nil {
		return buf[:start], fmt.Errorf("net: marshal raft message: %w", err)
	}
	return buf, nil
}

// appendAppend appends gm as an append entry: the message without its entries, marshaled
// (size bytes), then the entries. Data longer than f.copyMax is referenced, not copied.
func (f *peerFrames) appendAppend(gm *GroupMessage, size int) error {
	head := gm.Msg
	head.Entries = nil
	buf, err := appendPeerMarshaled(f.buf, peerEntryAppend, gm.Group, &head, size)
	if err != nil {
		return err
	}
	ents := gm.Msg.Entries
	buf = binary.AppendUvarint(buf, uint64(len(ents)))
	for i := range ents {
		e := &ents[i]
		buf = binary.AppendUvarint(buf, e.Term)
		buf = binary.AppendUvarint(buf, e.Index)
		buf = binary.AppendUvarint(buf, uint64(e.Type))
		buf = binary.AppendUvarint(buf, peerDataLen(e.Data))
		if len(e.Data) > f.copyMax {
			f.refs = append(f.refs, peerRef{at: len(buf), data: e.Data})
			f.refBytes += len(e.Data)
			continue
		}
		buf = append(buf, e.Data...)
	}
	f.buf = buf
	return nil
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
// node to, appending its messages to msgs. aliased reports whether some decoded entry's
// Data aliases body (decodePeerAppend): then body belongs to the messages and must never
// be reused. On error msgs may hold a decoded prefix.
func decodePeerBatch(body []byte, from, to NodeID, msgs []GroupMessage) (_ []GroupMessage, aliased bool, _ error) {
	if len(body) < 2 || body[0] != peerFrameBatch {
		return msgs, false, peerFrameErr("not a batch frame")
	}
	if body[1] != PeerProtocolVersion {
		return msgs, false, peerFrameErr("protocol version %d, want %d", body[1], PeerProtocolVersion)
	}
	p := body[2:]
	sender, n := binary.Uvarint(p)
	if n <= 0 || NodeID(sender) != from {
		return msgs, false, peerFrameErr("batch from node %d on node %d's connection", sender, from)
	}
	p = p[n:]
	if len(p) < 4 {
		return msgs, false, peerFrameErr("short batch header")
	}
	count := int(binary.BigEndian.Uint32(p))
	p = p[4:]
	if count > MaxPeerFrameMessages || count > len(p)/minPeerEntryBytes {
		return msgs, false, peerFrameErr("count %d in %d bytes", count, len(p))
	}
	msgs = growPeerMsgs(msgs, count)
	var arena []raftpb.Entry // entries of the frame's messages share it (decodePeerFull, takePeerEntries)
	for i := range count {
		if len(p) < 1 {
			return msgs, aliased, peerFrameErr("truncated entry")
		}
		kind := p[0]
		group, n := binary.Uvarint(p[1:])
		if n <= 0 {
			return msgs, aliased, peerFrameErr("bad group id")
		}
		p = p[1+n:]
		gm := GroupMessage{Group: group}
		var err error
		switch kind {
		case peerEntryFull:
			p, err = decodePeerFull(p, &gm.Msg, &arena, count-i)
		case peerEntryHeartbeat, peerEntryHeartbeatResp:
			p, err = decodePeerHeartbeat(p, kind, from, to, &gm.Msg)
		case peerEntryAppend:
			var a bool
			p, a, err = decodePeerAppend(p, &gm.Msg, &arena, count-i)
			aliased = aliased || a
		default:
			err = peerFrameErr("entry kind %d", kind)
		}
		if err != nil {
			return msgs, aliased, err
		}
		msgs = append(msgs, gm)
	}
	if len(p) != 0 {
		return msgs, aliased, peerFrameErr("%d bytes after the last entry", len(p))
	}
	return msgs, aliased, nil
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

// decodePeerAppend decodes one append entry (after its kind and group): the message
// without entries, then the entries. An entry's Data longer than peerEntryAliasMinBytes
// aliases p, capped at its length, and aliased is true; shorter data is copied. Entries
// come from *arena as in decodePeerFull (left counts this message).
func decodePeerAppend(p []byte, m *raftpb.Message, arena *[]raftpb.Entry, left int) (_ []byte, aliased bool, _ error) {
	size, n := binary.Uvarint(p)
	if n <= 0 || size > uint64(len(p)-n) {
		return p, false, peerFrameErr("bad append message length")
	}
	p = p[n:]
	if err := m.Unmarshal(p[:size]); err != nil {
		return p, false, fmt.Errorf("%w: %v", ErrPeerFrame, err)
	}
	if m.Entries != nil {
		return p, false, peerFrameErr("entries inside an append's message")
	}
	p = p[size:]
	count, n := binary.Uvarint(p)
	if n <= 0 || count == 0 || count > maxPeerAppendEntries || count > uint64(len(p)-n)/minPeerAppendEntryBytes {
		return p, false, peerFrameErr("append of %d entries in %d bytes", count, len(p))
	}
	p = p[n:]
	ents := takePeerEntries(arena, int(count), left)
	for i := range ents {
		e := &ents[i]
		var typ, dataLen uint64
		var ok bool
		if e.Term, p, ok = peerUvarint(p); !ok {
			return p, aliased, peerFrameErr("bad entry term")
		}
		if e.Index, p, ok = peerUvarint(p); !ok {
			return p, aliased, peerFrameErr("bad entry index")
		}
		if typ, p, ok = peerUvarint(p); !ok || uint64(raftpb.EntryType(typ)) != typ {
			return p, aliased, peerFrameErr("bad entry type")
		}
		e.Type = raftpb.EntryType(typ)
		if dataLen, p, ok = peerUvarint(p); !ok || dataLen > uint64(len(p))+1 {
			return p, aliased, peerFrameErr("bad entry data length")
		}
		if dataLen == 0 {
			continue // nil Data
		}
		k := int(dataLen - 1)
		if k > peerEntryAliasMinBytes {
			e.Data, aliased = p[:k:k], true
		} else {
			e.Data = append(make([]byte, 0, k), p[:k]...)
		}
		p = p[k:]
	}
	m.Entries = ents
	return p, aliased, nil
}

// takePeerEntries returns count zeroed entries, capped, from *arena: when the arena is too
// small it is replaced by one with room for these and one entry for each of the other left-1
// messages of the frame, at most maxPeerEntryArena.
func takePeerEntries(arena *[]raftpb.Entry, count, left int) []raftpb.Entry {
	if count > len(*arena) {
		*arena = make([]raftpb.Entry, max(count, min(count+left-1, maxPeerEntryArena)))
	}
	ents := (*arena)[:count:count]
	*arena = (*arena)[count:]
	return ents
}

// peerUvarint reads a uvarint off the front of p.
func peerUvarint(p []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, p, false
	}
	return v, p[n:], true
}
