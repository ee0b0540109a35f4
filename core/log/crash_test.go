package log

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"chronik/core/record"
	"chronik/disk"
	"pgregory.net/rapid"
)

// crashModel drives a Log on a crashable MemFS and remembers what it promised.
type crashModel struct {
	fs      *disk.MemFS
	cfg     Config
	l       *Log
	nowMs   int64
	history []stored // every batch of the current history, by offset, from offset 0
	ordBase int64    // the ordinal of history[0]
	// resetAt is the offset history starts at: 0, or the last ResetTo's.
	resetAt int64
	// pendingReset is a ResetTo that failed: the disk holds the old log or the reset one.
	pendingReset *[2]int64
	// durable is the highest DurableOffset the log reported, capped by truncations: a
	// crash must keep everything below it (from StartOffset on).
	durable int64
	job     *SyncJob
	ran     bool
	runErr  error

	// errRate > 0 runs the log the actions drive on an error-injecting FS whose
	// operations each fail with that probability, drawing from errRng. Opens that verify
	// a recovery run without injection.
	errRate float64
	errRng  *rand.Rand
	// failed is set once the log failed (an injected error): only reopen and crash go on.
	failed bool
}

// TestCrashRecovery: random appends, sync jobs (prepared, run and completed at random
// points in between other operations), truncations, retention and clean reopens, with
// random crashes. After each crash: every offset below the last reported DurableOffset
// is readable with identical bytes; the recovered log is a contiguous run of the history
// (no garbage batch); appends continue at EndOffset; a second Open, and Open after a crash
// that keeps nothing unsynced, give the same log.
//
// Replay a failure with: go test ./core/log -run TestCrashRecovery -rapid.seed=<seed>.
func TestCrashRecovery(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runCrashModel(t, 0) })
}

// TestCrashRecoveryWithIOErrors is TestCrashRecovery with injected I/O errors: an error
// either leaves the log as it was (a failed read) or fails it for good, and after a crash
// or a restart every offset reported durable is still there. An Open that fails on an
// injected error must leave the disk for the next Open to recover the same way.
func TestCrashRecoveryWithIOErrors(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		runCrashModel(t, rapid.SampledFrom([]float64{0.005, 0.02, 0.1}).Draw(t, "errRate"))
	})
}

func runCrashModel(t *rapid.T, errRate float64) {
	{
		m := &crashModel{
			fs: disk.NewMem(),
			cfg: Config{
				SegmentBytes:       rapid.Int64Range(200, 4000).Draw(t, "segmentBytes"),
				IndexIntervalBytes: rapid.IntRange(1, 600).Draw(t, "indexIntervalBytes"),
				RetentionBytes:     rapid.SampledFrom([]int64{0, 2000, 6000}).Draw(t, "retentionBytes"),
			},
			errRate: errRate,
		}
		seed := rapid.Uint64().Draw(t, "errSeed")
		m.errRng = rand.New(rand.NewPCG(seed, 1))
		m.openLive(t, m.fs)
		actions := map[string]func(*rapid.T){
			"append":    m.append,
			"prepare":   m.prepare,
			"run":       m.run,
			"done":      m.done,
			"truncate":  m.truncate,
			"retention": m.retention,
			"reset":     m.reset,
			"reopen":    m.reopen,
			"crash":     m.crash,
			"":          m.invariants,
		}
		// Repeat runs about 30 actions (-rapid.steps); crash bugs need longer histories.
		for range 4 {
			t.Repeat(actions)
		}
		m.crash(t)
	}
}

func (m *crashModel) end() int64 {
	if n := len(m.history); n > 0 {
		return m.history[n-1].last + 1
	}
	return m.resetAt
}

