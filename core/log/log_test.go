package log

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"chronik/core/record"
	"chronik/disk"
)

const testDir = "data/topic-0"

// stored is one appended batch as the log holds it.
type stored struct {
	first, last int64
	bytes       []byte
}

// testLog is a Log with the model of what it holds.
type testLog struct {
	t     testing.TB
	fs    FS
	dir   string
	cfg   Config
	l     *Log
	model []stored // every batch appended, by offset
}

func newTestLog(t testing.TB, fs FS, cfg Config) *testLog {
	t.Helper()
	tl := &testLog{t: t, fs: fs, dir: testDir, cfg: cfg}
	tl.reopen(0)
	return tl
}

func (tl *testLog) reopen(nowMs int64) {
	tl.t.Helper()
	if tl.l != nil {
		if err := tl.l.Close(); err != nil {
			tl.t.Fatalf("close: %v", err)
		}
	}
	l, err := Open(tl.fs, tl.dir, tl.cfg, nowMs)
	if err != nil {
		tl.t.Fatalf("open: %v", err)
	}
	tl.l = l
}

// append appends one batch per spec, in one Append call, and records them in the model.
func (tl *testLog) append(nowMs int64, specs ...batchSpec) (first, last int64) {
	tl.t.Helper()
	var all []byte
	var sizes []int
	for _, sp := range specs {
		b := makeBatch(sp)
		all = append(all, b...)
		sizes = append(sizes, len(b))
	}
	first, last, err := tl.l.Append(all, nowMs)
	if err != nil {
		tl.t.Fatalf("append: %v", err)
	}
	off := first
	for i, sp := range specs {
		b := all[:sizes[i]]
		all = all[sizes[i]:]
		h, err := record.Validate(b)
		if err != nil || h.BaseOffset != off {
			tl.t.Fatalf("appended batch %d: base %d, want %d: %v", i, h.BaseOffset, off, err)
		}
		tl.model = append(tl.model, stored{off, off + int64(sp.records) - 1, bytes.Clone(b)})
		off += int64(sp.records)
	}
	if off-1 != last {
		tl.t.Fatalf("append: last %d, want %d", last, off-1)
	}
	return first, last
}

// syncAll runs sync jobs until there is nothing left to sync.
func (tl *testLog) syncAll() {
	tl.t.Helper()
	for range 10 {
		j := tl.l.PrepareSync()
		if j == nil {
			return
		}
		tl.l.SyncDone(j, j.Run())
		if err := tl.l.Err(); err != nil {
			tl.t.Fatalf("sync: %v", err)
		}
	}
	tl.t.Fatal("sync jobs do not run out")
}

// batchAt returns the model batch holding offset.
func (tl *testLog) batchAt(offset int64) stored {
	for _, s := range tl.model {
		if s.first <= offset && offset <= s.last {
			return s
		}
	}
	tl.t.Fatalf("no batch holds %d", offset)
	return stored{}
}

// check reads the whole log batch by batch and compares it with the model.
func (tl *testLog) check() {
	tl.t.Helper()
	l := tl.l
	want := tl.model
	for len(want) > 0 && want[0].first < l.StartOffset() {
		want = want[1:]
	}
	if n := len(want); n == 0 && l.EndOffset() != l.StartOffset() || n > 0 && want[n-1].last+1 != l.EndOffset() {
		tl.t.Fatalf("end offset %d, model %+v", l.EndOffset(), len(want))
	}
	for _, w := range want {
		got, err := l.Read(w.first, 0, math.MaxInt64)
		if err != nil {
			tl.t.Fatalf("read %d: %v", w.first, err)
		}
		if !bytes.Equal(got, w.bytes) {
			tl.t.Fatalf("read %d: got %d bytes, want batch [%d,%d] of %d", w.first, len(got), w.first, w.last, len(w.bytes))
		}
	}
}

// checkRead reads at offset with maxBytes and checks that it gets the model's batches from
// the one holding offset on, whole, within maxBytes unless there is just one.
func (tl *testLog) checkRead(offset int64, maxBytes int) {
	tl.t.Helper()
	got, err := tl.l.Read(offset, maxBytes, math.MaxInt64)
	if err != nil {
		tl.t.Fatalf("read %d max %d: %v", offset, maxBytes, err)
	}
	i := 0
	for tl.model[i].last < offset {
		i++
	}
	n := 0
	for rest := got; len(rest) > 0; i, n = i+1, n+1 {
		if i == len(tl.model) || !bytes.HasPrefix(rest, tl.model[i].bytes) {
			tl.t.Fatalf("read %d max %d: batch %d differs", offset, maxBytes, n)
		}
		rest = rest[len(tl.model[i].bytes):]
	}
	if n == 0 || n > 1 && len(got) > maxBytes {
		tl.t.Fatalf("read %d max %d: %d batches, %d bytes", offset, maxBytes, n, len(got))
	}
}

