package kafka

// NodeStats is a snapshot of a node for monitoring. It holds plain values only: the
// caller owns it and may read it on any goroutine once Stats has returned.
type NodeStats struct {
	// Topics is the number of topics, the internal one included.
	Topics int
	// Partitions lists every partition, sorted by topic name, then index.
	Partitions []PartitionStats
	// UnderReplicated counts the partitions this node leads with fewer in-sync replicas
	// than replicas (as Kafka, each leader reports its own). Always 0 on a single node.
	UnderReplicated int
	// LeadershipChanges counts the times this node gained or lost a partition's
	// leadership since it started. A single node leads everything from the start: 0.
	LeadershipChanges int64
	// Leaders counts the partitions this node leads (cluster mode).
	Leaders int
	// ParkedFetches is the number of long-polling fetch requests waiting for data.
	ParkedFetches int
	// AwaitingSync is the number of partitions with appends not yet covered by a sync job.
	AwaitingSync int
}

// PartitionStats describes one partition's log.
type PartitionStats struct {
	Topic     string
	Partition int32
	// LogStartOffset is the first offset still in the log (retention moves it).
	LogStartOffset int64
	// LogEndOffset is the offset the next appended record gets.
	LogEndOffset int64
	// HighWatermark is the end of what clients may read: on a single node the durable
	// (fsynced) end. Invariant: LogStartOffset <= HighWatermark <= LogEndOffset.
	HighWatermark int64
	// Bytes is the size of the partition's .log files.
	Bytes int64
	// Segments is the number of segments, the active one included.
	Segments int
	// Failed is true once the partition's storage failed and it stopped serving.
	Failed bool
}

// Stats returns a snapshot of the node. Its cost is one pass over the partitions and
// their segments; it changes nothing.
func (n *Node) Stats() NodeStats {
	st := NodeStats{
		Topics:            len(n.topics),
		Partitions:        make([]PartitionStats, 0, n.nparts),
		ParkedFetches:     len(n.parked),
		LeadershipChanges: n.leadershipChanges,
		AwaitingSync:      len(n.dirty),
	}
	for _, t := range n.allTopics() {
		for _, p := range t.partitions {
			if p.log == nil {
				continue // cluster mode: not hosted here
			}
			if p.leading && p.failed == nil {
				st.Leaders++
				if p.rep.InSyncReplicas() < len(p.replicas) {
					st.UnderReplicated++
				}
			}
			ls := p.log.Stats()
			st.Partitions = append(st.Partitions, PartitionStats{
				Topic:          t.name,
				Partition:      p.index,
				LogStartOffset: p.log.StartOffset(),
				LogEndOffset:   p.log.EndOffset(),
				HighWatermark:  p.highWatermark(),
				Bytes:          ls.Bytes,
				Segments:       ls.Segments,
				Failed:         p.failed != nil,
			})
		}
	}
	return st
}

// Offsets is how many offsets t's job makes durable: its End less the partition's
// durable offset (0 for a job that only seals segments or syncs the directory). It reads
// the partition, so call it on the node's goroutine, between Ready and SyncDone.
func (t SyncTask) Offsets() int64 {
	if t.Job == nil {
		return 0 // a replica's job: its offsets are not counted here
	}
	return max(0, t.Job.End-t.p.log.DurableOffset())
}

// End is the offset the task's job makes durable, -1 for a replica's job.
func (t SyncTask) End() int64 {
	if t.Job == nil {
		return -1
	}
	return t.Job.End
}
