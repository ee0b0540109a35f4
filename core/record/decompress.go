package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

const (
	// xerialHeaderSize is the xerial snappy stream header: the magic, then a version and
	// a minimum compatible version, both int32.
	xerialHeaderSize = 16
	// maxSnappyExpansion bounds a snappy block's decoded size per encoded byte: the
	// densest element, a 3-byte copy, yields 64 bytes. A block claiming more is corrupt
	// and is refused before its output is allocated.
	maxSnappyExpansion = 22
	// minReadBytes is the smallest buffer readAtMost reads into.
	minReadBytes = 4 << 10
	// maxStalledReads bounds consecutive reads that return no bytes and no error.
	maxStalledReads = 100
)

// xerialMagic opens a snappy stream in the xerial framing the Java client writes.
const xerialMagic = "\x82SNAPPY\x00"

var errTooLarge = fmt.Errorf("more than %d bytes decompressed", MaxDecompressedBytes)

// decompress returns the decompressed records section src of a batch with codec c. The
// result aliases v's buffer and is valid until v's next call. Failures wrap ErrInvalid,
// or ErrUnsupportedCodec for a codec Kafka does not define.
func (v *Validator) decompress(c Codec, src []byte) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case CodecGzip:
		out, err = v.gunzip(src)
	case CodecSnappy:
		out, err = unsnappy(v.buf[:0], src)
	case CodecLz4:
		out, err = v.unlz4(src)
	case CodecZstd:
		out, err = v.unzstd(src)
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCodec, c)
	}
	v.src.Reset(nil) // drop the reference to the caller's batch
	v.maybeKeep(out)
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			err = errTooLarge
		}
		return nil, fmt.Errorf("%w: %v records: %v", ErrInvalid, c, err)
	}
	return out, nil
}

// maybeKeep keeps out's storage for the next call unless it is over maxRetainedBytes.
func (v *Validator) maybeKeep(out []byte) {
	if cap(out) > maxRetainedBytes {
		v.buf = nil
		return
	}
	if cap(out) > cap(v.buf) {
		v.buf = out[:0]
	}
}

func (v *Validator) gunzip(src []byte) ([]byte, error) {
	v.src.Reset(src)
	if v.gzip == nil {
		v.gzip = new(gzip.Reader)
	}
	if err := v.gzip.Reset(&v.src); err != nil {
		return nil, err
	}
	return readAtMost(v.buf[:0], v.gzip, MaxDecompressedBytes)
}

func (v *Validator) unlz4(src []byte) ([]byte, error) {
	if err := checkLz4Frame(src); err != nil {
		return nil, err
	}
	v.src.Reset(src)
	if v.lz4 == nil {
		v.lz4 = lz4.NewReader(nil) // concurrency 1 by default: no goroutines
	}
	v.lz4.Reset(&v.src)
	return readAtMost(v.buf[:0], v.lz4, MaxDecompressedBytes)
}

// Flags in an lz4 frame descriptor's FLG byte.
const (
	lz4Magic             = 0x184D2204
	lz4FlagReserved      = 0x03 // dictionary id and a reserved bit; Kafka refuses both
	lz4FlagContentCheck  = 0x04
	lz4FlagContentSize   = 0x08
	lz4FlagBlockCheck    = 0x10
	lz4FlagIndependent   = 0x20
	lz4FlagVersionMask   = 0xc0
	lz4FlagVersion1      = 0x40
	lz4UncompressedBlock = 1 << 31
)

// checkLz4Frame checks what Kafka's reader (KafkaLZ4BlockInputStream) requires of an
// lz4 records section beyond what the pierrec reader checks. Kafka decodes each block
// on its own, so it refuses frames without the block independence flag, and it reads
// one frame, ignoring anything after it; a section holding more would mean different
// records to a Java consumer than to us, so it is refused. Skippable and legacy frames,
// which Kafka refuses, fail the magic check.
func checkLz4Frame(src []byte) error {
	const descriptorSize = 7 // magic, FLG, BD, header checksum
	if len(src) < descriptorSize || binary.LittleEndian.Uint32(src) != lz4Magic {
		return errors.New("not an lz4 frame")
	}
	flg := src[4]
	switch {
	case flg&lz4FlagVersionMask != lz4FlagVersion1:
		return fmt.Errorf("lz4 frame version bits %#x", flg&lz4FlagVersionMask)
	case flg&lz4FlagReserved != 0:
		return fmt.Errorf("lz4 frame flags %#x: dictionary or reserved bit set", flg)
	case flg&lz4FlagIndependent == 0:
		return errors.New("lz4 frame with dependent blocks, which Kafka refuses")
	}
	pos := descriptorSize
	if flg&lz4FlagContentSize != 0 {
		pos += 8
	}
	// Each block takes at least four bytes, which bounds the loop.
	for {
		if len(src)-pos < 4 {
			return errors.New("lz4 frame cut before its end mark")
		}
		size := int(binary.LittleEndian.Uint32(src[pos:]) &^ lz4UncompressedBlock)
		pos += 4
		if size == 0 {
			break
		}
		if size > len(src)-pos {
			return fmt.Errorf("lz4 block of %d bytes with %d left", size, len(src)-pos)
		}
		pos += size
		if flg&lz4FlagBlockCheck != 0 {
			pos += 4
		}
	}
	if flg&lz4FlagContentCheck != 0 {
		pos += 4
	}
	if pos != len(src) {
		return fmt.Errorf("lz4 frame ends at %d of %d bytes", pos, len(src))
	}
	return nil
}

