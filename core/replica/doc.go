// Package replica is one replica of a partition: an etcd raft RawNode whose Raft log is
// the partition's core/log.Log (DESIGN.md decision 1: one write per record). Each Raft
// entry is stored as exactly one record batch; the entry's term is the batch's
// partitionLeaderEpoch; the Raft index is the batch's ordinal in the log, so Kafka
// offsets are assigned when entries are appended and are a pure function of the log.
// docs/replication.md has the design; entry.go says how each kind of entry is stored,
// storage.go how raft reads the log, state.go what is kept beside it, snapshot.go how
// retention and snapshots move the log start.
//
// The model, like RawNode's: events in (Propose, Step, Tick, SyncDone), a batch of work
// out (Ready). The replica runs raft with AsyncStorageWrites: appends are written to the
// log at once (volatile) and the responses that vouch for them (a follower's append
// acknowledgment, a vote, the leader's own acknowledgment) are released only once a
// SyncJob has made them durable. Messages that need no durability (a leader's appends to
// its followers) leave at once, so the leader's fsync runs in parallel with the
// followers' (Raft thesis 10.2.1).
//
// The caller (the node's event loop) must:
//  1. Open the replica, with Peers when it is created.
//  2. Call Tick every tick (raft's logical clock; ElectionTicks and HeartbeatTicks count
//     them) with the loop's time, and Step with every message from a peer.
//  3. Propose record batches while IsLeader; each proposal's outcome comes back once in
//     Ready.Committed (and once in Ready.Durable, for acks=1).
//  4. After a batch of events, call Ready: send its Messages (in order per peer); run its
//     Sync, if any, off the loop and report it with SyncDone, then call Ready again.
//     At most one SyncJob is outstanding; writes made meanwhile share the next one (group
//     commit).
//  5. Serve reads below HighWatermark from Storage().Log(); never write to that log.
//  6. Stop using a replica whose Err is not nil (a storage error is never retried) and
//     answer its proposals still without an outcome with KAFKA_STORAGE_ERROR.
//  7. Run retention through EnforceRetention (never on the log directly); rebuild
//     producer state from Storage().ProducerSnapshot() at Storage().StartOffset() plus
//     the log from there, and reset it when OnSnapshot reports an installed snapshot
//     (snapshot.go).
//
// Determinism: the package starts no goroutine and reads no clock. etcd raft draws its
// election jitter from the process-wide crypto/rand.Reader (raft.go, globalRand); the
// simulator must pin that reader (testing/cryptotest.SetGlobalRandom in tests) or runs
// will not repeat. docs/replication.md, "Determinism", has the details.
package replica
