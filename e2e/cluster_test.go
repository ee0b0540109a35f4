package e2e

import (
	"context"
	"errors"
	"fmt"
	gonet "net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/internal/brokertest"
	"chronik/kafka"
	cnet "chronik/net"
)

// startCluster starts n clustered brokers in this process on free ports of 127.0.0.1,
// node ids 1..n, talking over the real TCP peer transport. Each is stopped when the test
// ends.
func startCluster(t *testing.T, n int, tune func(*kafka.Config)) []*cnet.Broker {
	t.Helper()
	return startClusterWith(t, n, tune, nil)
}

// startClusterWith is startCluster with each node's ServerConfig adjusted by serve (when
// not nil) before it starts.
func startClusterWith(t *testing.T, n int, tune func(*kafka.Config), serve func(i int, s *cnet.ServerConfig)) []*cnet.Broker {
	t.Helper()
	kafkaLns := make([]gonet.Listener, n)
	peerLns := make([]gonet.Listener, n)
	peers := make([]kafka.Peer, n)
	for i := range n {
		for _, ln := range []*gonet.Listener{&kafkaLns[i], &peerLns[i]} {
			l, err := gonet.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() }) // a no-op once the broker owns and closed it
			*ln = l
		}
		port := kafkaLns[i].Addr().(*gonet.TCPAddr).Port
		peers[i] = kafka.Peer{ID: int32(i + 1), Host: "127.0.0.1", Port: int32(port), PeerAddr: peerLns[i].Addr().String()}
	}
	bs := make([]*cnet.Broker, n)
	for i := range n {
		cfg := kafka.Config{NodeID: int32(i + 1), Peers: peers, RaftTickMs: 50, ElectionTimeoutMs: 500}
		if tune != nil {
			tune(&cfg)
		}
		scfg := cnet.ServerConfig{Peer: cnet.PeerOptions{Listener: peerLns[i], JitterSeed: uint64(i + 1)}}
		if serve != nil {
			serve(i, &scfg)
		}
		bs[i] = brokertest.Serve(t, kafkaLns[i], cfg, scfg)
	}
	return bs
}

func clusterSeeds(bs []*cnet.Broker) []string {
	var seeds []string
	for _, b := range bs {
		seeds = append(seeds, b.Addr())
	}
	return seeds
}

