package sim

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

// Violation is one failed check of a run.
type Violation struct {
	Check     string // e.g. "lost-write", "linearizability", "liveness"
	Partition int32  // -1 when not about one partition
	AtUs      int64  // simulated time it was found
	Detail    string
}

func (v Violation) String() string {
	p := ""
	if v.Partition >= 0 {
		p = " p" + strconv.Itoa(int(v.Partition))
	}
	return fmt.Sprintf("%s%s at %s: %s", v.Check, p, fmtUs(v.AtUs), v.Detail)
}

// Result is what a run found.
type Result struct {
	Seed       uint64
	TraceHash  string // sha256 of the trace
	TraceLines int64
	Events     int64
	SimUs      int64 // simulated time the run covered
	Faults     []Fault
	Violations []Violation
	// ViolationCount counts every violation, kept or not.
	ViolationCount int
	Writes         int // write operations (attempts of plain producers count one each)
	Acked          int
	Unknown        int // indeterminate writes before resolution
	Resolved       int // indeterminate writes found in the final log
	Reads          int64
	Crashes        int
	Visualizations []string // porcupine HTML files written
	// LinearizabilityUnknown is set when porcupine timed out on a partition.
	LinearizabilityUnknown bool
	// Notes are failures of the checks in KnownIssues, in order of first occurrence.
	Notes []Note
}

// Note counts the failures of a known-issue check in a run.
type Note struct {
	Check string
	Count int
	First Violation
}

// KnownIssues are checks whose failures are broker bugs found by the simulator, reported
// and not yet fixed, by check name with the cause. A run counts them in Result.Notes
// instead of failing, so that the sweep of make test stays green while they wait. Delete
// an entry once its bug is fixed.
var KnownIssues = map[string]string{}

// Failed reports whether any check failed.
func (r *Result) Failed() bool { return r.ViolationCount > 0 }

// FirstCheck is the check of the first violation, "" when none.
func (r *Result) FirstCheck() string {
	if len(r.Violations) == 0 {
		return ""
	}
	return r.Violations[0].Check
}

// ReplayCommand is the command that replays a run of cfg.
func ReplayCommand(cfg Config) string {
	var b strings.Builder
	b.WriteString("go run")
	if cfg.Bug != "" {
		b.WriteString(" -tags chronikbugs")
	}
	fmt.Fprintf(&b, " ./cmd/chronik-sim -seed %d", cfg.Seed)
	if cfg.Nodes > 1 {
		fmt.Fprintf(&b, " -nodes %d", cfg.Nodes)
	}
	if cfg.DurationMs != 0 && cfg.DurationMs != 5000 {
		fmt.Fprintf(&b, " -duration %dms", cfg.DurationMs)
	}
	if cfg.Faults != "" && cfg.Faults != "default" {
		fmt.Fprintf(&b, " -faults %s", cfg.Faults)
	}
	if cfg.Bug != "" {
		fmt.Fprintf(&b, " -bug %s", cfg.Bug)
	}
	return b.String()
}

// Sim is one run: the scheduler, the simulated network, nodes and clients, and the
// history the checkers read. Everything runs on the caller's goroutine.
type Sim struct {
	cfg    Config
	now    int64 // simulated µs
	events *scheduler
	tr     *tracer
	nevent int64

	nodes    []*simNode
	clients  []*clientConn // index = client id; who = "c<id>"
	work     []*clientConn // workload clients, the targets of connection faults
	producer []producerLike
	cons     []*consumer
	verifier []*consumer
	members  []*groupMember // the consumer group's (group.go)

	schedule []Fault
	nextLink uint64

	// Network conditions.
	cuts         []cut // active partitions
	spikeUntil   int64
	spikeExtraUs int64

	// The peer network (cluster mode, peer.go).
	plinks        []*peerLink // by from*nodes+to
	peerCuts      []peerCut
	peerDropUntil int64
	peerDropProb  float64
	oracle        *oracle

	// Phase state.
	setupDone   bool
	healed      bool
	stopWrites  bool
	healUs      int64
	idleFromUs  int64
	idleEvents  int64
	idleCounted bool
	finished    bool

	ph   phases
	hist history
	res  Result
	// partFailed counts violations per partition: their histories get visualized.
	partFailed []int
}

// cut holds a client's links to a node (client -1: every client; node -1: every node) in
// one or both directions.
type cut struct {
	client  int
	node    int
	both    bool
	toSrv   bool
	untilUs int64
}

