package record

import (
	"bytes"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedBytes bounds a compressed batch's records section once decompressed.
// Kafka bounds only the compressed batch (message.max.bytes); this bound keeps a small
// hostile batch from expanding into gigabytes. A batch over it is ErrInvalid.
const MaxDecompressedBytes = 64 << 20

// maxRetainedBytes bounds the decompression buffer a Validator keeps between calls, so
// that one large batch does not pin its memory for the Validator's lifetime.
const maxRetainedBytes = 1 << 20

// crc32c is the CRC-32C (Castagnoli) table. It is built once and never written again.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Validate checks that b is exactly one well-formed v2 batch: magic 2, batchLength
// consistent with len(b), CRC-32C over b[21:] correct, NumRecords >= 1, LastOffsetDelta ==
// NumRecords-1, and the records section (decompressed first when the codec is not none)
// holds exactly NumRecords well-formed records whose offset deltas are 0..NumRecords-1.
// It never modifies b and never panics on any input.
//
// Beyond the wire format, Validate holds records to what Kafka's own reader accepts: a
// header key must not be null; a control batch holds exactly one record, whose key has
// at least the 4 bytes of a control record's version and type; snappy blocks are decoded
// strictly, without the s2 extensions; an lz4 section is one frame with independent
// blocks. Varints longer than Kafka writes (5 bytes, 10 for varlongs) are refused.
//
// Validate builds a fresh Validator for a compressed batch; a caller validating many
// compressed batches should keep one.
func Validate(b []byte) (Header, error) { return validate(b, nil) }

// Validator validates batches, keeping decompressors and an output buffer between calls
// so that steady-state validation does not allocate. The zero value is ready to use. A
// Validator is not safe for concurrent use; give each goroutine its own.
type Validator struct {
	src  bytes.Reader  // the compressed records section being read
	buf  []byte        // decompression output. Invariant: cap(buf) <= maxRetainedBytes between calls.
	gzip *gzip.Reader  // nil until the first gzip batch
	lz4  *lz4.Reader   // nil until the first lz4 batch
	zstd *zstd.Decoder // nil until the first zstd batch; built without goroutines
}

// Validate checks b as the package-level Validate does.
//
// Errors are classified in the order checked: ErrTruncated, ErrUnsupportedMagic and
// ErrCorrupt for the header (ParseHeader); ErrCorrupt when len(b) is not the batch's Size
// or the CRC does not match; then, the bytes being as the producer sent them,
// ErrUnsupportedCodec for codecs 5 to 7, and ErrInvalid for everything else: record
// count, offset deltas, decompression failures, MaxDecompressedBytes, malformed records.
// On error the returned Header holds whatever was decoded, possibly nothing.
func (v *Validator) Validate(b []byte) (Header, error) { return validate(b, v) }

// validate implements Validate, using v for decompression or, when v is nil, a Validator
// allocated only if the batch is compressed.
func validate(b []byte, v *Validator) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if len(b) != h.Size() {
		return h, fmt.Errorf("%w: %d bytes follow the %d-byte batch", ErrCorrupt, len(b)-h.Size(), h.Size())
	}
	if crc := crc32.Checksum(b[offAttributes:], crc32c); crc != h.CRC {
		return h, fmt.Errorf("%w: crc %#x, computed %#x", ErrCorrupt, h.CRC, crc)
	}
	if c := h.Codec(); c > CodecZstd {
		return h, fmt.Errorf("%w: %v", ErrUnsupportedCodec, c)
	}
	if h.NumRecords < 1 {
		return h, fmt.Errorf("%w: %d records", ErrInvalid, h.NumRecords)
	}
	if h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrInvalid, h.LastOffsetDelta, h.NumRecords)
	}
	records := b[HeaderSize:]
	if c := h.Codec(); c != CodecNone {
		if v == nil {
			v = new(Validator)
		}
		if records, err = v.decompress(c, records); err != nil {
			return h, err
		}
	}
	return h, checkRecords(records, h.NumRecords, h.Control())
}
