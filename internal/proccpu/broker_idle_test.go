package proccpu_test

import (
	"context"
	"fmt"
	gonet "net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/brokertest"
	"chronik/internal/proccpu"
	"chronik/kafka"
	cnet "chronik/net"
)

// TestBrokerIdlesAfterLoad checks the seed report's CPU-recovery claim in process: after
// a burst of produce and fetch load and 100 connections dropped mid-request, an idle
// broker uses under 2% of a core within 5 seconds. Nothing else runs in this test
// binary, so getrusage(RUSAGE_SELF) measures the broker (and the Go runtime under it).
func TestBrokerIdlesAfterLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a load burst and waits for idle")
	}
	b := brokertest.Start(t, kafka.Config{DefaultPartitions: 3}, cnet.ServerConfig{Metrics: cnet.NewMetrics()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	busy, err := proccpu.Rusage()()
	if err != nil {
		t.Fatal(err)
	}
	loadStart := time.Now()
	burst(ctx, t, b.Addr())
	dropConnections(t, b.Addr(), 100)
	after, err := proccpu.Rusage()()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("burst: %v of CPU in %v", after-busy, time.Since(loadStart).Round(time.Millisecond))

	r, err := proccpu.WaitIdle(ctx, proccpu.Rusage(), proccpu.IdleConfig{MaxCores: 0.02, Window: time.Second, Interval: 100 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the burst: %v", r)
	if !r.Idle {
		t.Fatalf("broker not idle within 5s of load: %v", r)
	}
}

// burst produces 4 × 50,000 records of 256 bytes with acks=all on 4 clients at once, then
// reads them back.
func burst(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	const producers, records = 4, 50000
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("idle"))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			rs := make([]*kgo.Record, records)
			for i := range rs {
				rs[i] = &kgo.Record{Key: fmt.Appendf(nil, "%d-%d", p, i%16), Value: make([]byte, 256)}
			}
			errs <- cl.ProduceSync(ctx, rs...).FirstErr()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("idle"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for n := 0; n < producers*records; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read back %d of %d records: %v", n, producers*records, err)
		}
		n += fs.NumRecords()
	}
}

// dropConnections opens n connections, sends half a request frame on each, and closes
// them: the seed report's spin loop began with sockets closed under the handler.
func dropConnections(t *testing.T, addr string, n int) {
	t.Helper()
	conns := make([]gonet.Conn, 0, n)
	for range n {
		c, err := gonet.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{0, 0, 0, 40, 0, 18}); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
}
