package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errBusy is a request that waited its longest for in-flight budget: 429.
var errBusy = errors.New("ingest: in-flight budget exhausted")

// maxQueuedRequests bounds the requests waiting for budget; more are refused at once.
const maxQueuedRequests = 10000

// budget bounds the bytes of the requests being worked on. Requests take budget in
// arrival order: a large request at the head is not starved by small ones behind it.
type budget struct {
	max int64

	mu sync.Mutex
	// used is the budget taken. Invariant: 0 <= used <= max.
	used int64
	// waiters are the requests queued for budget, oldest first.
	waiters []*waiter
}

type waiter struct {
	n     int64
	ready chan struct{} // closed when n is granted
}

func newBudget(max int64) *budget {
	if max <= 0 {
		panic(fmt.Sprintf("ingest: budget of %d bytes", max))
	}
	return &budget{max: max}
}

// acquire takes n bytes of budget, waiting until ctx is done. It returns errBusy wrapped
// with ctx's error when ctx ends first. n must not exceed the budget's max.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if n <= 0 || n > b.max {
		panic(fmt.Sprintf("ingest: acquire %d of a %d-byte budget", n, b.max))
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.max {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	if len(b.waiters) >= maxQueuedRequests {
		b.mu.Unlock()
		return fmt.Errorf("%w: %d requests already waiting", errBusy, maxQueuedRequests)
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready: // granted while we were giving up: hand it back
			b.mu.Unlock()
			b.release(n)
		default:
			b.remove(w)
			b.grant() // the head may have been blocking smaller waiters
			b.mu.Unlock()
		}
		return fmt.Errorf("%w: %w", errBusy, ctx.Err())
	}
}

// release returns n bytes taken by acquire.
func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n <= 0 || n > b.used {
		panic(fmt.Sprintf("ingest: release %d with %d in use", n, b.used))
	}
	b.used -= n
	b.grant()
}

// inUse is the budget taken now, in bytes.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// grant wakes waiters from the head while they fit. b.mu is held.
func (b *budget) grant() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.max {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.used += w.n
		close(w.ready)
	}
}

// remove drops w from the queue. b.mu is held.
func (b *budget) remove(w *waiter) {
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			return
		}
	}
}
