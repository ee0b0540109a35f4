package producer

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The snapshot encoding, version 1, all integers big-endian:
//
//	version   uint8 = 1
//	count     uint32, <= MaxProducers
//	count times, ids strictly increasing:
//	  id            int64, >= 0
//	  epoch         int16
//	  lastTimestamp int64
//	  batches       uint8, 1..MaxCachedBatches
//	  batches times, oldest first:
//	    firstSeq, lastSeq       int32
//	    firstOffset, lastOffset int64
//	crc       uint32, CRC-32C of every byte before it
//
// Every version keeps the version byte first and the CRC last, so a reader checks the CRC
// before it reads the version. One State has exactly one encoding (producers sorted by id,
// fixed-width fields), so replicas with equal states write equal bytes.
const (
	snapshotVersion   = 1
	snapshotHeadLen   = 1 + 4
	snapshotTailLen   = 4
	snapshotEntryLen  = 8 + 2 + 8 + 1
	snapshotBatchLen  = 4 + 4 + 8 + 8
	snapshotMinLength = snapshotHeadLen + snapshotTailLen
)

// Errors UnmarshalBinary returns.
var (
	// ErrCorrupt marks bytes that are not a snapshot this package wrote: a bad checksum,
	// a truncated or overlong body, or a field outside its invariant.
	ErrCorrupt = errors.New("producer: snapshot corrupt")
	// ErrUnsupportedVersion marks a well-formed snapshot of a version this build cannot
	// read (written by a newer one).
	ErrUnsupportedVersion = errors.New("producer: unsupported snapshot version")
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes s for a Raft snapshot or a checkpoint file (encoding.BinaryMarshaler).
// The error is always nil.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the encoding of s to b (encoding.BinaryAppender). The error is always
// nil.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, snapshotVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.byID)))
	for _, id := range s.sortedIDs() {
		e := s.byID[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastTimestamp))
		b = append(b, uint8(len(e.batches)))
		for _, bt := range e.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(bt.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(bt.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.lastOffset))
		}
	}
	return appendCRC(b, start), nil
}

// appendCRC appends the CRC-32C of b[start:] to b.
func appendCRC(b []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], crc32c))
}

// UnmarshalBinary replaces the contents of s with the state encoded in b
// (encoding.BinaryUnmarshaler); it works on a zero State, which it gives the MaxProducers
// bound. On error s is unchanged. s does not retain b.
func (s *State) UnmarshalBinary(b []byte) error {
	if s.maxProducers == 0 {
		s.maxProducers = MaxProducers
	}
	byAge, err := decode(b, s.maxProducers)
	if err != nil {
		return err
	}
	s.byID = make(map[int64]*entry, len(byAge))
	for _, e := range byAge {
		s.byID[e.id] = e
	}
	heap.Init(&byAge)
	s.byAge = byAge
	return nil
}

// Decode returns the State encoded in b by MarshalBinary.
func Decode(b []byte) (*State, error) {
	s := New()
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return s, nil
}

// decode returns the entries encoded in b, in id order, their age set to their index.
func decode(b []byte, maxProducers int) (ageHeap, error) {
	if len(b) < snapshotMinLength {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	body := b[:len(b)-snapshotTailLen]
	if got, want := crc32.Checksum(body, crc32c), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return nil, fmt.Errorf("%w: crc %#x, want %#x", ErrCorrupt, got, want)
	}
	if body[0] != snapshotVersion {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, body[0])
	}
	count := binary.BigEndian.Uint32(body[1:])
	if uint64(count) > uint64(maxProducers) {
		return nil, fmt.Errorf("%w: %d producers, more than %d", ErrCorrupt, count, maxProducers)
	}
	r := body[snapshotHeadLen:]
	if uint64(len(r)) < uint64(count)*(snapshotEntryLen+snapshotBatchLen) {
		return nil, fmt.Errorf("%w: %d producers in %d bytes", ErrCorrupt, count, len(r))
	}
	entries := make(ageHeap, 0, count)
	prev := int64(-1)
	for i := uint32(0); i < count; i++ {
		if len(r) < snapshotEntryLen {
			return nil, fmt.Errorf("%w: producer %d truncated", ErrCorrupt, i)
		}
		id := int64(binary.BigEndian.Uint64(r))
		e := &entry{
			id:            id,
			age:           len(entries),
			epoch:         int16(binary.BigEndian.Uint16(r[8:])),
			lastTimestamp: int64(binary.BigEndian.Uint64(r[10:])),
		}
		n := int(r[18])
		r = r[snapshotEntryLen:]
		if id <= prev {
			return nil, fmt.Errorf("%w: producer id %d after %d", ErrCorrupt, id, prev)
		}
		if n < 1 || n > MaxCachedBatches {
			return nil, fmt.Errorf("%w: producer %d with %d batches", ErrCorrupt, id, n)
		}
		if len(r) < n*snapshotBatchLen {
			return nil, fmt.Errorf("%w: producer %d batches truncated", ErrCorrupt, id)
		}
		e.batches = make([]batch, n, MaxCachedBatches)
		for j := range e.batches {
			e.batches[j] = batch{
				firstSeq:    int32(binary.BigEndian.Uint32(r)),
				lastSeq:     int32(binary.BigEndian.Uint32(r[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(r[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(r[16:])),
			}
			r = r[snapshotBatchLen:]
		}
		entries = append(entries, e)
		prev = id
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after %d producers", ErrCorrupt, len(r), count)
	}
	return entries, nil
}
