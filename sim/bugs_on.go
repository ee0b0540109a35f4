//go:build chronikbugs

package sim

import (
	"fmt"

	"chronik/core/log"
	"chronik/kafka"
)

// bugSpinOnClose is the planted bug "a closed socket does not end its handler": the
// simulated connection handler keeps reading its dead socket and is never released.
var bugSpinOnClose bool

// plantedBugs are the bugs this build can switch on, each with where it lives.
var plantedBugs = []string{
	"ack-before-fsync",  // kafka: produce answered at append, not once durable
	"torn-tail",         // core/log: recovery does not truncate a torn tail
	"spin-on-close",     // sim's connection handler: a closed socket keeps its handler
	"hw-before-durable", // kafka: the high watermark is the end offset, not the durable one
	// Replication (cluster mode: found by runs of 3 nodes).
	"deposed-fetch",       // kafka: a replica that led in an earlier term serves fetches
	"hw-before-quorum",    // kafka: the leader serves fetches up to its log end, not the commit
	"acks-all-on-durable", // kafka: acks=all answered once durable on the leader, before a quorum
}

// BugNodes is the number of nodes the runs that measure a planted bug use: 3 for the
// replication bugs, 1 for the others.
func BugNodes(name string) int {
	switch name {
	case "deposed-fetch", "hw-before-quorum", "acks-all-on-durable":
		return 3
	}
	return 1
}

// PlantBug switches on one planted bug ("" for none), switching off the others. The
// switches are process-wide: runs in one process must agree on the bug.
func PlantBug(name string) error {
	bugSpinOnClose = false
	kafka.PlantBug("")
	log.PlantBug("")
	switch name {
	case "":
	case "ack-before-fsync", "hw-before-durable", "deposed-fetch", "hw-before-quorum", "acks-all-on-durable":
		return kafka.PlantBug(name)
	case "torn-tail":
		return log.PlantBug(name)
	case "spin-on-close":
		bugSpinOnClose = true
	default:
		return fmt.Errorf("sim: unknown planted bug %q (known: %v)", name, plantedBugs)
	}
	return nil
}

// PlantedBugs lists the bugs PlantBug accepts in this build.
func PlantedBugs() []string { return plantedBugs }
