// Package log is a partition's log: record batches appended to segment files, with sparse
// offset and time indexes, recovery that truncates a torn tail, and retention.
//
// The model:
//  1. Open recovers the log from dir: every byte that was synced is there; an unsynced,
//     torn or corrupt tail of the last segment is truncated away.
//  2. Append writes batches (volatile) and assigns their offsets. It never waits for I/O.
//  3. PrepareSync hands out a SyncJob; the caller runs it off the event loop (or, in the
//     simulator, after a simulated delay) and reports back with SyncDone. DurableOffset
//     advances only then. At most one SyncJob is outstanding per log.
//  4. Read serves whole batches below an offset limit the caller chooses (the high watermark).
//
// A Log is not safe for concurrent use; it belongs to one event loop. SyncJob.Run is the one
// method meant to be called from another goroutine.
package log

import (
	"errors"

	"chronik/core/record"
)

// Errors. ErrOffsetOutOfRange maps to Kafka's OFFSET_OUT_OF_RANGE; ErrFailed to
// KAFKA_STORAGE_ERROR: after a failed sync or write the log refuses appends for good.
var (
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	ErrFailed           = errors.New("log: storage failed")
)

// Config bounds a log. Zero values take the defaults noted.
type Config struct {
	SegmentBytes       int64 // roll a segment past this size; default 1 GiB
	SegmentMs          int64 // roll a segment this old (first append); default 7 days
	IndexIntervalBytes int   // an index entry every this many bytes; default 4096
	RetentionBytes     int64 // delete oldest segments beyond this total; <=0 unlimited
	RetentionMs        int64 // delete segments whose newest record is older; <=0 unlimited
}

// Log is one partition's log in one directory.
type Log struct{}

// SyncJob is a unit of durable work: sync these files (and directory) so that every
// offset below End is durable.
type SyncJob struct {
	End int64 // offsets below End are durable once Run returns nil
}

// Open recovers or creates the log in dir.
func Open(fs FS, dir string, cfg Config, nowMs int64) (*Log, error) { panic("todo") }

// Append writes batches, one or more validated v2 record batches concatenated, assigning
// offsets from EndOffset on: each batch's baseOffset field is rewritten in place. It returns
// the first and last offsets assigned. It may roll to a new segment first. nowMs is the
// append time, used for segment age and for LogAppendTime.
func (l *Log) Append(batches []byte, nowMs int64) (first, last int64, err error) {
	panic("todo")
}

// Read returns whole batches starting with the one that contains offset and ending before
// limit (an exclusive offset, at most EndOffset). It returns at most maxBytes, except that
// the first batch is returned whole even when larger (KIP-74). Reading at limit returns
// nil. offset outside [StartOffset, EndOffset] is ErrOffsetOutOfRange. The caller owns
// the returned slice.
func (l *Log) Read(offset int64, maxBytes int, limit int64) ([]byte, error) { panic("todo") }

// StartOffset is the first offset still in the log.
func (l *Log) StartOffset() int64 { panic("todo") }

// EndOffset is the offset the next appended record will get.
func (l *Log) EndOffset() int64 { panic("todo") }

// DurableOffset is the end of the synced prefix: offsets below it survive a crash.
func (l *Log) DurableOffset() int64 { panic("todo") }

// OffsetForTime returns the first offset whose batch's max timestamp is >= ts, with that
// timestamp; ok is false when no batch qualifies.
func (l *Log) OffsetForTime(ts int64) (offset, batchTs int64, ok bool) { panic("todo") }

// PrepareSync returns the job that makes everything appended so far durable, or nil when
// nothing is unsynced or a job is already outstanding.
func (l *Log) PrepareSync() *SyncJob { panic("todo") }

// Run syncs the job's files. It may be called from any goroutine.
func (j *SyncJob) Run() error { panic("todo") }

// SyncDone reports the outcome of a job from PrepareSync. On error the log fails.
func (l *Log) SyncDone(j *SyncJob, err error) { panic("todo") }

// TruncateTo removes every offset >= offset (used by replication on divergence).
func (l *Log) TruncateTo(offset int64) error { panic("todo") }

// EnforceRetention deletes whole segments past the retention limits, never the active one.
func (l *Log) EnforceRetention(nowMs int64) error { panic("todo") }

// Batches calls fn for every batch header from offset from on (CRC not checked), for
// rebuilding producer state after a restart. fn returning false stops the walk.
func (l *Log) Batches(from int64, fn func(h record.Header) bool) error { panic("todo") }

// Close closes the log's files without syncing them.
func (l *Log) Close() error { panic("todo") }
