package main

import (
	"context"
	"sync"
	"time"

	"chronik/internal/proccpu"
)

// maxCPUSamples bounds the samples one cpuSampler keeps (an hour at one a second).
const maxCPUSamples = 3600

// cpuSample is the CPU each process used over the interval that ended at At.
type cpuSample struct {
	At    time.Time
	Cores []float64 // process i at i, in cores (1 = one core busy)
}

// cpuSampler reads the CPU time of some processes every interval, for the chart. Its
// goroutine runs from startSampler until stop returns.
type cpuSampler struct {
	procs    []*child
	interval time.Duration
	stopc    chan struct{}
	done     chan struct{}

	mu      sync.Mutex
	samples []cpuSample // guarded by mu; at most maxCPUSamples
}

func startSampler(procs []*child, interval time.Duration) *cpuSampler {
	s := &cpuSampler{procs: procs, interval: interval, stopc: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *cpuSampler) loop() {
	defer close(s.done)
	prev, prevAt := s.read(), time.Now()
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-tick.C:
		}
		cur, at := s.read(), time.Now()
		wall := at.Sub(prevAt)
		smp := cpuSample{At: at, Cores: make([]float64, len(cur))}
		for i := range cur {
			if cur[i] >= 0 && prev[i] >= 0 {
				smp.Cores[i] = float64(cur[i]-prev[i]) / float64(wall)
			}
		}
		s.mu.Lock()
		if len(s.samples) < maxCPUSamples {
			s.samples = append(s.samples, smp)
		}
		s.mu.Unlock()
		prev, prevAt = cur, at
	}
}

// read is each process's CPU time so far, -1 where it cannot be read.
func (s *cpuSampler) read() []time.Duration {
	out := make([]time.Duration, len(s.procs))
	for i, p := range s.procs {
		d, err := p.cpu()
		if err != nil {
			d = -1
		}
		out[i] = d
	}
	return out
}

// stop ends the sampling and returns the samples; the caller owns them.
func (s *cpuSampler) stop() []cpuSample {
	close(s.stopc)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// recoveryConfig is the CPU-recovery check: idle is at most maxCores over a window,
// sampled every interval; the check passes when the first idle window of every node
// begins within `within` of the load stopping. Sampling goes on up to `patience` so a
// slow recovery is still measured.
type recoveryConfig struct {
	maxCores float64
	window   time.Duration
	interval time.Duration
	within   time.Duration
	patience time.Duration
}

// nodeRecovery is one node's recovery.
type nodeRecovery struct {
	proccpu.Recovery
	err error
}

// checkRecovery samples every node's CPU from /proc at once until each is idle or
// cfg.patience passes.
func checkRecovery(ctx context.Context, nodes []*child, cfg recoveryConfig) []nodeRecovery {
	out := make([]nodeRecovery, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			r, err := proccpu.WaitIdle(ctx, proccpu.Proc(n.pid()), proccpu.IdleConfig{
				MaxCores: cfg.maxCores, Window: cfg.window, Interval: cfg.interval, Timeout: cfg.patience,
			})
			out[i] = nodeRecovery{r, err}
		})
	}
	wg.Wait()
	return out
}

// passed says whether the node was idle within cfg.within.
func (r nodeRecovery) passed(cfg recoveryConfig) bool {
	return r.err == nil && r.Idle && r.After <= cfg.within
}