func spec(records, valueBytes int, ts int64) batchSpec {
	return batchSpec{records: records, valueBytes: valueBytes, firstTs: ts, fill: byte(ts)}
}

func TestAppendReadAcrossRolls(t *testing.T) {
	for _, fsName := range []string{"mem", "os"} {
		t.Run(fsName, func(t *testing.T) {
			var fs FS = disk.NewMem()
			tl := &testLog{t: t, fs: fs, dir: testDir, cfg: Config{SegmentBytes: 2000, IndexIntervalBytes: 150}}
			if fsName == "os" {
				tl.fs, tl.dir = disk.OS(), t.TempDir()+"/p0"
			}
			tl.reopen(0)
			for i := range 60 {
				tl.append(int64(i), spec(1+i%4, 10*(i%9), int64(1000+i)))
				if i%7 == 0 {
					tl.append(int64(i), spec(2, 5, int64(1000+i)), spec(1, 300, int64(1000+i)))
				}
			}
			if n := tl.l.Stats().Segments; n < 5 {
				t.Fatalf("%d segments, want rolls", n)
			}
			tl.check()
			// Every offset reads from the batch holding it.
			for off := tl.l.StartOffset(); off < tl.l.EndOffset(); off++ {
				got, err := tl.l.Read(off, 0, math.MaxInt64)
				if err != nil || !bytes.Equal(got, tl.batchAt(off).bytes) {
					t.Fatalf("read %d: %v", off, err)
				}
			}
			tl.syncAll()
			tl.reopen(100)
			tl.check()
			tl.append(200, spec(3, 10, 5000))
			tl.check()
			if err := tl.l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReadLimits(t *testing.T) {
	tl := newTestLog(t, disk.NewMem(), Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 64})
	for i := range 10 {
		tl.append(0, spec(2, 100, int64(i))) // offsets 2i, 2i+1
	}
	b0 := tl.batchAt(0).bytes
	size := len(b0) // all batches are the same size
	whole := func(n int) []byte {
		var out []byte
		for i := range n {
			out = append(out, tl.model[i].bytes...)
		}
		return out
	}
	l := tl.l
	tests := []struct {
		name     string
		offset   int64
		maxBytes int
		limit    int64
		want     []byte
		err      error
	}{
		{"first batch whole under maxBytes 1 (KIP-74)", 0, 1, 100, b0, nil},
		{"first batch whole under maxBytes 0", 1, 0, 100, b0, nil},
		{"negative maxBytes", 0, -5, 100, b0, nil},
		{"only whole batches", 0, 3*size + size/2, 100, whole(3), nil},
		{"exact fit", 0, 3 * size, 100, whole(3), nil},
		{"everything", 0, 1 << 20, math.MaxInt64, whole(10), nil},
		{"limit cuts", 0, 1 << 20, 6, whole(3), nil},
		{"limit inside a batch keeps it", 0, 1 << 20, 5, whole(3), nil},
		{"offset inside first batch", 3, 2 * size, 100, whole(3)[size:], nil},
		{"at limit", 6, 100, 6, nil, nil},
		{"past limit below end", 8, 100, 6, nil, nil},
		{"at end", 20, 100, 100, nil, nil},
		{"past end", 21, 100, 100, nil, ErrOffsetOutOfRange},
		{"negative", -1, 100, 100, nil, ErrOffsetOutOfRange},
	}
	for _, tc := range tests {
		got, err := l.Read(tc.offset, tc.maxBytes, tc.limit)
		if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: Read(%d, %d, %d) = %d bytes, %v; want %d bytes, %v", tc.name,
				tc.offset, tc.maxBytes, tc.limit, len(got), err, len(tc.want), tc.err)
		}
		if tc.want == nil && got != nil {
			t.Errorf("%s: want nil, got empty non-nil", tc.name)
		}
	}
}

func TestIndexLookups(t *testing.T) {
	// Many small batches and a tiny interval: the index has many entries; Read and
	// Batches must find every batch from them, in the active and in sealed segments.
	tl := newTestLog(t, disk.NewMem(), Config{SegmentBytes: 5000, IndexIntervalBytes: 200})
	for i := range 300 {
		tl.append(0, spec(1+i%3, i%50, int64(i)))
	}
	tl.syncAll()
	for _, s := range tl.l.segs[:len(tl.l.segs)-1] {
		if s.state != stateSealed || s.idxEntries() < 5 {
			t.Fatalf("segment %d: state %d, %d index entries", s.base, s.state, s.idxEntries())
		}
	}
	check := func() {
		for off := tl.l.StartOffset(); off < tl.l.EndOffset(); off++ {
			got, err := tl.l.Read(off, 0, math.MaxInt64)
			if err != nil || !bytes.Equal(got, tl.batchAt(off).bytes) {
				t.Fatalf("read %d: %v", off, err)
			}
			var heads []int64
			err = tl.l.Batches(off, func(h record.Header) bool {
				heads = append(heads, h.BaseOffset)
				return len(heads) < 3
			})
			if err != nil || heads[0] != tl.batchAt(off).first || len(heads) > 1 && heads[1] != tl.batchAt(off).last+1 {
				t.Fatalf("batches from %d: %v, %v", off, heads, err)
			}
		}
	}
	check()
	tl.reopen(0) // sealed segments load their indexes from disk
	for _, s := range tl.l.segs[:len(tl.l.segs)-1] {
		if s.state != stateSealSeen || s.idxEntries() < 5 {
			t.Fatalf("reopened segment %d: state %d, %d index entries", s.base, s.state, s.idxEntries())
		}
	}
	check()
	// Indexes sparser than the interval (written under another config) still serve.
	for _, interval := range []int{1, 4096} {
		tl.cfg.IndexIntervalBytes = interval
		tl.reopen(0)
		for off := tl.l.StartOffset(); off < tl.l.EndOffset(); off += 3 {
			for _, maxBytes := range []int{0, 10, 100, 1000, 1 << 20} {
				tl.checkRead(off, maxBytes)
			}
		}
	}
	var n int
	if err := tl.l.Batches(0, func(record.Header) bool { n++; return true }); err != nil || n != len(tl.model) {
		t.Fatalf("Batches walked %d of %d: %v", n, len(tl.model), err)
	}
	if err := tl.l.Batches(tl.l.EndOffset()+1, func(record.Header) bool { return true }); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Batches past end: %v", err)
	}
}

