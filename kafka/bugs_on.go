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
)

// PlantBug switches on one planted bug of this package ("" switches them off).
func PlantBug(name string) error {
	bugAckBeforeFsync, bugHWBeforeDurable = false, false
	switch name {
	case "":
	case "ack-before-fsync":
		bugAckBeforeFsync = true
	case "hw-before-durable":
		bugHWBeforeDurable = true
	default:
		return fmt.Errorf("kafka: unknown planted bug %q", name)
	}
	return nil
}