// reset restarts the log at a random offset and ordinal (ResetTo), now and then.
func (m *crashModel) reset(t *rapid.T) {
	m.skipIfFailed(t)
	if rapid.IntRange(0, 3).Draw(t, "resetNow") != 0 {
		t.Skip("not this time")
	}
	offset := rapid.Int64Range(0, m.end()+2000).Draw(t, "resetOffset")
	ord := rapid.Int64Range(0, 1000).Draw(t, "resetOrdinal")
	if err := m.l.ResetTo(offset, ord); m.opFailed(t, "reset", err) {
		if m.failed {
			m.pendingReset = &[2]int64{offset, ord}
		}
		return
	}
	m.adoptReset(offset, ord)
	l := m.l
	if l.StartOffset() != offset || l.EndOffset() != offset || l.DurableOffset() != offset ||
		l.StartOrdinal() != ord || l.EndOrdinal() != ord {
		t.Fatalf("reset to %d, %d: [%d, %d) durable %d ordinals [%d, %d)", offset, ord, l.StartOffset(),
			l.EndOffset(), l.DurableOffset(), l.StartOrdinal(), l.EndOrdinal())
	}
}

// adoptReset makes the model a log reset to offset and ord.
func (m *crashModel) adoptReset(offset, ord int64) {
	m.history, m.resetAt, m.ordBase, m.durable = nil, offset, ord, offset
}

// open opens the log on fs, without injected errors.
func (m *crashModel) open(t *rapid.T, fs *disk.MemFS) *Log {
	l, err := Open(fs, testDir, m.cfg, m.nowMs)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

// openLive opens the log the actions drive: on fs through the error injector when
// errRate > 0; when that Open fails, again without.
func (m *crashModel) openLive(t *rapid.T, fs *disk.MemFS) {
	m.job, m.failed = nil, false
	if m.errRate > 0 {
		l, err := Open(disk.NewErrorFS(fs, disk.RandomErrors(m.errRng, m.errRate)), testDir, m.cfg, m.nowMs)
		if err == nil {
			m.l = l
			return
		}
		if !errors.Is(err, disk.ErrInjected) {
			t.Fatalf("open: %v", err)
		}
	}
	m.l = m.open(t, fs)
}

// skipIfFailed skips an action on a failed log.
func (m *crashModel) skipIfFailed(t *rapid.T) {
	if m.failed {
		t.Skip("log failed")
	}
}

// opFailed handles err from an operation on the live log: an injected error that failed
// the log, or one that left it unchanged (reported true), or a test failure.
func (m *crashModel) opFailed(t *rapid.T, what string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrFailed) && m.errRate > 0:
		if m.l.Err() == nil {
			t.Fatalf("%s: %v, but Err is nil", what, err)
		}
		m.failed = true
		return true
	case errors.Is(err, disk.ErrInjected) && m.l.Err() == nil:
		return true
	}
	t.Fatalf("%s: %v", what, err)
	return true
}

func (m *crashModel) append(t *rapid.T) {
	m.skipIfFailed(t)
	m.nowMs += rapid.Int64Range(0, 50).Draw(t, "advanceMs")
	n := rapid.IntRange(1, 3).Draw(t, "batches")
	var all []byte
	var sizes []int
	for range n {
		sp := batchSpec{
			records:    rapid.IntRange(1, 4).Draw(t, "records"),
			valueBytes: rapid.IntRange(0, 700).Draw(t, "valueBytes"),
			firstTs:    m.nowMs - rapid.Int64Range(0, 100).Draw(t, "tsLag"),
			fill:       byte(len(m.history)),
		}
		if rapid.IntRange(0, 9).Draw(t, "logAppendTime") == 0 {
			sp.attrs = attrLogAppendTime
		}
		b := makeBatch(sp)
		all = append(all, b...)
		sizes = append(sizes, len(b))
	}
	appendFn := m.l.Append
	if rapid.Bool().Draw(t, "asIs") {
		appendFn = m.l.AppendAsIs // a follower's append: the bytes as they are
	}
	first, last, err := appendFn(all, m.nowMs)
	if m.opFailed(t, "append", err) {
		return
	}
	if first != m.end() {
		t.Fatalf("append got offset %d, want %d", first, m.end())
	}
	for _, size := range sizes {
		h, err := record.Validate(all[:size])
		if err != nil || h.BaseOffset != first {
			t.Fatalf("appended batch: base %d, want %d: %v", h.BaseOffset, first, err)
		}
		m.history = append(m.history, stored{first, h.LastOffset(), bytes.Clone(all[:size])})
		first = h.LastOffset() + 1
		all = all[size:]
	}
	if first-1 != last {
		t.Fatalf("append returned last %d, want %d", last, first-1)
	}
}