func TestRetention(t *testing.T) {
	newLog := func(cfg Config) *testLog {
		cfg.SegmentBytes = 1000
		tl := newTestLog(t, disk.NewMem(), cfg)
		for i := range 40 {
			tl.append(int64(i), spec(1, 200, int64(i*1000))) // ~280-byte batches, 3 per segment
		}
		return tl
	}
	t.Run("bytes", func(t *testing.T) {
		tl := newLog(Config{RetentionBytes: 3000})
		if err := tl.l.EnforceRetention(0); err != nil || tl.l.StartOffset() != 0 {
			t.Fatalf("before sync: start %d, %v; want nothing deleted (unsealed)", tl.l.StartOffset(), err)
		}
		tl.syncAll()
		before := tl.l.Stats()
		if err := tl.l.EnforceRetention(0); err != nil {
			t.Fatal(err)
		}
		st := tl.l.Stats()
		if st.Bytes < 3000 || st.Bytes-tl.l.segs[0].size >= 3000 || st.Segments >= before.Segments {
			t.Fatalf("after retention %+v (before %+v)", st, before)
		}
		if tl.l.StartOffset() != tl.l.segs[0].base || tl.l.StartOffset() == 0 {
			t.Fatalf("start %d", tl.l.StartOffset())
		}
		if _, err := tl.l.Read(0, 0, math.MaxInt64); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below start: %v", err)
		}
		tl.check()
		tl.syncAll()
		start := tl.l.StartOffset()
		tl.reopen(0)
		if tl.l.StartOffset() != start {
			t.Fatalf("reopened start %d, want %d", tl.l.StartOffset(), start)
		}
		tl.check()
		// After a restart, retention first has the seals synced, then deletes.
		for range 5 {
			tl.append(0, spec(1, 200, 0))
		}
		tl.syncAll()
		if err := tl.l.EnforceRetention(0); err != nil || tl.l.StartOffset() != start || !tl.l.NeedsSync() {
			t.Fatalf("first pass after restart: start %d (want %d), needs sync %v, %v",
				tl.l.StartOffset(), start, tl.l.NeedsSync(), err)
		}
		tl.syncAll()
		if err := tl.l.EnforceRetention(0); err != nil || tl.l.StartOffset() == start {
			t.Fatalf("second pass: start %d, %v", tl.l.StartOffset(), err)
		}
		tl.check()
	})
	t.Run("time", func(t *testing.T) {
		tl := newLog(Config{RetentionMs: 10_000})
		tl.syncAll()
		// Batch i has max timestamp 1000i; at now = 30500 everything below 20500 expires:
		// segments whose batches all have timestamps <= 20000.
		if err := tl.l.EnforceRetention(30_500); err != nil {
			t.Fatal(err)
		}
		s0 := tl.l.segs[0]
		if s0.maxTs < 20_500 || tl.l.StartOffset() == 0 {
			t.Fatalf("first segment [%d,%d) max ts %d", s0.base, s0.end, s0.maxTs)
		}
		if tl.l.StartOffset() > 21 {
			t.Fatalf("start %d: deleted unexpired data", tl.l.StartOffset())
		}
		tl.check()
		// Never the active segment.
		if err := tl.l.EnforceRetention(math.MaxInt64 / 2); err != nil || len(tl.l.segs) != 1 {
			t.Fatalf("%d segments, %v", len(tl.l.segs), err)
		}
		tl.check()
		tl.append(0, spec(1, 1, 0))
		tl.check()
	})
}

