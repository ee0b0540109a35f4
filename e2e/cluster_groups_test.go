package e2e

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/kafka"
)

// TestClusterGroupCoordinatorFailover: a franz-go group consumer commits what it read;
// the coordinator's node is stopped; the committed offsets are served by the new
// coordinator, and a second member of the group, on the remaining nodes, resumes from
// them and reads the rest: every record consumed exactly once. (kgo keeps dialing a
// cached coordinator until a Metadata answer drops its broker, which is why Metadata
// lists live brokers only.)
func TestClusterGroupCoordinatorFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const (
		topic      = "orders"
		group      = "billing"
		partitions = 3
		records    = 2000
	)
	bs := startCluster(t, 3, func(c *kafka.Config) { c.GroupInitialRebalanceDelayMs = -1 })
	seeds := clusterSeeds(bs)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	createTopicRetrying(t, adm, partitions, 3, topic)
	waitLeaders(t, adm, topic, partitions)

	ctx := testCtx(t, 90*time.Second)
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range records {
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The first member reads about half and commits exactly what it read.
	seen := map[string]int{}
	first, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	for len(seen) < records/2 {
		fs := first.PollRecords(ctx, 100)
		if err := ctx.Err(); err != nil {
			t.Fatalf("first member: %v after %d records", err, len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		if err := first.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	first.Close() // leaves the group

	// Stop the coordinator's node.
	coords := adm.FindGroupCoordinators(ctx, group)
	co := coords[group]
	if co.Err != nil {
		t.Fatalf("find coordinator: %v", co.Err)
	}
	t.Logf("stopping node %d, the coordinator of %s; %d records read and committed", co.NodeID, group, len(seen))
	if err := bs[co.NodeID-1].Close(); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for i, b := range bs {
		if int32(i+1) != co.NodeID {
			rest = append(rest, b.Addr())
		}
	}

	// The offsets are there on the new coordinator. The clients start once the
	// survivors have noticed the death (Metadata no longer lists the node, after an
	// election timeout), as an operator waits for Kafka's broker session timeout: a kgo
	// client that caches a dead coordinator keeps dialing it until its next metadata
	// refresh.
	admCl2, err := kgo.NewClient(kgo.SeedBrokers(rest...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl2.Close()
	adm2 := kadm.NewClient(admCl2)
	for {
		md, err := freshMetadata(ctx, adm2)
		if err == nil && !slices.Contains(md.Brokers.NodeIDs(), co.NodeID) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("node %d still listed: %v", co.NodeID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	admCl2.Close()
	admCl2, err = kgo.NewClient(kgo.SeedBrokers(rest...))
	if err != nil {
		t.Fatal(err)
	}
	adm2 = kadm.NewClient(admCl2)
	var after kadm.OffsetResponses
	for {
		after, err = adm2.FetchOffsets(ctx, group)
		if err == nil && after.Error() == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("fetch offsets after failover: %v", err)
		}
		if err == nil {
			err = after.Error()
		}
		t.Logf("fetch offsets after failover: %v (retrying)", err)
		time.Sleep(time.Second)
	}
	committed.Each(func(o kadm.OffsetResponse) {
		got, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || got.At != o.At {
			t.Errorf("%s-%d: committed %d before the failover, %v after", o.Topic, o.Partition, o.At, got)
		}
	})

	// The second member resumes from the committed offsets.
	second, err := kgo.NewClient(kgo.SeedBrokers(rest...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	for len(seen) < records {
		fs := second.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("second member: %v after %d records", err, len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] > 0 {
				t.Errorf("record %s read again after the failover", r.Value)
			}
			seen[string(r.Value)]++
		})
	}
	for i := range records {
		if seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("record %d read %d times", i, seen[strconv.Itoa(i)])
		}
	}
}
