package cluster

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/chaos/proxy"
)

// TestKillRestartPause starts one real node, writes through its proxy, and checks the
// record survives kill -9 and restart, that a paused node answers nothing, and that
// nothing is left running.
func TestKillRestartPause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := Start(ctx, Config{Binary: bin, Dir: dir, Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Nodes()[0]
	pid := n.PID()
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after Close", pid)
		}
	}()

	produce := func(v string) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
		defer pcancel()
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "t", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
	}
	consume := func(want int) []string {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.ConsumeTopics("t"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var got []string
		deadline := time.Now().Add(15 * time.Second)
		for len(got) < want && time.Now().Before(deadline) {
			fctx, fcancel := context.WithTimeout(ctx, time.Second)
			fs := cl.PollFetches(fctx)
			fcancel()
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		return got
	}

	produce("before-kill")
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if n.Running() {
		t.Fatal("running after Kill")
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	produce("after-restart")
	if got := consume(2); strings.Join(got, ",") != "before-kill,after-restart" {
		t.Fatalf("read %q after kill and restart", got)
	}

	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = cl.Ping(pctx)
	pcancel()
	cl.Close()
	if err == nil {
		t.Fatal("a paused node answered a ping")
	}
	if err := n.Resume(); err != nil {
		t.Fatal(err)
	}
	n.Proxy().SetFaults(proxy.Faults{Delay: 20 * time.Millisecond})
	produce("after-resume")
	c.HealNetwork()

	logb, err := os.ReadFile(n.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(logb), "=== chaos: start") != 2 || !strings.Contains(string(logb), "advertised "+n.Addr()) {
		t.Fatalf("node log lacks two start markers or the proxy as advertised address:\n%s", logb)
	}
}

// TestThreeNodes starts three processes, each advertising its own proxy, kills and
// restarts one, and checks that Close leaves none running.
func TestThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real brokers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, Config{Binary: bin, Dir: t.TempDir(), Nodes: 3, Seed: 1,
		ArgsFor: func(n *Node) []string { return []string{"-quiet=false"} }})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range c.Nodes() {
		pids = append(pids, n.PID())
	}
	n2 := c.Nodes()[1]
	if err := n2.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n2.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pids = append(pids, n2.PID())
	for _, n := range c.Nodes() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err = cl.Ping(pctx)
		pcancel()
		cl.Close()
		if err != nil {
			t.Fatalf("node %d through its proxy: %v", n.ID, err)
		}
		b, err := os.ReadFile(n.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "advertised "+n.Addr()) || !strings.Contains(string(b), "node "+strconv.Itoa(n.ID)+" serving") {
			t.Fatalf("node %d's log does not show its id and proxy address %s:\n%s", n.ID, n.Addr(), b)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after Close", pid)
		}
	}
}

// TestCrashIsReported kills a node behind the cluster's back: it counts as a crash, the
// node reads as down, and Restart brings it back.
func TestCrashIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, Config{Binary: bin, Dir: t.TempDir(), Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	n := c.Nodes()[0]
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.Crashes(); len(got) != 0 {
		t.Fatalf("Kill counted as a crash: %v", got)
	}
	if err := syscall.Kill(n.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.Running() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n.Running() {
		t.Fatal("the node still reads as running 10 s after its process was killed")
	}
	if got := n.Crashes(); len(got) != 1 || !strings.Contains(got[0], "start 2") {
		t.Fatalf("crashes %v, want one, of start 2", got)
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPeered starts a 3-node cluster and checks that every node dials every other one
// through its link proxy, that clients are sent to the client proxies, and that an
// acks=all write to a topic of three replicas is acknowledged.
func TestPeered(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real brokers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, Config{Binary: bin, Dir: t.TempDir(), Nodes: 3, Seed: 1, Peered: true, ElectionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()[0]), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowAutoTopicCreation(), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, from := range c.Nodes() {
		for _, to := range c.Nodes() {
			if from == to {
				if c.Link(from.ID, to.ID) != nil {
					t.Fatalf("a link from node %d to itself", from.ID)
				}
				continue
			}
			if st := c.Link(from.ID, to.ID).Stats(); st.Accepted == 0 {
				t.Errorf("node %d never dialed node %d through its link proxy: %+v", from.ID, to.ID, st)
			}
		}
		if got := len(c.LinksOf(from.ID)); got != 4 {
			t.Errorf("node %d has %d links, want 4", from.ID, got)
		}
	}
	if brokers := metadataBrokers(ctx, t, cl); strings.Join(brokers, ",") != strings.Join(c.Bootstrap(), ",") {
		t.Fatalf("metadata names brokers %v, want the client proxies %v", brokers, c.Bootstrap())
	}
}

// metadataBrokers returns the brokers' host:port from a Metadata request, by node id.
func metadataBrokers(ctx context.Context, t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(resp.Brokers))
	for _, b := range resp.Brokers {
		if b.NodeID < 1 || int(b.NodeID) > len(out) {
			t.Fatalf("metadata names broker %d", b.NodeID)
		}
		out[b.NodeID-1] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	return out
}
