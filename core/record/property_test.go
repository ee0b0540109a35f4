package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// nullableBytes draws null, a short random slice, or a long run of one byte (which spans
// several xerial and lz4 blocks once compressed).
func nullableBytes() *rapid.Generator[[]byte] {
	return rapid.OneOf(
		rapid.Just([]byte(nil)),
		rapid.SliceOfN(rapid.Byte(), 0, 64),
		rapid.Custom(func(t *rapid.T) []byte {
			n := rapid.IntRange(0, 100<<10).Draw(t, "run length")
			return bytes.Repeat([]byte{rapid.Byte().Draw(t, "run byte")}, n)
		}),
	)
}

func genRecord() *rapid.Generator[kmsg.Record] {
	return rapid.Custom(func(t *rapid.T) kmsg.Record {
		return kmsg.Record{
			TimestampDelta64: rapid.Int64().Draw(t, "timestampDelta"),
			Key:              nullableBytes().Draw(t, "key"),
			Value:            nullableBytes().Draw(t, "value"),
			Headers: rapid.SliceOfN(rapid.Custom(func(t *rapid.T) kmsg.Header {
				return kmsg.Header{
					Key:   rapid.String().Draw(t, "header key"),
					Value: nullableBytes().Draw(t, "header value"),
				}
			}), 0, 4).Draw(t, "headers"),
		}
	})
}

// TestValidateProperty checks that any batch a client could encode validates with the
// header it was built with, and that flipping any one byte under the CRC is caught as
// corruption while flipping one before it is caught or harmless as the field dictates.
// A failure prints the seed; rerun it with -rapid.seed.
func TestValidateProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cc := rapid.SampledFrom(codecCases).Draw(t, "codec")
		recs := rapid.SliceOfN(genRecord(), 1, 12).Draw(t, "records")
		attrs := rapid.SampledFrom([]int16{0, 0x08, 0x10, 0x18}).Draw(t, "attributes")
		b := buildBatch(t, cc, attrs, recs)
		baseOffset := rapid.Int64().Draw(t, "baseOffset")
		epoch := rapid.Int32().Draw(t, "partitionLeaderEpoch")
		SetBaseOffset(b, baseOffset)
		SetPartitionLeaderEpoch(b, epoch)

		h, err := Validate(b)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		n := int32(len(recs))
		if h.BaseOffset != baseOffset || h.PartitionLeaderEpoch != epoch || h.NumRecords != n ||
			h.LastOffsetDelta != n-1 || h.Codec() != cc.codec || h.Attributes != int16(cc.codec)|attrs ||
			h.Size() != len(b) {
			t.Fatalf("header %+v", h)
		}

		i := rapid.IntRange(offAttributes, len(b)-1).Draw(t, "flip at")
		flipped := bytes.Clone(b)
		flipped[i] ^= rapid.ByteRange(1, 255).Draw(t, "flip mask")
		if _, err := Validate(flipped); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "crc") {
			t.Fatalf("flip at %d of %d: %v, want a crc mismatch", i, len(b), err)
		}

		j := rapid.IntRange(0, offAttributes-1).Draw(t, "flip in prefix at")
		flipped = bytes.Clone(b)
		flipped[j] ^= rapid.ByteRange(1, 255).Draw(t, "prefix flip mask")
		_, err = Validate(flipped)
		switch {
		case j < offLength || (j >= offPartitionLeaderEpoch && j < offMagic):
			if err != nil {
				t.Fatalf("flip in a field outside the crc at %d: %v", j, err)
			}
		case j < offPartitionLeaderEpoch:
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("flip in batchLength: %v", err)
			}
		case j == offMagic:
			if !errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("flip in magic: %v", err)
			}
		default:
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip in crc: %v", err)
			}
		}
	})
}