// createTopicRetrying creates a topic, retrying while the cluster elects its metadata
// leader; an existing topic is success (a timed-out attempt may have created it).
func createTopicRetrying(t testing.TB, adm *kadm.Client, partitions int32, rf int16, topic string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for {
		resp, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
		if err == nil && (resp.Err == nil || errors.Is(resp.Err, kerr.TopicAlreadyExists)) {
			return
		}
		if err == nil {
			err = resp.Err
		}
		if ctx.Err() != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		t.Logf("create topic %s: %v (retrying)", topic, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// freshMetadata asks a broker for the topics' metadata. kadm.Metadata answers from
// franz-go's cache, up to MetadataMinAge (5 s) old, unless the context asks for
// authorized operations, which makes it send a request.
func freshMetadata(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.Metadata, error) {
	return adm.Metadata(kadm.WithAuthorizedOps(ctx), topics...)
}

// waitLeaders waits until every partition of topic has a leader in Metadata and returns
// them by partition.
func waitLeaders(t testing.TB, adm *kadm.Client, topic string, partitions int) []int32 {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for {
		md, err := freshMetadata(ctx, adm, topic)
		if err == nil {
			td := md.Topics[topic]
			leaders := make([]int32, 0, partitions)
			for p := range int32(partitions) {
				if pd, ok := td.Partitions[p]; ok && pd.Err == nil && pd.Leader >= 0 {
					leaders = append(leaders, pd.Leader)
				}
			}
			if len(leaders) == partitions {
				return leaders
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("partitions of %s have no leader: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterFranz runs three in-process brokers with the real peer transport: kadm
// creates a replicated topic, franz-go produces to it idempotently with acks=all and
// reads everything back, Metadata names three brokers and spreads the leaders, and a
// produce sent straight to a follower is NOT_LEADER_OR_FOLLOWER.
func TestClusterFranz(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const (
		topic      = "replicated"
		partitions = 3
		records    = 3000
	)
	metrics := cnet.NewMetrics()
	bs := startClusterWith(t, 3, nil, func(i int, s *cnet.ServerConfig) {
		if i == 0 {
			s.Metrics = metrics
		}
	})
	cl := newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	adm := kadm.NewClient(cl)
	createTopicRetrying(t, adm, partitions, 3, topic)
	leaders := waitLeaders(t, adm, topic, partitions)
	t.Logf("leaders by partition: %v", leaders)

	md, err := freshMetadata(testCtx(t, 10*time.Second), adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("metadata names %d brokers, want 3: %v", len(md.Brokers), md.Brokers)
	}
	for p, pd := range md.Topics[topic].Partitions {
		if len(pd.Replicas) != 3 {
			t.Errorf("partition %d has replicas %v, want 3", p, pd.Replicas)
		}
	}
	if distinct := len(slices.Compact(slices.Sorted(slices.Values(leaders)))); distinct < 2 {
		t.Errorf("leaders %v: all partitions led by one node", leaders)
	}

	// Produce: values are "partition-seq", so the read-back can check order.
	ctx := testCtx(t, 40*time.Second)
	results := make(chan error, records)
	for i := range records {
		p := int32(i % partitions)
		r := &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i/partitions)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- err })
	}
	for range records {
		if err := <-results; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	// Read everything back with a fresh consumer.
	cons := newClient(t, bs[1].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := make([]int, partitions)
	for got := 0; got < records; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", got, records, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			want := fmt.Sprintf("%d-%d", r.Partition, next[r.Partition])
			if string(r.Value) != want {
				t.Fatalf("partition %d offset %d: %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition]++
			got++
		})
	}

	// Node 1's transport metrics: both peers connected, messages both ways.
	got := map[string]float64{}
	mfs, err := metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for _, peer := range []string{"2", "3"} {
		if got["chronik_peer_connected,peer="+peer] != 1 || got["chronik_peer_sent_messages_total,peer="+peer] == 0 {
			t.Errorf("metrics of peer %s: connected %v, sent %v", peer, got["chronik_peer_connected,peer="+peer], got["chronik_peer_sent_messages_total,peer="+peer])
		}
	}
	if got["chronik_peer_received_messages_total"] == 0 {
		t.Error("chronik_peer_received_messages_total is 0")
	}

	// A produce sent to a follower of partition 0 is refused.
	follower := int32(-1)
	for _, id := range md.Topics[topic].Partitions[0].Replicas {
		if id != leaders[0] {
			follower = id
			break
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, makeBatch(-1, -1, -1, "to-a-follower")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t, 10*time.Second), cl.Broker(int(follower)))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Errorf("produce to follower %d: %v, want NOT_LEADER_OR_FOLLOWER", follower, kerr.ErrorForCode(code))
	}
}

// procNode is one chronik process of a real-process cluster.
type procNode struct {
	id   int
	args []string
	log  string // stdout and stderr, appended across restarts
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// start starts the node's process; any goroutine may call it.
func (n *procNode) start(bin string) error {
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, n.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() {
		defer close(n.done)
		cmd.Wait()
		f.Close()
	}()
	return nil
}

// kill sends SIGKILL to the node's own process and waits for it.
func (n *procNode) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits.
func (n *procNode) stop() {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		n.kill()
	}
}

// freeAddrs returns n addresses on 127.0.0.1 that were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var lns []gonet.Listener
	var addrs []string
	for range n {
		ln, err := gonet.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// buildChronik builds cmd/chronik into a test folder.
func buildChronik(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chronik")
	ctx := testCtx(t, 3*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "chronik/cmd/chronik").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcCluster starts n chronik processes on 127.0.0.1, node ids 1..n.
func startProcCluster(t *testing.T, bin string, n int) []*procNode {
	t.Helper()
	dir := t.TempDir()
	addrs := freeAddrs(t, 2*n)
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s/%s", i+1, addrs[i], addrs[n+i]))
	}
	nodes := make([]*procNode, n)
	for i := range n {
		nodes[i] = &procNode{
			id:  i + 1,
			log: filepath.Join(dir, fmt.Sprintf("node%d.log", i+1)),
			args: []string{"-node-id", strconv.Itoa(i + 1), "-peers", strings.Join(peers, ","),
				"-data-dir", filepath.Join(dir, fmt.Sprintf("node%d", i+1)),
				"-raft-tick", "50ms", "-election-timeout", "500ms", "-auto-create-topics=false"},
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.stop()
		}
		if t.Failed() {
			for _, nd := range nodes {
				b, _ := os.ReadFile(nd.log)
				t.Logf("node %d log:\n%s", nd.id, tail(b, 4000))
			}
		}
	})
	for _, nd := range nodes {
		if err := nd.start(bin); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		waitListening(t, addrs[i])
	}
	return nodes
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := gonet.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterProcessesLeaderKill runs three chronik processes. franz-go produces
// idempotently with acks=all, each value naming its partition and sequence; meanwhile the
// leader of partition 0 is killed with SIGKILL and restarted 2 s later. At the end another
// node is killed, so the restarted one is part of every quorum, and every partition is
// read back: every acknowledged record is there exactly once, in order.
func TestClusterProcessesLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds chronik and runs three processes")
	}
	const (
		topic      = "killed"
		partitions = 3
		maxRecords = 12000 // per partition
		produceFor = 8 * time.Second
		killAfter  = 2 * time.Second
		downFor    = 2 * time.Second
	)
	bin := buildChronik(t)
	nodes := startProcCluster(t, bin, 3)
	seeds := seedsOf(nodes[0].args[slices.Index(nodes[0].args, "-peers")+1])
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RetryTimeout(30*time.Second), kgo.MaxBufferedRecords(300),
		// franz-go refreshes metadata at most every MetadataMinAge (5 s by default), and a
		// leader change, or NOT_ENOUGH_REPLICAS, waits for a refresh: keep the stream
		// flowing through the fault window.
		kgo.MetadataMinAge(250*time.Millisecond))
	adm := kadm.NewClient(cl)
	createTopicRetrying(t, adm, partitions, 3, topic)
	leaders := waitLeaders(t, adm, topic, partitions)
	t.Logf("leaders by partition: %v", leaders)

	// The faults, on their own goroutine so a producer blocked on a full buffer does not
	// hold them up: SIGKILL the leader of partition 0 after killAfter, restart it downFor
	// later.
	ctx := testCtx(t, 50*time.Second)
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	var victim *procNode
	faultsDone := make(chan error, 1)
	go func() {
		time.Sleep(killAfter)
		md, err := freshMetadata(ctx, adm, topic)
		if err != nil {
			faultsDone <- err
			return
		}
		leader := md.Topics[topic].Partitions[0].Leader
		if leader < 1 || int(leader) > len(nodes) {
			faultsDone <- fmt.Errorf("partition 0 has no leader at the kill (%d)", leader)
			return
		}
		victim = nodes[leader-1]
		t.Logf("t=%v: SIGKILL node %d (pid %d), leader of partition 0", since(), victim.id, victim.cmd.Process.Pid)
		victim.kill()
		time.Sleep(downFor)
		t.Logf("t=%v: restart node %d", since(), victim.id)
		faultsDone <- victim.start(bin)
	}()

	// Produce for produceFor, at most about 1,500 records a second, partition by
	// partition in turn.
	var (
		mu    sync.Mutex
		acked = make([][]int, partitions) // acknowledged sequences, by partition
		fails = make([]int, partitions)
		wg    sync.WaitGroup
		// The longest wait between two acknowledgements on partition 0, the one whose
		// leader is killed: the failover as a client sees it (logged, not asserted).
		lastAck0, gapFrom0 time.Time
		gap0               time.Duration
	)
	produced := make([]int, partitions)
	nextLog := time.Second
	for i := 0; time.Since(start) < produceFor && i < partitions*maxRecords; i++ {
		if time.Since(start) > nextLog {
			t.Logf("t=%v: produced %v, acked %d", since(), produced, ackedCount(&mu, acked))
			nextLog += time.Second
		}
		p := int32(i % partitions)
		seq := produced[p]
		produced[p]++
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, seq)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails[p]++
				if fails[p] <= 3 {
					t.Logf("produce %d-%d: %v", p, seq, err)
				}
				return
			}
			acked[p] = append(acked[p], seq)
			if p == 0 {
				now := time.Now()
				if !lastAck0.IsZero() && now.Sub(lastAck0) > gap0 {
					gap0, gapFrom0 = now.Sub(lastAck0), lastAck0
				}
				lastAck0 = now
			}
		})
		if i%3 == 2 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := <-faultsDone; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("t=%v: produced %v, acked %d, failed %v", since(), produced, ackedCount(&mu, acked), fails)
	mu.Lock()
	t.Logf("partition 0: longest wait between acknowledgements %v, from t=%v (the failover as the producer saw it)",
		gap0.Round(time.Millisecond), gapFrom0.Sub(start).Round(time.Millisecond))
	mu.Unlock()

	// Read back with another node down, so the restarted one is needed for a quorum of
	// every partition: it must have caught up on everything acknowledged while it was
	// away, and may have to lead.
	other := nodes[victim.id%len(nodes)]
	t.Logf("t=%v: SIGKILL node %d for the read-back", since(), other.id)
	other.kill()

	// Read every partition back from the start.
	cons := newClient(t, seeds[0], kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond))
	got := make([][]int, partitions)
	var quiet time.Time