func (v *Validator) unzstd(src []byte) ([]byte, error) {
	if v.zstd == nil {
		// With concurrency 1 and no reader, DecodeAll runs on the caller's goroutine.
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxDecompressedBytes))
		if err != nil {
			panic(fmt.Sprintf("record: zstd options rejected: %v", err))
		}
		v.zstd = d
	}
	return v.zstd.DecodeAll(src, v.buf[:0])
}

// unsnappy appends src decoded to dst. src is either one raw snappy block or, when it
// opens with xerialMagic, the xerial framing: a 16-byte header and then blocks of an
// int32 length and a raw snappy block. Blocks are decoded strictly, as the Java broker's
// C++ decoder does, refusing the s2 extensions.
func unsnappy(dst, src []byte) ([]byte, error) {
	if len(src) < len(xerialMagic) || string(src[:len(xerialMagic)]) != xerialMagic {
		n, err := snappyDecodedLen(src, MaxDecompressedBytes-len(dst))
		if err != nil {
			return dst, err
		}
		return appendSnappyBlock(dst, src, n)
	}
	// Sum the blocks' decoded lengths first, so that dst grows once and a stream over
	// the limit is refused before anything is decoded.
	total := 0
	err := walkXerial(src, func(block []byte) error {
		n, err := snappyDecodedLen(block, MaxDecompressedBytes-len(dst)-total)
		total += n
		return err
	})
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, total)
	err = walkXerial(src, func(block []byte) error {
		n, err := snappy.DecodedLen(block)
		if err == nil {
			dst, err = appendSnappyBlock(dst, block, n)
		}
		return err
	})
	return dst, err
}

// walkXerial checks the xerial stream src's header and framing, calling fn with each raw
// snappy block in order. It stops at fn's first error and returns it.
func walkXerial(src []byte, fn func(block []byte) error) error {
	if len(src) < xerialHeaderSize {
		return fmt.Errorf("xerial header of %d bytes", len(src))
	}
	// The Java reader refuses streams older than version 1; the compatible version
	// says which readers may read it and is not checked, as in Java.
	if version := int32(binary.BigEndian.Uint32(src[8:])); version < 1 {
		return fmt.Errorf("xerial version %d", version)
	}
	// Each block consumes at least four bytes, which bounds the loop.
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return fmt.Errorf("xerial block length cut at %d bytes", len(rest))
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(size) > uint64(len(rest)) {
			return fmt.Errorf("xerial block of %d bytes with %d left", size, len(rest))
		}
		if err := fn(rest[:size]); err != nil {
			return err
		}
		rest = rest[size:]
	}
	return nil
}

// snappyDecodedLen returns the decoded length a raw snappy block claims, refusing a claim
// over limit bytes or beyond what the block's size can encode.
func snappyDecodedLen(block []byte, limit int) (int, error) {
	n, err := snappy.DecodedLen(block)
	switch {
	case err != nil:
		return 0, err
	case n > limit:
		return 0, errTooLarge
	case n > maxSnappyExpansion*len(block):
		return 0, fmt.Errorf("snappy block of %d bytes claims %d decoded", len(block), n)
	}
	return n, nil
}

// appendSnappyBlock appends the raw snappy block, whose decoded length is n, to dst.
func appendSnappyBlock(dst, block []byte, n int) ([]byte, error) {
	dst = slices.Grow(dst, n)
	if _, err := snappy.DecodeStrict(dst[len(dst):len(dst)+n], block); err != nil {
		return dst, err
	}
	return dst[:len(dst)+n], nil
}

// readAtMost appends r's bytes up to EOF to dst, failing with errTooLarge once more than
// limit bytes have come.
func readAtMost(dst []byte, r io.Reader, limit int) ([]byte, error) {
	start := len(dst)
	stalls := 0
	for {
		if len(dst) == cap(dst) {
			// Double: append's 1.25x growth for large slices copies a 64 MiB output
			// several times over.
			dst = slices.Grow(dst, max(cap(dst), minReadBytes))
		}
		room := dst[len(dst):cap(dst)]
		if left := limit + 1 - (len(dst) - start); len(room) > left {
			room = room[:left] // one byte past the limit is enough to know
		}
		n, err := r.Read(room)
		dst = dst[:len(dst)+n]
		switch {
		case len(dst)-start > limit:
			return dst, errTooLarge
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return dst, err
		case n > 0:
			stalls = 0
		case stalls >= maxStalledReads:
			return dst, io.ErrNoProgress
		default:
			stalls++
		}
	}
}
