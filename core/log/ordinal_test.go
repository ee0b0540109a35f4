package log

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
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

// TestResetTo: ResetTo empties the log and restarts it at any offset and ordinal, below,
// at or above the old end (a reused segment name included), with a SyncJob outstanding or
// not; appends go on from there; it survives a reopen and a power cut.
func TestResetTo(t *testing.T) {
	for _, tc := range []struct {
		name        string
		offset, ord int64
		jobOpen     bool
	}{
		{"above the end", 1000, 77, false},
		{"at offset 0, the old first segment's name", 0, 5, false},
		{"inside the old log", 4, 0, false},
		{"at the end, job outstanding", 9, 3, true},
		{"above the end, job outstanding", 50, 50, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := disk.NewMem()
			tl := newTestLog(t, fs, Config{SegmentBytes: 300})
			for k := range 6 {
				tl.append(int64(k), spec(1+k%2, 60, int64(k)))
			}
			tl.syncAll()
			tl.append(10, spec(2, 60, 10)) // unsynced: the old end is 11
			var j *SyncJob
			if tc.jobOpen {
				j = tl.l.PrepareSync()
			}
			l := tl.l
			if err := l.ResetTo(tc.offset, tc.ord); err != nil {
				t.Fatal(err)
			}
			if j != nil {
				l.SyncDone(j, j.Run())
			}
			if err := l.Err(); err != nil {
				t.Fatal(err)
			}
			if l.StartOffset() != tc.offset || l.EndOffset() != tc.offset || l.DurableOffset() != tc.offset ||
				l.StartOrdinal() != tc.ord || l.EndOrdinal() != tc.ord || len(l.segs) != 1 || l.Stats().Bytes != 0 {
				t.Fatalf("after reset: [%d, %d) durable %d ordinals [%d, %d) segments %d", l.StartOffset(), l.EndOffset(),
					l.DurableOffset(), l.StartOrdinal(), l.EndOrdinal(), len(l.segs))
			}
			// Durable at once: a power cut keeps the reset log.
			crashed := fs.CrashClone(nil, disk.CrashOptions{})
			c, err := Open(crashed, testDir, Config{SegmentBytes: 300}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.StartOffset() != tc.offset || c.EndOffset() != tc.offset || c.StartOrdinal() != tc.ord {
				t.Fatalf("after crash: [%d, %d) ordinal %d", c.StartOffset(), c.EndOffset(), c.StartOrdinal())
			}
			if names, _ := crashed.List(testDir); len(names) != 3 {
				t.Fatalf("files after reset and crash: %v", names)
			}
			tl.model = nil
			for k := range 4 {
				tl.append(20, spec(2, 60, int64(20+k)))
			}
			tl.syncAll()
			tl.check()
			if l.EndOrdinal() != tc.ord+4 || l.EndOffset() != tc.offset+8 {
				t.Fatalf("appended after reset: end %d, ordinal %d", l.EndOffset(), l.EndOrdinal())
			}
			tl.reopen(30)
			tl.check()
			if tl.l.StartOrdinal() != tc.ord || tl.l.EndOrdinal() != tc.ord+4 {
				t.Fatalf("reopened: ordinals [%d, %d)", tl.l.StartOrdinal(), tl.l.EndOrdinal())
			}
		})
	}
}

// TestResetInterrupted: Open finishes a committed reset whose segments were not yet
// replaced, and ignores one whose marker never made it into place.
func TestResetInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed bool
	}{{"committed", true}, {"not committed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			fs := disk.NewMem()
			tl := newTestLog(t, fs, Config{SegmentBytes: 300})
			for k := range 6 {
				tl.append(int64(k), spec(1, 60, int64(k)))
			}
			tl.syncAll()
			if err := commitReset(fs, testDir, 100, 9); err != nil {
				t.Fatal(err)
			}
			if !tc.committed {
				if err := fs.Rename(testDir+"/"+resetName, testDir+"/"+resetTmpName); err != nil {
					t.Fatal(err)
				}
			}
			tl.reopen(0)
			l := tl.l
			if tc.committed {
				if l.StartOffset() != 100 || l.EndOffset() != 100 || l.StartOrdinal() != 9 {
					t.Fatalf("[%d, %d) ordinal %d", l.StartOffset(), l.EndOffset(), l.StartOrdinal())
				}
			} else {
				tl.check()
				if l.StartOrdinal() != 0 || l.EndOrdinal() != 6 {
					t.Fatalf("ordinals [%d, %d)", l.StartOrdinal(), l.EndOrdinal())
				}
			}
			names, err := fs.List(testDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				if name == resetName || name == resetTmpName {
					t.Fatalf("%s left behind", name)
				}
			}
		})
	}
}

