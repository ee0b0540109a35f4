package log

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"chronik/core/record"
)

// batchSpec describes a test batch: records records, each with a value of valueBytes
// bytes filled with fill, timestamps firstTs, firstTs+1, ...
type batchSpec struct {
	records    int
	valueBytes int
	firstTs    int64
	fill       byte
	attrs      int16 // extra attributes, e.g. attrLogAppendTime
}

const attrLogAppendTime = 0x8

// makeBatch builds a valid uncompressed v2 record batch with base offset 0 and a correct
// CRC-32C.
func makeBatch(sp batchSpec) []byte {
	var recs []byte
	value := make([]byte, sp.valueBytes)
	for i := range value {
		value[i] = sp.fill + byte(i)
	}
	for i := 0; i < sp.records; i++ {
		var body []byte
		body = append(body, 0)                     // attributes
		body = binary.AppendVarint(body, int64(i)) // timestampDelta
		body = binary.AppendVarint(body, int64(i)) // offsetDelta
		body = binary.AppendVarint(body, -1)       // null key
		body = binary.AppendVarint(body, int64(len(value)))
		body = append(body, value...)
		body = binary.AppendVarint(body, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	be := binary.BigEndian
	b := make([]byte, 0, record.HeaderSize+len(recs))
	b = be.AppendUint64(b, 0)                                      // baseOffset
	b = be.AppendUint32(b, uint32(record.HeaderSize-12+len(recs))) // batchLength
	b = be.AppendUint32(b, 0)                                      // partitionLeaderEpoch
	b = append(b, 2)                                               // magic
	b = be.AppendUint32(b, 0)                                      // crc, below
	b = be.AppendUint16(b, uint16(sp.attrs))
	b = be.AppendUint32(b, uint32(sp.records-1))                   // lastOffsetDelta
	b = be.AppendUint64(b, uint64(sp.firstTs))                     // firstTimestamp
	b = be.AppendUint64(b, uint64(sp.firstTs+int64(sp.records-1))) // maxTimestamp
	b = be.AppendUint64(b, ^uint64(0))                             // producerId -1
	b = be.AppendUint16(b, ^uint16(0))                             // producerEpoch -1
	b = be.AppendUint32(b, ^uint32(0))                             // baseSequence -1
	b = be.AppendUint32(b, uint32(sp.records))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestMakeBatchValidates(t *testing.T) {
	for _, sp := range []batchSpec{{records: 1}, {records: 7, valueBytes: 100, firstTs: 1e12}, {records: 3, attrs: attrLogAppendTime}} {
		b := makeBatch(sp)
		h, err := record.Validate(b)
		if err != nil {
			t.Fatalf("%+v: %v", sp, err)
		}
		if int(h.NumRecords) != sp.records || h.Size() != len(b) {
			t.Fatalf("%+v: header %+v", sp, h)
		}
	}
}
