package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits of the produce phase.
const (
	// maxRecordsPerProducer caps a producer even when only -duration limits the run.
	maxRecordsPerProducer = 50_000_000
	// produceGrace is how long, past -duration, acknowledgements may take before the
	// phase gives up (records then fail with a context error and verification fails).
	produceGrace = 2 * time.Minute
	// maxOffset is the largest offset an ack can pack (see packAck).
	maxOffset = 1<<48 - 2
	// maxPartitions is the largest partition count an ack can pack.
	maxPartitions = 1 << 15
	// minPaceSleep is the shortest pause a paced producer takes: below it, sleeping costs
	// more than it saves, and the producer sends what is due in a small burst instead.
	minPaceSleep = 200 * time.Microsecond
)

// produceSpec is what one produce phase does.
type produceSpec struct {
	seeds     []string // every broker's address
	topic     string
	size      int           // record value bytes
	producers int           // kgo clients, each on its own goroutine
	records   int           // total across producers; 0: no count limit
	duration  time.Duration // stop enqueueing after this; 0: no time limit
	rate      float64       // records per second across producers; 0: as fast as kgo accepts
	clientOpt []kgo.Opt     // producer options shared by every client
}

// producerResult is what one producer saw. acks[seq] is the packed (partition, offset)
// the broker acknowledged record seq at, or 0 if it was not acknowledged.
type producerResult struct {
	mu   sync.Mutex
	acks []uint64
	// latency is the promise time minus the Produce call time per acked record, or, for a
	// paced producer, minus the time the record was due, so that a producer that falls
	// behind its schedule does not hide the wait (coordinated omission).
	latency  []time.Duration
	lastAck  time.Time
	errs     int
	firstErr error
}

// packAck packs a record's place for producerResult.acks; 0 means "no ack".
func packAck(partition int32, offset int64) uint64 {
	if partition < 0 || partition >= maxPartitions || offset < 0 || offset > maxOffset {
		panic(fmt.Sprintf("bench: ack at partition %d offset %d out of packable range", partition, offset))
	}
	return uint64(partition)<<48 | uint64(offset+1)
}

func unpackAck(a uint64) (partition int32, offset int64) {
	return int32(a >> 48), int64(a&(1<<48-1)) - 1
}

// produceResult is one produce phase's outcome.
type produceResult struct {
	producers []*producerResult
	sent      int // records handed to Produce
	acked     int
	elapsed   time.Duration // first Produce call to last acknowledgement
	latencies []time.Duration
	errs      int
	firstErr  error
}

// produce runs spec.producers clients concurrently, each enqueueing records as fast as
// kgo accepts them (or, with spec.rate, at its share of that rate) until its share of
// spec.records is sent or spec.duration has passed, then flushing.
func produce(ctx context.Context, spec produceSpec) (*produceResult, error) {
	clients := make([]*kgo.Client, spec.producers)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	for i := range clients {
		opts := append([]kgo.Opt{kgo.SeedBrokers(spec.seeds...), kgo.DefaultProduceTopic(spec.topic)}, spec.clientOpt...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, err
		}
		clients[i] = cl
		// Connect and learn the topic's leaders before the clock starts.
		pctx, cancel := context.WithTimeout(ctx, readyTimeout)
		err = cl.Ping(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("bench: ping %s: %w", strings.Join(spec.seeds, ","), err)
		}
	}

	limit := spec.duration + produceGrace
	if spec.duration == 0 {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	results := make([]*producerResult, spec.producers)
	sent := make([]int, spec.producers)
	start := time.Now()
	var deadline time.Time
	if spec.duration > 0 {
		deadline = start.Add(spec.duration)
	}
	var wg sync.WaitGroup
	for i, cl := range clients {
		results[i] = &producerResult{}
		quota := maxRecordsPerProducer
		if spec.records > 0 {
			quota = spec.records / spec.producers
			if i < spec.records%spec.producers {
				quota++
			}
		}
		pace := pacer{start: start}
		if spec.rate > 0 {
			pace.every = time.Duration(float64(time.Second) * float64(spec.producers) / spec.rate)
		}
		wg.Go(func() {
			sent[i] = runProducer(ctx, cl, uint32(i), spec.size, quota, deadline, pace, results[i])
		})
	}
	wg.Wait()
	// Closing fails whatever a timed-out Flush left buffered, so that every record's
	// promise has run before the results are read.
	for i, cl := range clients {
		cl.Close()
		clients[i] = nil
	}

	res := &produceResult{producers: results}
	var last time.Time
	for i, r := range results {
		res.sent += sent[i]
		res.errs += r.errs
		if res.firstErr == nil {
			res.firstErr = r.firstErr
		}
		res.latencies = append(res.latencies, r.latency...)
		res.acked += len(r.latency)
		if r.lastAck.After(last) {
			last = r.lastAck
		}
	}
	res.elapsed = last.Sub(start)
	if res.acked+res.errs != res.sent {
		return res, fmt.Errorf("bench: %d records sent but %d acked and %d failed: promises missing", res.sent, res.acked, res.errs)
	}
	return res, nil
}

// pacer schedules one producer's records: record seq is due at start + seq*every. A zero
// every sends each record as soon as the client accepts it.
type pacer struct {
	start time.Time
	every time.Duration
}

// wait returns when record seq is due, or at once when it is overdue or the pacer is off,
// and returns the time the record counts its latency from.
func (p pacer) wait(seq int) time.Time {
	if p.every <= 0 {
		return time.Now()
	}
	due := p.start.Add(time.Duration(seq) * p.every)
	if d := time.Until(due); d >= minPaceSleep {
		time.Sleep(d)
	}
	return due
}

// runProducer enqueues up to quota records from producer id until deadline (if set), at
// the pace of pace, then flushes, and returns how many it enqueued.
func runProducer(ctx context.Context, cl *kgo.Client, id uint32, size, quota int, deadline time.Time, pace pacer, res *producerResult) int {
	res.acks = make([]uint64, 0, min(quota, 1<<20))
	seq := 0
	for ; seq < quota && ctx.Err() == nil; seq++ {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		v := make([]byte, size)
		encodePayload(v, id, uint64(seq))
		res.mu.Lock()
		res.acks = append(res.acks, 0)
		res.mu.Unlock()
		s := seq
		t0 := pace.wait(seq)
		cl.Produce(ctx, &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
			d := time.Since(t0)
			res.mu.Lock()
			defer res.mu.Unlock()
			if err != nil {
				res.errs++
				if res.firstErr == nil {
					res.firstErr = fmt.Errorf("producer %d record %d: %w", id, s, err)
				}
				return
			}
			res.acks[s] = packAck(r.Partition, r.Offset)
			res.latency = append(res.latency, d)
			res.lastAck = time.Now()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		res.mu.Lock()
		if res.firstErr == nil {
			res.firstErr = fmt.Errorf("producer %d flush: %w", id, err)
		}
		res.mu.Unlock()
	}
	return seq
}
