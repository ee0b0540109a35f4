package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/chaos/cluster"
	"chronik/internal/loadrec"
)

// Bounds of a run's phases after the faults.
const (
	stopTimeout  = 30 * time.Second // for the writers to return after the workload stops
	readTimeout  = 60 * time.Second // for the final read of every partition
	topicTimeout = 20 * time.Second // for the topic to be created at the start
	groupCatchUp = 30 * time.Second // for the group member to read to the end after the final read
	inSyncWait   = 30 * time.Second // for every replica to be in sync again after the heal (cluster)
)

// Config describes one chaos run.
type Config struct {
	// Seed seeds the fault schedule and the proxies' jitter.
	Seed uint64
	// Duration is the span of the fault schedule.
	Duration time.Duration
	// Nodes, Partitions and Writers size the cluster and the workload. More than one
	// node is a cluster (cluster.Config.Peered): the topic is replicated and the
	// schedule adds peer-link faults and faults aimed at partition leaders.
	Nodes, Partitions, Writers int
	// ReplicationFactor is the topic's (0: min(3, Nodes)).
	ReplicationFactor int
	// ElectionTimeout is the nodes' -election-timeout in a cluster (0: the broker's).
	ElectionTimeout time.Duration
	// ValueBytes is the size of each record value (at least loadrec.HeaderBytes).
	ValueBytes int
	// MaxOpsPerWriter bounds each writer's writes.
	MaxOpsPerWriter int
	// WriteInterval is the least time between the calls of one writer: it bounds the
	// history and the data of a long run (4 writers at 5 ms: at most 800 writes a second).
	WriteInterval time.Duration
	// RecordTimeout is franz-go's RecordDeliveryTimeout for the writers.
	RecordTimeout time.Duration
	// CancellingWriters of the Writers give up on a call after CallTimeout, failing it
	// even in flight, so the history holds unknown outcomes (at most Writers).
	CancellingWriters int
	CallTimeout       time.Duration
	// Recovery is how long every writer has, after the faults heal, to get a write
	// acknowledged.
	Recovery time.Duration
	// Schedule shapes the faults; its Duration and Nodes are set from the fields above.
	Schedule ScheduleConfig
	// FullDisk puts each node's data on a tmpfs of its own and adds FullDisk faults to
	// the schedule's kinds (when Schedule.Kinds is empty). It needs root (TmpfsAvailable).
	FullDisk bool
	// Binary is the chronik executable (cluster.Build).
	Binary string
	// OutDir is the parent of the run folder.
	OutDir string
	// Keep keeps the run folder even when the run passes.
	Keep bool
	// Logf receives progress lines (may be nil).
	Logf func(format string, args ...any)
}

// DefaultConfig is a run of d with seed: a cluster of three nodes, three partitions
// with three replicas each, four writers.
func DefaultConfig(seed uint64, d time.Duration) Config {
	return Config{
		Seed: seed, Duration: d,
		Nodes: 3, Partitions: 3, Writers: 4, ElectionTimeout: time.Second,
		ValueBytes: 200, MaxOpsPerWriter: 1_000_000, WriteInterval: 5 * time.Millisecond,
		RecordTimeout:     20 * time.Second,
		CancellingWriters: 1, CallTimeout: time.Second,
		Recovery: 20 * time.Second,
		Schedule: ScheduleConfig{
			MinGap: 500 * time.Millisecond, MaxGap: 2 * time.Second,
			MinLength: 500 * time.Millisecond, MaxLength: 4 * time.Second,
			MaxFaults: 1000,
		},
		OutDir: "out",
	}
}

