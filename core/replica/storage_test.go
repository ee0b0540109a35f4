package replica

import (
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/log"
	"chronik/disk"
)

// newTestStorage opens a fresh storage for voters 1, 2, 3 on fs.
func newTestStorage(t *testing.T, fs *disk.MemFS, maxCacheBytes int) *Storage {
	t.Helper()
	s, err := openStorage(fs, dataDir, log.Config{}, 0, &pb.ConfState{Voters: []uint64{1, 2, 3}}, maxCacheBytes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entriesOf builds consecutive entries from index lo with the given terms; term 0 marks
// an empty entry of the previous term.
func entriesOf(lo uint64, terms ...uint64) []pb.Entry {
	var ents []pb.Entry
	for i, term := range terms {
		e := pb.Entry{Index: lo + uint64(i), Term: term, Data: makeBatch(batchSpec{records: 1 + i%3, fill: byte(i)})}
		ents = append(ents, e)
	}
	return ents
}

func syncStorage(t *testing.T, s *Storage) {
	t.Helper()
	for s.log.NeedsSync() {
		j := s.log.PrepareSync()
		s.log.SyncDone(j, j.Run())
	}
}

func TestStorageAppendTruncateReopen(t *testing.T) {
	fs := disk.NewMem()
	s := newTestStorage(t, fs, 0)
	if first, _ := s.FirstIndex(); first != 1 {
		t.Fatalf("first index %d", first)
	}
	if last, _ := s.LastIndex(); last != 0 {
		t.Fatalf("last index %d", last)
	}
	if err := s.append(entriesOf(1, 1, 1, 2, 2, 2, 3), 0); err != nil {
		t.Fatal(err)
	}
	// Entry 5 onwards replaced by term 4 entries.
	if err := s.append(entriesOf(5, 4, 4, 4), 0); err != nil {
		t.Fatal(err)
	}
	check := func(s *Storage) {
		t.Helper()
		wantTerms := []uint64{0, 1, 1, 2, 2, 4, 4, 4}
		if last, _ := s.LastIndex(); last != 7 {
			t.Fatalf("last index %d", last)
		}
		for i, want := range wantTerms {
			if got, err := s.Term(uint64(i)); err != nil || got != want {
				t.Fatalf("term(%d) = %d, %v; want %d", i, got, err, want)
			}
		}
		if _, err := s.Term(8); err != raft.ErrUnavailable {
			t.Fatalf("term(8): %v", err)
		}
		ents, err := s.Entries(2, 8, 1<<20)
		if err != nil || len(ents) != 6 {
			t.Fatalf("entries: %d, %v", len(ents), err)
		}
		for i, e := range ents {
			if e.Index != uint64(2+i) || e.Term != wantTerms[2+i] {
				t.Fatalf("entry %d: %+v", 2+i, e)
			}
		}
		if ents, _ := s.Entries(2, 8, 1); len(ents) != 1 {
			t.Fatalf("maxSize 1 gave %d entries, want 1", len(ents))
		}
		if _, err := s.Entries(0, 2, 1<<20); err != raft.ErrCompacted {
			t.Fatalf("entries from 0: %v", err)
		}
	}
	check(s)
	syncStorage(t, s)
	s.state.hard = pb.HardState{Term: 4, Vote: 2, Commit: 6}
	if err := s.state.setHardState(s.state.hard); err != nil {
		t.Fatal(err)
	}
	if err := s.state.f.Sync(); err != nil {
		t.Fatal(err)
	}
	re, err := openStorage(fs.CrashClone(nil, disk.CrashOptions{}), dataDir, log.Config{}, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(re)
	hs, cs, _ := re.InitialState()
	if hs != (pb.HardState{Term: 4, Vote: 2, Commit: 6}) || len(cs.Voters) != 3 {
		t.Fatalf("initial state %+v %+v", hs, cs)
	}
}

func TestRecoveredHardState(t *testing.T) {
	tests := []struct {
		name                         string
		hs                           pb.HardState
		lastTerm, snapIndex, lastIdx uint64
		want                         pb.HardState
	}{
		{"fresh", pb.HardState{}, 0, 0, 0, pb.HardState{}},
		{"consistent", pb.HardState{Term: 3, Vote: 1, Commit: 5}, 3, 0, 9, pb.HardState{Term: 3, Vote: 1, Commit: 5}},
		{"commit past the log", pb.HardState{Term: 3, Vote: 1, Commit: 12}, 3, 0, 9, pb.HardState{Term: 3, Vote: 1, Commit: 9}},
		{"term record lost", pb.HardState{Term: 2, Vote: 1, Commit: 4}, 3, 0, 9, pb.HardState{Term: 3, Commit: 4}},
		{"no record, entries kept", pb.HardState{}, 1, 0, 2, pb.HardState{Term: 1}},
		{"commit below the log start", pb.HardState{Term: 3, Vote: 1, Commit: 4}, 3, 7, 9, pb.HardState{Term: 3, Vote: 1, Commit: 7}},
		{"snapshot installed, log empty", pb.HardState{Term: 4, Commit: 2}, 4, 7, 7, pb.HardState{Term: 4, Commit: 7}},
	}
	for _, tt := range tests {
		if got := recoveredHardState(tt.hs, tt.lastTerm, tt.snapIndex, tt.lastIdx); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	s := newTestStorage(t, disk.NewMem(), 0)
	// Entries 1-2 in term 2, 3-5 in term 4, 6 in term 7; each entry i has 1+(i-1)%3 records.
	if err := s.append(entriesOf(1, 2, 2, 4, 4, 4, 7), 0); err != nil {
		t.Fatal(err)
	}
	// Offsets: entry1 [0], entry2 [1,2], entry3 [3,5], entry4 [6], entry5 [7,8], entry6 [9,11]; end 12.
	tests := []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1},
		{0, -1, -1},
		{1, -1, -1},
		{2, 2, 3},
		{3, 2, 3},
		{4, 4, 9},
		{6, 4, 9},
		{7, 7, 12},
		{9, 7, 12},
	}
	for _, tt := range tests {
		e, end := s.OffsetForLeaderEpoch(tt.epoch)
		if e != tt.wantEpoch || end != tt.wantEnd {
			t.Errorf("OffsetForLeaderEpoch(%d) = %d, %d; want %d, %d", tt.epoch, e, end, tt.wantEpoch, tt.wantEnd)
		}
	}
}

func TestStateFileTornTail(t *testing.T) {
	fs := disk.NewMem()
	s := newTestStorage(t, fs, 0)
	for term := uint64(1); term <= 3; term++ {
		if err := s.state.setHardState(pb.HardState{Term: term, Vote: 1}); err != nil {
			t.Fatal(err)
		}
		if term < 3 {
			if err := s.state.f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Term 3's record is unsynced: a crash keeps it, drops it, or tears it.
	for seed := uint64(0); seed < 20; seed++ {
		crashed := fs.CrashClone(newRand(seed), disk.CrashOptions{KeepProb: 0.3, TearProb: 0.5})
		re, err := openStorage(crashed, dataDir, log.Config{}, 0, nil, 0)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if term := re.state.hard.Term; term != 2 && term != 3 {
			t.Fatalf("seed %d: recovered term %d", seed, term)
		}
		// The torn tail is cut: a record appended now is read back.
		if err := re.state.setHardState(pb.HardState{Term: 9, Vote: 3}); err != nil {
			t.Fatal(err)
		}
		if err := re.state.f.Sync(); err != nil {
			t.Fatal(err)
		}
		again, err := openStorage(crashed.CrashClone(nil, disk.CrashOptions{}), dataDir, log.Config{}, 0, nil, 0)
		if err != nil || again.state.hard.Term != 9 {
			t.Fatalf("seed %d: after the cut: %v, %+v", seed, err, again.state.hard)
		}
	}
}

func TestStateFileRewrite(t *testing.T) {
	fs := disk.NewMem()
	s := newTestStorage(t, fs, 0)
	for term := uint64(1); term <= 3000; term++ {
		if err := s.state.setHardState(pb.HardState{Term: term, Vote: term % 3}); err != nil {
			t.Fatal(err)
		}
	}
	if s.state.size > maxStateFileBytes {
		t.Fatalf("state file of %d bytes", s.state.size)
	}
	if err := s.state.f.Sync(); err != nil {
		t.Fatal(err)
	}
	re, err := openStorage(fs.CrashClone(nil, disk.CrashOptions{}), dataDir, log.Config{}, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if re.state.hard.Term != 3000 || len(re.state.conf.Voters) != 3 {
		t.Fatalf("after rewrites: %+v %+v", re.state.hard, re.state.conf)
	}
	names, _ := fs.List(dataDir)
	for _, n := range names {
		if n == stateTempName {
			t.Fatalf("temporary file left: %v", names)
		}
	}
}

// TestStorageOffsetsFromOrdinals: with the recent-offsets window at its smallest, entry
// offsets come from the log's batch ordinals: lookups, reads, a truncation below the
// window and a reopen all agree with the offsets the entries were written at.
func TestStorageOffsetsFromOrdinals(t *testing.T) {
	fs := disk.NewMem()
	s := newTestStorage(t, fs, 0)
	s.maxRecent = 1
	first := s
	// Entry i (from 1) has 1+(i-1)%3 records: offsets 0, 1, 3, 6, 7, 9, 12, 13, 15; end 18.
	if err := s.append(entriesOf(1, 1, 1, 2, 2, 2, 3, 3, 3, 3), 0); err != nil {
		t.Fatal(err)
	}
	want := []int64{0, 1, 3, 6, 7, 9, 12, 13, 15, 18} // entries 1-9, then the end
	check := func(what string, s *Storage, n int) {
		t.Helper()
		if s == first && len(s.recent) > 2 {
			t.Fatalf("%s: %d recent offsets kept", what, len(s.recent))
		}
		for k := range n + 1 {
			if got := s.offsetOf(uint64(1 + k)); got != want[k] {
				t.Fatalf("%s: offset of entry %d = %d, want %d", what, 1+k, got, want[k])
			}
		}
		ents, err := s.Entries(1, uint64(n+1), 1<<20)
		if err != nil || len(ents) != n {
			t.Fatalf("%s: entries: %d, %v", what, len(ents), err)
		}
	}
	check("appended", s, 9)
	if err := s.append(entriesOf(4, 5, 5), 0); err != nil { // cuts entries 4-9, below the window
		t.Fatal(err)
	}
	want = []int64{0, 1, 3, 6, 7, 9}
	check("truncated", s, 5)
	syncStorage(t, s)
	re, err := openStorage(fs.CrashClone(nil, disk.CrashOptions{}), dataDir, log.Config{}, 0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("reopened", re, 5) // rebuilt with the default window: from recent
}

// TestCacheBudget: storages sharing a budget grow their caches to MaxCacheBytes while
// together within Limit, keep Floor once past it, and give their bytes back when they
// drop their caches, truncate or close.
func TestCacheBudget(t *testing.T) {
	size := len(entriesOf(1, 1)[0].Data)
	budget := &CacheBudget{Limit: 10 * size, Floor: 2 * size}
	open := func(dir string) *Storage {
		s, err := openStorage(disk.NewMem(), dir, log.Config{}, 0, &pb.ConfState{Voters: []uint64{1, 2, 3}}, 8*size)
		if err != nil {
			t.Fatal(err)
		}
		s.budget = budget
		return s
	}
	a, b := open("a"), open("b")
	sum := func() int { return a.cacheBytes + b.cacheBytes }
	appendOne := func(s *Storage, term uint64) {
		t.Helper()
		last, _ := s.LastIndex()
		e := pb.Entry{Index: last + 1, Term: term, Data: makeBatch(batchSpec{records: 1})}
		if err := s.append([]pb.Entry{e}, 0); err != nil {
			t.Fatal(err)
		}
		if budget.Used() != sum() {
			t.Fatalf("budget used %d, caches hold %d", budget.Used(), sum())
		}
	}
	for range 12 {
		appendOne(a, 1)
	}
	if a.cacheBytes != 8*size {
		t.Fatalf("a alone caches %d bytes, want its max %d", a.cacheBytes, 8*size)
	}
	for range 3 {
		appendOne(b, 1)
	}
	if b.cacheBytes != 2*size {
		t.Fatalf("b past the budget caches %d bytes, want the floor %d", b.cacheBytes, 2*size)
	}
	appendOne(a, 1)
	if a.cacheBytes != 2*size {
		t.Fatalf("a past the budget caches %d bytes, want the floor %d", a.cacheBytes, 2*size)
	}
	if err := a.truncate(a.lastIndex()); err != nil {
		t.Fatal(err)
	}
	if budget.Used() != sum() || a.cacheBytes != size {
		t.Fatalf("after truncate: used %d, a %d, b %d", budget.Used(), a.cacheBytes, b.cacheBytes)
	}
	a.dropCache()
	if budget.Used() != b.cacheBytes {
		t.Fatalf("after dropCache: used %d, b %d", budget.Used(), b.cacheBytes)
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	if budget.Used() != 0 {
		t.Fatalf("after close: used %d", budget.Used())
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
}
