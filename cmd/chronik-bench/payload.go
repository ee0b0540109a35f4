package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record value is self-describing so that the consumer can verify it without the
// producer's help:
//
//	[0:4]   producer id, big endian
//	[4:12]  sequence within that producer, big endian, from 0
//	[12:16] CRC-32C of value[0:12] followed by value[16:]
//	[16:]   filler: a splitmix64 stream seeded by (producer id, sequence)
//
// The filler differs per record, so a record copied to the wrong place or torn in the
// middle fails its checksum.
const (
	payloadHeaderBytes = 16
	// minPayloadBytes is the smallest value that holds the header.
	minPayloadBytes = payloadHeaderBytes
	// maxPayloadBytes bounds -sizes: one record must fit kgo's default batch (1000012).
	maxPayloadBytes = 900 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errPayload = errors.New("bench: bad payload")

// encodePayload fills v, which the caller owns, with the record of producer id at seq.
func encodePayload(v []byte, id uint32, seq uint64) {
	if len(v) < minPayloadBytes {
		panic(fmt.Sprintf("bench: payload of %d bytes is below the %d-byte header", len(v), minPayloadBytes))
	}
	binary.BigEndian.PutUint32(v[0:4], id)
	binary.BigEndian.PutUint64(v[4:12], seq)
	fillSplitMix(v[payloadHeaderBytes:], uint64(id)<<40^seq)
	binary.BigEndian.PutUint32(v[12:16], payloadChecksum(v))
}

// decodePayload returns the producer id and sequence of v after checking its length and
// checksum.
func decodePayload(v []byte, wantLen int) (id uint32, seq uint64, err error) {
	if len(v) != wantLen {
		return 0, 0, fmt.Errorf("%w: %d bytes, want %d", errPayload, len(v), wantLen)
	}
	if got, want := binary.BigEndian.Uint32(v[12:16]), payloadChecksum(v); got != want {
		return 0, 0, fmt.Errorf("%w: checksum %08x, computed %08x", errPayload, got, want)
	}
	return binary.BigEndian.Uint32(v[0:4]), binary.BigEndian.Uint64(v[4:12]), nil
}

func payloadChecksum(v []byte) uint32 {
	c := crc32.Update(0, castagnoli, v[0:12])
	return crc32.Update(c, castagnoli, v[payloadHeaderBytes:])
}

// fillSplitMix fills b with the splitmix64 stream from seed.
func fillSplitMix(b []byte, seed uint64) {
	x := seed
	for len(b) > 0 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		if len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, z)
			b = b[8:]
			continue
		}
		for i := range b {
			b[i] = byte(z >> (8 * i))
		}
		b = nil
	}
}
