package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMemberStarter starts a member of groupID consuming topic from addr, noting what it
// reads in l under name; the returned stop makes it leave the group cleanly and waits
// for it.
type groupMemberStarter func(t *testing.T, addr, groupID, topic, name string, l *ledger) (stop func())

// runGroupHandoff is the scenario every client runs: member a joins alone; b joins and
// the two split the 4 partitions; 200 records are read, some by each; a leaves; b takes
// every partition over from the committed offsets and reads 200 more. Every record is
// read exactly once, and the committed offsets end at the log ends.
func runGroupHandoff(t *testing.T, start groupMemberStarter, opts ...brokerOption) {
	b := startBroker(t, append([]brokerOption{withGroupTimers()}, opts...)...)
	// Uncompressed: kafkajs has no snappy codec of its own.
	cl := newClient(t, b.Addr(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	step := func(what string) { t.Logf("%s: %s", time.Now().Format("15:04:05.000"), what) }
	adm := kadm.NewClient(cl)
	topic, groupID := "handoff", "handoff-group"
	createGroupTopic(t, adm, topic)
	l := newLedger()

	step("start a")
	stopA := start(t, b.Addr(), groupID, topic, "a", l)
	waitFor(t, "a alone in the group", func() bool { return stableWith(t, adm, groupID, 1) })
	step("start b")
	stopB := start(t, b.Addr(), groupID, topic, "b", l)
	waitFor(t, "a and b to split the partitions", func() bool { return stableWith(t, adm, groupID, 2) })
	step("produce 200")
	produceN(t, cl, topic, 200, 50)
	waitFor(t, "200 records", func() bool { return l.count() >= 200 })
	if by := l.by(); by["a"] == 0 || by["b"] == 0 {
		t.Errorf("records read by each member: %v, want both", by)
	}

	step("stop a")
	stopA()
	step("a stopped")
	waitFor(t, "b alone with every partition", func() bool { return stableWith(t, adm, groupID, 1) })
	before := l.by()["b"]
	step("produce 200 more")
	produceN(t, cl, topic, 200, 50)
	waitFor(t, "400 records", func() bool { return l.count() >= 400 })
	if got := l.by()["b"] - before; got != 200 {
		t.Errorf("b read %d records after a left, want the 200 produced since", got)
	}
	ends := endOffsets(t, adm, topic)
	l.checkExactlyOnce(t, ends)
	step("stop b")
	stopB()
	step("b stopped")

	ctx := testCtx(t, groupStepTimeout)
	waitFor(t, "the committed offsets to reach the log ends", func() bool {
		offs, err := adm.FetchOffsets(ctx, groupID)
		if err != nil {
			return false
		}
		for p, end := range ends {
			if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
				return false
			}
		}
		return true
	})
}

func TestGroupSaramaHandoff(t *testing.T) {
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) { runGroupHandoff(t, saramaMember(v.version)) })
	}
}

// saramaHandler notes each message, marks it, and commits synchronously whenever it has
// taken every message fetched so far (one fsync per batch, not per message).
type saramaHandler struct {
	name string
	l    *ledger
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.l.add(h.name, msg.Partition, msg.Offset)
		sess.MarkMessage(msg, "")
		if len(claim.Messages()) == 0 {
			sess.Commit()
		}
	}
	return nil
}

