package log

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path"
	"slices"

	"chronik/core/record"
)

// scanBytes is the read size of Open's validating scan.
const scanBytes = 1 << 20

// Open recovers or creates the log in dir. nowMs starts the age (SegmentMs) of the
// recovered active segment.
//
// Recovery, segment by segment in offset order:
//  1. A segment other than the last whose .index ends with a valid seal (seal.go) is
//     trusted as it is, indexes included.
//  2. Any other segment is validated batch by batch from its start: record.Validate (the
//     full CRC check) and offset continuity (the first batch at the segment's base, each
//     next one right after the previous). Its indexes are rebuilt from the scan; a
//     segment other than the last that validates whole is sealed on the spot.
//  3. A sealed segment that the next one does not follow is a segment retention deleted
//     that a crash brought back (removals survive or vanish one by one): it and the
//     segments before it are deleted.
//  4. The first other segment that is cut short (a torn or corrupt tail) or does not end
//     where the next one begins becomes the last: its .log is truncated after the last
//     valid batch and every later segment is deleted.
//
// Deletions are two-phase, here as in retention: the .log files go first and their index
// files only after a directory sync, so that a .log a crash brings back keeps its seal.
//
// Everything that survives is made durable before Open returns (the active .log synced,
// truncations synced, the directory synced), so DurableOffset starts at EndOffset. A
// missing dir is created.
func Open(fsys FS, dir string, cfg Config, nowMs int64) (*Log, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := makeDir(fsys, dir); err != nil {
		return nil, fmt.Errorf("log: open: %w", err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("log: open: %w", err)
	}
	// A reset (ResetTo) a crash interrupted is finished, or undone when not committed.
	if changed, err := recoverReset(fsys, dir, names); err != nil {
		return nil, err
	} else if changed {
		if names, err = fsys.List(dir); err != nil {
			return nil, fmt.Errorf("log: open: %w", err)
		}
	}
	// Make what we see durable before sealing anything: a seal vouches that the
	// segment's successor exists durably (see run).
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("log: open: sync dir: %w", err)
	}
	l := &Log{fs: fsys, dir: dir, cfg: cfg, jobCap: math.MaxInt64, win: make([]byte, windowBytes)}
	r := recovery{l: l, nowMs: nowMs}
	l.nowMs = nowMs
	if err := r.run(names); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// makeDir creates dir if it is missing and makes its entry, and its parents' entries,
// durable. The parents are synced every time, not only when MkdirAll created them: an Open
// that crashed may have left them created but not durable.
func makeDir(fsys FS, dir string) error {
	if err := fsys.MkdirAll(dir); err != nil {
		return err
	}
	for d := path.Clean(dir); ; {
		parent := path.Dir(d)
		if err := fsys.SyncDir(parent); err != nil {
			return err
		}
		if parent == d || parent == "." || parent == "/" {
			return nil
		}
		d = parent
	}
}

// recovery is the state of one Open.
type recovery struct {
	l     *Log
	nowMs int64
	v     record.Validator
	buf   []byte // scan buffer
	// indexFiles are the paths of the .index and .timeindex files found, by base.
	indexFiles map[int64][]string
}

func (r *recovery) run(names []string) error {
	l := r.l
	var bases []int64 // sorted, as names are sorted and fixed-width
	r.indexFiles = map[int64][]string{}
	for _, name := range names {
		if base, ok := parseSegmentName(name, logSuffix); ok {
			bases = append(bases, base)
		} else if base, ok := parseSegmentName(name, indexSuffix); ok {
			r.indexFiles[base] = append(r.indexFiles[base], path.Join(l.dir, name))
		} else if base, ok := parseSegmentName(name, timeIndexSuffix); ok {
			r.indexFiles[base] = append(r.indexFiles[base], path.Join(l.dir, name))
		}
	}
	var last *segment // the segment recovery ended with
	lastSize := int64(0)
	for i, base := range bases {
		next := int64(-1)
		if i+1 < len(bases) {
			next = bases[i+1]
		}
		s, fileSize, intact, err := r.recoverSegment(base, next)
		if s != nil && len(l.segs) > 0 {
			prev := l.segs[len(l.segs)-1]
			s.firstOrd = prev.firstOrd + prev.batches
		}
		if s != nil {
			l.segs = append(l.segs, s)
			l.bytes += s.size
		}
		if err != nil {
			return err
		}
		if intact {
			continue
		}
		if s.state == stateSealSeen {
			// Whole, but the next segment does not start at its end: the segments so
			// far were deleted by retention and a crash brought some back (each removal
			// survives or vanishes on its own). It is not a lost roll: a sealed segment's
			// successor was durable before the seal was written. Nor a torn TruncateTo:
			// that unseals durably before it removes anything.
			if err := r.dropSegments(); err != nil {
				return err
			}
			continue
		}
		// Cut short, or followed by a segment whose predecessor was lost: s is the end
		// of the log and every later segment goes.
		last, lastSize = s, fileSize
		for _, gone := range bases[i+1:] {
			if err := r.remove(segmentName(l.dir, gone, logSuffix)); err != nil {
				return err
			}
		}
		break
	}
	if last == nil {
		s, err := l.createSegment(0, 0)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		last = s
	}
	if err := r.activate(last, lastSize); err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log: open: sync dir: %w", err)
	}
	l.dirDirty = false
	// Index files whose .log is gone, now durably: their seals vouch for nothing.
	for _, s := range l.segs {
		delete(r.indexFiles, s.base)
	}
	for _, base := range slices.Sorted(maps.Keys(r.indexFiles)) {
		for _, name := range r.indexFiles[base] {
			if err := r.remove(name); err != nil {
				return err
			}
		}
	}
	if l.dirDirty {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("log: open: sync dir: %w", err)
		}
		l.dirDirty = false
	}
	l.durable = last.end
	r.buf = nil
	return nil
}

