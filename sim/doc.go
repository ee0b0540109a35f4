// Package sim is Chronik's deterministic simulator: the real broker node (kafka.Node over
// core/log on a crashable disk.MemFS) and simulated Kafka clients, driven on one goroutine
// from one seed, under injected faults, with every history checked.
//
// The model:
//  1. One event heap ordered by (time, sequence) drives everything; the clock is
//     simulated, in µs. The same seed gives a byte-identical trace (one line per event),
//     whose sha256 is Result.TraceHash.
//  2. Randomness comes from separate PCG streams derived from the seed (rng.go): per
//     link, per client, per node's disk, and per fault kind, so that removing one fault or
//     client leaves the others' draws unchanged.
//  3. The network (net.go) is TCP reduced to what the broker sees: ordered byte streams
//     with latency whose writes arrive split into chunks, graceful close, reset, and cuts
//     (partitions) that hold bytes. The broker's side of a connection (server.go) is the
//     twin of net/conn.go: it frames and decodes requests, numbers them per connection,
//     writes responses in Seq order, and calls ConnClosed when the connection ends.
//  4. The disk (node.go) runs each sync job at its simulated completion time, then
//     reports it with SyncDone; EIO comes from disk.NewErrorFS. A crash replaces the
//     node's disk by disk.MemFS.CrashClone and reopens kafka.NewNode on it later.
//  5. Clients (workload.go, consumer.go) speak Kafka bytes built and parsed with kmsg:
//     idempotent producers (one batch in flight, retried as is), plain producers (each
//     retry a new write), consumers by assignment, and verifying consumers at the end.
//  6. A run has phases: faults until Config.DurationMs, then heal; producers must be
//     acknowledged within progressMs; producers stop and consumers catch up; every client
//     leaves and the broker must go idle; verifying consumers read the final log.
//  7. Cluster mode (Config.Nodes > 1; peer.go, routes.go, oracle.go): every node runs
//     kafka.Node with Config.Peers; Raft messages travel as Go values on one ordered link
//     per pair of nodes and direction, with latency, drops and cuts (an isolated leader, a
//     split, one-way); clients route by Metadata to each partition's leader and follow
//     it; an oracle watching the messages flags a deposed leader's reads. Raft's election
//     jitter reads crypto/rand.Reader, which a cluster run replaces with a stream of its
//     seed under a process-wide mutex: cluster runs in one process never overlap.
//  8. The checks (check.go, consumer.go): per partition, porcupine linearizability of the
//     writes against an append-only log model after resolving every indeterminate write
//     against the final log; no lost acknowledged write; no duplicate; no unexplained or
//     refused record in the log; consumers read increasing offsets with no gap, never at
//     or above the high watermark, which never goes back, and always what the log holds;
//     progress after heal; a quiet broker with no leaked connection once clients leave.
//
// Run is safe to call from several goroutines at once as long as they agree on
// Config.Bug: the planted-bug switches (chronikbugs builds) are process-wide. Cluster
// runs wait for each other (crypto/rand.Reader is process-wide too).
package sim
