//go:build !chronikbugs

package log

import "errors"

// Planted bugs (see sim/) exist only in builds with the chronikbugs tag. Here they are
// false constants, so the compiler removes every hook.
const bugTornTail = false

// PlantBug switches on a planted bug by name. This build has none: "" is the only name
// it accepts.
func PlantBug(name string) error {
	if name == "" {
		return nil
	}
	return errors.New("log: planted bugs need a build with -tags chronikbugs")
}
