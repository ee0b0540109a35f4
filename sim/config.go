package sim

import (
	"errors"
	"fmt"
	"io"
)

// Limits of a run: every duration, count and loop of the simulator is bounded.
const (
	MaxDurationMs = 10 * 60 * 1000 // longest fault window of one run
	MaxNodes      = 3              // brokers of one run; more than one runs cluster mode
	maxFaults     = 10000          // faults in one schedule
	maxEvents     = 200_000_000    // events in one run: beyond it the run fails as runaway
	maxViolations = 50             // violations kept per run (all are counted)
	// maxEventsPerS bounds the events of a run per simulated second: beyond it something
	// spins (a timer re-armed at once, a loop of retries).
	maxEventsPerS = 100_000
	maxClients    = 64
)

// Config describes one run. The zero value of every field but Seed takes a default.
type Config struct {
	Seed uint64
	// Nodes is the number of brokers, default 1; more than one run in cluster mode
	// (kafka.Config.Peers), every partition replicated on every node.
	Nodes int
	// DurationMs is the fault window: faults are injected in [faultStartMs, DurationMs),
	// then they heal and the run checks progress, quiesces, and verifies. Default 5000.
	DurationMs int64
	// Faults is a profile name (see Profiles) or a comma-separated list of FaultKinds;
	// default "default".
	Faults string
	// Schedule, when non-nil, is the fault schedule to run instead of one drawn from the
	// seed (rapid draws it; a replay passes it back).
	Schedule []Fault
	// Bug names a planted bug to switch on (see PlantBug); it needs the chronikbugs tag.
	Bug string
	// Trace receives every trace line when set (-v).
	Trace io.Writer
	// OutDir receives a porcupine visualization of each partition that fails the
	// linearizability check; "" writes none.
	OutDir   string
	Workload Workload
}

// Workload is what the simulated clients do. Zero values take the defaults noted.
type Workload struct {
	Partitions          int   // default 3
	IdempotentProducers int   // default 3
	PlainProducers      int   // default 2
	ConsumersPerPart    int   // default 1
	MaxThinkMs          int64 // longest pause between a producer's writes; default 20
	MaxRecordsPerBatch  int   // default 3
	// GroupMembers is the number of members of the consumer group (group.go); default
	// 3, negative for none.
	GroupMembers int
}

func (c *Config) validate() error {
	if c.Nodes == 0 {
		c.Nodes = 1
	}
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return fmt.Errorf("sim: %d nodes: this simulator drives 1 to %d nodes", c.Nodes, MaxNodes)
	}
	if c.DurationMs == 0 {
		c.DurationMs = 5000
	}
	if c.DurationMs < 0 || c.DurationMs > MaxDurationMs {
		return fmt.Errorf("sim: duration %dms outside (0, %d]", c.DurationMs, MaxDurationMs)
	}
	if c.Faults == "" {
		c.Faults = "default"
	}
	w := &c.Workload
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&w.Partitions, 3)
	def(&w.IdempotentProducers, 3)
	def(&w.PlainProducers, 2)
	def(&w.ConsumersPerPart, 1)
	def(&w.MaxRecordsPerBatch, 3)
	def(&w.GroupMembers, 3)
	w.GroupMembers = max(w.GroupMembers, 0)
	if w.MaxThinkMs == 0 {
		w.MaxThinkMs = 20
	}
	switch {
	case w.Partitions < 1 || w.Partitions > 16:
		return errors.New("sim: partitions outside [1, 16]")
	case w.IdempotentProducers < 0 || w.PlainProducers < 0 || w.IdempotentProducers+w.PlainProducers > 16:
		return errors.New("sim: producers outside [0, 16]")
	case w.ConsumersPerPart < 0 || w.ConsumersPerPart*w.Partitions > 32:
		return errors.New("sim: consumers outside [0, 32]")
	case w.GroupMembers > 8:
		return errors.New("sim: group members outside [0, 8]")
	case w.MaxRecordsPerBatch < 1 || w.MaxRecordsPerBatch > 200:
		return errors.New("sim: records per batch outside [1, 200]")
	case w.MaxThinkMs < 0 || w.MaxThinkMs > 10000:
		return errors.New("sim: think time outside [0, 10s]")
	}
	return nil
}

// Client behaviour, in simulated time.
const (
	requestTimeoutUs  = 800_000   // a request unanswered this long resets its connection
	connectTimeoutUs  = 300_000   // a connection not established this long is given up
	deliveryTimeoutUs = 4_000_000 // an idempotent write retried this long is abandoned
	maxAttempts       = 40        // attempts of one idempotent write
	maxPlainAttempts  = 6         // attempts of one plain write (each a new op)
	minBackoffUs      = 5_000
	maxBackoffUs      = 150_000
)

// Phases of a run after the fault window, in simulated ms. A cluster gets longer: after
// the heal its groups may first have to elect leaders (an election timeout of 1-2s,
// more when votes split), and its clients to find them.
const (
	faultStartMs        = 200  // faults start once the topic exists
	progressMs          = 3000 // after healing, every producer must be acknowledged within this
	quiesceMs           = 2000 // producers stopped, consumers catch up
	idleMs              = 1000 // no client at all: the broker must be quiet
	verifyMs            = 3000 // the verifying consumers must read everything within this
	clusterProgressMs   = 6000
	clusterQuiesceMs    = 3000
	clusterVerifyMs     = 4000
	clusterFaultStartMs = 1000 // a cluster elects its first leaders and creates the topic
	// maxIdleEventsPerS bounds the events a broker with no client may cause: a closed
	// socket whose handler spins shows up here.
	maxIdleEventsPerS = 50
)
