package record

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// textRecords returns n records with values of size bytes of seeded text: words drawn
// from a small vocabulary, which compresses about as well as JSON logs do.
func textRecords(seed uint64, n, size int) []kmsg.Record {
	words := strings.Fields("the quick brown fox jumps over lazy dog user_id session " +
		"timestamp level info warn error request response latency_ms status 200 404 " +
		"500 GET POST /api/v1/orders /api/v1/users region eu-west-1 us-east-1 {\"k\": []}")
	rng := rand.New(rand.NewPCG(seed, 0))
	recs := make([]kmsg.Record, n)
	for i := range recs {
		v := make([]byte, 0, size+16)
		for len(v) < size {
			v = append(v, words[rng.IntN(len(words))]...)
			v = append(v, ' ')
			v = strconv.AppendUint(v, uint64(rng.IntN(1000)), 10)
			v = append(v, ' ')
		}
		recs[i] = kmsg.Record{Key: []byte{byte(i)}, Value: v[:size], TimestampDelta64: int64(i)}
	}
	return recs
}

func TestCodecs(t *testing.T) {
	sets := map[string][]kmsg.Record{
		"sample":      sampleRecords(),
		"null record": {{}},
		"large":       textRecords(1, 5, 100<<10), // many xerial blocks, several lz4 blocks
	}
	var shared Validator
	for _, cc := range codecCases {
		for name, recs := range sets {
			t.Run(cc.name+"/"+name, func(t *testing.T) {
				rawSection := encodeRecords(recs)
				b := buildBatch(t, cc, 0, recs)
				h, err := Validate(b)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if h.Codec() != cc.codec || h.NumRecords != int32(len(recs)) || h.Size() != len(b) {
					t.Fatalf("header %+v", h)
				}
				if _, err := shared.Validate(b); err != nil {
					t.Fatalf("shared Validator: %v", err)
				}
				if cc.codec == CodecNone {
					return
				}
				var v Validator
				out, err := v.decompress(cc.codec, b[HeaderSize:])
				if err != nil || !bytes.Equal(out, rawSection) {
					t.Fatalf("decompress: %d bytes, want %d; err %v", len(out), len(rawSection), err)
				}
			})
		}
	}
}

// TestCodecVariants feeds encodings other clients and settings produce.
func TestCodecVariants(t *testing.T) {
	recs := textRecords(2, 8, 20<<10)
	rawSection := encodeRecords(recs)
	n := int32(len(recs))
	lz4With := func(opts ...lz4.Option) []byte {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if err := w.Apply(opts...); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, rawSection)
		return buf.Bytes()
	}
	zstdWith := func(opts ...zstd.EOption) []byte {
		w, err := zstd.NewWriter(nil, append(opts, zstd.WithEncoderConcurrency(1))...)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		return w.EncodeAll(rawSection, nil)
	}
	zstdStream := func() []byte {
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, rawSection) // a streamed frame declares no content size
		return buf.Bytes()
	}
	gzipLevel := func(level int) []byte {
		var buf bytes.Buffer
		w, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, rawSection)
		return buf.Bytes()
	}
	gzipMembers := func() []byte {
		var buf bytes.Buffer
		half := len(rawSection) / 2
		for _, part := range [][]byte{rawSection[:half], rawSection[half:]} {
			mustWrite(t, gzip.NewWriter(&buf), part)
		}
		return buf.Bytes()
	}
	zstdFrames := func() []byte {
		w, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		half := len(rawSection) / 2
		return w.EncodeAll(rawSection[half:], w.EncodeAll(rawSection[:half], nil))
	}
	tests := []struct {
		name    string
		codec   Codec
		section []byte
	}{
		{"gzip best", CodecGzip, gzipLevel(gzip.BestCompression)},
		{"gzip stored", CodecGzip, gzipLevel(gzip.NoCompression)},
		{"gzip two members", CodecGzip, gzipMembers()},
		{"xerial 1KiB blocks", CodecSnappy, xerialEncode(rawSection, 1<<10)},
		{"lz4 64KiB blocks", CodecLz4, lz4With(lz4.BlockSizeOption(lz4.Block64Kb))},
		{"lz4 block checksums", CodecLz4, lz4With(lz4.BlockChecksumOption(true))},
		{"lz4 no content checksum", CodecLz4, lz4With(lz4.ChecksumOption(false))},
		{"lz4 content size", CodecLz4, lz4With(lz4.SizeOption(uint64(len(rawSection))))},
		{"lz4 level 9", CodecLz4, lz4With(lz4.CompressionLevelOption(lz4.Level9))},
		{"zstd best", CodecZstd, zstdWith(zstd.WithEncoderLevel(zstd.SpeedBestCompression))},
		{"zstd fastest no crc", CodecZstd, zstdWith(zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))},
		{"zstd single segment", CodecZstd, zstdWith(zstd.WithSingleSegment(true))},
		{"zstd streamed", CodecZstd, zstdStream()},
		{"zstd two frames", CodecZstd, zstdFrames()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Validate(batchOf(int16(tt.codec), n, n-1, tt.section)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDecompressLimit checks that a section decompressing past MaxDecompressedBytes is
// refused as too large, and one exactly at the limit is not.
func TestDecompressLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB per codec")
	}
	for _, size := range []int{MaxDecompressedBytes, MaxDecompressedBytes + 1} {
		zeros := make([]byte, size)
		over := size > MaxDecompressedBytes
		for _, cc := range codecCases[1:] {
			b := batchOf(int16(cc.codec), 1, 0, compress(t, cc, zeros))
			_, err := Validate(b)
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "more than") != over {
				t.Errorf("%s of %d zeros: %v", cc.name, size, err)
			}
		}
		// A streamed zstd frame declares no content size, so the bound applies while decoding.
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, zeros)
		_, err = Validate(batchOf(int16(CodecZstd), 1, 0, buf.Bytes()))
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "more than") != over {
			t.Errorf("streamed zstd of %d zeros: %v", size, err)
		}
	}
}

// TestNoGoroutines checks that validating every codec starts no goroutine.
func TestNoGoroutines(t *testing.T) {
	batches := make([][]byte, len(codecCases))
	for i, cc := range codecCases {
		batches[i] = buildBatch(t, cc, 0, sampleRecords())
	}
	before := runtime.NumGoroutine()
	var v Validator
	for _, b := range batches {
		if _, err := v.Validate(b); err != nil {
			t.Fatal(err)
		}
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Fatalf("%d goroutines before validating, %d after", before, after)
	}
}
