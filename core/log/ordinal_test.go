package log

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"chronik/core/record"
	"chronik/disk"
)

// TestOrdinals: batch ordinals both ways across segment rolls, sparse index entries and
// the walk between them, after a clean reopen (sealed segments trusted), a crash, a
// truncation and retention.
func TestOrdinals(t *testing.T) {
	fs := disk.NewMem()
	tl := newTestLog(t, fs, Config{SegmentBytes: 600, IndexIntervalBytes: 150, RetentionBytes: 1})
	// 12 batches of 1-3 records, ~100-200 bytes each: several per segment, some indexed.
	for k := range 12 {
		tl.append(int64(k), spec(1+k%3, 40+10*(k%5), int64(k)))
	}
	tl.syncAll()
	if len(tl.l.segs) < 3 {
		t.Fatalf("%d segments, want several", len(tl.l.segs))
	}
	check := func(what string, startOrd int64) {
		t.Helper()
		l := tl.l
		first := 0 // the model batch at StartOffset
		for tl.model[first].first < l.StartOffset() {
			first++
		}
		if l.StartOrdinal() != startOrd || l.EndOrdinal() != int64(len(tl.model)) {
			t.Fatalf("%s: ordinals [%d, %d), want [%d, %d)", what, l.StartOrdinal(), l.EndOrdinal(), startOrd, len(tl.model))
		}
		for k := first; k < len(tl.model); k++ {
			b := tl.model[k]
			if off, err := l.OffsetOfOrdinal(int64(k)); err != nil || off != b.first {
				t.Fatalf("%s: OffsetOfOrdinal(%d) = %d, %v; want %d", what, k, off, err, b.first)
			}
			for off := b.first; off <= b.last; off++ {
				if ord, err := l.OrdinalOfOffset(off); err != nil || ord != int64(k) {
					t.Fatalf("%s: OrdinalOfOffset(%d) = %d, %v; want %d", what, off, ord, err, k)
				}
			}
		}
		for _, tc := range []struct {
			ord     int64
			wantOff int64
			wantErr error
		}{
			{startOrd - 1, 0, ErrOrdinalOutOfRange},
			{int64(len(tl.model)), l.EndOffset(), nil},
			{int64(len(tl.model)) + 1, 0, ErrOrdinalOutOfRange},
		} {
			off, err := l.OffsetOfOrdinal(tc.ord)
			if !errors.Is(err, tc.wantErr) || err == nil && off != tc.wantOff {
				t.Fatalf("%s: OffsetOfOrdinal(%d) = %d, %v; want %d, %v", what, tc.ord, off, err, tc.wantOff, tc.wantErr)
			}
		}
		if _, err := l.OrdinalOfOffset(l.EndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("%s: OrdinalOfOffset past the end: %v", what, err)
		}
		// ReadOrdinals: whole batches, stopping before to.
		for _, tc := range []struct{ from, to int64 }{
			{startOrd, startOrd + 1}, {startOrd + 1, startOrd + 3}, {startOrd, math.MaxInt64},
			{int64(len(tl.model)) - 1, int64(len(tl.model))}, {int64(len(tl.model)), int64(len(tl.model)) + 5},
		} {
			got, err := l.ReadOrdinals(tc.from, tc.to, 10000)
			if err != nil {
				t.Fatalf("%s: ReadOrdinals(%d, %d): %v", what, tc.from, tc.to, err)
			}
			k := tc.from
			for len(got) > 0 {
				if k >= min(tc.to, int64(len(tl.model))) || string(got[:len(tl.model[k].bytes)]) != string(tl.model[k].bytes) {
					t.Fatalf("%s: ReadOrdinals(%d, %d): batch %d differs", what, tc.from, tc.to, k)
				}
				got = got[len(tl.model[k].bytes):]
				k++
			}
			if k == tc.from && tc.from < int64(len(tl.model)) {
				t.Fatalf("%s: ReadOrdinals(%d, %d) returned nothing", what, tc.from, tc.to)
			}
		}
	}
	check("appended", 0)
	tl.reopen(100)
	check("reopened", 0)

	// A power cut after everything was synced: the same ordinals.
	tl.fs = fs.CrashClone(nil, disk.CrashOptions{})
	tl.l = nil
	tl.reopen(100)
	check("after crash", 0)

	// Truncation keeps the ordinals of what remains; appends go on from there.
	cut := tl.model[7].first
	if err := tl.l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	tl.model = tl.model[:7]
	check("truncated", 0)
	tl.append(200, spec(2, 30, 200))
	tl.syncAll()
	check("appended after truncation", 0)
	tl.reopen(200)
	check("reopened after truncation", 0)

	// Retention moves the start ordinal with the start offset, durably. (The first call
	// queues the seals Open found for a sync; the second deletes.)
	for range 2 {
		if err := tl.l.EnforceRetention(300); err != nil {
			t.Fatal(err)
		}
		tl.syncAll()
	}
	start := tl.l.StartOrdinal()
	if start == 0 {
		t.Fatal("retention deleted nothing")
	}
	check("after retention", start)
	tl.fs = tl.fs.(*disk.MemFS).CrashClone(nil, disk.CrashOptions{})
	tl.l = nil
	tl.reopen(300)
	check("after retention and a crash", start)
}

