package log

import (
	"encoding/binary"
	"hash/crc32"
)

// A seal is 16 bytes appended to a rolled segment's .index once its .log is known to be
// durable:
//
//	magic uint32 | log size uint32 | relative end offset uint32 | crc uint32
//
// where crc is the CRC-32C of the .index entries, then the .timeindex, then the seal's
// first 12 bytes. Open trusts a sealed segment without reading its .log: the seal was
// written only after a Sync of the .log returned, and the CRC proves the indexes whole.
// A segment without a valid seal is validated batch by batch.
//
// Why a seal rather than trusting any well-formed index: when several segments roll
// between two syncs, a crash can tear the tail of a segment that is no longer the last, and
// only a record of "this .log was synced" tells Open which segments it can skip. Nothing
// rewrites a sealed .log under the same name without first durably removing the seal
// (TruncateTo and Open sync their truncations), so a stale seal cannot vouch for new bytes.
const (
	sealBytes = 16
	sealMagic = 0x5345414c // "SEAL"
)

// crc32c is the CRC-32C (Castagnoli) table. It is built once and never written again.
var crc32c = crc32.MakeTable(crc32.Castagnoli)

// seal returns the seal of s as it is now.
func (s *segment) seal() []byte {
	b := make([]byte, sealBytes)
	binary.BigEndian.PutUint32(b[0:], sealMagic)
	binary.BigEndian.PutUint32(b[4:], uint32(s.size))
	binary.BigEndian.PutUint32(b[8:], uint32(s.end-s.base))
	binary.BigEndian.PutUint32(b[12:], sealCRC(s.idxBuf, s.tidxBuf, b[:12]))
	return b
}

func sealCRC(idx, tidx, head []byte) uint32 {
	c := crc32.Update(0, crc32c, idx)
	c = crc32.Update(c, crc32c, tidx)
	return crc32.Update(c, crc32c, head)
}

// loadSealed sets s's indexes, end and max timestamp from the contents of its .index and
// .timeindex files when they end with a valid seal for a .log of s.size bytes. It reports
// whether they did; s is unchanged when not.
func (s *segment) loadSealed(idx, tidx []byte) bool {
	if len(idx) < sealBytes || (len(idx)-sealBytes)%idxEntryBytes != 0 ||
		len(tidx) == 0 || len(tidx)%tidxEntryBytes != 0 {
		return false
	}
	entries, seal := idx[:len(idx)-sealBytes], idx[len(idx)-sealBytes:]
	be := binary.BigEndian
	relEnd := int64(be.Uint32(seal[8:]))
	if be.Uint32(seal) != sealMagic || int64(be.Uint32(seal[4:])) != s.size || s.size == 0 ||
		relEnd == 0 || be.Uint32(seal[12:]) != sealCRC(entries, tidx, seal[:12]) {
		return false
	}
	t := segment{base: s.base, size: s.size, idxBuf: entries, tidxBuf: tidx}
	if !t.checkIndexes(relEnd) {
		return false
	}
	s.idxBuf, s.tidxBuf = entries[:len(entries):len(entries)], tidx
	s.end = s.base + relEnd
	s.maxTs, s.lastRel = s.tidxEntry(s.tidxEntries() - 1)
	s.sinceIndex = s.size
	if n := s.idxEntries(); n > 0 {
		_, pos := s.idxEntry(n - 1)
		s.sinceIndex = s.size - int64(pos)
	}
	return true
}
