package sim

import (
	"flag"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// rapidChecks is how many schedules TestScheduleProperty tries unless -rapid.checks says.
const rapidChecks = 15

// setRapidFlag sets one of rapid's flags for the test, unless the command line set it.
func setRapidFlag(t *testing.T, name, value string) {
	t.Helper()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if set {
		return
	}
	old := flag.Lookup(name).Value.String()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := flag.Set(name, old); err != nil {
			t.Error(err)
		}
	})
}

// faultGen draws one fault of the given kinds at a time in [faultStartMs, durMs).
func faultGen(kinds []FaultKind, durMs int64) *rapid.Generator[Fault] {
	return rapid.Custom(func(t *rapid.T) Fault {
		f := Fault{
			AtMs:   rapid.Int64Range(faultStartMs, durMs-1).Draw(t, "at"),
			Kind:   rapid.SampledFrom(kinds).Draw(t, "kind"),
			Client: rapid.IntRange(0, 15).Draw(t, "client"),
			Seed:   rapid.Uint64().Draw(t, "seed"),
		}
		switch f.Kind {
		case FaultCrash:
			f.Keep = rapid.Float64Range(0, 1).Draw(t, "keep")
			f.DurMs = rapid.Int64Range(5, 400).Draw(t, "restart")
		case FaultTorn:
			f.Keep = rapid.Float64Range(0, 0.7).Draw(t, "keep")
			f.Tear = rapid.Float64Range(0.05, 0.3).Draw(t, "tear")
			f.DurMs = rapid.Int64Range(5, 400).Draw(t, "restart")
		case FaultEIO:
			f.Write = rapid.Bool().Draw(t, "write")
			f.Keep = rapid.Float64Range(0, 1).Draw(t, "keep")
			f.DurMs = rapid.Int64Range(20, 600).Draw(t, "restart")
		case FaultClose:
			f.ServerSide = rapid.Bool().Draw(t, "server")
			f.Partial = !f.ServerSide && rapid.Bool().Draw(t, "partial")
		case FaultDelay:
			f.ExtraMs = rapid.Int64Range(1, 150).Draw(t, "extra")
			f.DurMs = rapid.Int64Range(20, 1000).Draw(t, "for")
		case FaultPartition, FaultOneWay:
			f.ToServer = rapid.Bool().Draw(t, "toserver")
			f.DurMs = rapid.Int64Range(20, 1500).Draw(t, "for")
		case FaultPause:
			f.DurMs = rapid.Int64Range(5, 1200).Draw(t, "for")
		case FaultSkew:
			f.SkewMs = rapid.Int64Range(0, 5000).Draw(t, "skew")
			f.DriftPPM = rapid.Int64Range(-500, 500).Draw(t, "drift")
		}
		return f
	})
}

// defaultKinds are the kinds of the default profile a single node can suffer (not the
// peer network's).
func defaultKinds(t testing.TB) []FaultKind {
	mix, err := ParseFaults("default")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []FaultKind
	for k, on := range mix {
		if on && !peerFault(FaultKind(k)) {
			kinds = append(kinds, FaultKind(k))
		}
	}
	return kinds
}

// scheduleProperty is the property that a run with a drawn fault schedule passes every
// check. rapid shrinks a failing schedule to a few faults.
func scheduleProperty(bug string, durMs int64, kinds []FaultKind) func(*rapid.T) {
	return func(t *rapid.T) {
		seed := rapid.Uint64Range(1, 1<<20).Draw(t, "run seed")
		sched := rapid.SliceOfN(faultGen(kinds, durMs), 0, 10).Draw(t, "faults")
		if sched == nil {
			sched = []Fault{}
		}
		res, err := Run(Config{Seed: seed, DurationMs: durMs, Schedule: sched, Bug: bug})
		if err != nil {
			t.Fatal(err)
		}
		if res.Failed() {
			var b strings.Builder
			for _, f := range sched {
				b.WriteString("\n  " + f.String())
			}
			t.Fatalf("seed %d with %d faults:%s\nfailed %d checks, first: %s", seed, len(sched), b.String(), res.ViolationCount, res.Violations[0])
		}
	}
}

// TestScheduleProperty draws fault schedules (faults with times and parameters) and
// checks every run passes.
func TestScheduleProperty(t *testing.T) {
	setRapidFlag(t, "rapid.checks", itoa(rapidChecks))
	rapid.Check(t, scheduleProperty("", 2000, defaultKinds(t)))
}
