package record

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file builds batches the way franz-go's producer does: kmsg encodes the records and
// the batch, and compress uses the codec settings of kgo's DefaultCompressor. The xerial
// snappy framing, which kgo keeps unexported, is built by hand.

// tb is the part of testing.TB and *rapid.T the helpers use.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// codecCase is one way to encode a records section.
type codecCase struct {
	name   string
	codec  Codec
	xerial bool // snappy only: xerial framing rather than one raw block
}

// codecCases lists every encoding Validate must accept.
var codecCases = []codecCase{
	{"none", CodecNone, false},
	{"gzip", CodecGzip, false},
	{"snappy", CodecSnappy, false},
	{"snappy-xerial", CodecSnappy, true},
	{"lz4", CodecLz4, false},
	{"zstd", CodecZstd, false},
}

// appendRecord appends r as a length-prefixed record, computing its Length. The offset
// delta is r's own, so a test can lie about it.
func appendRecord(dst []byte, r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // a zero Length is a one-byte varint
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// encodeRecords encodes recs as a records section with offset deltas 0..len(recs)-1.
func encodeRecords(recs []kmsg.Record) []byte {
	var out []byte
	for i, r := range recs {
		r.OffsetDelta = int32(i)
		out = appendRecord(out, r)
	}
	return out
}

// compress compresses a records section with the settings of franz-go's DefaultCompressor
// (kgo/compression.go): gzip at the default level, s2's snappy-compatible block encoder,
// an lz4 frame with the writer's defaults, and a zstd frame with a 64 KiB window.
// Importing kgo itself would need this module's go directive raised to 1.26.0.
func compress(tb tb, cc codecCase, raw []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	switch {
	case cc.codec == CodecNone:
		return raw
	case cc.xerial:
		return xerialEncode(raw, 32<<10)
	case cc.codec == CodecGzip:
		w := gzip.NewWriter(&buf)
		mustWrite(tb, w, raw)
	case cc.codec == CodecSnappy:
		return s2.EncodeSnappy(nil, raw)
	case cc.codec == CodecLz4:
		w := lz4.NewWriter(&buf)
		mustWrite(tb, w, raw)
	case cc.codec == CodecZstd:
		w, err := zstd.NewWriter(nil, zstd.WithWindowSize(64<<10), zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if err != nil {
			tb.Fatal(err)
		}
		defer w.Close()
		return w.EncodeAll(raw, nil)
	default:
		tb.Fatalf("no compressor for %v", cc.codec)
	}
	return buf.Bytes()
}

// mustWrite writes p to w and closes it.
func mustWrite(tb tb, w io.WriteCloser, p []byte) {
	tb.Helper()
	if _, err := w.Write(p); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// xerialEncode frames raw as the Java client's snappy stream does: the magic, version 1,
// compatible version 1, then blocks of an int32 length and a raw snappy block.
func xerialEncode(raw []byte, blockSize int) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(raw) > 0 {
		n := min(blockSize, len(raw))
		block := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		raw = raw[n:]
	}
	return out
}

// batchOf builds a batch holding section with the given count fields, computing
// batchLength and the CRC.
func batchOf(attrs int16, numRecords, lastOffsetDelta int32, section []byte) []byte {
	rb := kmsg.RecordBatch{
		FirstOffset:          1000,
		Length:               int32(minLength + len(section)),
		PartitionLeaderEpoch: 7,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      lastOffsetDelta,
		FirstTimestamp:       1700000000000,
		MaxTimestamp:         1700000000042,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           numRecords,
		Records:              section,
	}
	b := rb.AppendTo(nil)
	fixCRC(b)
	return b
}

// buildBatch encodes recs with cc into a well-formed batch.
func buildBatch(tb tb, cc codecCase, extraAttrs int16, recs []kmsg.Record) []byte {
	tb.Helper()
	section := compress(tb, cc, encodeRecords(recs))
	n := int32(len(recs))
	return batchOf(int16(cc.codec)|extraAttrs, n, n-1, section)
}

// fixCRC recomputes the CRC of the batch in b after a test edited it.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
}

// sampleRecords returns a few records exercising nulls, empties and headers.
func sampleRecords() []kmsg.Record {
	return []kmsg.Record{
		{Key: []byte("k0"), Value: []byte("v0")},
		{Key: nil, Value: []byte("value with a null key"), TimestampDelta64: 5},
		{Key: []byte{}, Value: nil, TimestampDelta64: -3},
		{Key: []byte("h"), Value: bytes.Repeat([]byte("abc"), 300), Headers: []kmsg.Header{
			{Key: "trace", Value: []byte("1234")},
			{Key: "", Value: nil},
			{Key: "empty", Value: []byte{}},
		}},
	}
}
