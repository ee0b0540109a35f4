package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/record"
)

// How a Raft entry is stored (docs/replication.md, "One entry, one batch"):
//
//   - a normal entry with data holds exactly one v2 record batch, stored as it is;
//   - a normal entry without data (the empty entry a new leader appends) is stored as a
//     control batch of Kafka's LEADER_CHANGE type;
//   - a configuration change is stored as a control batch of a Chronik type whose record
//     value is the entry's data (the marshaled raftpb.ConfChange or ConfChangeV2).
//
// Every stored batch carries the entry's term as its partitionLeaderEpoch; the log
// assigns its baseOffset. The Raft index is not stored: it is the batch's ordinal in the
// log, counted from the index of the log's first batch (storage.go).

// Control record types (the int16 after the version in a control record's key). 0 and 1
// are Kafka's ABORT and COMMIT; 2 to 6 are KRaft's, 2 being LEADER_CHANGE. Chronik's own
// types sit far above Kafka's so that no Kafka release will reuse them.
const (
	controlTypeLeaderChange  int16 = 2
	controlTypeConfChange    int16 = 0x6301
	controlTypeConfChangeV2  int16 = 0x6302
	controlRecordKeyVersion0 int16 = 0
)

// leaderChangeValue is the value of the control record that stands for an empty entry:
// Kafka's LeaderChangeMessage v0 (flexible encoding) with version 0, leader id -1 (the
// encoding must not depend on which replica writes it) and no voters.
var leaderChangeValue = [...]byte{
	0, 0, // Version int16
	0xff, 0xff, 0xff, 0xff, // LeaderId int32: -1
	1, // Voters: empty compact array
	1, // GrantingVoters: empty compact array
	0, // no tagged fields
}

// Errors about entries. ErrControlBatch is what Propose answers for a batch that could be
// mistaken for one of the replica's own control batches (Kafka refuses control batches
// from clients too: INVALID_RECORD).
var (
	ErrControlBatch = errors.New("replica: a client batch must not be a control batch")
	errNotOneBatch  = errors.New("replica: entry data is not exactly one record batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Byte offsets in a v2 batch header (see core/record's package doc).
const (
	offBatchLength  = 8
	offCRC          = 17
	offAttributes   = 21
	offMaxTimestamp = 35
	attrControl     = 0x20
	batchLengthSkip = 12 // baseOffset and batchLength, which batchLength does not count
)

// checkProposal checks that data is one v2 batch that may be proposed as a normal entry:
// exactly one batch (record.ParseHeader frames it; the edge has validated its CRC) and
// not a control batch.
func checkProposal(data []byte) error {
	h, err := record.ParseHeader(data)
	if err != nil {
		return fmt.Errorf("replica: propose: %w", err)
	}
	if h.Size() != len(data) {
		return fmt.Errorf("replica: propose: %w: %d bytes, batch is %d", errNotOneBatch, len(data), h.Size())
	}
	if h.Control() {
		return ErrControlBatch
	}
	return nil
}

// stampLogAppendTime sets the max timestamp of batch, a LogAppendTime batch, to nowMs
// and recomputes its CRC, as Kafka's leader does.
func stampLogAppendTime(batch []byte, nowMs int64) {
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(nowMs))
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
}

// appendStored appends to dst the batch that stores e and returns it. The baseOffset field
// is left as it is (zero for control batches): the log assigns it. The caller must have
// checked that e.Term fits partitionLeaderEpoch (int32).
func appendStored(dst []byte, e *pb.Entry) ([]byte, error) {
	start := len(dst)
	switch e.Type {
	case pb.EntryNormal:
		if len(e.Data) == 0 {
			dst = appendControlBatch(dst, controlTypeLeaderChange, leaderChangeValue[:])
			break
		}
		h, err := record.ParseHeader(e.Data)
		if err != nil || h.Size() != len(e.Data) {
			return dst[:start], fmt.Errorf("%w: entry %d", errNotOneBatch, e.Index)
		}
		dst = append(dst, e.Data...)
	case pb.EntryConfChange:
		dst = appendControlBatch(dst, controlTypeConfChange, e.Data)
	case pb.EntryConfChangeV2:
		dst = appendControlBatch(dst, controlTypeConfChangeV2, e.Data)
	default:
		return dst[:start], fmt.Errorf("replica: entry %d of unknown type %d", e.Index, e.Type)
	}
	record.SetPartitionLeaderEpoch(dst[start:], int32(e.Term))
	return dst, nil
}

// appendControlBatch appends a control batch of one record with key (version 0, typ) and
// the given value. Every field is a function of typ and value: timestamps -1, no producer.
func appendControlBatch(dst []byte, typ int16, value []byte) []byte {
	var rec [64]byte // the record's body after its length varint, value excluded
	body := rec[:0]
	body = append(body, 0)              // attributes
	body = binary.AppendVarint(body, 0) // timestampDelta
	body = binary.AppendVarint(body, 0) // offsetDelta
	body = binary.AppendVarint(body, 4) // key length
	body = binary.BigEndian.AppendUint16(body, uint16(controlRecordKeyVersion0))
	body = binary.BigEndian.AppendUint16(body, uint16(typ))
	body = binary.AppendVarint(body, int64(len(value)))
	bodyLen := len(body) + len(value) + 1 // + the header count varint (0: one byte)

	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, 0)              // baseOffset: the log assigns it
	dst = binary.BigEndian.AppendUint32(dst, 0)              // batchLength, set below
	dst = binary.BigEndian.AppendUint32(dst, 0)              // partitionLeaderEpoch: the term
	dst = append(dst, 2)                                     // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)              // crc, set below
	dst = binary.BigEndian.AppendUint16(dst, attrControl)    // attributes
	dst = binary.BigEndian.AppendUint32(dst, 0)              // lastOffsetDelta
	dst = binary.BigEndian.AppendUint64(dst, math.MaxUint64) // firstTimestamp -1
	dst = binary.BigEndian.AppendUint64(dst, math.MaxUint64) // maxTimestamp -1
	dst = binary.BigEndian.AppendUint64(dst, math.MaxUint64) // producerId -1
	dst = binary.BigEndian.AppendUint16(dst, math.MaxUint16) // producerEpoch -1
	dst = binary.BigEndian.AppendUint32(dst, math.MaxUint32) // baseSequence -1
	dst = binary.BigEndian.AppendUint32(dst, 1)              // records count
	dst = binary.AppendVarint(dst, int64(bodyLen))
	dst = append(dst, body...)
	dst = append(dst, value...)
	dst = binary.AppendVarint(dst, 0) // no headers
	b := dst[start:]
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLengthSkip))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst
}