func (m *crashModel) prepare(t *rapid.T) {
	m.skipIfFailed(t)
	if m.job != nil {
		if m.l.PrepareSync() != nil {
			t.Fatal("second job while one is outstanding")
		}
		t.Skip("job outstanding")
	}
	needs := m.l.NeedsSync()
	m.job = m.l.PrepareSync()
	m.ran = false
	if needs != (m.job != nil) {
		t.Fatalf("NeedsSync %v, PrepareSync gave %v", needs, m.job)
	}
	if m.job == nil && m.l.DurableOffset() != m.l.EndOffset() {
		t.Fatalf("no job with durable %d below end %d", m.l.DurableOffset(), m.l.EndOffset())
	}
}

func (m *crashModel) run(t *rapid.T) {
	if m.failed || m.job == nil || m.ran {
		t.Skip("no job to run")
	}
	m.runErr = m.job.Run()
	m.ran = true
}

func (m *crashModel) done(t *rapid.T) {
	if m.failed || m.job == nil || !m.ran {
		t.Skip("no job done")
	}
	durable := m.l.DurableOffset()
	m.l.SyncDone(m.job, m.runErr)
	m.job = nil
	if m.runErr == nil {
		// Durable even if SyncDone then failed the log writing a seal.
		m.durable = max(m.durable, m.l.DurableOffset())
	} else if m.l.DurableOffset() != durable {
		t.Fatalf("failed job moved durable from %d to %d", durable, m.l.DurableOffset())
	}
	if err := m.l.Err(); err != nil {
		if m.errRate == 0 || !errors.Is(err, disk.ErrInjected) {
			t.Fatalf("sync: %v", err)
		}
		m.failed = true
		if _, _, err := m.l.Append(makeBatch(spec(1, 1, 0)), m.nowMs); !errors.Is(err, ErrFailed) {
			t.Fatalf("append to a failed log: %v", err)
		}
	}
}

func (m *crashModel) truncate(t *rapid.T) {
	m.skipIfFailed(t)
	start := m.l.StartOffset()
	var bounds []int64
	for _, s := range m.history {
		if s.first >= start {
			bounds = append(bounds, s.first)
		}
	}
	bounds = append(bounds, m.end())
	offset := rapid.SampledFrom(bounds).Draw(t, "truncateTo")
	if err := m.l.TruncateTo(offset); m.opFailed(t, "truncate", err) {
		if m.failed {
			// Anything from a prefix of the old log to the new one may be on disk; the
			// old history holds both.
			m.durable = min(m.durable, offset)
		}
		return
	}
	for len(m.history) > 0 && m.history[len(m.history)-1].first >= offset {
		m.history = m.history[:len(m.history)-1]
	}
	m.durable = min(m.durable, offset)
	if m.l.DurableOffset() > offset {
		t.Fatalf("durable %d after truncate to %d", m.l.DurableOffset(), offset)
	}
}

func (m *crashModel) retention(t *rapid.T) {
	m.skipIfFailed(t)
	start := m.l.StartOffset()
	var err error
	switch rapid.IntRange(0, 2).Draw(t, "retentionKind") {
	case 0:
		err = m.l.EnforceRetention(m.nowMs)
	case 1: // the two steps a replica drives
		point, ok := m.l.RetentionPoint(m.nowMs)
		if ok && (point <= start || point >= m.l.EndOffset()) || !ok && point != start {
			t.Fatalf("retention point %d, %v in [%d, %d)", point, ok, start, m.l.EndOffset())
		}
		if ok {
			err = m.l.DeleteBefore(point)
		}
	default:
		offset := rapid.Int64Range(0, m.end()+10).Draw(t, "deleteBefore")
		err = m.l.DeleteBefore(offset)
		if err == nil && m.l.StartOffset() > max(offset, start) {
			t.Fatalf("DeleteBefore(%d) moved start from %d to %d", offset, start, m.l.StartOffset())
		}
	}
	if m.opFailed(t, "retention", err) {
		return
	}
	if m.l.StartOffset() < start {
		t.Fatalf("retention moved start back from %d to %d", start, m.l.StartOffset())
	}
}