func saramaMember(version sarama.KafkaVersion) groupMemberStarter {
	return func(t *testing.T, addr, groupID, topic, name string, l *ledger) func() {
		cfg := saramaConfig(version)
		cfg.ClientID = name
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Enable = false
		cfg.Consumer.Group.Session.Timeout = 6 * time.Second
		cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
		cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
		cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
		g, err := sarama.NewConsumerGroup([]string{addr}, groupID, cfg)
		if err != nil {
			t.Fatalf("sarama consumer group: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			for range g.Errors() { // drained so sarama never blocks on it
			}
		}()
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{topic}, saramaHandler{name: name, l: l}); errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
			}
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				<-done
				if err := g.Close(); err != nil {
					t.Errorf("sarama %s close: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
}

func TestGroupKafkaGoHandoff(t *testing.T) {
	runGroupHandoff(t, kafkaGoMember)
}

// kafkaGoMember is a kafka-go Reader with a GroupID, committing each message
// synchronously (CommitMessages) before fetching the next.
func kafkaGoMember(t *testing.T, addr, groupID, topic, name string, l *ledger) func() {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           []string{addr},
		GroupID:           groupID,
		Topic:             topic,
		Dialer:            &kafkago.Dialer{ClientID: name, Timeout: 5 * time.Second},
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           200 * time.Millisecond,
		HeartbeatInterval: 300 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  5 * time.Second,
		JoinGroupBackoff:  200 * time.Millisecond,
		StartOffset:       kafkago.FirstOffset,
		GroupBalancers:    []kafkago.GroupBalancer{kafkago.RangeGroupBalancer{}},
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				continue
			}
			l.add(name, int32(m.Partition), m.Offset)
			if err := r.CommitMessages(ctx, m); err != nil && ctx.Err() == nil {
				t.Logf("kafka-go %s commit %d/%d: %v", name, m.Partition, m.Offset, err)
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			if err := r.Close(); err != nil {
				t.Errorf("kafka-go %s close: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// procMember runs a consumer process that prints one "partition offset" line per record
// it reads, noting each in l under name. stop sends SIGTERM, on which the process must
// commit and leave the group, and waits for it to exit.
func procMember(t *testing.T, name string, l *ledger, cmd *exec.Cmd) func() {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			p, err1 := strconv.ParseInt(f[0], 10, 32)
			o, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 == nil && err2 == nil {
				l.add(name, int32(p), o)
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Errorf("%s: signal: %v", name, err)
			}
			<-scanned
			err := cmd.Wait()
			if t.Failed() || testing.Verbose() {
				t.Logf("%s stderr:\n%s", name, stderr.String())
			}
			var exit *exec.ExitError
			if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 0) && !strings.Contains(err.Error(), "terminated") {
				t.Errorf("%s: %v\n%s", name, err, stderr.String())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestGroupKcatHandoff runs the scenario with librdkafka's high-level consumer (kcat -G),
// auto-committing every 100 ms and on close.
func TestGroupKcatHandoff(t *testing.T) {
	bin := kcatPath(t)
	runGroupHandoff(t, func(t *testing.T, addr, groupID, topic, name string, l *ledger) func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*groupStepTimeout)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, bin, "-b", addr, "-q", "-u", "-f", "%p %o\n",
			"-X", "client.id="+name,
			"-X", "auto.offset.reset=earliest",
			"-X", "enable.auto.commit=true",
			"-X", "auto.commit.interval.ms=100",
			"-X", "session.timeout.ms=6000",
			"-X", "heartbeat.interval.ms=300",
			"-X", "fetch.wait.max.ms=200",
			"-G", groupID, topic)
		cmd.Env = kcatEnv(t)
		cmd.WaitDelay = 5 * time.Second
		return procMember(t, name, l, cmd)
	})
}

// kafkajsDir holds the kafkajs consumer script and its package lock.
const kafkajsDir = "kafkajs"

// kafkajsReady installs kafkajs from the package lock when it is missing (npm ci), and
// returns the node binary. Without node and npm the test fails under CI and skips
// elsewhere.
func kafkajsReady(t *testing.T) string {
	t.Helper()
	need := func(msg string) {
		msg += "; run scripts/install-test-deps.sh, or: apt-get install nodejs npm && (cd e2e/kafkajs && npm ci)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need("node is not on PATH")
	}
	if _, err := os.Stat(kafkajsDir + "/node_modules/kafkajs/package.json"); err == nil {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		need("kafkajs is not installed and npm is not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = kafkajsDir
	if out, err := cmd.CombinedOutput(); err != nil {
		need(fmt.Sprintf("npm ci in e2e/kafkajs failed: %v\n%s", err, out))
	}
	return node
}

// TestGroupKafkaJSHandoff runs the scenario with kafkajs (e2e/kafkajs/consume.js), which
// commits each message before taking the next.
func TestGroupKafkaJSHandoff(t *testing.T) {
	node := kafkajsReady(t)
	runGroupHandoff(t, func(t *testing.T, addr, groupID, topic, name string, l *ledger) func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*groupStepTimeout)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, node, "consume.js", addr, groupID, topic, name)
		cmd.Dir = kafkajsDir
		cmd.WaitDelay = 5 * time.Second
		return procMember(t, name, l, cmd)
	})
}