// writeV1Segment writes a sealed format-1 segment (seal.go) at base holding batches, with
// no offset index entries and one time index entry.
func writeV1Segment(t *testing.T, fs FS, base int64, batches ...[]byte) int64 {
	t.Helper()
	var data []byte
	off := base
	maxTs := int64(math.MinInt64)
	var lastRel uint32
	for _, b := range batches {
		record.SetBaseOffset(b, off)
		h, err := record.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		lastRel = uint32(off - base)
		maxTs = max(maxTs, h.MaxTimestamp)
		off = h.LastOffset() + 1
		data = append(data, b...)
	}
	tidx := appendTidxEntry(nil, maxTs, lastRel)
	seal := make([]byte, sealV1Bytes)
	binary.BigEndian.PutUint32(seal[0:], sealV1Magic)
	binary.BigEndian.PutUint32(seal[4:], uint32(len(data)))
	binary.BigEndian.PutUint32(seal[8:], uint32(off-base))
	c := crc32.Update(0, crc32c, tidx)
	binary.BigEndian.PutUint32(seal[12:], crc32.Update(c, crc32c, seal[:12]))
	writeFile(t, fs, segmentName(testDir, base, logSuffix), data)
	writeFile(t, fs, segmentName(testDir, base, indexSuffix), seal)
	writeFile(t, fs, segmentName(testDir, base, timeIndexSuffix), tidx)
	return off
}

// TestFormat1Segments: a log written before ordinals (format 1, seal.go) opens with
// ordinals from 0 at its start, its indexes rewritten in the current format; a format-1
// sealed segment that retention deleted and a crash brought back is still recognized.
func TestFormat1Segments(t *testing.T) {
	t.Run("upgrade", func(t *testing.T) {
		fs := disk.NewMem()
		if err := fs.MkdirAll(testDir); err != nil {
			t.Fatal(err)
		}
		end := writeV1Segment(t, fs, 0, makeBatch(spec(2, 10, 1)), makeBatch(spec(3, 10, 2)))
		active := makeBatch(spec(1, 10, 3))
		record.SetBaseOffset(active, end)
		writeFile(t, fs, segmentName(testDir, end, logSuffix), active)
		writeFile(t, fs, segmentName(testDir, end, indexSuffix), nil)
		writeFile(t, fs, segmentName(testDir, end, timeIndexSuffix), nil)
		l, err := Open(fs, testDir, Config{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != 0 || l.EndOffset() != 6 || l.StartOrdinal() != 0 || l.EndOrdinal() != 3 {
			t.Fatalf("offsets [%d, %d) ordinals [%d, %d)", l.StartOffset(), l.EndOffset(), l.StartOrdinal(), l.EndOrdinal())
		}
		for _, tc := range []struct{ off, ord int64 }{{0, 0}, {1, 0}, {2, 1}, {4, 1}, {5, 2}, {6, 3}} {
			if ord, err := l.OrdinalOfOffset(tc.off); err != nil || ord != tc.ord {
				t.Fatalf("OrdinalOfOffset(%d) = %d, %v; want %d", tc.off, ord, err, tc.ord)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		s := newSegment(0)
		s.size = int64(len(readFile(t, fs, segmentName(testDir, 0, logSuffix))))
		if !s.loadSealed(readFile(t, fs, segmentName(testDir, 0, indexSuffix)), readFile(t, fs, segmentName(testDir, 0, timeIndexSuffix))) ||
			s.batches != 2 || s.firstOrd != 0 || s.end != 5 {
			t.Fatalf("segment 0 not resealed in the current format: %+v", s)
		}
		if ord, ok := parseIdxHeader(readFile(t, fs, segmentName(testDir, end, indexSuffix))); !ok || ord != 2 {
			t.Fatalf("active segment header: %d %v", ord, ok)
		}
	})
	t.Run("retention leftover", func(t *testing.T) {
		fs := disk.NewMem()
		if err := fs.MkdirAll(testDir); err != nil {
			t.Fatal(err)
		}
		writeV1Segment(t, fs, 0, makeBatch(spec(2, 10, 1)))
		active := makeBatch(spec(1, 10, 3))
		record.SetBaseOffset(active, 9)
		writeFile(t, fs, segmentName(testDir, 9, logSuffix), active)
		l, err := Open(fs, testDir, Config{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != 9 || l.EndOffset() != 10 || l.StartOrdinal() != 0 || l.EndOrdinal() != 1 {
			t.Fatalf("offsets [%d, %d) ordinals [%d, %d)", l.StartOffset(), l.EndOffset(), l.StartOrdinal(), l.EndOrdinal())
		}
	})
}
