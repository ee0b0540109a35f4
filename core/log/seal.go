package log

import (
	"encoding/binary"
	"hash/crc32"
)

// A segment's .index starts with a 16-byte header, written when the segment is created and
// synced by the next SyncJob:
//
//	magic uint32 | first ordinal int64 | crc uint32 (CRC-32C of the first 12 bytes)
//
// so that the log's first ordinal is on disk even while its first segment is the active
// one (whose index entries live in memory). A seal is 20 bytes appended to a rolled
// segment's .index (after the header and the entries) once its .log is known to be durable:
//
//	magic uint32 | log size uint32 | relative end offset uint32 | batches uint32 | crc uint32
//
// where crc is the CRC-32C of the .index header and entries, then the .timeindex, then the
// seal's first 16 bytes. Open trusts a sealed segment without reading its .log: the seal was
// written only after a Sync of the .log returned, and the CRC proves the indexes whole.
// A segment without a valid seal is validated batch by batch.
//
// Why a seal rather than trusting any well-formed index: when several segments roll
// between two syncs, a crash can tear the tail of a segment that is no longer the last, and
// only a record of "this .log was synced" tells Open which segments it can skip. Nothing
// rewrites a sealed .log under the same name without first durably removing the seal
// (TruncateTo and Open sync their truncations), so a stale seal cannot vouch for new bytes.
//
// Format 1 (before ordinals) had no header, 8-byte index entries and a 16-byte seal
// (magic "SEAL" | log size | relative end offset | crc). Open still recognizes such a
// seal, to tell a segment retention deleted that a crash brought back, but rebuilds the
// segment's indexes by validating its .log, and rewrites them in the current format: the
// first Open after the upgrade reads every segment once. Ordinals of a log written in
// format 1 count from 0 at its start offset as of that Open.
const (
	idxHeaderBytes = 16
	idxHeaderMagic = 0x49445832 // "IDX2"
	sealBytes      = 20
	sealMagic      = 0x53454132 // "SEA2"

	sealV1Bytes     = 16
	sealV1Magic     = 0x5345414c // "SEAL"
	idxV1EntryBytes = 8
)

// crc32c is the CRC-32C (Castagnoli) table. It is built once and never written again.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// idxHeader returns the .index header of s.
func (s *segment) idxHeader() []byte {
	b := make([]byte, idxHeaderBytes)
	binary.BigEndian.PutUint32(b[0:], idxHeaderMagic)
	binary.BigEndian.PutUint64(b[4:], uint64(s.firstOrd))
	binary.BigEndian.PutUint32(b[12:], crc32.Checksum(b[:12], crc32c))
	return b
}

// parseIdxHeader returns the first ordinal a .index file starting with b records.
func parseIdxHeader(b []byte) (int64, bool) {
	be := binary.BigEndian
	if len(b) < idxHeaderBytes || be.Uint32(b) != idxHeaderMagic ||
		be.Uint32(b[12:]) != crc32.Checksum(b[:12], crc32c) || int64(be.Uint64(b[4:])) < 0 {
		return 0, false
	}
	return int64(be.Uint64(b[4:])), true
}

// seal returns the seal of s as it is now.
func (s *segment) seal() []byte {
	b := make([]byte, sealBytes)
	binary.BigEndian.PutUint32(b[0:], sealMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(s.size))
	binary.BigEndian.PutUint32(b[8:], uint32(s.end-s.base))
	binary.BigEndian.PutUint32(b[12:], uint32(s.batches))
	c := crc32.Update(0, crc32c, s.idxHeader())
	binary.BigEndian.PutUint32(b[16:], sealCRC(c, s.idxBuf, s.tidxBuf, b[:16]))
	return b
}

func sealCRC(c uint32, idx, tidx, head []byte) uint32 {
	c = crc32.Update(c, crc32c, idx)
	c = crc32.Update(c, crc32c, tidx)
	return crc32.Update(c, crc32c, head)
}

// loadSealed sets s's indexes, end, batch count, first ordinal and max timestamp from the
// contents of its .index and .timeindex files when they carry a header and end with a
// valid seal for a .log of s.size bytes. It reports whether they did; s is unchanged when
// not.
func (s *segment) loadSealed(idx, tidx []byte) bool {
	if len(idx) < idxHeaderBytes+sealBytes || (len(idx)-idxHeaderBytes-sealBytes)%idxEntryBytes != 0 ||
		len(tidx) == 0 || len(tidx)%tidxEntryBytes != 0 {
		return false
	}
	firstOrd, ok := parseIdxHeader(idx)
	if !ok {
		return false
	}
	entries, seal := idx[idxHeaderBytes:len(idx)-sealBytes], idx[len(idx)-sealBytes:]
	be := binary.BigEndian
	relEnd := int64(be.Uint32(seal[8:]))
	batches := int64(be.Uint32(seal[12:]))
	c := crc32.Update(0, crc32c, idx[:idxHeaderBytes])
	if be.Uint32(seal) != sealMagic || int64(be.Uint32(seal[4:])) != s.size || s.size == 0 ||
		relEnd == 0 || batches == 0 || batches > relEnd || be.Uint32(seal[16:]) != sealCRC(c, entries, tidx, seal[:16]) {
		return false
	}
	t := segment{base: s.base, size: s.size, batches: batches, idxBuf: entries, tidxBuf: tidx}
	if !t.checkIndexes(relEnd) {
		return false
	}
	s.idxBuf, s.tidxBuf = entries[:len(entries):len(entries)], tidx
	s.end = s.base + relEnd
	s.batches, s.firstOrd = batches, firstOrd
	s.maxTs, s.lastRel = s.tidxEntry(s.tidxEntries() - 1)
	s.sinceIndex = s.size
	if n := s.idxEntries(); n > 0 {
		_, pos := s.idxEntry(n - 1)
		s.sinceIndex = s.size - int64(pos)
	}
	return true
}

// sealedV1 reports whether idx and tidx end with a valid format-1 seal for a .log of size
// bytes (the checks of format 1's loadSealed, less the index invariants).
func sealedV1(idx, tidx []byte, size int64) bool {
	if len(idx) < sealV1Bytes || (len(idx)-sealV1Bytes)%idxV1EntryBytes != 0 ||
		len(tidx) == 0 || len(tidx)%tidxEntryBytes != 0 {
		return false
	}
	entries, seal := idx[:len(idx)-sealV1Bytes], idx[len(idx)-sealV1Bytes:]
	be := binary.BigEndian
	return be.Uint32(seal) == sealV1Magic && int64(be.Uint32(seal[4:])) == size && size != 0 &&
		be.Uint32(seal[8:]) != 0 && be.Uint32(seal[12:]) == sealCRC(0, entries, tidx, seal[:12])
}
