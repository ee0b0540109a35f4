//go:build chronikbugs

package sim

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// plantedBugSeeds is how many seeds each planted bug gets to be found in.
const plantedBugSeeds = 200

// TestPlantedBugs measures the simulator: each planted bug must fail a check within
// plantedBugSeeds seeds of the default fault mix. Run it with
//
//	go test -tags chronikbugs ./sim -run TestPlantedBugs -v
func TestPlantedBugs(t *testing.T) {
	defer func() {
		if err := PlantBug(""); err != nil {
			t.Error(err)
		}
	}()
	const batch = 20
	for _, bug := range PlantedBugs() {
		t.Run(bug, func(t *testing.T) {
			cfg := Config{Nodes: BugNodes(bug), DurationMs: 3000, Bug: bug, OutDir: "out"}
			for start := uint64(1); start <= plantedBugSeeds; start += batch {
				for _, r := range runSeeds(t, cfg, start, batch) {
					if !r.Failed() {
						continue
					}
					c := cfg
					c.Seed = r.Seed
					t.Logf("bug %s: first found at seed %d by check %q (%d violations): %s\n  replay: %s",
						bug, r.Seed, r.FirstCheck(), r.ViolationCount, r.Violations[0], ReplayCommand(c))
					return
				}
			}
			t.Errorf("bug %s: not found in %d seeds", bug, plantedBugSeeds)
		})
	}
}

// recordingTB stands in for the *testing.T of a rapid.Check that is expected to fail: it
// keeps what rapid reports instead of failing the test.
type recordingTB struct {
	*testing.T
	mu     sync.Mutex
	out    strings.Builder
	failed bool
}

func (r *recordingTB) Logf(format string, args ...any) { r.Log(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Log(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(&r.out, args...)
}
func (r *recordingTB) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Error(args ...any) {
	r.Log(args...)
	r.failed = true
}
func (r *recordingTB) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recordingTB) Fatal(args ...any)                 { r.Error(args...) }
func (r *recordingTB) Fail()                             { r.failed = true }
func (r *recordingTB) FailNow()                          { r.failed = true }
func (r *recordingTB) Failed() bool                      { return false }

// TestPlantedBugShrinks shows rapid shrinking a fault schedule that exposes a planted bug
// to a few faults.
func TestPlantedBugShrinks(t *testing.T) {
	defer func() {
		if err := PlantBug(""); err != nil {
			t.Error(err)
		}
	}()
	setRapidFlag(t, "rapid.checks", "50")
	setRapidFlag(t, "rapid.nofailfile", "true")
	setRapidFlag(t, "rapid.shrinktime", "60s")
	rec := &recordingTB{T: t}
	kinds := []FaultKind{FaultCrash, FaultTorn, FaultClose, FaultReset, FaultPause, FaultDelay}
	rapid.Check(rec, scheduleProperty("ack-before-fsync", 2000, kinds))
	if !rec.failed {
		t.Fatal("rapid found no schedule exposing ack-before-fsync")
	}
	t.Logf("rapid's minimal failing schedule for ack-before-fsync:\n%s", rec.out.String())
}
