package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the v2 header fields; see the layout in the package doc.
const (
	offBaseOffset           = 0
	offLength               = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21
	offLastOffsetDelta      = 23
	offFirstTimestamp       = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offNumRecords           = 57

	// lengthPrefixSize is the bytes before and including batchLength, which
	// batchLength does not count.
	lengthPrefixSize = offLength + 4
	// minLength is the smallest batchLength: the header after batchLength.
	minLength = HeaderSize - lengthPrefixSize
)

// ParseHeader decodes the header at the start of b without checking the CRC. It returns
// ErrTruncated when b is shorter than HeaderSize or than the batch's Size, and
// ErrUnsupportedMagic when magic is not 2; ErrCorrupt when batchLength is below the
// header's own size.
//
// Magic is checked as soon as its byte is present, so a short v0 or v1 message set is
// reported as ErrUnsupportedMagic rather than ErrTruncated. When the error wraps
// ErrTruncated and len(b) >= HeaderSize, the returned Header is fully decoded, so the
// caller can learn how many bytes the whole batch needs from its Size.
func ParseHeader(b []byte) (Header, error) {
	if len(b) <= offMagic {
		return Header{}, fmt.Errorf("%w: %d bytes, need %d for the header", ErrTruncated, len(b), HeaderSize)
	}
	if magic := int8(b[offMagic]); magic != 2 {
		return Header{}, fmt.Errorf("%w: magic %d, want 2", ErrUnsupportedMagic, magic)
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, need %d for the header", ErrTruncated, len(b), HeaderSize)
	}
	h := decodeHeader(b)
	if h.Length < minLength {
		return Header{}, fmt.Errorf("%w: batchLength %d below the header's %d", ErrCorrupt, h.Length, minLength)
	}
	if len(b) < h.Size() {
		return h, fmt.Errorf("%w: %d bytes, batch needs %d", ErrTruncated, len(b), h.Size())
	}
	return h, nil
}

// decodeHeader decodes the fixed fields. It requires len(b) >= HeaderSize.
func decodeHeader(b []byte) Header {
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offPartitionLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
}

// Split walks the concatenated batches in b, calling fn with each whole batch's bytes and
// header (CRC not checked). It stops at the first error from ParseHeader and returns it;
// a b that ends exactly on a batch boundary returns nil. fn returning false stops the walk.
//
// Each batch slice passed to fn aliases b and has its capacity capped at its length, so
// appending to it cannot overwrite the next batch.
func Split(b []byte, fn func(batch []byte, h Header) bool) error {
	// Each batch is at least HeaderSize bytes, which bounds the loop by len(b)/HeaderSize.
	for len(b) > 0 {
		h, err := ParseHeader(b)
		if err != nil {
			return err
		}
		n := h.Size()
		if !fn(b[:n:n], h) {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// SetBaseOffset overwrites the baseOffset field of the batch at the start of b.
// The field lies outside the CRC, so the batch stays valid. It panics when b is
// shorter than HeaderSize: the caller must have parsed the batch first.
func SetBaseOffset(b []byte, offset int64) {
	mustHeader(b)
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch overwrites the partitionLeaderEpoch field of the batch in b.
// The field lies outside the CRC, so the batch stays valid. It panics when b is
// shorter than HeaderSize: the caller must have parsed the batch first.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	mustHeader(b)
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:], uint32(epoch))
}

// mustHeader asserts the precondition of the setters.
func mustHeader(b []byte) {
	if len(b) < HeaderSize {
		panic(fmt.Sprintf("record: %d bytes is shorter than a batch header", len(b)))
	}
}

// FixLengthAndCRC sets the batchLength and CRC fields of the one batch b holds from its
// bytes: for batches the broker builds itself. It panics when b is shorter than
// HeaderSize.
func FixLengthAndCRC(b []byte) {
	mustHeader(b)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32c))
}