// TestRetentionTwoSteps: RetentionPoint names the start EnforceRetention would leave and
// changes nothing; DeleteBefore deletes whole sealed segments below an offset, never the
// active one, and keeps ordinals.
func TestRetentionTwoSteps(t *testing.T) {
	newLog := func(cfg Config) *testLog {
		cfg.SegmentBytes = 1000
		tl := newTestLog(t, disk.NewMem(), cfg)
		for i := range 40 {
			tl.append(int64(i), spec(1, 200, int64(i*1000))) // ~280-byte batches, 3 per segment
		}
		return tl
	}
	t.Run("point matches EnforceRetention", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			cfg   Config
			nowMs int64
		}{
			{"bytes", Config{RetentionBytes: 3000}, 0},
			{"time", Config{RetentionMs: 10_000}, 30_500},
			{"both", Config{RetentionBytes: 9000, RetentionMs: 10_000}, 20_500},
			{"nothing", Config{RetentionBytes: 1 << 20}, 0},
			{"everything but the active", Config{RetentionMs: 1}, 1 << 40},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a, b := newLog(tc.cfg), newLog(tc.cfg)
				a.syncAll()
				b.syncAll()
				before := a.l.Stats()
				point, ok := a.l.RetentionPoint(tc.nowMs)
				if a.l.Stats() != before || a.l.NeedsSync() {
					t.Fatal("RetentionPoint changed the log")
				}
				if err := b.l.EnforceRetention(tc.nowMs); err != nil {
					t.Fatal(err)
				}
				if point != b.l.StartOffset() || ok != (point > 0) {
					t.Fatalf("point %d, %v; EnforceRetention left %d", point, ok, b.l.StartOffset())
				}
				if err := a.l.DeleteBefore(point); err != nil || a.l.StartOffset() != point {
					t.Fatalf("DeleteBefore(%d): start %d, %v", point, a.l.StartOffset(), err)
				}
				a.check()
				if a.l.StartOrdinal() != point { // one batch of one record each
					t.Fatalf("start ordinal %d, want %d", a.l.StartOrdinal(), point)
				}
			})
		}
	})
	t.Run("delete before", func(t *testing.T) {
		tl := newLog(Config{})
		if err := tl.l.DeleteBefore(20); err != nil || tl.l.StartOffset() != 0 {
			t.Fatalf("unsealed: start %d, %v; want nothing deleted", tl.l.StartOffset(), err)
		}
		tl.syncAll()
		for _, tc := range []struct{ offset, wantStart int64 }{
			{0, 0},    // nothing below
			{2, 0},    // inside the first segment: it stays
			{3, 3},    // the first segment ends at 3
			{10, 9},   // whole segments only
			{9, 9},    // below the start now: nothing
			{1e9, 39}, // never the active segment
		} {
			if err := tl.l.DeleteBefore(tc.offset); err != nil || tl.l.StartOffset() != tc.wantStart {
				t.Fatalf("DeleteBefore(%d): start %d, %v; want %d", tc.offset, tl.l.StartOffset(), err, tc.wantStart)
			}
			if tl.l.StartOrdinal() != tc.wantStart {
				t.Fatalf("DeleteBefore(%d): start ordinal %d", tc.offset, tl.l.StartOrdinal())
			}
			tl.check()
		}
		tl.syncAll()
		tl.reopen(0)
		if tl.l.StartOffset() != 39 || tl.l.StartOrdinal() != 39 {
			t.Fatalf("reopened: start %d, ordinal %d", tl.l.StartOffset(), tl.l.StartOrdinal())
		}
	})
}

// readCountFS counts ReadAt calls on .log files, by name.
type readCountFS struct {
	FS
	reads map[string]int
}

type readCountFile struct {
	File
	name  string
	reads map[string]int
}

func (f *readCountFS) Open(name string) (File, error) {
	file, err := f.FS.Open(name)
	if err != nil || !strings.HasSuffix(name, logSuffix) {
		return file, err
	}
	return &readCountFile{File: file, name: name, reads: f.reads}, nil
}

func (f *readCountFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads[f.name]++
	return f.File.ReadAt(p, off)
}

// TestOpenReadsNoSealedLog: Open finds every ordinal without reading a sealed segment's
// .log; only the active one is validated.
func TestOpenReadsNoSealedLog(t *testing.T) {
	mem := disk.NewMem()
	tl := newTestLog(t, mem, Config{SegmentBytes: 500, IndexIntervalBytes: 100})
	for k := range 20 {
		tl.append(int64(k), spec(1+k%2, 80, int64(k)))
	}
	tl.syncAll()
	if err := tl.l.ResetTo(tl.l.EndOffset(), 1000); err != nil { // a start ordinal that is not 0
		t.Fatal(err)
	}
	tl.model = nil
	for k := range 20 {
		tl.append(int64(k), spec(1+k%2, 80, int64(k)))
	}
	tl.syncAll()
	segs := len(tl.l.segs)
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	fs := &readCountFS{FS: mem, reads: map[string]int{}}
	l, err := Open(fs, testDir, tl.cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.segs) != segs || segs < 3 || l.StartOrdinal() != 1000 || l.EndOrdinal() != 1020 {
		t.Fatalf("%d segments (want %d), ordinals [%d, %d)", len(l.segs), segs, l.StartOrdinal(), l.EndOrdinal())
	}
	active := segmentName(testDir, l.active().base, logSuffix)
	for name, n := range fs.reads {
		if name != active && n > 0 {
			t.Fatalf("Open read sealed %s %d times", name, n)
		}
	}
}