func (c *Config) validate() error {
	switch {
	case c.Duration <= 0, c.Nodes < 1, c.Partitions < 1, c.Writers < 1, c.MaxOpsPerWriter < 1,
		c.CancellingWriters < 0, c.CancellingWriters > c.Writers, c.CancellingWriters > 0 && c.CallTimeout <= 0:
		return fmt.Errorf("chaos: bad config %+v", *c)
	case c.ValueBytes < loadrec.HeaderBytes || c.ValueBytes > loadrec.MaxBytes:
		return fmt.Errorf("chaos: ValueBytes %d outside [%d, %d]", c.ValueBytes, loadrec.HeaderBytes, loadrec.MaxBytes)
	case c.Binary == "" || c.OutDir == "":
		return errors.New("chaos: config needs Binary and OutDir")
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = min(3, c.Nodes)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > c.Nodes {
		return fmt.Errorf("chaos: ReplicationFactor %d with %d nodes", c.ReplicationFactor, c.Nodes)
	}
	c.Schedule.Duration, c.Schedule.Nodes, c.Schedule.Partitions = c.Duration, c.Nodes, 0
	if c.peered() {
		c.Schedule.Partitions = c.Partitions
	}
	if len(c.Schedule.Kinds) == 0 {
		c.Schedule.Kinds = DefaultKinds(c.peered(), c.FullDisk)
	}
	return nil
}

// peered says whether the nodes form one cluster.
func (c *Config) peered() bool { return c.Nodes > 1 }

// Result is what a run did and found.
type Result struct {
	// Dir is the run folder (removed after a passing run unless Config.Keep).
	Dir string
	// Schedule is the fault schedule drawn from the seed.
	Schedule []Fault
	// Outcomes tallies the writes by outcome.
	Outcomes map[Outcome]int
	// Records is the length of the final log, summed over partitions.
	Records int
	// TailReads and GroupReads count what the tailing consumer and the group member read.
	TailReads, GroupReads int
	// Report is the checks' verdict (nil when the run could not get that far).
	Report *Report
}

// Failed says whether the run found a violation.
func (r *Result) Failed() bool { return r.Report == nil || !r.Report.OK() }

// Run runs one chaos run: it starts the cluster, runs the workload through the fault
// schedule, heals every fault, checks that every writer makes progress again and (in a
// cluster) that every replica is in sync again, stops the workload, reads every
// partition back, stops the cluster, scans the node logs for panics and checks the
// history. The returned error is a
// harness failure (the cluster would not start, a node would not restart, the final
// read failed); violations are in Result.Report. The run folder holds the node logs,
// events.log, schedule.txt, ops.jsonl, final.txt, tail.txt, report.txt and porcupine
// visualizations of failing partitions.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.OutDir, fmt.Sprintf("seed-%d-%s", cfg.Seed, time.Now().UTC().Format("20060102T150405")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res = &Result{Dir: dir, Schedule: DrawSchedule(cfg.Seed, cfg.Schedule)}
	ev, err := newEventLog(filepath.Join(dir, "events.log"), cfg.Logf)
	if err != nil {
		return res, err
	}
	defer func() {
		if werr := os.WriteFile(filepath.Join(dir, "schedule.txt"), []byte(FormatSchedule(res.Schedule)), 0o644); err == nil {
			err = werr
		}
		if res.Report != nil {
			if werr := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(res.Summary()), 0o644); err == nil {
				err = werr
			}
		}
		if cerr := ev.close(); err == nil {
			err = cerr
		}
		if err == nil && !res.Failed() && !cfg.Keep {
			err = os.RemoveAll(dir)
		}
	}()

	ccfg := cluster.Config{Binary: cfg.Binary, Dir: dir, Nodes: cfg.Nodes, Seed: cfg.Seed,
		Peered: cfg.peered(), ElectionTimeout: cfg.ElectionTimeout}
	tg := &target{logf: ev.logf}
	if cfg.FullDisk {
		ccfg.DataRoot = filepath.Join(dir, "tmpfs")
		defer func() {
			if uerr := unmountAll(tg.disks, dir, res.Failed()); err == nil {
				err = uerr
			}
		}()
		for i := 1; i <= cfg.Nodes; i++ {
			d, merr := mountTmpfs(filepath.Join(ccfg.DataRoot, fmt.Sprintf("node-%d", i)))
			if merr != nil {
				return res, merr
			}
			tg.disks = append(tg.disks, d)
		}
	}
	cl, err := cluster.Start(ctx, ccfg)
	if err != nil {
		return res, err
	}
	tg.c = cl
	defer func() {
		if cerr := cl.Close(); err == nil {
			err = cerr
		}
	}()
	ev.logf("cluster of %d up in %s; clients use %v", cfg.Nodes, dir, cl.Bootstrap())

	start := time.Now()
	hist := NewHistory(start)
	w := &workload{cfg: &cfg, hist: hist, topic: "chaos", seeds: cl.Bootstrap(), runID: uint32(cfg.Seed) ^ uint32(start.Unix())}
	if err := w.createTopic(ctx, topicTimeout); err != nil {
		return res, err
	}
	adm, err := kgo.NewClient(w.clientOpts()...)
	if err != nil {
		return res, err
	}
	closeAdm := sync.OnceFunc(adm.Close)
	defer closeAdm()
	if cfg.peered() {
		tg.leaderOf = func(ctx context.Context, p int32) (int, error) { return leaderOf(ctx, adm, w.topic, p, cfg.Nodes) }
	}
	stop := w.start(ctx)
	stopGroup := w.startGroup(ctx)
	ev.start = start
	serr := runSchedule(ctx, tg, start, res.Schedule)
	healed := time.Now()
	herr := healAll(ctx, tg)
	report := &Report{}
	if serr == nil && herr == nil {
		waitProgress(ctx, hist, cfg.Writers, healed, cfg.Recovery, report)
		if cfg.peered() {
			waitInSync(ctx, adm, w.topic, cfg.Nodes, cfg.ReplicationFactor, inSyncWait, report)
			ev.logf("in-sync check done")
		}
	}
	werr := stop(stopTimeout)
	ev.logf("workload stopped: %v (stop error: %v)", hist.Counts(), werr)
	if serr != nil || herr != nil {
		return res, errors.Join(serr, herr, stopGroup(), hist.WriteFiles(dir, nil))
	}

	final, rerr := w.readAll(ctx, readTimeout)
	if rerr != nil {
		return res, errors.Join(rerr, stopGroup(), hist.WriteFiles(dir, final))
	}
	end := map[int32]int64{} // one past the last record that is not a control record
	for p, rs := range final {
		for _, rd := range rs {
			if !rd.Control {
				end[p] = rd.Offset + 1
			}
		}
	}
	for gdeadline := time.Now().Add(groupCatchUp); !hist.GroupReached(end) && time.Now().Before(gdeadline); {
		sleepUntil(ctx, time.Now().Add(100*time.Millisecond))
	}
	if !hist.GroupReached(end) {
		report.violate("group-behind", -1, "the consumer group had not read to the end offsets %v within %v of the final read", end, groupCatchUp)
	}
	if gerr := stopGroup(); gerr != nil {
		return res, gerr
	}
	closeAdm()
	if cerr := cl.Close(); cerr != nil { // before the log scan: a panic at shutdown counts
		return res, errors.Join(cerr, hist.WriteFiles(dir, final))
	}
	for _, n := range cl.Nodes() {
		if serr := scanLog(report, n.ID, n.LogPath()); serr != nil {
			return res, serr
		}
	}
	CheckGroup(report, hist.GroupReads(), final)
	for _, rs := range hist.GroupReads() {
		res.GroupReads += len(rs)
	}
	for _, rs := range hist.TailReads() {
		res.TailReads += len(rs)
	}
	for _, rs := range final {
		for _, rd := range rs {
			if !rd.Control {
				res.Records++
			}
		}
	}
	ops := hist.Ops()
	res.Outcomes = hist.Counts()
	chk := Check(ops, final, hist.TailReads(), dir)
	chk.Violations = append(report.Violations, chk.Violations...)
	for k, n := range report.Counts {
		if chk.Counts == nil {
			chk.Counts = map[string]int{}
		}
		chk.Counts[k] += n
	}
	for _, n := range cl.Nodes() {
		for _, c := range n.Crashes() {
			chk.violate("node-crashed", -1, "node %d: %s; see %s", n.ID, c, n.LogPath())
		}
	}
	if res.Outcomes[Acked] == 0 {
		chk.violate("no-acks", -1, "no write was acknowledged in the whole run")
	}
	res.Report = chk
	if err := hist.WriteFiles(dir, final); err != nil {
		return res, err
	}
	ev.logf("checked: %d records, outcomes %v, %d violations", res.Records, res.Outcomes, len(chk.Violations))
	return res, werr
}

