package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/loadrec"
)

// Client timeouts: short, so a client notices a partition and reconnects within a few
// seconds instead of franz-go's default tens of seconds.
const (
	dialTimeout            = 2 * time.Second
	requestTimeoutOverhead = 2 * time.Second
	produceRequestTimeout  = 2 * time.Second
)

// workload is the writers and the tailing consumer of a run.
type workload struct {
	cfg   *Config
	hist  *History
	topic string
	seeds []string
	runID uint32
	// opts are extra options of every client (a dialer into a network namespace).
	opts []kgo.Opt
}

// clientOpts are the options every client of the run shares.
func (w *workload) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(w.seeds...),
		kgo.DialTimeout(dialTimeout),
		kgo.RequestTimeoutOverhead(requestTimeoutOverhead),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}, append(w.opts, extra...)...)
}

// createTopic creates the run's topic with cfg.Partitions partitions of
// cfg.ReplicationFactor replicas (0: the broker's default), retrying while the cluster
// comes up, for at most timeout.
func (w *workload) createTopic(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := w.createTopicOnce(ctx)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("chaos: create topic %s: %w", w.topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// createTopicOnce makes one attempt with a fresh client, so a failed dial is not cached.
func (w *workload) createTopicOnce(ctx context.Context) error {
	cl, err := kgo.NewClient(w.clientOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rf := int16(w.cfg.ReplicationFactor)
	if rf == 0 {
		rf = -1 // the broker's default
	}
	resp, err := kadm.NewClient(cl).CreateTopic(cctx, int32(w.cfg.Partitions), rf, nil, w.topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// produce runs writer number writer until ctx is done or it has made cfg.MaxOpsPerWriter
// calls: one record at a time, idempotent, acks=all, to partition writer % Partitions.
//
// The last cfg.CancellingWriters writers give each call cfg.CallTimeout and let franz-go
// fail in-flight records (kgo.AllowIdempotentProduceCancellation): their errors are all
// unknown outcomes, which the checks resolve against the final log.
func (w *workload) produce(ctx context.Context, writer int) error {
	cancelling := writer >= w.cfg.Writers-w.cfg.CancellingWriters
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.ProduceRequestTimeout(produceRequestTimeout),
		kgo.RecordDeliveryTimeout(w.cfg.RecordTimeout),
	}
	if cancelling {
		opts = append(opts, kgo.AllowIdempotentProduceCancellation())
	}
	cl, err := kgo.NewClient(w.clientOpts(opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := loadrec.ProducerID(w.runID, uint32(writer))
	part := int32(writer % w.cfg.Partitions)
	key := loadrec.Key(id)
	next := time.Now()
	for seq := uint64(0); seq < uint64(w.cfg.MaxOpsPerWriter) && ctx.Err() == nil; seq++ {
		if !sleepUntil(ctx, next) {
			break
		}
		next = time.Now().Add(w.cfg.WriteInterval)
		value := loadrec.Append(nil, id, seq, w.cfg.ValueBytes)
		op := w.hist.Call(writer, id, seq, part)
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if cancelling {
			cctx, cancel = context.WithTimeout(ctx, w.cfg.CallTimeout)
		}
		res := cl.ProduceSync(cctx, &kgo.Record{Topic: w.topic, Partition: part, Key: key, Value: value})
		cancel()
		r, err := res.First()
		switch {
		case err == nil:
			w.hist.Return(op, Acked, r.Offset, nil)
		case !cancelling && definiteFailure(err):
			w.hist.Return(op, Failed, -1, err)
		default:
			w.hist.Return(op, Unknown, -1, err)
		}
		if err != nil { // back off a little after an error
			next = time.Now().Add(50 * time.Millisecond)
		}
	}
	return nil
}

// definiteFailure says whether a produce error means the record was not written: the
// broker answered with an error, or franz-go expired the record, which with idempotence
// it does only when the record was never sent or was answered (kgo.RecordDeliveryTimeout).
// Anything else (context, client closed) leaves the outcome unknown.
func definiteFailure(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) || errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries)
}

// tail reads every partition from offset 0 until ctx is done, recording each record,
// control records included.
func (w *workload) tail(ctx context.Context) error {
	offsets := map[int32]kgo.Offset{}
	for p := range w.cfg.Partitions {
		offsets[int32(p)] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(w.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: offsets}),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.KeepControlRecords(), // so that its offsets have no gaps
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { w.hist.Tail(decodeRead(r)) })
	}
	return nil
}

// group reads the topic as a member of a consumer group with auto-commit, until ctx is
// done, recording each record (it skips control records, as consumers do).
func (w *workload) group(ctx context.Context) error {
	cl, err := kgo.NewClient(w.clientOpts(
		kgo.ConsumerGroup(w.topic+"-readers"),
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.AutoCommitInterval(500*time.Millisecond),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close() // leaves the group after committing what was polled
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { w.hist.Group(decodeRead(r)) })
	}
	return nil
}

// readAll reads every partition from offset 0 to its end offset, control records
// included, with no faults in the way, within timeout.
func (w *workload) readAll(ctx context.Context, timeout time.Duration) (map[int32][]Read, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kgo.NewClient(w.clientOpts()...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	for {
		ends, err = adm.ListEndOffsets(ctx, w.topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("chaos: end offsets: %w", err)
	}
	offsets := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	final := map[int32][]Read{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		final[o.Partition] = nil
		if o.Offset > 0 {
			offsets[o.Partition] = kgo.NewOffset().At(0)
		}
	})
	if len(offsets) == 0 {
		return final, nil
	}
	cl, err = kgo.NewClient(w.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: offsets}),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.KeepControlRecords(), // the final log has every offset
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	done := func() bool {
		for p, end := range want {
			if rs := final[p]; end > 0 && (len(rs) == 0 || rs[len(rs)-1].Offset < end-1) {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return final, fmt.Errorf("chaos: reading the final log: %w (end offsets %v)", ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] {
				final[r.Partition] = withGap(final[r.Partition], decodeRead(r))
			}
		})
	}
	return final, nil
}

func decodeRead(r *kgo.Record) Read {
	rd := Read{Partition: r.Partition, Offset: r.Offset}
	if r.Attrs.IsControl() {
		rd.Control = true
		return rd
	}
	rec, err := loadrec.Decode(r.Value)
	if err != nil {
		rd.Err = err.Error()
		return rd
	}
	rd.Key = Key{rec.Producer, rec.Seq}
	return rd
}

// startGroup starts the consumer-group member; stop ends it and waits for it.
func (w *workload) startGroup(ctx context.Context) (stop func() error) {
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.group(gctx) }() // ends when gctx is done
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(stopTimeout):
			return fmt.Errorf("chaos: the group member did not stop within %v", stopTimeout)
		}
	}
}

// start starts cfg.Writers writers and the tailing consumer; stop ends them and waits,
// for at most stopTimeout, and returns their errors.
func (w *workload) start(ctx context.Context) (stop func(stopTimeout time.Duration) error) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, w.cfg.Writers+1)
	for i := range w.cfg.Writers {
		wg.Add(1)
		go func() { // ends when wctx is done (ProduceSync returns once its record is answered)
			defer wg.Done()
			errs[i] = w.produce(wctx, i)
		}()
	}
	wg.Add(1)
	go func() { // ends when wctx is done
		defer wg.Done()
		errs[w.cfg.Writers] = w.tail(wctx)
	}()
	return func(stopTimeout time.Duration) error {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }() // ends with the writers
		select {
		case <-done:
			return errors.Join(errs...)
		case <-time.After(stopTimeout):
			return fmt.Errorf("chaos: the workload did not stop within %v", stopTimeout)
		}
	}
}