// Run runs one seed and checks it.
func Run(cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	mix, err := ParseFaults(cfg.Faults)
	if err != nil {
		return nil, err
	}
	if err := PlantBug(cfg.Bug); err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, tr: newTracer(cfg.Trace), events: newScheduler()}
	s.ph = phases{faultStartMs, progressMs, quiesceMs, verifyMs}
	if cfg.Nodes > 1 {
		s.ph = phases{clusterFaultStartMs, clusterProgressMs, clusterQuiesceMs, clusterVerifyMs}
		defer pinRaftRandom(cfg.Seed)()
	}
	s.res.Seed = cfg.Seed
	if cfg.Schedule != nil {
		s.schedule = append([]Fault(nil), cfg.Schedule...)
		sortSchedule(s.schedule)
	} else {
		s.schedule = drawSchedule(cfg.Seed, mix, cfg.Nodes, s.ph.faultStartMs, cfg.DurationMs)
	}
	s.res.Faults = s.schedule
	if err := s.setup(); err != nil {
		return nil, err
	}
	s.loop()
	if perS := s.nevent * 1_000_000 / max(s.now, 1); perS > maxEventsPerS {
		s.violate("runaway", -1, "%d events per simulated second (bound %d): something spins", perS, maxEventsPerS)
	}
	s.check()
	s.res.TraceHash = s.tr.sum()
	s.res.TraceLines = s.tr.lines
	s.res.Events = s.nevent
	s.res.SimUs = s.now
	return &s.res, nil
}

// phases are the lengths of a run's phases, in simulated ms.
type phases struct {
	faultStartMs, progressMs, quiesceMs, verifyMs int64
}

// raftRandom serializes cluster runs: etcd raft draws its election jitter from the
// process-wide crypto/rand.Reader (docs/replication.md, "Determinism"), which a run
// replaces with a reader over its seed, so two cluster runs in one process must not
// overlap.
var raftRandom sync.Mutex

// pinRaftRandom takes raftRandom and points crypto/rand.Reader at a ChaCha8 stream of the
// seed; the function it returns restores the reader and releases the lock.
func pinRaftRandom(seed uint64) func() {
	raftRandom.Lock()
	saved := crand.Reader
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], streamSeed(seed, streamRaft, 0))
	binary.LittleEndian.PutUint64(key[8:], streamSeed(seed, streamRaft, 1))
	crand.Reader = rand.NewChaCha8(key)
	return func() {
		crand.Reader = saved
		raftRandom.Unlock()
	}
}

// Phases, in order.
const (
	phaseHeal = iota
	phaseStopWrites
	phaseStopClients
	phaseVerify
	phaseEnd
)

var phaseNames = [...]string{"heal", "stop-writes", "stop-clients", "verify", "end"}

func (s *Sim) setup() error {
	s.tr.line(0, "sim", "start").i("seed", int64(s.cfg.Seed)).i("nodes", int64(s.cfg.Nodes)).
		i("duration_ms", s.cfg.DurationMs).s("faults", s.cfg.Faults).s("bug", s.cfg.Bug).end()
	for i := 0; i < s.cfg.Nodes; i++ {
		n, err := newSimNode(s, i)
		if err != nil {
			return err
		}
		s.nodes = append(s.nodes, n)
	}
	s.oracle = newOracle(s)
	s.newPeerLinks()
	for _, n := range s.nodes {
		n.begin()
		n.flush() // a new cluster's first election starts at once
	}
	for i, f := range s.schedule {
		s.tr.line(0, "sim", "schedule").i("fault", int64(i)).s("f", f.String()).end()
		s.push(event{at: f.AtMs * 1000, kind: evFault, idx: int32(i)})
	}
	heal := s.cfg.DurationMs * 1000
	ph := s.ph
	for i, at := range []int64{heal, heal + ph.progressMs*1000, heal + (ph.progressMs+ph.quiesceMs)*1000,
		heal + (ph.progressMs+ph.quiesceMs+idleMs)*1000, heal + (ph.progressMs+ph.quiesceMs+idleMs+ph.verifyMs)*1000} {
		s.push(event{at: at, kind: evPhase, idx: int32(i)})
	}
	s.startWorkload()
	return nil
}

// push schedules e.
func (s *Sim) push(e event) { s.events.push(e) }

// after schedules e dUs from now.
func (s *Sim) after(dUs int64, e event) {
	e.at = s.now + max(dUs, 0)
	s.push(e)
}

func (s *Sim) loop() {
	for s.events.len() > 0 && !s.finished {
		ev := s.events.pop()
		s.now = ev.at
		s.nevent++
		if s.idleCounted && s.now >= s.idleFromUs && ev.busiesNode() {
			s.idleEvents++
		}
		if s.nevent > maxEvents {
			s.violate("runaway", -1, "more than %d events", maxEvents)
			return
		}
		s.dispatch(ev)
	}
}

