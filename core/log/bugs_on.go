//go:build chronikbugs

package log

import "fmt"

// Planted bugs, for measuring the simulator (sim/): each must be found within 200 seeds.
// They are process-wide switches, set before a run and never during.
var (
	// bugTornTail makes recovery leave a torn tail in the file: the log ends after the
	// last valid batch, but the bytes after it stay, and appends go after them.
	bugTornTail bool
)

// PlantBug switches on one planted bug of this package ("" switches them off).
func PlantBug(name string) error {
	bugTornTail = false
	switch name {
	case "":
	case "torn-tail":
		bugTornTail = true
	default:
		return fmt.Errorf("log: unknown planted bug %q", name)
	}
	return nil
}
