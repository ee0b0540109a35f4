// Package loadrec is the self-checking record that chronik-load writes and chronik-verify
// reads back. A record value says which producer wrote it, at which sequence, how long it
// is, and carries a checksum over everything else, so a reader can verify each record
// alone, without the writer's help.
//
// # Byte layout
//
// A value is printable ASCII, so it travels unchanged as a JSON string through the HTTP
// ingestor and is readable with kcat. Every field has a fixed width; hex digits are
// lower case; the separators are single spaces (0x20):
//
//	offset  bytes  field
//	0       4      magic "clr1" (chronik load record, version 1)
//	4       1      ' '
//	5       16     producer id, uint64, hex
//	21      1      ' '
//	22      16     sequence within that producer, uint64, hex, from 0
//	38      1      ' '
//	39      8      total value length in bytes, uint32, hex
//	47      1      ' '
//	48      8      CRC-32C (Castagnoli) of value[0:48] followed by value[56:], hex
//	56      1      ' '
//	57      ...    filler: base64url characters from a splitmix64 stream seeded by
//	               (producer id, sequence)
//
// ExampleEncode shows a whole record. HeaderBytes (57) is the smallest value. The filler differs per record, so a record
// copied into another's place, torn, or truncated fails its checksum or its length.
//
// # Key
//
// A record's key is Key(producer id): the 16 hex digits of the id. Keying by producer
// sends all of a producer's records to one partition, where their order is kept.
//
// # The writer's duties
//
//  1. Give each writer (a chronik-load virtual user) its own producer id, unique across
//     runs and processes: ProducerID(run, writer) puts a per-run id in the high 32 bits.
//  2. Number a producer's records 0, 1, 2, ... in the order they are sent, and send them
//     in that order with Key(id), one batch at a time (the next batch only after the
//     previous one is answered).
//  3. Never reuse a sequence. A batch that fails is not retried with the same numbers:
//     its sequences stay a gap, and the writer reports them as failed. A batch that timed
//     out may still have been written; the writer reports it as failed all the same.
//
// So a reader that sees a producer's records in one partition may expect strictly
// increasing sequences: a repeated sequence is a duplicate, a smaller one is out of
// order, and a missing one was lost unless the writer reported it failed.
package loadrec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Field offsets and sizes of the layout in the package doc.
const (
	magic        = "clr1"
	producerAt   = 5
	seqAt        = 22
	lengthAt     = 39
	checksumAt   = 48
	checksumEnd  = 56
	fillerAt     = 57
	hexDigits    = "0123456789abcdef"
	fillerDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

const (
	// HeaderBytes is the size of the fixed header, and so the smallest record value.
	HeaderBytes = fillerAt
	// MaxBytes is the largest record value Encode writes: it fits franz-go's default
	// batch limit (1000012 bytes) and the broker's default max.message.bytes.
	MaxBytes = 900 << 10
	// KeyBytes is the size of Key's result.
	KeyBytes = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrForeign marks a value that does not start with the magic: not a load record.
	ErrForeign = errors.New("loadrec: not a load record")
	// ErrCorrupt marks a value that starts with the magic but fails its length, its
	// checksum or its syntax.
	ErrCorrupt = errors.New("loadrec: corrupt record")
)

// Record is what a value says about itself.
type Record struct {
	// Producer is the id of the writer.
	Producer uint64
	// Seq is the record's sequence within Producer, from 0.
	Seq uint64
	// Bytes is the value's length, header included.
	Bytes int
}

// ProducerID is the producer id of writer number writer in the run with id run.
func ProducerID(run, writer uint32) uint64 { return uint64(run)<<32 | uint64(writer) }

// Encode fills v, which the caller owns, with the record of producer id at seq. It
// panics when len(v) is outside [HeaderBytes, MaxBytes]: sizes are checked when flags
// are parsed.
func Encode(v []byte, id, seq uint64) {
	if len(v) < HeaderBytes || len(v) > MaxBytes {
		panic(fmt.Sprintf("loadrec: value of %d bytes outside [%d, %d]", len(v), HeaderBytes, MaxBytes))
	}
	copy(v, magic)
	v[4], v[21], v[38], v[47], v[56] = ' ', ' ', ' ', ' ', ' '
	putHex(v[producerAt:seqAt-1], id)
	putHex(v[seqAt:lengthAt-1], seq)
	putHex(v[lengthAt:checksumAt-1], uint64(len(v)))
	fill(v[fillerAt:], id*0x9e3779b97f4a7c15^seq)
	putHex(v[checksumAt:checksumEnd], uint64(checksum(v)))
}

// Append appends the size-byte record of producer id at seq to dst and returns the
// extended slice.
func Append(dst []byte, id, seq uint64, size int) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, size)...)
	Encode(dst[n:], id, seq)
	return dst
}

// Decode checks v and returns what it says about itself. The error wraps ErrForeign when
// v is not a load record and ErrCorrupt when it is one but damaged. Decode does not
// retain v.
func Decode(v []byte) (Record, error) {
	if len(v) < len(magic) || string(v[:len(magic)]) != magic {
		return Record{}, ErrForeign
	}
	if len(v) < HeaderBytes {
		return Record{}, fmt.Errorf("%w: %d bytes, below the %d-byte header", ErrCorrupt, len(v), HeaderBytes)
	}
	if v[4] != ' ' || v[21] != ' ' || v[38] != ' ' || v[47] != ' ' || v[56] != ' ' {
		return Record{}, fmt.Errorf("%w: separators", ErrCorrupt)
	}
	id, ok1 := parseHex(v[producerAt : seqAt-1])
	seq, ok2 := parseHex(v[seqAt : lengthAt-1])
	n, ok3 := parseHex(v[lengthAt : checksumAt-1])
	sum, ok4 := parseHex(v[checksumAt:checksumEnd])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return Record{}, fmt.Errorf("%w: header is not hex", ErrCorrupt)
	}
	if n != uint64(len(v)) {
		return Record{}, fmt.Errorf("%w: producer %x seq %d: %d bytes, header says %d", ErrCorrupt, id, seq, len(v), n)
	}
	if got := uint64(checksum(v)); got != sum {
		return Record{}, fmt.Errorf("%w: producer %x seq %d: checksum %08x, computed %08x", ErrCorrupt, id, seq, sum, got)
	}
	return Record{Producer: id, Seq: seq, Bytes: len(v)}, nil
}

// Key is the record key of producer id: its 16 hex digits.
func Key(id uint64) []byte {
	k := make([]byte, KeyBytes)
	putHex(k, id)
	return k
}

// checksum is the CRC-32C of v without its checksum field.
func checksum(v []byte) uint32 {
	c := crc32.Update(0, castagnoli, v[:checksumAt])
	return crc32.Update(c, castagnoli, v[checksumEnd:])
}

// putHex writes x into b as len(b) hex digits, most significant first.
func putHex(b []byte, x uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[x&0xf]
		x >>= 4
	}
}

// parseHex reads b as lower-case hex; ok is false on any other byte.
func parseHex(b []byte) (x uint64, ok bool) {
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, false
		}
		x = x<<4 | uint64(d)
	}
	return x, true
}

// fill writes the splitmix64 stream from seed into b as base64url characters, one per
// six bits.
func fill(b []byte, seed uint64) {
	x := seed
	var word [8]byte
	for len(b) > 0 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		binary.LittleEndian.PutUint64(word[:], z)
		n := copy(b, word[:])
		for i := range n {
			b[i] = fillerDigits[b[i]&63]
		}
		b = b[n:]
	}
}
