package log

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"chronik/core/record"
	"chronik/disk"
)

// writeFile creates name on fs holding b.
func writeFile(t testing.TB, fs FS, name string, b []byte) {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the content of name on fs.
func readFile(t testing.TB, fs FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if err := readFull(f, b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRecover gives Open arbitrary bytes as the .log and .index of the first segment,
// optionally followed by an empty segment at nextBase. Invariants: Open never panics nor
// fails; the recovered log reads back, batch by batch, as valid batches with contiguous
// offsets from StartOffset to EndOffset; opening it again gives the same log; appending
// continues at EndOffset.
func FuzzRecover(f *testing.F) {
	// Seeds: a real two-segment log (sealed first segment), valid batches with a torn
	// tail, garbage.
	mem := disk.NewMem()
	tl := newTestLog(f, mem, Config{SegmentBytes: 600, IndexIntervalBytes: 50})
	for i := range 6 {
		tl.append(0, spec(1+i%3, 40, int64(i)))
	}
	tl.syncAll()
	seg0 := tl.l.segs[0]
	log0 := readFile(f, mem, segmentName(testDir, 0, logSuffix))
	idx0 := readFile(f, mem, segmentName(testDir, 0, indexSuffix))
	f.Add(log0, idx0, uint16(seg0.end))
	f.Add(log0, idx0, uint16(0))
	f.Add(log0[:len(log0)-7], idx0, uint16(seg0.end))
	f.Add(append(bytes.Clone(log0), 0, 0, 0, 0, 0, 1), []byte(nil), uint16(seg0.end))
	f.Add(makeBatch(spec(3, 10, 1)), []byte{0, 0, 0, 1}, uint16(3))
	f.Add([]byte("garbage, not a batch"), []byte(nil), uint16(9))
	// A format-1 index (seal.go): a seal of the old layout over the same .log.
	v1 := make([]byte, sealV1Bytes)
	be := binary.BigEndian
	be.PutUint32(v1, sealV1Magic)
	be.PutUint32(v1[4:], uint32(len(log0)))
	be.PutUint32(v1[8:], uint32(seg0.end))
	f.Add(log0, v1, uint16(seg0.end))
	f.Add(log0, seg0.idxHeader(), uint16(0))

	f.Fuzz(func(t *testing.T, logData, idxData []byte, nextBase uint16) {
		fs := disk.NewMem()
		if err := fs.MkdirAll(testDir); err != nil {
			t.Fatal(err)
		}
		writeFile(t, fs, segmentName(testDir, 0, logSuffix), logData)
		writeFile(t, fs, segmentName(testDir, 0, indexSuffix), idxData)
		if nextBase > 0 {
			writeFile(t, fs, segmentName(testDir, int64(nextBase), logSuffix), nil)
		}
		cfg := Config{IndexIntervalBytes: 64}
		l, err := Open(fs, testDir, cfg, 0)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		start, end := l.StartOffset(), l.EndOffset()
		if start != 0 && start != int64(nextBase) {
			t.Fatalf("start %d", start)
		}
		got := readAllValid(t, l)
		startOrd, endOrd := l.StartOrdinal(), l.EndOrdinal()
		var batches int64
		if err := l.Batches(start, func(record.Header) bool { batches++; return true }); err != nil ||
			endOrd-startOrd != batches || startOrd < 0 {
			t.Fatalf("ordinals [%d, %d) for %d batches: %v", startOrd, endOrd, batches, err)
		}
		for ord := startOrd; ord <= endOrd; ord++ {
			off, err := l.OffsetOfOrdinal(ord)
			if err != nil {
				t.Fatalf("OffsetOfOrdinal(%d): %v", ord, err)
			}
			if back, err := l.OrdinalOfOffset(off); err != nil || back != ord {
				t.Fatalf("OrdinalOfOffset(%d) = %d, %v; want %d", off, back, err, ord)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = Open(fs, testDir, cfg, 0)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if l.StartOffset() != start || l.EndOffset() != end || !bytes.Equal(readAllValid(t, l), got) {
			t.Fatalf("reopen: [%d, %d), want [%d, %d)", l.StartOffset(), l.EndOffset(), start, end)
		}
		if l.StartOrdinal() != startOrd || l.EndOrdinal() != endOrd {
			t.Fatalf("reopen: ordinals [%d, %d), want [%d, %d)", l.StartOrdinal(), l.EndOrdinal(), startOrd, endOrd)
		}
		first, _, err := l.Append(makeBatch(spec(2, 3, 0)), 0)
		if err != nil || first != end {
			t.Fatalf("append after recovery: offset %d, want %d: %v", first, end, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// readAllValid reads l from StartOffset to EndOffset and checks that it is valid batches
// with contiguous offsets. It returns the bytes.
func readAllValid(t *testing.T, l *Log) []byte {
	t.Helper()
	var all []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		b, err := l.Read(off, 1<<20, math.MaxInt64)
		if err != nil || len(b) == 0 {
			t.Fatalf("read %d of [%d, %d): %d bytes, %v", off, l.StartOffset(), l.EndOffset(), len(b), err)
		}
		all = append(all, b...)
		err = record.Split(b, func(batch []byte, h record.Header) bool {
			if _, verr := record.Validate(batch); verr != nil || h.BaseOffset != off {
				t.Fatalf("batch at %d: base %d: %v", off, h.BaseOffset, verr)
			}
			off = h.LastOffset() + 1
			return true
		})
		if err != nil {
			t.Fatalf("split: %v", err)
		}
	}
	return all
}

// TestSealRejectsDamagedIndexes: a sealed segment whose time index changed after the seal
// (an entry torn to another plausible value) is validated again, not trusted.
func TestSealRejectsDamagedIndexes(t *testing.T) {
	mem := disk.NewMem()
	tl := newTestLog(t, mem, Config{SegmentBytes: 800, IndexIntervalBytes: 60})
	for i := range 12 {
		tl.append(0, spec(2, 30, int64(100*i)))
	}
	tl.syncAll()
	want := tl.l.Stats()
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	tl.l = nil
	name := segmentName(testDir, 0, timeIndexSuffix)
	tidx := readFile(t, mem, name)
	tidx[len(tidx)-tidxEntryBytes+7]-- // last entry: max timestamp one lower
	writeFile(t, mem, name, tidx)
	tl.reopen(0)
	if got := tl.l.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if s := tl.l.segs[0]; s.state != stateSealed || !bytes.Equal(readFile(t, mem, name), s.tidxBuf) {
		t.Fatal("damaged segment not rebuilt and sealed again")
	}
	tl.check()
}
