//go:build !chronikbugs

package sim

import "errors"

// bugSpinOnClose is the planted bug "a closed socket does not end its handler"; normal
// builds hold no code path for it.
const bugSpinOnClose = false

// PlantBug switches on a planted bug. Normal builds have none: any name but "" fails.
func PlantBug(name string) error {
	if name == "" {
		return nil
	}
	return errors.New("sim: planted bugs need a build with -tags chronikbugs")
}

// PlantedBugs lists the bugs PlantBug accepts in this build.
func PlantedBugs() []string { return nil }

// BugNodes is the number of nodes the runs that measure a planted bug use.
func BugNodes(string) int { return 1 }
