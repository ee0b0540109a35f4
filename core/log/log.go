// Package log is a partition's log: record batches appended to segment files, with sparse
// offset and time indexes, recovery that truncates a torn tail, and retention.
//
// The model:
//  1. Open recovers the log from dir: every byte that was synced is there; an unsynced,
//     torn or corrupt tail is truncated away, and everything that survives is made
//     durable before Open returns.
//  2. Append writes batches (volatile) and assigns their offsets. It never waits for I/O.
//  3. PrepareSync hands out a SyncJob; the caller runs it off the event loop (or, in the
//     simulator, after a simulated delay) and reports back with SyncDone. DurableOffset
//     advances only then. At most one SyncJob is outstanding per log.
//  4. Read serves whole batches below an offset limit the caller chooses (the high watermark).
//
// A Log is not safe for concurrent use; it belongs to one event loop. SyncJob.Run is the one
// method meant to be called from another goroutine: it touches only the files it captured.
//
// On disk, dir holds segments named by base offset as 20 zero-padded digits: a .log of
// concatenated batches, a sparse .index (a header with the segment's first batch ordinal,
// then entries of relative offset uint32, position uint32, relative ordinal uint32) and a
// .timeindex (max timestamp so far int64, relative offset uint32). The active (last)
// segment's index entries live in memory and are written when it rolls; once a rolled
// segment's .log is durable, a seal is appended to its .index (seal.go) so that Open can
// trust it without reading it. Batch ordinals (ordinal.go) number the batches for
// replication, which maps them to Raft indexes. Open validates every unsealed segment batch by batch (CRC and offset
// continuity), truncates at the first bad batch and deletes every segment after it (see
// Open for the whole procedure).
package log

import (
	"errors"
	"fmt"
	"math"
)

// Errors. ErrOffsetOutOfRange maps to Kafka's OFFSET_OUT_OF_RANGE; ErrFailed to
// KAFKA_STORAGE_ERROR: after a failed sync or write the log refuses appends for good.
// ErrCorrupt marks a segment that does not parse where the log's own state says it must
// (damage after Open); it maps to KAFKA_STORAGE_ERROR too. ErrNotBoundary is returned by
// TruncateTo for an offset inside a batch.
var (
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	ErrFailed           = errors.New("log: storage failed")
	ErrCorrupt          = errors.New("log: segment corrupt")
	ErrNotBoundary      = errors.New("log: offset is not a batch boundary")
)

// Config bounds a log. Zero values take the defaults noted.
type Config struct {
	SegmentBytes       int64 // roll a segment past this size; default 1 GiB, at most 2 GiB-1
	SegmentMs          int64 // roll a segment this old (first append); default 7 days
	IndexIntervalBytes int   // an index entry every this many bytes; default 4096
	RetentionBytes     int64 // delete oldest segments beyond this total; <=0 unlimited
	RetentionMs        int64 // delete segments whose newest record is older; <=0 unlimited
}

// MaxAppendBytes bounds the bytes of one Append: positions in a segment are uint32.
const MaxAppendBytes = math.MaxInt32

func (c Config) withDefaults() (Config, error) {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = 7 * 24 * 60 * 60 * 1000
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = 4096
	}
	switch {
	case c.SegmentBytes < 0 || c.SegmentBytes > math.MaxInt32:
		return c, fmt.Errorf("log: SegmentBytes %d outside [1, %d]", c.SegmentBytes, math.MaxInt32)
	case c.SegmentMs < 0:
		return c, fmt.Errorf("log: negative SegmentMs %d", c.SegmentMs)
	case c.IndexIntervalBytes < 0:
		return c, fmt.Errorf("log: negative IndexIntervalBytes %d", c.IndexIntervalBytes)
	}
	return c, nil
}

// Log is one partition's log in one directory.
type Log struct {
	fs  FS
	dir string
	cfg Config

	// segs are the segments by base offset; the last is the active one, the only one
	// appended to. Invariant: len(segs) >= 1 and segs[i].end == segs[i+1].base.
	segs []*segment
	// bytes is the sum of the segments' sizes.
	bytes int64
	// durable is the end of the synced prefix.
	// Invariant: segs[0].base <= durable <= end of the active segment, and every byte of
	// the log below it is durable. A byte above it is in a segment with logDirty set, in
	// state stateRolled, or in the outstanding job's files.
	durable int64

	// pending are the non-active segments the next SyncJob has work for: state
	// stateRolled (sync the .log) or stateSealWritten (sync the indexes). It may hold
	// segments since removed or reactivated, or one twice; PrepareSync skips those.
	pending []*segment
	// dirDirty is set when an entry of dir was created or removed since the last
	// PrepareSync.
	dirDirty bool
	// job is the outstanding SyncJob, or nil.
	job *SyncJob
	// jobCap bounds what the outstanding job may make durable: the lowest offset
	// TruncateTo cut to since it was prepared (math.MaxInt64 when none).
	jobCap int64
	// dropJobDoomed is set when ResetTo removed every segment file while a job was
	// outstanding: SyncDone must not remove the index files that job captured, as a
	// segment of the new log may have the same name.
	dropJobDoomed bool
	// doomed are the paths of index files of segments whose .log retention removed, to be
	// removed once a SyncDir has made that durable.
	doomed []string
	// closeLater are files of removed segments that the outstanding job may still sync;
	// SyncDone closes them.
	closeLater []File

	// failed is the error that failed the log, or nil.
	failed error

	// nowMs is the latest time Open or Append was given: a segment TruncateTo makes
	// active again counts its age (SegmentMs) from it.
	nowMs int64

	// win is the window header walks read through (walk.go).
	win []byte
}

// StartOffset is the first offset still in the log.
func (l *Log) StartOffset() int64 { return l.segs[0].base }

// EndOffset is the offset the next appended record will get.
func (l *Log) EndOffset() int64 { return l.active().end }

// DurableOffset is the end of the synced prefix: offsets below it survive a crash.
func (l *Log) DurableOffset() int64 { return l.durable }

// Stats describes the log's files.
type Stats struct {
	Segments int   // segment files, the active one included
	Bytes    int64 // bytes in all .log files
	// MaxTimestamp is the largest batch MaxTimestamp in the log, math.MinInt64 when the
	// log is empty.
	MaxTimestamp int64
}

// Stats returns the log's statistics.
func (l *Log) Stats() Stats {
	st := Stats{Segments: len(l.segs), Bytes: l.bytes, MaxTimestamp: math.MinInt64}
	for _, s := range l.segs {
		st.MaxTimestamp = max(st.MaxTimestamp, s.maxTs)
	}
	return st
}

// Err returns the error that failed the log, or nil while it serves.
func (l *Log) Err() error { return l.failed }

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// segIndex returns the index of the segment that holds offset, which must be in
// [StartOffset, EndOffset]; at EndOffset it is the active segment.
func (l *Log) segIndex(offset int64) int {
	lo, hi := 0, len(l.segs) // first segment with base > offset
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.segs[m].base <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// fail fails the log with err and returns err marked as ErrFailed.
func (l *Log) fail(err error) error {
	l.markFailed(err)
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// markFailed makes the log refuse appends for good, remembering the first cause.
func (l *Log) markFailed(err error) {
	if l.failed == nil {
		l.failed = err
	}
}

// Close closes the log's files without syncing them. It must not be called while a
// SyncJob is running.
func (l *Log) Close() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.closeFiles())
	}
	for _, f := range l.closeLater {
		errs = append(errs, f.Close())
	}
	l.closeLater = nil
	return errors.Join(errs...)
}