func TestTruncateTo(t *testing.T) {
	for _, synced := range []bool{false, true} {
		t.Run(fmt.Sprint("synced=", synced), func(t *testing.T) {
			tl := newTestLog(t, disk.NewMem(), Config{SegmentBytes: 1000, IndexIntervalBytes: 100})
			for i := range 30 {
				tl.append(0, spec(2, 100, int64(i)))
			}
			if synced {
				tl.syncAll()
			}
			l := tl.l
			if err := l.TruncateTo(41); !errors.Is(err, ErrNotBoundary) {
				t.Fatalf("inside a batch: %v", err)
			}
			if err := l.TruncateTo(41); l.Err() != nil || err == nil {
				t.Fatal("a refused truncate failed the log")
			}
			if err := l.TruncateTo(l.EndOffset() + 2); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("past end: %v", err)
			}
			cut := func(offset int64) {
				t.Helper()
				l := tl.l
				durable := l.DurableOffset()
				if err := l.TruncateTo(offset); err != nil {
					t.Fatalf("truncate to %d: %v", offset, err)
				}
				if l.EndOffset() != offset || l.DurableOffset() != min(durable, offset) {
					t.Fatalf("after truncate to %d: end %d durable %d", offset, l.EndOffset(), l.DurableOffset())
				}
				for len(tl.model) > 0 && tl.model[len(tl.model)-1].first >= offset {
					tl.model = tl.model[:len(tl.model)-1]
				}
				tl.check()
			}
			cut(l.EndOffset()) // no-op
			cut(50)            // inside a sealed or rolled segment: it becomes active
			tl.append(0, spec(3, 10, 99))
			tl.check()
			cut(l.segs[len(l.segs)-1].base) // at the active segment's base
			seg2 := l.segs[2].base
			cut(seg2) // at an older segment's base
			for i := range 8 {
				tl.append(0, spec(1, 150, int64(100+i)))
			}
			tl.check()
			tl.syncAll()
			tl.reopen(0)
			tl.check()
			cut(0)
			tl.append(0, spec(1, 1, 1))
			tl.reopen(0)
			tl.check()
		})
	}
}