func (m *crashModel) reopen(t *rapid.T) {
	if err := m.l.Close(); err != nil && m.errRate == 0 {
		t.Fatalf("close: %v", err)
	}
	if m.failed || m.errRate > 0 {
		m.recover(t, m.fs) // a failed operation may have left anything recovery handles
		return
	}
	start := m.l.StartOffset()
	m.openLive(t, m.fs)
	l := m.l
	if l.EndOffset() != m.end() || l.StartOffset() != start {
		t.Fatalf("clean reopen: [%d, %d), want [%d, %d)", l.StartOffset(), l.EndOffset(), start, m.end())
	}
	m.durable = l.EndOffset()
	m.checkContent(t, l)
}

var crashOptions = []disk.CrashOptions{
	{},                               // power loss: nothing unsynced survives
	{KeepProb: 0.5, TearProb: 0.25},  // some sectors kept, some torn
	{KeepProb: 0.95, TearProb: 0.05}, // most kept: long torn tails
	disk.KeepAll,                     // process crash
}

func (m *crashModel) crash(t *rapid.T) {
	opts := rapid.SampledFrom(crashOptions).Draw(t, "crashOptions")
	seed := rapid.Uint64().Draw(t, "crashSeed")
	clone := m.fs.CrashClone(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), opts)
	dumpSegs(t, "before", m.l)
	m.recover(t, clone)
}

