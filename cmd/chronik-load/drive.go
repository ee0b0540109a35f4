package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/loadrec"
)

// slot is a virtual user's place: its state survives a ramp down and up, so a VU that
// comes back continues its producer's sequence.
type slot struct {
	v *vu
	// stop asks the running VU to finish its batch and exit; done is closed when it has.
	stop, done chan struct{}
}

// runResult is what a run measured.
type runResult struct {
	started  time.Time
	elapsed  time.Duration
	stats    *stats
	timeline []sample
	slots    []*slot
}

// drive runs the stages: it starts and stops VUs to follow the ramp, prints a progress
// line every second, and after the last stage waits for the VUs' last batches.
func drive(ctx context.Context, o *options, snd sender, progress io.Writer) *runResult {
	started := time.Now()
	st := newStats(started, o.stages)
	vuCtx, cancelVUs := context.WithCancel(ctx)
	defer cancelVUs()
	d := &driver{o: o, snd: snd, st: st, ctx: vuCtx}

	total := totalDuration(o.stages)
	control := time.NewTicker(controlTick)
	defer control.Stop()
	second := time.NewTicker(time.Second)
	defer second.Stop()
	lastSample := started
	var timeline []sample
	var acked int64
	emit := func(now time.Time) {
		c := st.tick()
		acked += c.recordsOK
		elapsed, window := now.Sub(started), now.Sub(lastSample)
		s := newSample(elapsed, window, int(d.running.Load()), targetAt(o.stages, elapsed), &c, acked)
		lastSample = now
		timeline = append(timeline, s)
		// The window's stage is the one at its middle: a tick lands just past a boundary.
		fmt.Fprintln(progress, s.progressLine(stageAt(o.stages, elapsed-window/2), len(o.stages)))
	}

	for ctx.Err() == nil {
		elapsed := time.Since(started)
		if elapsed >= total {
			break
		}
		d.follow(targetAt(o.stages, elapsed))
		select {
		case <-ctx.Done():
		case <-control.C:
		case now := <-second.C:
			emit(now)
		}
	}

	// Drain: stop every VU; each finishes its batch, within the request timeout.
	d.follow(0)
	drainUntil := time.NewTimer(o.requestTimeout + drainGrace)
	defer drainUntil.Stop()
	for _, s := range d.slots {
		select {
		case <-s.done:
		case <-drainUntil.C:
			cancelVUs() // the batches still out fail; each VU then exits
			<-s.done
		}
	}
	now := time.Now()
	if now.Sub(lastSample) >= 100*time.Millisecond {
		emit(now)
	}
	return &runResult{started: started, elapsed: now.Sub(started), stats: st, timeline: timeline, slots: d.slots}
}

// driver owns the VUs of a run.
type driver struct {
	o   *options
	snd sender
	st  *stats
	ctx context.Context

	// slots are every VU ever started, in slot order. active are the slots running and
	// not asked to stop (a stack: ramping down stops the newest); stopping are the slots
	// asked to stop; free are the stopped slots, ready to run again.
	// Invariant: every slot is in exactly one of active, stopping, free.
	slots                  []*slot
	active, stopping, free []int
	// running counts the VU goroutines, for the progress line.
	running atomic.Int32
}

// follow starts or stops VUs so that want are active.
func (d *driver) follow(want int) {
	d.reap()
	for len(d.active) < want {
		d.start()
	}
	for len(d.active) > want {
		i := d.active[len(d.active)-1]
		d.active = d.active[:len(d.active)-1]
		close(d.slots[i].stop)
		d.stopping = append(d.stopping, i)
	}
}

// reap moves the slots whose VU has exited from stopping to free.
func (d *driver) reap() {
	kept := d.stopping[:0]
	for _, i := range d.stopping {
		select {
		case <-d.slots[i].done:
			d.free = append(d.free, i)
		default:
			kept = append(kept, i)
		}
	}
	d.stopping = kept
}

// start runs a VU in a free slot, or in a new one.
func (d *driver) start() {
	var i int
	if n := len(d.free); n > 0 {
		i = d.free[n-1]
		d.free = d.free[:n-1]
	} else {
		i = len(d.slots)
		id := loadrec.ProducerID(d.o.runID, uint32(i))
		v := &vu{slot: i, p: producer{id: id, key: loadrec.Key(id)}, values: make([]byte, d.o.batch*d.o.size)}
		if d.o.direct {
			v.recs = make([]kgo.Record, d.o.batch)
		}
		d.slots = append(d.slots, &slot{v: v})
	}
	s := d.slots[i]
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	d.active = append(d.active, i)
	d.running.Add(1)
	go d.loop(s.v, s.stop, s.done)
}

// loop sends batches until stop is closed or the run's context ends: at most one batch
// per iteration, each bounded by the request timeout.
func (d *driver) loop(v *vu, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer d.running.Add(-1)
	for {
		select {
		case <-stop:
			return
		case <-d.ctx.Done():
			return
		default:
		}
		start := time.Now()
		r, msg := d.snd.send(d.ctx, v)
		r.end = time.Now()
		r.latency = r.end.Sub(start)
		v.p.account(d.o.batch, &r)
		d.st.record(&r, msg)
		if r.failed > 0 {
			select {
			case <-stop:
				return
			case <-d.ctx.Done():
				return
			case <-time.After(failurePause):
			}
		}
	}
}
