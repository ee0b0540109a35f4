//go:build !chronikbugs

package kafka

import "errors"

// Planted bugs (see sim/ and docs/simulator.md) exist only in builds with the
// chronikbugs tag. Here they are false constants, so the compiler removes every hook.
const (
	bugAckBeforeFsync   = false
	bugHWBeforeDurable  = false
	bugDeposedFetch     = false
	bugHWBeforeQuorum   = false
	bugAcksAllOnDurable = false
)

// PlantBug switches on a planted bug by name. This build has none: "" is the only name
// it accepts.
func PlantBug(name string) error {
	if name == "" {
		return nil
	}
	return errors.New("kafka: planted bugs need a build with -tags chronikbugs")
}