// recoverSegment opens and recovers the segment at base, next being the base of the
// segment after it or -1. intact reports that it is whole and ends at next, so that
// recovery goes on with the next segment. fileSize is its .log's size before recovery.
// s.firstOrd is what its .index header says (0 without one); run chains it to the
// previous segment's end when there is one.
func (r *recovery) recoverSegment(base, next int64) (s *segment, fileSize int64, intact bool, err error) {
	l := r.l
	s = newSegment(base)
	if s.log, err = l.fs.Open(segmentName(l.dir, base, logSuffix)); err != nil {
		return nil, 0, false, fmt.Errorf("log: open segment %d: %w", base, err)
	}
	if s.idx, err = r.openOrCreate(base, indexSuffix); err == nil {
		s.tidx, err = r.openOrCreate(base, timeIndexSuffix)
	}
	if err == nil {
		fileSize, err = s.log.Size()
	}
	if err != nil {
		return s, 0, false, fmt.Errorf("log: open segment %d: %w", base, err)
	}
	sealedV1 := false
	if next >= 0 {
		ok, v1, err := r.loadSealed(s, fileSize)
		if err != nil {
			return s, 0, false, err
		}
		if ok {
			s.state = stateSealSeen
			return s, fileSize, s.end == next, nil
		}
		sealedV1 = v1
	}
	if s.firstOrd, err = r.headerOrd(s); err != nil {
		return s, 0, false, err
	}
	if err := r.scan(s, fileSize); err != nil {
		return s, 0, false, err
	}
	if next < 0 || s.size != fileSize || s.end != next {
		if sealedV1 && s.size == fileSize {
			// Whole and sealed in format 1, but not followed: see run.
			s.state = stateSealSeen
		}
		return s, fileSize, false, nil
	}
	return s, fileSize, true, r.sealNow(s)
}