readBack:
	for {
		fs := cons.PollRecords(testCtx(t, time.Second), 10000)
		if ctx.Err() != nil {
			t.Fatalf("read back: %v; got %d %d %d records", ctx.Err(), len(got[0]), len(got[1]), len(got[2]))
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			var p, seq int
			if _, err := fmt.Sscanf(string(r.Value), "%d-%d", &p, &seq); err != nil || p != int(r.Partition) {
				t.Fatalf("partition %d offset %d: unexpected value %q", r.Partition, r.Offset, r.Value)
			}
			got[p] = append(got[p], seq)
		})
		complete := true
		for p := range partitions {
			complete = complete && len(got[p]) >= len(acked[p])
		}
		switch {
		case !complete || n > 0:
			quiet = time.Time{}
		case quiet.IsZero():
			quiet = time.Now()
		case time.Since(quiet) > time.Second:
			break readBack // everything acknowledged has been read and nothing more came for 1 s
		}
	}
	for p := range partitions {
		checkPartitionLog(t, p, acked[p], got[p])
	}
}

// checkPartitionLog checks one partition read back: sequences strictly increasing (no
// duplicate, no reordering) and every acknowledged one present. Unacknowledged sequences
// may be present or not.
func checkPartitionLog(t *testing.T, p int, acked, got []int) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("partition %d: record %d is sequence %d after %d (duplicate or reordered)", p, i, got[i], got[i-1])
			return
		}
	}
	have := map[int]bool{}
	for _, s := range got {
		have[s] = true
	}
	missing := 0
	for _, s := range acked {
		if !have[s] {
			if missing < 5 {
				t.Errorf("partition %d: acknowledged sequence %d is missing", p, s)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("partition %d: %d of %d acknowledged records missing", p, missing, len(acked))
	}
	t.Logf("partition %d: %d records read back, %d acknowledged", p, len(got), len(acked))
}

// seedsOf is the Kafka addresses of a -peers value.
func seedsOf(peers string) []string {
	var seeds []string
	for _, e := range strings.Split(peers, ",") {
		_, addrs, _ := strings.Cut(e, "=")
		kafkaAddr, _, _ := strings.Cut(addrs, "/")
		seeds = append(seeds, kafkaAddr)
	}
	return seeds
}

func ackedCount(mu *sync.Mutex, acked [][]int) int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, a := range acked {
		n += len(a)
	}
	return n
}

