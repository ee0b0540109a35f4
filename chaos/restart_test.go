package chaos

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/chaos/cluster"
)

// TestTopicsKnownAfterFullRestart kills every node of a 3-node cluster with kill -9,
// restarts them, and asks each node for the topic's metadata every 20 ms for 5 s: no node
// may say the topic does not exist (UNKNOWN_TOPIC_OR_PARTITION). franz-go takes that
// answer at its word and, after UnknownTopicRetries (4), fails every buffered record of
// the partition, including records an earlier attempt had appended before the crash (chaos
// seed 13: failed-write-visible, docs/chaos.md "Findings"). A node that has not applied its
// metadata yet should answer LEADER_NOT_AVAILABLE, which franz-go retries.
//
// It failed before a restarted node learned to answer retriable errors until its
// metadata replica catches up (about 1 s of UNKNOWN_TOPIC_OR_PARTITION).
func TestTopicsKnownAfterFullRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real brokers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := chronikBinary(t, ctx)
	c, err := cluster.Start(ctx, cluster.Config{Binary: bin, Dir: t.TempDir(), Nodes: 3, Peered: true, ElectionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	cfg := DefaultConfig(1, time.Second)
	cfg.ReplicationFactor = 3
	w := &workload{cfg: &cfg, hist: NewHistory(time.Now()), topic: "restart", seeds: c.Bootstrap(), runID: 4}
	if err := w.createTopic(ctx, topicTimeout); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(w.clientOpts(kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	err = cl.ProduceSync(pctx, &kgo.Record{Topic: w.topic, Value: []byte("before")}).FirstErr()
	pcancel()
	if err != nil {
		t.Fatalf("produce before the restart: %v", err)
	}
	for _, n := range c.Nodes() {
		if err := n.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes() {
		if err := n.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restarted := time.Now()
	if _, err := kadm.NewClient(cl).Metadata(ctx); err != nil { // learn the brokers again
		t.Fatal(err)
	}
	for time.Since(restarted) < 5*time.Second {
		for _, n := range c.Nodes() {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(w.topic)
			req.Topics = append(req.Topics, rt)
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			resp, err := cl.Broker(n.ID).Request(rctx, req)
			rcancel()
			if err != nil {
				continue // a node still starting may not answer; that is not the bug
			}
			mt := resp.(*kmsg.MetadataResponse).Topics
			if len(mt) == 1 && errors.Is(kerr.ErrorForCode(mt[0].ErrorCode), kerr.UnknownTopicOrPartition) {
				t.Fatalf("%v after the restart, node %d answers UNKNOWN_TOPIC_OR_PARTITION for topic %s, which exists (see %s)",
					time.Since(restarted).Round(time.Millisecond), n.ID, w.topic, n.LogPath())
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
