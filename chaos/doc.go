// Package chaos runs chaos tests on real chronik processes: a 3-node cluster launched by
// chaos/cluster, every client-to-node and node-to-node link behind a fault-injecting
// proxy (chaos/proxy), idempotent franz-go producers writing self-checking records
// (internal/loadrec) with acks=all to partitions of three replicas, a consumer tailing
// every partition, a consumer-group member, and a fault schedule drawn from a seed.
//
// A run (Run):
//  1. Starts the cluster in a run folder and creates the topic.
//  2. Starts the writers and the tailing consumer, recording a History: per write its
//     call and return times and outcome (acked at an offset, failed, or unknown).
//  3. Applies the schedule (DrawSchedule): on client links delay, blackhole both ways or
//     one way, connection drops and resets; on node-to-node links isolation, one-way
//     partitions, delay and resets; kill -9 and restart, SIGSTOP and SIGCONT, a full
//     disk. Half of the node faults aim at the current leader of a partition.
//  4. Heals everything and requires every writer to get a write acknowledged within
//     Config.Recovery, and every replica to be in sync again.
//  5. Stops the workload, reads every partition back from offset 0, stops the cluster,
//     scans the node logs for panics, and runs Check and CheckGroup.
//
// See docs/chaos.md for how to run it and how to read a failure folder. Only tests and
// cmd may import this package (internal/lint).
package chaos