// decodeStored returns the entry that batch, one stored batch, holds at index. Its data
// aliases batch. It is the inverse of appendStored up to baseOffset.
func decodeStored(batch []byte, index uint64) (pb.Entry, error) {
	h, err := record.ParseHeader(batch)
	if err != nil {
		return pb.Entry{}, fmt.Errorf("replica: entry %d: %w", index, err)
	}
	if h.PartitionLeaderEpoch < 0 {
		return pb.Entry{}, fmt.Errorf("replica: entry %d: negative epoch %d", index, h.PartitionLeaderEpoch)
	}
	e := pb.Entry{Term: uint64(h.PartitionLeaderEpoch), Index: index}
	if !h.Control() {
		e.Data = batch[:h.Size():h.Size()]
		return e, nil
	}
	typ, value, ok := controlRecord(batch[record.HeaderSize:h.Size()])
	switch {
	case ok && typ == controlTypeLeaderChange:
		// The empty entry: no data.
	case ok && typ == controlTypeConfChange:
		e.Type = pb.EntryConfChange
		e.Data = value
	case ok && typ == controlTypeConfChangeV2:
		e.Type = pb.EntryConfChangeV2
		e.Data = value
	default:
		// Another control batch (a transaction marker): a normal entry that carries it.
		e.Data = batch[:h.Size():h.Size()]
	}
	return e, nil
}

// controlRecord parses the one uncompressed record of a control batch's records section:
// its type and value. ok is false when it does not parse or its key is not a version 0
// control key.
func controlRecord(b []byte) (typ int16, value []byte, ok bool) {
	n, m := binary.Varint(b)
	if m <= 0 || n < 0 || int64(len(b)-m) < n {
		return 0, nil, false
	}
	body := b[m : m+int(n)]
	if len(body) < 1 {
		return 0, nil, false
	}
	body = body[1:] // attributes
	for range 2 {   // timestampDelta, offsetDelta
		if _, m = binary.Varint(body); m <= 0 {
			return 0, nil, false
		}
		body = body[m:]
	}
	keyLen, m := binary.Varint(body)
	if m <= 0 || keyLen != 4 || len(body) < m+4 {
		return 0, nil, false
	}
	key := body[m : m+4]
	body = body[m+4:]
	if int16(binary.BigEndian.Uint16(key)) != controlRecordKeyVersion0 {
		return 0, nil, false
	}
	typ = int16(binary.BigEndian.Uint16(key[2:]))
	valueLen, m := binary.Varint(body)
	if m <= 0 || valueLen < -1 || int64(len(body)-m) < max(valueLen, 0) {
		return 0, nil, false
	}
	if valueLen >= 0 {
		value = body[m : m+int(valueLen) : m+int(valueLen)]
	}
	return typ, value, true
}