// headerOrd returns the first ordinal s's .index header records, or 0 when it has none
// (a format-1 segment, or a header a crash tore: that segment is not the log's first).
func (r *recovery) headerOrd(s *segment) (int64, error) {
	n, err := s.idx.Size()
	if err != nil || n < idxHeaderBytes {
		return 0, err
	}
	b := make([]byte, idxHeaderBytes)
	if err := readFull(s.idx, b, 0); err != nil {
		return 0, fmt.Errorf("log: read index of segment %d: %w", s.base, err)
	}
	ord, _ := parseIdxHeader(b)
	return ord, nil
}

// openOrCreate opens the index file of the segment at base with suffix, creating it when
// it is missing.
func (r *recovery) openOrCreate(base int64, suffix string) (File, error) {
	name := segmentName(r.l.dir, base, suffix)
	f, err := r.l.fs.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		r.l.dirDirty = true
		return r.l.fs.Create(name)
	}
	return f, err
}

// loadSealed loads s's indexes when they carry a valid seal for a .log of fileSize bytes.
// v1 reports that they carry a valid format-1 seal instead (seal.go).
func (r *recovery) loadSealed(s *segment, fileSize int64) (ok, v1 bool, err error) {
	idxSize, err := s.idx.Size()
	if err != nil {
		return false, false, fmt.Errorf("log: open segment %d: %w", s.base, err)
	}
	tidxSize, err := s.tidx.Size()
	if err != nil {
		return false, false, fmt.Errorf("log: open segment %d: %w", s.base, err)
	}
	// A segment has at most one index entry per batch; a bigger file is not ours.
	maxEntries := fileSize/record.HeaderSize + 1
	if fileSize == 0 || fileSize > math.MaxUint32 ||
		idxSize > maxEntries*idxEntryBytes+idxHeaderBytes+sealBytes || tidxSize > maxEntries*tidxEntryBytes {
		return false, false, nil
	}
	idx := make([]byte, idxSize)
	tidx := make([]byte, tidxSize)
	if err := readFull(s.idx, idx, 0); err != nil {
		return false, false, fmt.Errorf("log: read index of segment %d: %w", s.base, err)
	}
	if err := readFull(s.tidx, tidx, 0); err != nil {
		return false, false, fmt.Errorf("log: read time index of segment %d: %w", s.base, err)
	}
	s.size = fileSize
	if !s.loadSealed(idx, tidx) {
		s.size = 0
		return false, sealedV1(idx, tidx, fileSize), nil
	}
	return true, false, nil
}

// scan validates s's .log of fileSize bytes from its start, tracking each valid batch in
// s (end, size, indexes), and stops at the first batch that is cut short, fails
// record.Validate or does not follow the previous one.
func (r *recovery) scan(s *segment, fileSize int64) error {
	interval := int64(r.l.cfg.IndexIntervalBytes)
	limit := min(fileSize, math.MaxUint32)
	if int64(len(r.buf)) < min(limit, scanBytes) {
		r.buf = make([]byte, min(limit, scanBytes))
	}
	var pos, bufStart int64
	bufN := 0
	fill := func() error { // reads the buffer full from pos
		n := int(min(int64(len(r.buf)), limit-pos))
		if err := readFull(s.log, r.buf[:n], pos); err != nil {
			return fmt.Errorf("log: recover segment %d: %w", s.base, err)
		}
		bufStart, bufN = pos, n
		return nil
	}
	for pos+record.HeaderSize <= limit {
		if pos+record.HeaderSize > bufStart+int64(bufN) {
			if err := fill(); err != nil {
				return err
			}
		}
		h, ok := peekHeader(r.buf[pos-bufStart : bufN])
		if !ok || pos+int64(h.Size()) > limit {
			break
		}
		n := int64(h.Size())
		if pos+n > bufStart+int64(bufN) {
			if n > int64(len(r.buf)) {
				r.buf = make([]byte, n)
			}
			if err := fill(); err != nil {
				return err
			}
		}
		b := r.buf[pos-bufStart : pos-bufStart+n]
		vh, err := r.v.Validate(b)
		if err != nil || vh.BaseOffset != s.end || vh.LastOffset()-s.base > math.MaxUint32 {
			break
		}
		s.track(vh, pos, interval)
		pos += n
	}
	return nil
}

