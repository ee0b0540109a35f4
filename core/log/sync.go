package log

import (
	"fmt"
	"math"
)

// SyncJob is a unit of durable work: sync these files (and directory) so that every
// offset below End is durable.
type SyncJob struct {
	End int64 // offsets below End are durable once Run returns nil

	// What Run touches, captured at PrepareSync and never changed after.
	files   []File
	fs      FS
	dir     string
	syncDir bool
	// doomed are index files SyncDone removes once the directory is synced (retention).
	doomed []string

	// What SyncDone does afterwards, on the loop; Run never reads these.
	logSynced  []segmentRef // rolled segments whose .log this job syncs: seal them
	sealSynced []segmentRef // segments whose seal this job syncs: sealed
}

// segmentRef names a segment as it was when a job captured it.
type segmentRef struct {
	s   *segment
	gen uint64
}

// valid reports whether the segment is still the one captured, in state st.
func (r segmentRef) valid(st sealState) bool {
	return !r.s.removed && r.s.gen == r.gen && r.s.state == st
}

// PrepareSync returns the job that makes everything appended so far durable, or nil when
// nothing is unsynced, a job is already outstanding or the log has failed. The job syncs
// the .log of every segment rolled since the last job, the indexes of segments sealed since
// the last job, the active .log, the .index header of every segment created since the
// last job (its first ordinal) and, when entries were created or removed, the directory.
//
// A job may have nothing to make durable below a new End: after a roll, sealing takes a
// second job that syncs the rolled segment's indexes (see NeedsSync).
func (l *Log) PrepareSync() *SyncJob {
	if l.job != nil || !l.NeedsSync() {
		return nil
	}
	a := l.active()
	j := &SyncJob{End: a.end, fs: l.fs, dir: l.dir, syncDir: l.dirDirty}
	for _, s := range l.pending {
		switch {
		case s.removed || s.state == stateActive:
			// Reactivated or gone since it was queued.
		case s.state == stateSyncing || s.state == stateSealSyncing:
			// Queued twice (rolled, reactivated by TruncateTo, rolled again): captured above.
		case s.state == stateRolled:
			if s.logDirty {
				j.files = append(j.files, s.log)
				s.logDirty = false
			}
			if s.idxDirty {
				j.files = append(j.files, s.idx)
				s.idxDirty = false
			}
			s.state = stateSyncing
			j.logSynced = append(j.logSynced, segmentRef{s, s.gen})
		case s.state == stateSealWritten:
			j.files = append(j.files, s.tidx, s.idx)
			s.idxDirty = false
			s.state = stateSealSyncing
			j.sealSynced = append(j.sealSynced, segmentRef{s, s.gen})
		default:
			panic(fmt.Sprintf("log: segment %d pending in state %d", s.base, s.state))
		}
	}
	clear(l.pending)
	l.pending = l.pending[:0]
	if a.logDirty {
		j.files = append(j.files, a.log)
		a.logDirty = false
	}
	if a.idxDirty {
		j.files = append(j.files, a.idx)
		a.idxDirty = false
	}
	if l.dirDirty {
		j.doomed, l.doomed = l.doomed, nil
	}
	l.dirDirty = false
	l.job = j
	l.jobCap = math.MaxInt64
	return j
}

// NeedsSync reports whether the log has work for a SyncJob: appended or truncated data not
// yet durable, a rolled segment to sync or seal, a directory entry created or removed. A
// caller that drives syncs by it, rather than by DurableOffset < EndOffset, also gets
// rolled segments sealed promptly, which retention waits for. While a job is outstanding
// it reports the work for the next one. It is false once the log has failed.
func (l *Log) NeedsSync() bool {
	a := l.active()
	return l.failed == nil && (l.durable < a.end || len(l.pending) > 0 || l.dirDirty || a.logDirty || a.idxDirty)
}

// Run syncs the job's files, then the directory when needed. It may be called from any
// goroutine; it touches nothing but what PrepareSync captured.
func (j *SyncJob) Run() error {
	for _, f := range j.files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("log: sync: %w", err)
		}
	}
	if j.syncDir {
		if err := j.fs.SyncDir(j.dir); err != nil {
			return fmt.Errorf("log: sync dir: %w", err)
		}
	}
	return nil
}

// SyncDone reports the outcome of a job from PrepareSync. On error the log fails. On
// success DurableOffset advances to the job's End (or to the offset TruncateTo cut to
// meanwhile, if lower), and each rolled segment whose .log the job synced gets its seal
// written, for the next job to sync. j must be the outstanding job.
func (l *Log) SyncDone(j *SyncJob, err error) {
	if j == nil || j != l.job {
		panic("log: SyncDone of a job that is not outstanding")
	}
	l.job = nil
	doomed := j.doomed
	if l.dropJobDoomed {
		doomed, l.dropJobDoomed = nil, false
	}
	for _, f := range l.closeLater {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("log: close removed segment: %w", cerr)
		}
	}
	clear(l.closeLater)
	l.closeLater = l.closeLater[:0]
	if err != nil {
		l.markFailed(err)
		return
	}
	l.durable = max(l.durable, min(j.End, l.jobCap, l.EndOffset()))
	for _, name := range doomed {
		if err := l.fs.Remove(name); err != nil {
			l.markFailed(fmt.Errorf("log: retention: %w", err))
			return
		}
		l.dirDirty = true
	}
	for _, r := range j.sealSynced {
		if r.valid(stateSealSyncing) {
			r.s.state = stateSealed
		}
	}
	for _, r := range j.logSynced {
		if !r.valid(stateSyncing) {
			continue
		}
		if _, err := r.s.idx.Write(r.s.seal()); err != nil {
			l.markFailed(fmt.Errorf("log: seal segment %d: %w", r.s.base, err))
			return
		}
		r.s.state = stateSealWritten
		l.pending = append(l.pending, r.s)
	}
}
