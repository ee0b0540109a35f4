package ingest

import (
	"context"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A record that asks for a partition carries an *explicitPartition in its context; the
// partitioner sends it there, or marks it missing when the topic has fewer partitions.
// Other records go to franz-go's default partitioner (murmur2 of the key, as Kafka's
// Java client; sticky batches for null keys).
type explicitPartition struct {
	partition int32
	// missing is set by the partitioner when the topic has no such partition; the
	// record then fails, and the caller reads missing after its promise.
	missing atomic.Bool
	// partitions is the topic's partition count when missing is set.
	partitions atomic.Int32
}

type explicitPartitionKey struct{}

// withPartition is ctx carrying e for the partitioner.
func withPartition(ctx context.Context, e *explicitPartition) context.Context {
	return context.WithValue(ctx, explicitPartitionKey{}, e)
}

func explicitOf(r *kgo.Record) *explicitPartition {
	if r.Context == nil {
		return nil
	}
	e, _ := r.Context.Value(explicitPartitionKey{}).(*explicitPartition)
	return e
}

// partitioner honours explicit partitions and defers everything else to fallback.
type partitioner struct{ fallback kgo.Partitioner }

func newPartitioner() kgo.Partitioner {
	return partitioner{fallback: kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{fallback: p.fallback.ForTopic(topic)}
}

type topicPartitioner struct{ fallback kgo.TopicPartitioner }

func (t *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return explicitOf(r) != nil || t.fallback.RequiresConsistency(r)
}

func (t *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if e := explicitOf(r); e != nil {
		if int(e.partition) >= n {
			e.partitions.Store(int32(n))
			e.missing.Store(true)
			return -1
		}
		return int(e.partition)
	}
	return t.fallback.Partition(r, n)
}

// PartitionByBackup is Partition for a fallback that balances by buffered records.
func (t *topicPartitioner) PartitionByBackup(r *kgo.Record, n int, backup kgo.TopicBackupIter) int {
	if explicitOf(r) != nil {
		return t.Partition(r, n)
	}
	if b, ok := t.fallback.(kgo.TopicBackupPartitioner); ok {
		return b.PartitionByBackup(r, n, backup)
	}
	return t.fallback.Partition(r, n)
}

// OnNewBatch forwards to the fallback, whose sticky choice for null keys moves on a new
// batch.
func (t *topicPartitioner) OnNewBatch() {
	if nb, ok := t.fallback.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