func (s *Sim) dispatch(ev event) {
	switch ev.kind {
	case evDeliver:
		ev.link.deliver(ev)
	case evWake:
		if cc := s.clients[ev.idx]; ev.token == cc.timerGen {
			cc.owner.wake()
		}
	case evTimeout:
		ev.link.cl.timeout(ev.link, ev.token)
	case evTick:
		s.nodes[ev.node].onTick(ev)
	case evSyncDone:
		s.nodes[ev.node].onSyncDone(ev)
	case evFault:
		s.startFault(int(ev.idx))
	case evFaultEnd:
		s.endFault(int(ev.idx), ev.token)
	case evPhase:
		s.phase(int(ev.idx))
	case evSpin:
		ev.link.srv.spin(ev)
	case evPeer:
		s.deliverPeer(ev)
	case evUnreachable:
		s.nodes[ev.node].onUnreachable(ev)
	}
}

func (s *Sim) phase(p int) {
	s.tr.line(s.now, "sim", "phase").s("name", phaseNames[p]).end()
	switch p {
	case phaseHeal:
		s.heal()
	case phaseStopWrites:
		s.stopWrites = true
		for _, p := range s.producer {
			p.checkProgress()
			p.stop()
		}
	case phaseStopClients:
		for _, p := range s.producer {
			p.finish()
		}
		for _, c := range s.cons {
			c.finish()
		}
		s.checkGroupLive()
		for _, m := range s.members {
			m.finish()
		}
		for _, cc := range s.clients {
			cc.done = true
			cc.close()
		}
		s.idleFromUs = s.now + idleGraceUs
		s.idleCounted = true
		s.idleEvents = 0
	case phaseVerify:
		s.idleCounted = false
		s.checkIdle()
		s.startVerify()
	case phaseEnd:
		for _, v := range s.verifier {
			if !v.verified {
				s.violate("verify", v.part, "the verifying consumer reached offset %d of high watermark %d in %dms", v.pos, v.hw, s.ph.verifyMs)
			}
		}
		for _, cc := range s.clients {
			cc.close()
		}
		s.finished = true
	}
}

// heal ends every fault: nodes come back, pauses and partitions end.
func (s *Sim) heal() {
	s.healed = true
	s.healUs = s.now
	s.cuts = nil
	s.peerCuts = nil
	s.peerDropUntil = 0
	s.spikeUntil = 0
	for _, n := range s.nodes {
		n.heal()
	}
	for _, m := range s.members {
		m.heal()
	}
}

// idleGraceUs is how long after the clients leave the idle count starts: their closes
// still reach the broker meanwhile.
const idleGraceUs = 100_000

// busiesNode reports whether the event makes a node do work (the idle check counts them).
func (e *event) busiesNode() bool {
	switch e.kind {
	case evTick, evSyncDone, evSpin:
		return true
	case evDeliver:
		return e.dir == toServer
	}
	return false
}

// checkIdle fails the run if the broker kept busy with no client connected.
func (s *Sim) checkIdle() {
	perS := s.idleEvents * 1_000_000 / max(s.now-s.idleFromUs, 1)
	if perS > maxIdleEventsPerS {
		s.violate("liveness", -1, "%d events per simulated second with no client connected (bound %d): a handler is spinning", perS, maxIdleEventsPerS)
	}
	for _, n := range s.nodes {
		if k := n.liveConns(); k > 0 {
			s.violate("liveness", -1, "node %d still holds %d connections whose clients are gone", n.idx, k)
		}
	}
}

// finding records a failed check, as a note when the check is a known issue.
func (s *Sim) finding(check string, part int32, format string, args ...any) {
	if _, known := KnownIssues[check]; !known {
		s.violate(check, part, format, args...)
		return
	}
	detail := fmt.Sprintf(format, args...)
	s.tr.line(s.now, "sim", "NOTE").s("check", check).i("p", int64(part)).s("detail", strconv.Quote(detail)).end()
	for i := range s.res.Notes {
		if s.res.Notes[i].Check == check {
			s.res.Notes[i].Count++
			return
		}
	}
	s.res.Notes = append(s.res.Notes, Note{Check: check, Count: 1, First: Violation{Check: check, Partition: part, AtUs: s.now, Detail: detail}})
}

// violate records a failed check.
func (s *Sim) violate(check string, part int32, format string, args ...any) {
	s.res.ViolationCount++
	if part >= 0 && int(part) < len(s.partFailed) {
		s.partFailed[part]++
	}
	detail := fmt.Sprintf(format, args...)
	s.tr.line(s.now, "sim", "VIOLATION").s("check", check).i("p", int64(part)).s("detail", strconv.Quote(detail)).end()
	if len(s.res.Violations) < maxViolations {
		s.res.Violations = append(s.res.Violations, Violation{Check: check, Partition: part, AtUs: s.now, Detail: detail})
	}
}

// fmtUs formats simulated µs as seconds with millisecond precision.
func fmtUs(us int64) string {
	return strconv.FormatFloat(float64(us)/1e6, 'f', 3, 64) + "s"
}