func TestOffsetForTime(t *testing.T) {
	tl := newTestLog(t, disk.NewMem(), Config{SegmentBytes: 1500, IndexIntervalBytes: 100})
	// Timestamps mostly rise, with a few that go back.
	for i := range 80 {
		ts := int64(i * 10)
		if i%7 == 3 {
			ts -= 45
		}
		tl.append(0, spec(1+i%3, 20, ts))
	}
	brute := func(ts int64) (int64, int64, bool) {
		for _, s := range tl.model {
			if s.first < tl.l.StartOffset() {
				continue
			}
			h, _ := record.ParseHeader(s.bytes)
			if h.MaxTimestamp >= ts {
				return s.first, h.MaxTimestamp, true
			}
		}
		return 0, 0, false
	}
	check := func() {
		t.Helper()
		for ts := int64(-50); ts < 900; ts += 3 {
			o, bts, ok := tl.l.OffsetForTime(ts)
			wo, wts, wok := brute(ts)
			if o != wo || bts != wts || ok != wok {
				t.Fatalf("OffsetForTime(%d) = %d, %d, %v; want %d, %d, %v", ts, o, bts, ok, wo, wts, wok)
			}
		}
	}
	check()
	tl.syncAll()
	tl.reopen(0)
	check()
	if err := tl.l.TruncateTo(tl.model[40].first); err != nil {
		t.Fatal(err)
	}
	tl.model = tl.model[:40]
	check()
}

func TestSyncJobs(t *testing.T) {
	tl := newTestLog(t, disk.NewMem(), Config{SegmentBytes: 500})
	l := tl.l
	if j := l.PrepareSync(); j != nil {
		t.Fatalf("fresh log has a job to %d", j.End)
	}
	tl.append(0, spec(1, 10, 0))
	j := l.PrepareSync()
	if j == nil || j.End != 1 {
		t.Fatalf("job %+v", j)
	}
	if l.PrepareSync() != nil {
		t.Fatal("second outstanding job")
	}
	tl.append(0, spec(1, 600, 0)) // rolls while the job is outstanding
	if l.DurableOffset() != 0 {
		t.Fatal("durable before SyncDone")
	}
	l.SyncDone(j, j.Run())
	if l.DurableOffset() != 1 {
		t.Fatalf("durable %d, want 1", l.DurableOffset())
	}
	j = l.PrepareSync()
	// The rolled segment's .log was synced by the first job; the new one's .log is dirty,
	// and so is its .index header (its first ordinal).
	if j == nil || j.End != 2 || !j.syncDir || len(j.files) != 2 || len(j.logSynced) != 1 {
		t.Fatalf("job after roll %+v", j)
	}
	l.SyncDone(j, j.Run())
	if l.DurableOffset() != 2 || l.segs[0].state != stateSealWritten || !l.NeedsSync() {
		t.Fatalf("durable %d, state %d, needs sync %v", l.DurableOffset(), l.segs[0].state, l.NeedsSync())
	}
	j = l.PrepareSync() // the seal
	if j == nil || j.End != 2 || len(j.files) != 2 {
		t.Fatalf("seal job %+v", j)
	}
	l.SyncDone(j, j.Run())
	if l.segs[0].state != stateSealed || l.NeedsSync() || l.PrepareSync() != nil {
		t.Fatal("not sealed, or more to do")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("SyncDone of a stale job did not panic")
			}
		}()
		l.SyncDone(j, nil)
	}()
}