// TestClusterNoSpuriousNotEnoughReplicas produces acks=all batches back to back to every
// partition's leader of a healthy cluster for 5 s: none may be NOT_ENOUGH_REPLICAS.
// franz-go answers that error with a metadata refresh, which it spaces MetadataMinAge
// (5 s by default) apart, so each spurious one stalls a producer's partition for seconds.
func TestClusterNoSpuriousNotEnoughReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const (
		topic      = "isr"
		partitions = 3
	)
	bs := startCluster(t, 3, nil)
	cl := newClient(t, bs[0].Addr(), kgo.SeedBrokers(clusterSeeds(bs)...))
	adm := kadm.NewClient(cl)
	createTopicRetrying(t, adm, partitions, 3, topic)
	leaders := waitLeaders(t, adm, topic, partitions)
	ctx := testCtx(t, 20*time.Second)
	var (
		mu             sync.Mutex
		spurious, sent int
		wg             sync.WaitGroup
	)
	start := time.Now()
	for p := range int32(partitions) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(start) < 5*time.Second; i++ {
				req := kmsg.NewPtrProduceRequest()
				req.Acks, req.TimeoutMillis = -1, 5000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition, rp.Records = p, makeBatch(-1, -1, -1, strconv.Itoa(i))
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl.Broker(int(leaders[p])))
				if err != nil {
					t.Error(err)
					return
				}
				code := resp.Topics[0].Partitions[0].ErrorCode
				mu.Lock()
				sent++
				if code == kerr.NotEnoughReplicas.Code {
					spurious++
					t.Logf("t=%v: partition %d: NOT_ENOUGH_REPLICAS", time.Since(start).Round(time.Millisecond), p)
				}
				mu.Unlock()
				if code != 0 && code != kerr.NotEnoughReplicas.Code {
					t.Errorf("partition %d: %v", p, kerr.ErrorForCode(code))
					return
				}
			}
		}()
	}
	wg.Wait()
	if spurious > 0 {
		t.Errorf("%d of %d acks=all produces to a healthy 3-node cluster got NOT_ENOUGH_REPLICAS", spurious, sent)
	}
}