// sealNow seals a segment that recovery validated whole: its .log synced, then its
// indexes rewritten with the seal and synced.
func (r *recovery) sealNow(s *segment) error {
	s.finishTimeIndex()
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("log: sync segment %d: %w", s.base, err)
	}
	idx := append(s.idxBuf[:len(s.idxBuf):len(s.idxBuf)], s.seal()...)
	if err := rewrite(s.tidx, s.tidxBuf); err != nil {
		return fmt.Errorf("log: rewrite time index of segment %d: %w", s.base, err)
	}
	if err := r.writeIndex(s, idx); err != nil {
		return fmt.Errorf("log: rewrite index of segment %d: %w", s.base, err)
	}
	s.state = stateSealed
	return nil
}

// rewrite replaces f's content with b, durably.
func rewrite(f File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// activate makes s, the segment recovery ended with, the active one: its .log cut to the
// valid prefix, its index files emptied (the active segment's indexes live in memory),
// all durably.
func (r *recovery) activate(s *segment, fileSize int64) error {
	if s.size < fileSize && !bugTornTail {
		if err := s.log.Truncate(s.size); err != nil {
			return fmt.Errorf("log: truncate segment %d: %w", s.base, err)
		}
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("log: sync segment %d: %w", s.base, err)
	}
	n, err := s.tidx.Size()
	if err == nil && n > 0 {
		err = rewrite(s.tidx, nil)
	}
	if err == nil {
		err = r.writeIndex(s, nil)
	}
	if err != nil {
		return fmt.Errorf("log: reset indexes of segment %d: %w", s.base, err)
	}
	s.idxDirty = false
	s.state = stateActive
	s.rollBaseMs = r.nowMs
	return nil
}

// writeIndex makes s's .index its header followed by tail, durably. It never removes a
// header that is already right: were a crash or a failed write to leave the file without
// one, the log's first segment would lose its first ordinal.
func (r *recovery) writeIndex(s *segment, tail []byte) error {
	if s.idxDirty && len(tail) == 0 {
		return s.idx.Sync() // created by this Open: it holds the header only
	}
	want := s.idxHeader()
	n, err := s.idx.Size()
	if err != nil {
		return err
	}
	if n >= idxHeaderBytes {
		got := make([]byte, idxHeaderBytes)
		if err := readFull(s.idx, got, 0); err != nil {
			return err
		}
		if string(got) == string(want) {
			if n != idxHeaderBytes || len(tail) > 0 {
				if err := s.idx.Truncate(idxHeaderBytes); err != nil {
					return err
				}
				if _, err := s.idx.Write(tail); err != nil {
					return err
				}
			}
			return s.idx.Sync()
		}
	}
	return rewrite(s.idx, append(want, tail...))
}

// dropSegments deletes the .log files of the segments recovered so far; their index
// files go once that is durable.
func (r *recovery) dropSegments() error {
	l := r.l
	for _, s := range l.segs {
		if err := s.closeFiles(); err != nil {
			return fmt.Errorf("log: open: close segment %d: %w", s.base, err)
		}
		if err := r.remove(segmentName(l.dir, s.base, logSuffix)); err != nil {
			return err
		}
	}
	clear(l.segs)
	l.segs, l.bytes = l.segs[:0], 0
	return nil
}

// remove deletes name, which List returned, and marks the directory for a sync.
func (r *recovery) remove(name string) error {
	r.l.dirDirty = true
	if err := r.l.fs.Remove(name); err != nil {
		return fmt.Errorf("log: open: remove %s: %w", name, err)
	}
	return nil
}
