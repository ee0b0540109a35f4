package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/record"
)

// Record versions written to the internal topic, as Kafka 2.3+ writes them: offset commit
// key v1 with value v3 (KIP-320 leader epoch), group metadata key v2 with value v3
// (KIP-345 instance ids). Readers accept every version kmsg decodes.
const (
	offsetKeyVersion   = 1
	offsetValueVersion = 3
	groupKeyVersion    = 2
	groupValueVersion  = 3
)

// RecordKind tells an offset commit record from a group metadata record.
type RecordKind int8

// The record kinds of the internal topic.
const (
	OffsetRecord RecordKind = iota + 1
	GroupRecord
)

// TopicPartition names a partition of a user topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset            int64
	LeaderEpoch       int32 // -1 when the client sent none
	Metadata          string
	CommitTimestampMs int64
}

// Record is one record of the internal topic.
type Record struct {
	Kind  RecordKind
	Group string
	// TopicPartition and Offset are set on offset records; Offset nil is a tombstone.
	TopicPartition
	Offset *Offset
	// Metadata is set on group records; nil is a tombstone.
	Metadata *kmsg.GroupMetadataValue
}

// Key encodes r's key in Kafka's format.
func (r *Record) Key() []byte {
	switch r.Kind {
	case OffsetRecord:
		k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: r.Group, Topic: r.Topic, Partition: r.Partition}
		return k.AppendTo(nil)
	case GroupRecord:
		k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: r.Group}
		return k.AppendTo(nil)
	}
	panic(fmt.Sprintf("group: record kind %d", r.Kind))
}

// Value encodes r's value in Kafka's format; nil for a tombstone.
func (r *Record) Value() []byte {
	switch {
	case r.Kind == OffsetRecord && r.Offset != nil:
		v := kmsg.NewOffsetCommitValue()
		v.Version = offsetValueVersion
		v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = r.Offset.Offset, r.Offset.LeaderEpoch, r.Offset.Metadata, r.Offset.CommitTimestampMs
		return v.AppendTo(nil)
	case r.Kind == GroupRecord && r.Metadata != nil:
		v := *r.Metadata
		v.Version = groupValueVersion
		return v.AppendTo(nil)
	}
	return nil
}

var errBadRecord = errors.New("group: not a record of the internal topic")

// ParseRecord decodes a record of the internal topic. value nil is a tombstone.
func ParseRecord(key, value []byte) (Record, error) {
	if len(key) < 2 {
		return Record{}, errBadRecord
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return Record{}, fmt.Errorf("%w: offset key: %v", errBadRecord, err)
		}
		r := Record{Kind: OffsetRecord, Group: k.Group, TopicPartition: TopicPartition{k.Topic, k.Partition}}
		if value == nil {
			return r, nil
		}
		var val kmsg.OffsetCommitValue
		if err := val.ReadFrom(value); err != nil {
			return Record{}, fmt.Errorf("%w: offset value: %v", errBadRecord, err)
		}
		epoch := val.LeaderEpoch
		if val.Version < 3 {
			epoch = -1
		}
		r.Offset = &Offset{Offset: val.Offset, LeaderEpoch: epoch, Metadata: val.Metadata, CommitTimestampMs: val.CommitTimestamp}
		return r, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return Record{}, fmt.Errorf("%w: group key: %v", errBadRecord, err)
		}
		r := Record{Kind: GroupRecord, Group: k.Group}
		if value == nil {
			return r, nil
		}
		val := kmsg.NewGroupMetadataValue()
		if err := val.ReadFrom(value); err != nil {
			return Record{}, fmt.Errorf("%w: group value: %v", errBadRecord, err)
		}
		r.Metadata = &val
		return r, nil
	default:
		return Record{}, fmt.Errorf("%w: key version %d", errBadRecord, v)
	}
}

// AppendBatch appends recs to dst as one uncompressed v2 record batch with base offset 0,
// every record stamped timestampMs, no producer id: the form Kafka's coordinator writes.
func AppendBatch(dst []byte, recs []Record, timestampMs int64) []byte {
	var body []byte
	for i := range recs {
		body = appendRecord(body, int32(i), recs[i].Key(), recs[i].Value())
	}
	start := len(dst)
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       timestampMs,
		MaxTimestamp:         timestampMs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	dst = b.AppendTo(dst)
	record.FixLengthAndCRC(dst[start:])
	return dst
}

func appendRecord(dst []byte, offsetDelta int32, key, value []byte) []byte {
	var r []byte
	r = append(r, 0)                      // attributes
	r = kbin.AppendVarlong(r, 0)          // timestamp delta
	r = kbin.AppendVarint(r, offsetDelta) // offset delta
	r = kbin.AppendVarintBytes(r, key)
	r = kbin.AppendVarintBytes(r, value)
	r = kbin.AppendVarint(r, 0) // headers
	dst = kbin.AppendVarint(dst, int32(len(r)))
	return append(dst, r...)
}

// MaxRecordsPerBatch bounds the records ParseBatch reads from one batch.
const MaxRecordsPerBatch = 1 << 20

// ParseBatch calls fn with each record of one uncompressed v2 batch (the CRC is not
// checked: the log checked it). A record that is not an internal-topic record is passed to
// fn with its error; control, transactional and compressed batches are skipped whole.
func ParseBatch(b []byte, fn func(r Record, err error)) error {
	var batch kmsg.RecordBatch
	if err := batch.ReadFrom(b); err != nil {
		return fmt.Errorf("group: batch: %w", err)
	}
	if batch.Magic != 2 {
		return fmt.Errorf("group: batch magic %d", batch.Magic)
	}
	if batch.Attributes&0x27 != 0 { // codec bits or control
		return nil
	}
	rest := batch.Records
	for i := int32(0); i < batch.NumRecords && i < MaxRecordsPerBatch; i++ {
		l, n := binary.Varint(rest)
		if n <= 0 || l < 0 || int64(len(rest)-n) < l {
			return errors.New("group: truncated record")
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(rest[:n+int(l)]); err != nil {
			return fmt.Errorf("group: record: %w", err)
		}
		rest = rest[n+int(l):]
		fn(ParseRecord(kr.Key, kr.Value))
	}
	return nil
}

// PartitionFor is the internal topic partition that holds groupID, as Kafka computes it:
// Utils.abs(groupId.hashCode()) % partitions, with Java's String.hashCode over UTF-16.
func PartitionFor(groupID string, partitions int32) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(groupID)) {
		h = 31*h + int32(u)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}
