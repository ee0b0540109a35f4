//go:build chronikbugs

package kafka

import "fmt"

// Planted bugs, for measuring the simulator (sim/, docs/simulator.md): each must be found
// within 200 seeds. They are process-wide switches, set before a run and never during.
var (
	// bugAckBeforeFsync answers acks=1/all produce requests at append, before the batch
	// is durable.
	bugAckBeforeFsync bool
	// bugHWBeforeDurable sets the high watermark to the end offset instead of the durable
	// offset: fetch serves data a crash can still lose.
	bugHWBeforeDurable bool
	// bugDeposedFetch (cluster mode) lets a replica that led in an earlier term serve
	// fetches: a deposed leader answers instead of NOT_LEADER_OR_FOLLOWER.
	bugDeposedFetch bool
	// bugHWBeforeQuorum (cluster mode) serves fetches on the leader up to its log end:
	// the high watermark runs ahead of the quorum commit.
	bugHWBeforeQuorum bool
	// bugAcksAllOnDurable (cluster mode) answers acks=all when the batch is durable on the
	// leader (the Durable outcome), before a quorum has it (Committed).
	bugAcksAllOnDurable bool
)

// PlantBug switches on one planted bug of this package ("" switches them off).
func PlantBug(name string) error {
	bugAckBeforeFsync, bugHWBeforeDurable = false, false
	bugDeposedFetch, bugHWBeforeQuorum, bugAcksAllOnDurable = false, false, false
	switch name {
	case "":
	case "ack-before-fsync":
		bugAckBeforeFsync = true
	case "hw-before-durable":
		bugHWBeforeDurable = true
	case "deposed-fetch":
		bugDeposedFetch = true
	case "hw-before-quorum":
		bugHWBeforeQuorum = true
	case "acks-all-on-durable":
		bugAcksAllOnDurable = true
	default:
		return fmt.Errorf("kafka: unknown planted bug %q", name)
	}
	return nil
}
