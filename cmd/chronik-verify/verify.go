package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits of the poll loop.
const (
	// maxPollRecords bounds the records one poll hands the checker.
	maxPollRecords = 10000
	// pollSlice is the longest one poll waits, so the idle and duration checks run.
	pollSlice = 250 * time.Millisecond
	// commitTimeout bounds the final offset commit.
	commitTimeout = 10 * time.Second
)

// config is what a verification run reads and how long.
type config struct {
	brokers []string
	group   string
	topics  []string
	// duration stops the run this long after it starts; 0: no limit.
	duration time.Duration
	// idleExit stops the run once no record has arrived for this long since the group
	// first assigned partitions; 0: never.
	idleExit time.Duration
	// fromZero expects each producer's sequences from 0 (the group starts at the log start).
	fromZero bool
	// progress prints a progress line this often to the progress writer; 0: never.
	progress time.Duration
	// loadReport is chronik-load's JSON reports, comma-separated, read when consumption
	// stops: they tell how many records each producer sent and how many failed ("" for
	// none). Producers must not repeat across reports (give each run its own -run-id).
	loadReport string
}

// result is a finished run.
type result struct {
	Counts      Counts        `json:"counts"`
	Faults      []Fault       `json:"faults"`
	FetchErrors int64         `json:"fetch_errors"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	Stopped     string        `json:"stopped"` // why the run ended
}

// verify reads the topics as a member of the group and checks every record until ctx
// ends, the duration passes or the topics idle out. It commits what it read and leaves
// the group before it returns.
func verify(ctx context.Context, cfg config, m *metrics, progress io.Writer) (result, error) {
	var assignedAt atomic.Int64 // unix nanos of the first assignment; 0 before
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.brokers...),
		kgo.ConsumerGroup(cfg.group),
		kgo.ConsumeTopics(cfg.topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			assignedAt.CompareAndSwap(0, time.Now().UnixNano())
		}),
	)
	if err != nil {
		return result{}, fmt.Errorf("verify: client: %w", err)
	}
	defer cl.Close()

	start := time.Now()
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	chk := NewChecker(cfg.fromZero)
	var (
		fetchErrors  int64
		lastRecord   time.Time
		nextProgress = start.Add(cfg.progress)
		stopped      string
	)
	for stopped == "" {
		pctx, cancel := context.WithTimeout(ctx, pollSlice)
		fetches := cl.PollRecords(pctx, maxPollRecords)
		cancel()
		if fetches.IsClientClosed() {
			stopped = "client closed"
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			fetchErrors++
			fmt.Fprintf(progress, "chronik-verify: fetch %s[%d]: %v\n", topic, partition, err)
		})
		now := time.Now()
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			chk.Check(r.Topic, r.Partition, r.Offset, r.Value)
			if m != nil && !r.Timestamp.IsZero() {
				m.age.Observe(now.Sub(r.Timestamp).Seconds())
			}
			n++
		})
		if n > 0 {
			lastRecord = now
		}
		if m != nil {
			m.publish(chk.Counts(), fetchErrors)
		}
		if cfg.progress > 0 && !now.Before(nextProgress) {
			printProgress(progress, now.Sub(start), chk.Counts())
			nextProgress = now.Add(cfg.progress)
		}
		switch {
		case ctx.Err() != nil && cfg.duration > 0 && now.Sub(start) >= cfg.duration:
			stopped = fmt.Sprintf("duration %v reached", cfg.duration)
		case ctx.Err() != nil:
			stopped = "interrupted"
		case cfg.idleExit > 0 && idleFor(assignedAt.Load(), lastRecord, now) >= cfg.idleExit:
			stopped = fmt.Sprintf("no record for %v", cfg.idleExit)
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if err := cl.CommitUncommittedOffsets(cctx); err != nil {
		fmt.Fprintf(progress, "chronik-verify: commit: %v\n", err)
	}
	for _, path := range splitList(cfg.loadReport) {
		if err := expectFromReport(chk, path); err != nil {
			return result{}, err
		}
	}
	counts := chk.Finish()
	if m != nil {
		m.publish(counts, fetchErrors)
	}
	return result{Counts: counts, Faults: chk.Faults(), FetchErrors: fetchErrors, Elapsed: time.Since(start), Stopped: stopped}, nil
}

// idleFor is how long the run has gone without a record: since the last record, or
// since the first assignment when none has come; 0 before the group assigned anything.
func idleFor(assignedNanos int64, lastRecord, now time.Time) time.Duration {
	if assignedNanos == 0 {
		return 0
	}
	since := time.Unix(0, assignedNanos)
	if lastRecord.After(since) {
		since = lastRecord
	}
	return now.Sub(since)
}

func printProgress(w io.Writer, elapsed time.Duration, c Counts) {
	fmt.Fprintf(w, "%6.1fs  records %d  producers %d  missing %d  duplicated %d  corrupt %d  out-of-order %d  redelivered %d\n",
		elapsed.Seconds(), c.Records, c.Producers, c.Missing, c.Duplicated, c.Corrupt, c.OutOfOrder, c.Redelivered)
}
