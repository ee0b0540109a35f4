// Package chaos runs chaos tests on real chronik processes: a cluster launched by
// chaos/cluster, each node behind a fault-injecting proxy (chaos/proxy), idempotent
// franz-go producers writing self-checking records (internal/loadrec) with acks=all, a
// consumer tailing every partition, and a fault schedule drawn from a seed.
//
// A run (Run):
//  1. Starts the cluster in a run folder and creates the topic.
//  2. Starts the writers and the tailing consumer, recording a History: per write its
//     call and return times and outcome (acked at an offset, failed, or unknown).
//  3. Applies the schedule (DrawSchedule): proxy delay, blackhole both ways or one way,
//     connection drops and resets, kill -9 and restart, SIGSTOP and SIGCONT.
//  4. Heals everything and requires every writer to get a write acknowledged within
//     Config.Recovery.
//  5. Stops the workload, reads every partition back from offset 0, and runs Check.
//
// See docs/chaos.md for how to run it and how to read a failure folder. Only tests and
// cmd may import this package (internal/lint).
package chaos
