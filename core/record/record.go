// Package record parses and validates Kafka record batches (magic v2).
//
// A record batch on the wire and on disk is laid out as (KIP-98):
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 |
//	crc uint32 | attributes int16 | lastOffsetDelta int32 | firstTimestamp int64 |
//	maxTimestamp int64 | producerId int64 | producerEpoch int16 | baseSequence int32 |
//	records count int32 | records...
//
// The CRC-32C covers everything from attributes to the end of the batch, so the broker may
// rewrite baseOffset and partitionLeaderEpoch without recomputing it.
//
// Functions here are pure: no I/O, no clock, no goroutines and no mutable global state.
// Decompressor state lives in a Validator, which its one owner reuses between calls.
package record

import (
	"errors"
	"fmt"
)

// HeaderSize is the size in bytes of a v2 record batch header, records count included.
const HeaderSize = 61

// Errors returned by Validate and ParseHeader. Callers map them to Kafka error codes:
// ErrCorrupt and ErrTruncated to CORRUPT_MESSAGE, ErrInvalid to INVALID_RECORD,
// ErrUnsupportedMagic to UNSUPPORTED_FOR_MESSAGE_FORMAT, ErrUnsupportedCodec to
// UNSUPPORTED_COMPRESSION_TYPE.
var (
	ErrTruncated        = errors.New("record: batch truncated")
	ErrCorrupt          = errors.New("record: batch corrupt")
	ErrInvalid          = errors.New("record: batch invalid")
	ErrUnsupportedMagic = errors.New("record: unsupported magic")
	ErrUnsupportedCodec = errors.New("record: unsupported compression codec")
)

// Codec is the compression codec in the low three bits of a batch's attributes.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLz4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's name as Kafka's compression.type spells it.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLz4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Header is a decoded record batch header.
type Header struct {
	BaseOffset           int64
	Length               int32 // batchLength: bytes after the Length field itself
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64 // milliseconds since the epoch
	MaxTimestamp         int64 // milliseconds since the epoch
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the whole batch's size in bytes: 12 + Length.
func (h Header) Size() int { return 12 + int(h.Length) }

// LastOffset is BaseOffset + LastOffsetDelta.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the batch's compression codec.
func (h Header) Codec() Codec { return Codec(h.Attributes & 0x7) }

// LogAppendTime reports whether the batch's timestamp type is LogAppendTime.
func (h Header) LogAppendTime() bool { return h.Attributes&0x8 != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&0x10 != 0 }

// Control reports whether the batch is a control batch (transaction markers).
func (h Header) Control() bool { return h.Attributes&0x20 != 0 }

// Idempotent reports whether the batch carries a producer id (ProducerID >= 0).
func (h Header) Idempotent() bool { return h.ProducerID >= 0 }