func TestSyncFailureFailsLog(t *testing.T) {
	mem := disk.NewMem()
	fs := disk.NewErrorFS(mem, disk.InjectorFunc(func(op disk.Op, path string) error {
		if op == disk.OpSync && len(path) > 4 && path[len(path)-4:] == ".log" {
			return disk.ErrInjected
		}
		return nil
	}))
	l, err := Open(disk.NewMem(), testDir, Config{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fs, testDir, Config{}, 0); !errors.Is(err, disk.ErrInjected) {
		t.Fatalf("open with failing sync: %v", err)
	}
	// Let Open succeed, then fail the first job.
	fail := false
	fs = disk.NewErrorFS(mem, disk.InjectorFunc(func(op disk.Op, path string) error {
		if fail && op == disk.OpSync {
			return disk.ErrInjected
		}
		return nil
	}))
	l, err = Open(fs, testDir, Config{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := makeBatch(spec(1, 1, 0))
	if _, _, err := l.Append(b, 0); err != nil {
		t.Fatal(err)
	}
	fail = true
	j := l.PrepareSync()
	l.SyncDone(j, j.Run())
	if _, _, err := l.Append(b, 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after failed sync: %v", err)
	}
	if l.PrepareSync() != nil || l.DurableOffset() != 0 || !errors.Is(l.Err(), disk.ErrInjected) {
		t.Fatalf("failed log: durable %d, err %v", l.DurableOffset(), l.Err())
	}
	if got, err := l.Read(0, 100, 1); err != nil || len(got) != len(b) {
		t.Fatalf("read from failed log: %v", err)
	}
}

func TestWriteFailureFailsLog(t *testing.T) {
	fail := false
	fs := disk.NewErrorFS(disk.NewMem(), disk.InjectorFunc(func(op disk.Op, path string) error {
		if fail && op == disk.OpWrite {
			return disk.ErrInjected
		}
		return nil
	}))
	l, err := Open(fs, testDir, Config{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	fail = true
	if _, _, err := l.Append(makeBatch(spec(1, 1, 0)), 0); !errors.Is(err, ErrFailed) || !errors.Is(err, disk.ErrInjected) {
		t.Fatalf("append: %v", err)
	}
	fail = false
	if _, _, err := l.Append(makeBatch(spec(1, 1, 0)), 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after failure: %v", err)
	}
}

func TestAppendRejectsBadFraming(t *testing.T) {
	tl := newTestLog(t, disk.NewMem(), Config{})
	good := makeBatch(spec(2, 5, 0))
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     good[:30],
		"truncated": append(bytes.Clone(good), good[:len(good)-1]...),
		"magic 1":   func() []byte { b := bytes.Clone(good); b[16] = 1; return b }(),
	} {
		if _, _, err := tl.l.Append(b, 0); err == nil || errors.Is(err, ErrFailed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if tl.l.EndOffset() != 0 || tl.l.Err() != nil {
		t.Fatal("a refused append changed the log")
	}
	tl.append(0, spec(1, 1, 0))
	tl.check()
}

func TestLogAppendTime(t *testing.T) {
	tl := newTestLog(t, disk.NewMem(), Config{})
	b := makeBatch(batchSpec{records: 2, valueBytes: 3, firstTs: 5, attrs: attrLogAppendTime})
	if _, _, err := tl.l.Append(b, 777); err != nil {
		t.Fatal(err)
	}
	h, err := record.Validate(b)
	if err != nil || h.MaxTimestamp != 777 {
		t.Fatalf("header %+v, %v", h, err)
	}
	tl.reopen(0) // recovery validates the rewritten CRC
	if tl.l.EndOffset() != 2 {
		t.Fatalf("end %d", tl.l.EndOffset())
	}
	if o, ts, ok := tl.l.OffsetForTime(700); !ok || o != 0 || ts != 777 {
		t.Fatalf("OffsetForTime: %d %d %v", o, ts, ok)
	}
}

func TestSegmentMsRolls(t *testing.T) {
	tl := newTestLog(t, disk.NewMem(), Config{SegmentMs: 1000})
	tl.append(0, spec(1, 1, 0))
	tl.append(1000, spec(1, 1, 0))
	if n := tl.l.Stats().Segments; n != 1 {
		t.Fatalf("%d segments at age 1000", n)
	}
	tl.append(1001, spec(1, 1, 0))
	tl.append(1500, spec(1, 1, 0))
	if n := tl.l.Stats().Segments; n != 2 {
		t.Fatalf("%d segments, want 2", n)
	}
	tl.check()
}

func TestOpenCleansUp(t *testing.T) {
	mem := disk.NewMem()
	tl := newTestLog(t, mem, Config{SegmentBytes: 300})
	for i := range 6 {
		tl.append(0, spec(1, 200, int64(i)))
	}
	tl.syncAll()
	if err := tl.l.Close(); err != nil {
		t.Fatal(err)
	}
	tl.l = nil
	// Corrupt the third segment's .log: everything from it on must go.
	bases := []int64{}
	names, _ := mem.List(testDir)
	for _, n := range names {
		if b, ok := parseSegmentName(n, logSuffix); ok {
			bases = append(bases, b)
		}
	}
	if len(bases) != 6 {
		t.Fatalf("segments %v", bases)
	}
	f, err := mem.Open(segmentName(testDir, bases[2], logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	stray, err := mem.Create(segmentName(testDir, 999, indexSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if err := stray.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen(0)
	if tl.l.EndOffset() != bases[2] || tl.l.Stats().Segments != 3 {
		t.Fatalf("end %d, %d segments", tl.l.EndOffset(), tl.l.Stats().Segments)
	}
	names, _ = mem.List(testDir)
	if len(names) != 9 {
		t.Fatalf("files left: %v", names)
	}
	tl.model = tl.model[:2]
	tl.check()
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{SegmentBytes: -1}, {SegmentBytes: 1 << 32}, {IndexIntervalBytes: -1}, {SegmentMs: -1}} {
		if _, err := Open(disk.NewMem(), testDir, cfg, 0); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