// healAll removes every proxy fault, grows every tmpfs, resumes paused nodes and restarts
// stopped ones.
func healAll(ctx context.Context, tg *target) error {
	c, logf := tg.c, tg.logf
	c.HealNetwork()
	var errs []error
	for _, d := range tg.disks {
		errs = append(errs, d.grow())
	}
	for _, n := range c.Nodes() {
		if n.Paused() {
			errs = append(errs, n.Resume())
		}
		if !n.Running() {
			errs = append(errs, n.Restart(ctx))
		}
	}
	logf("healed everything")
	return errors.Join(errs...)
}

// unmountAll unmounts the nodes' tmpfs data dirs, first copying each to
// <dir>/node-<i>/data-copy when keep is set (a failed run keeps its data).
func unmountAll(disks []*tmpfs, dir string, keep bool) error {
	var errs []error
	for i, d := range disks {
		if keep {
			dst := filepath.Join(dir, fmt.Sprintf("node-%d", i+1), "data-copy")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				errs = append(errs, err)
			} else {
				errs = append(errs, d.copyTo(dst))
			}
		}
		errs = append(errs, d.unmount())
	}
	return errors.Join(errs...)
}

// waitProgress waits until every writer has had a write acknowledged that it called after
// healed, for at most recovery, and reports each writer that has not.
func waitProgress(ctx context.Context, h *History, writers int, healed time.Time, recovery time.Duration, r *Report) {
	deadline := healed.Add(recovery)
	for {
		var stuck []int
		for i := range writers {
			if !h.AckedSince(i, healed) {
				stuck = append(stuck, i)
			}
		}
		if len(stuck) == 0 {
			return
		}
		if !time.Now().Before(deadline) || !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			r.violate("no-progress", -1, "writers %v had no write acknowledged within %v after the faults healed", stuck, recovery)
			return
		}
	}
}

