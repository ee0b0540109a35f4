package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/record"
)

// A record's value names the write that produced it: client, the client's write number,
// the attempt (plain producers re-encode each retry; an idempotent producer resends the
// same bytes, attempt 0) and the record's index in its batch. Every value the simulator
// writes is distinct, so the final log says which write each record came from.
const valueBytes = 8

func writeBase(client int, seq uint32, attempt int) uint64 {
	return uint64(client)<<48 | uint64(seq)<<16 | uint64(attempt&0xff)<<8
}

// baseOf strips the record index.
func baseOf(v uint64) uint64 { return v &^ 0xff }

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// idemFields are a batch's idempotence fields; pid -1 for a plain producer.
type idemFields struct {
	pid   int64
	epoch int16
	seq   int32
}

// buildBatch encodes a v2 record batch of n records valued base, base+1, ... with
// kmsg.RecordBatch, CRC-32C over the bytes from attributes on, as a producer does.
func buildBatch(base uint64, n int, tsMs int64, id idemFields) []byte {
	var recs []byte
	var val [valueBytes]byte
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(val[:], base+uint64(i))
		var body []byte
		body = append(body, 0)                   // attributes
		body = kbin.AppendVarlong(body, 0)       // timestamp delta
		body = kbin.AppendVarint(body, int32(i)) // offset delta
		body = kbin.AppendVarint(body, -1)       // null key
		body = kbin.AppendVarint(body, valueBytes)
		body = append(body, val[:]...)
		body = kbin.AppendVarint(body, 0) // no headers
		recs = kbin.AppendVarint(recs, int32(len(body)))
		recs = append(recs, body...)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       tsMs,
		MaxTimestamp:         tsMs,
		ProducerID:           id.pid,
		ProducerEpoch:        id.epoch,
		FirstSequence:        id.seq,
		NumRecords:           int32(n),
		Records:              recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}

var errBadRecord = errors.New("sim: record does not parse")

// controlValue stands for an offset a control batch takes (a leader change, in cluster
// mode) in the logs the checks keep: no client wrote it, and consumers skip it.
const controlValue = ^uint64(0)

// valueName names a value the checks keep, for a violation's detail.
func valueName(v uint64) string {
	if v == controlValue {
		return "a control batch"
	}
	return fmt.Sprintf("value %#x", v)
}

// readBatches calls fn for every record of the whole batches in b, in order, with its
// offset and value (0 and ok false when the value is not one of ours; controlValue for
// each offset of a control batch). A trailing partial batch is ignored, as clients do; a
// batch that fails validation is an error.
func readBatches(b []byte, fn func(offset int64, v uint64, ok bool)) error {
	for len(b) >= record.HeaderSize {
		h, err := record.ParseHeader(b)
		if err != nil {
			return err
		}
		if h.Size() > len(b) {
			return nil // partial batch at the end of a fetch
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		if _, err := record.Validate(batch); err != nil {
			return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		if h.Attributes&0x20 != 0 {
			for i := int64(0); i <= int64(h.LastOffsetDelta); i++ {
				fn(h.BaseOffset+i, controlValue, true)
			}
			continue
		}
		if h.Codec() != record.CodecNone {
			return fmt.Errorf("batch at offset %d: codec %v: the simulator writes none", h.BaseOffset, h.Codec())
		}
		r := kbin.Reader{Src: batch[record.HeaderSize:]}
		for i := int32(0); i < h.NumRecords; i++ {
			length := r.Varint()
			if !r.Ok() || length < 0 || int(length) > len(r.Src) {
				return fmt.Errorf("batch at offset %d record %d: %w", h.BaseOffset, i, errBadRecord)
			}
			rec := kbin.Reader{Src: r.Src[:length]}
			r.Src = r.Src[length:]
			rec.Int8()
			rec.Varlong()
			delta := rec.Varint()
			rec.VarintBytes() // key
			val := rec.VarintBytes()
			if !rec.Ok() {
				return fmt.Errorf("batch at offset %d record %d: %w", h.BaseOffset, i, errBadRecord)
			}
			if len(val) == valueBytes {
				fn(h.BaseOffset+int64(delta), binary.BigEndian.Uint64(val), true)
			} else {
				fn(h.BaseOffset+int64(delta), 0, false)
			}
		}
	}
	return nil
}