// recover opens the log on fs, which a crash or a failure left, checks what it recovered
// and goes on with it.
func (m *crashModel) recover(t *rapid.T, fs *disk.MemFS) {
	start := m.l.StartOffset()
	logFiles(t, fs)
	clone := fs
	l := m.open(t, clone)
	dumpSegs(t, "after", l)
	if r := m.pendingReset; r != nil {
		// A failed ResetTo leaves the old log or the reset one.
		m.pendingReset = nil
		if l.StartOffset() == r[0] && l.EndOffset() == r[0] && l.StartOrdinal() == r[1] {
			m.adoptReset(r[0], r[1])
			start = r[0]
		}
	}
	if l.EndOffset() < m.durable {
		t.Fatalf("crash lost durable data: end %d, durable was %d", l.EndOffset(), m.durable)
	}
	if l.StartOffset() > start {
		t.Fatalf("crash moved start from %d to %d", start, l.StartOffset())
	}
	if l.EndOffset() > m.end() || l.DurableOffset() != l.EndOffset() {
		t.Fatalf("recovered [%d, %d) durable %d; history ends at %d",
			l.StartOffset(), l.EndOffset(), l.DurableOffset(), m.end())
	}
	m.checkContent(t, l)
	st := l.Stats()

	// Open made everything durable: a crash now that keeps nothing unsynced changes
	// nothing, and neither does a second Open.
	again, err := Open(clone.CrashClone(nil, disk.CrashOptions{}), testDir, m.cfg, m.nowMs)
	if err != nil {
		t.Fatalf("open after second crash: %v", err)
	}
	if again.StartOffset() != l.StartOffset() || again.EndOffset() != l.EndOffset() || again.Stats() != st {
		t.Fatalf("second crash: [%d, %d) %+v, want [%d, %d) %+v", again.StartOffset(), again.EndOffset(),
			again.Stats(), l.StartOffset(), l.EndOffset(), st)
	}
	m.checkContent(t, again)
	if again.StartOrdinal() != l.StartOrdinal() || again.EndOrdinal() != l.EndOrdinal() {
		t.Fatalf("second crash: ordinals [%d, %d), want [%d, %d)", again.StartOrdinal(), again.EndOrdinal(),
			l.StartOrdinal(), l.EndOrdinal())
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	m.openLive(t, clone)
	l = m.l
	if l.StartOffset() != again.StartOffset() || l.EndOffset() != again.EndOffset() || l.Stats() != st {
		t.Fatalf("reopen: [%d, %d), want [%d, %d)", l.StartOffset(), l.EndOffset(), again.StartOffset(), again.EndOffset())
	}
	m.fs = clone
	for len(m.history) > 0 && m.history[len(m.history)-1].last >= l.EndOffset() {
		m.history = m.history[:len(m.history)-1]
	}
	m.durable = l.EndOffset()
}

// checkContent reads l from StartOffset to EndOffset, batch by batch, and checks that it
// is the history's run of batches there, byte for byte.
func (m *crashModel) checkContent(t *rapid.T, l *Log) {
	i := 0
	for i < len(m.history) && m.history[i].first < l.StartOffset() {
		i++
	}
	startIdx := i
	if l.StartOffset() != l.EndOffset() && (i == len(m.history) || m.history[i].first != l.StartOffset()) {
		t.Fatalf("start %d is not a batch boundary of the history", l.StartOffset())
	}
	for off := l.StartOffset(); off < l.EndOffset(); i++ {
		got, err := l.Read(off, rapid.IntRange(0, 3000).Draw(t, "maxBytes"), math.MaxInt64)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		for len(got) > 0 {
			if i >= len(m.history) || m.history[i].first != off {
				t.Fatalf("read %d: batch not in the history", off)
			}
			w := m.history[i].bytes
			if !bytes.HasPrefix(got, w) {
				t.Fatalf("read %d: bytes differ from the batch appended", off)
			}
			got = got[len(w):]
			off = m.history[i].last + 1
			if len(got) > 0 {
				i++
			}
		}
	}
	m.checkOrdinals(t, l, startIdx)
	var n int64
	var heads []record.Header
	err := l.Batches(l.StartOffset(), func(h record.Header) bool {
		n += int64(h.LastOffsetDelta) + 1
		heads = append(heads, h)
		return true
	})
	if err != nil || n != l.EndOffset()-l.StartOffset() {
		t.Fatalf("Batches counted %d offsets of %d: %v", n, l.EndOffset()-l.StartOffset(), err)
	}
	// The time indexes: the max timestamp and OffsetForTime against a scan.
	maxTs := int64(math.MinInt64)
	for _, h := range heads {
		maxTs = max(maxTs, h.MaxTimestamp)
	}
	if got := l.Stats().MaxTimestamp; got != maxTs {
		t.Fatalf("max timestamp %d, batches say %d", got, maxTs)
	}
	for range 3 {
		ts := rapid.Int64Range(-10, m.nowMs+10).Draw(t, "offsetForTime")
		var want record.Header
		found := false
		for _, h := range heads {
			if h.MaxTimestamp >= ts {
				want, found = h, true
				break
			}
		}
		o, bts, ok := l.OffsetForTime(ts)
		if ok != found || ok && (o != want.BaseOffset || bts != want.MaxTimestamp) {
			t.Fatalf("OffsetForTime(%d) = %d, %d, %v; want %d, %d, %v", ts, o, bts, ok, want.BaseOffset, want.MaxTimestamp, found)
		}
	}
}

// checkOrdinals checks l's ordinals against the history, whose batch k has ordinal
// m.ordBase+k and whose batch i is the one at StartOffset (or the first after the log's
// end when it is empty): every batch's ordinal both ways, and a ReadOrdinals.
func (m *crashModel) checkOrdinals(t *rapid.T, l *Log, i int) {
	start := m.ordBase + int64(i)
	if l.StartOrdinal() != start {
		t.Fatalf("start ordinal %d, want %d", l.StartOrdinal(), start)
	}
	k := i
	for ; k < len(m.history) && m.history[k].first < l.EndOffset(); k++ {
		ord, b := m.ordBase+int64(k), m.history[k]
		if off, err := l.OffsetOfOrdinal(ord); err != nil || off != b.first {
			t.Fatalf("OffsetOfOrdinal(%d) = %d, %v; want %d", ord, off, err, b.first)
		}
		for _, off := range []int64{b.first, b.last} {
			if got, err := l.OrdinalOfOffset(off); err != nil || got != ord {
				t.Fatalf("OrdinalOfOffset(%d) = %d, %v; want %d", off, got, err, ord)
			}
		}
	}
	end := m.ordBase + int64(k)
	if l.EndOrdinal() != end {
		t.Fatalf("end ordinal %d, want %d", l.EndOrdinal(), end)
	}
	if off, err := l.OffsetOfOrdinal(end); err != nil || off != l.EndOffset() {
		t.Fatalf("OffsetOfOrdinal(end %d) = %d, %v", end, off, err)
	}
	if _, err := l.OffsetOfOrdinal(end + 1); !errors.Is(err, ErrOrdinalOutOfRange) {
		t.Fatalf("OffsetOfOrdinal past the end: %v", err)
	}
	from := rapid.Int64Range(start, end).Draw(t, "readFrom")
	to := rapid.Int64Range(from, end+1).Draw(t, "readTo")
	got, err := l.ReadOrdinals(from, to, rapid.IntRange(0, 3000).Draw(t, "readMaxBytes"))
	if err != nil {
		t.Fatalf("ReadOrdinals(%d, %d): %v", from, to, err)
	}
	for k := from - m.ordBase; len(got) > 0; k++ {
		if k >= min(to, end)-m.ordBase || !bytes.HasPrefix(got, m.history[k].bytes) {
			t.Fatalf("ReadOrdinals(%d, %d): batch %d differs", from, to, k)
		}
		got = got[len(m.history[k].bytes):]
	}
}

func (m *crashModel) invariants(t *rapid.T) {
	if m.failed {
		return
	}
	l := m.l
	if l.EndOffset() != m.end() {
		t.Fatalf("end %d, history ends at %d", l.EndOffset(), m.end())
	}
	if l.DurableOffset() > l.EndOffset() || l.DurableOffset() < l.StartOffset() {
		t.Fatalf("durable %d outside [%d, %d]", l.DurableOffset(), l.StartOffset(), l.EndOffset())
	}
	for i := 1; i < len(l.segs); i++ {
		if p := l.segs[i-1]; p.firstOrd+p.batches != l.segs[i].firstOrd {
			t.Fatalf("segment %d ends at ordinal %d, next starts at %d", i-1, p.firstOrd+p.batches, l.segs[i].firstOrd)
		}
		if l.segs[i-1].end != l.segs[i].base {
			t.Fatalf("segment %d ends at %d, next starts at %d", i-1, l.segs[i-1].end, l.segs[i].base)
		}
	}
	var bytes int64
	for _, s := range l.segs {
		bytes += s.size
	}
	if bytes != l.Stats().Bytes {
		t.Fatalf("stats say %d bytes, segments hold %d", l.Stats().Bytes, bytes)
	}
}

func dumpSegs(t *rapid.T, what string, l *Log) {
	for _, s := range l.segs {
		t.Logf("%s: seg [%d,%d) size %d state %d", what, s.base, s.end, s.size, s.state)
	}
}

// logFiles logs the files in testDir, and for each segment whether its seal is valid, for
// a failure's output.
func logFiles(t *rapid.T, fs *disk.MemFS) {
	names, _ := fs.List(testDir)
	t.Logf("files %v", names)
	for _, name := range names {
		base, ok := parseSegmentName(name, logSuffix)
		if !ok {
			continue
		}
		s := newSegment(base)
		var idx, tidx []byte
		if f, err := fs.Open(segmentName(testDir, base, logSuffix)); err == nil {
			s.size, _ = f.Size()
		}
		if f, err := fs.Open(segmentName(testDir, base, indexSuffix)); err == nil {
			n, _ := f.Size()
			idx = make([]byte, n)
			_ = readFull(f, idx, 0) // diagnostics only
		}
		if f, err := fs.Open(segmentName(testDir, base, timeIndexSuffix)); err == nil {
			n, _ := f.Size()
			tidx = make([]byte, n)
			_ = readFull(f, tidx, 0) // diagnostics only
		}
		t.Logf("segment %d: .log %d bytes, .index %d, .timeindex %d, sealed %v",
			base, s.size, len(idx), len(tidx), s.loadSealed(idx, tidx))
	}
}
