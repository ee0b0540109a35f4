package ingest

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudgetFIFO(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	if err := b.acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	// A large request queues; a small one behind it must not overtake it.
	big, small := make(chan error, 1), make(chan error, 1)
	go func() { big <- b.acquire(ctx, 10) }()
	waitQueued(t, b, 1)
	go func() { small <- b.acquire(ctx, 1) }()
	waitQueued(t, b, 2)
	select {
	case err := <-small:
		t.Fatalf("small request overtook the queued large one: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	b.release(8)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	b.release(10)
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	b.release(1)
	if n := b.inUse(); n != 0 {
		t.Fatalf("in use %d after releasing everything", n)
	}
}

func TestBudgetTimeout(t *testing.T) {
	b := newBudget(10)
	if err := b.acquire(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.acquire(ctx, 5); !errors.Is(err, errBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want errBusy and DeadlineExceeded", err)
	}
	b.release(10)
	if err := b.acquire(context.Background(), 10); err != nil {
		t.Fatalf("a timed-out waiter kept budget: %v", err)
	}
}

func waitQueued(t *testing.T, b *budget, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		q := len(b.waiters)
		b.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}