// Summary describes the result in a few lines.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "faults: %d; writes: %v; final log: %d records; read by the tailing consumer %d, by the group %d\n",
		len(r.Schedule), r.Outcomes, r.Records, r.TailReads, r.GroupReads)
	if r.Report == nil {
		b.WriteString("not checked\n")
		return b.String()
	}
	fmt.Fprintf(&b, "unknown writes resolved as written: %d; linearizability unknown: %v\n", r.Report.Resolved, r.Report.LinearizabilityUnknown)
	kinds := make([]string, 0, len(r.Report.Counts))
	for k := range r.Report.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "violation %s: %d\n", k, r.Report.Counts[k])
	}
	for _, v := range r.Report.Violations {
		fmt.Fprintf(&b, "  %v\n", v)
	}
	for _, v := range r.Report.Visualizations {
		fmt.Fprintf(&b, "visualization: %s\n", v)
	}
	return b.String()
}

// eventLog writes timestamped lines to a file and to an optional logf.
type eventLog struct {
	mu    sync.Mutex
	f     *os.File
	start time.Time
	echo  func(string, ...any)
}

func newEventLog(path string, echo func(string, ...any)) (*eventLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &eventLog{f: f, start: time.Now(), echo: echo}, nil
}

func (e *eventLog) logf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	line := fmt.Sprintf("%9.3fs %s", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
	fmt.Fprintln(e.f, line)
	if e.echo != nil {
		e.echo("%s", line)
	}
}

func (e *eventLog) close() error { return e.f.Close() }
