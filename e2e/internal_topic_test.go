package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/kafka"
)

// TestInternalTopicIsGuarded checks that clients can see __consumer_offsets flagged as
// internal but cannot write to it, delete it or grow it.
func TestInternalTopicIsGuarded(t *testing.T) {
	b := startBroker(t, withConfig(func(c *kafka.Config) { c.GroupInitialRebalanceDelayMs = -1 }))
	cl := newClient(t, b.Addr(), kgo.RecordRetries(1), kgo.RetryTimeout(2*time.Second))
	adm := kadm.NewClient(cl)
	ctx := testCtx(t, 20*time.Second)
	// A commit creates the internal topic.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "x"); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "x", Partition: 0, At: 0, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "g", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	td, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td["__consumer_offsets"]
	if !ok || !d.IsInternal {
		t.Fatalf("__consumer_offsets missing or not internal: %+v", d)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to internal topic: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	dr, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err == nil {
		err = dr["__consumer_offsets"].Err
	}
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("delete internal topic: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	ur, err := adm.UpdatePartitions(ctx, 20, "__consumer_offsets")
	if err == nil {
		err = ur["__consumer_offsets"].Err
	}
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("grow internal topic: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
}
