package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits of the cluster set-up.
const (
	// createTimeout bounds creating the topics, retries included: the cluster answers
	// NOT_CONTROLLER until its metadata group has a leader.
	createTimeout = 2 * time.Minute
	// leadersTimeout bounds waiting for every partition to have a leader.
	leadersTimeout = 2 * time.Minute
	// adminRequestTimeout bounds one admin request.
	adminRequestTimeout = 15 * time.Second
	retryEvery          = 500 * time.Millisecond
)

// cluster is the chronik nodes of one run. Node i+1 is at index i of every slice.
type cluster struct {
	kafka   []string // Kafka addresses
	metrics []string // -metrics-listen addresses
	nodes   []*child
}

// startCluster starts n chronik nodes in cluster mode on the given free addresses
// (n Kafka, n peer, n metrics), each with its data in dir/node<i>. The caller stops the
// nodes it got, also when err is set.
func startCluster(ctx context.Context, bin, dir string, n int, addrs []string, extraArgs string) (*cluster, error) {
	c := &cluster{kafka: addrs[:n], metrics: addrs[2*n : 3*n]}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s/%s", i+1, addrs[i], addrs[n+i]))
	}
	for i := range n {
		name := "node" + strconv.Itoa(i+1)
		args := append([]string{"-node-id", strconv.Itoa(i + 1), "-peers", strings.Join(peers, ","),
			"-data-dir", filepath.Join(dir, name), "-metrics-listen", c.metrics[i], "-quiet"}, strings.Fields(extraArgs)...)
		ch, err := start(dir, name, bin, args...)
		if err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, ch)
	}
	for i, ch := range c.nodes {
		if err := ch.waitListening(ctx, c.kafka[i]); err != nil {
			return c, err
		}
		if err := ch.waitHealthy(ctx, "http://"+c.metrics[i]+"/healthz"); err != nil {
			return c, err
		}
	}
	return c, nil
}

// explain adds the log tail of every node that has exited to err.
func (c *cluster) explain(err error) error {
	for _, ch := range c.nodes {
		if ch.exited() {
			err = fmt.Errorf("%w; %s exited: %v%s", err, ch.name, ch.err, ch.logTail())
		}
	}
	return err
}

// createTopics creates each topic with the given partitions, replication factor and
// min.insync.replicas through kadm, retrying retriable errors, then waits until metadata
// shows a leader for every partition. It returns how long that took.
func createTopics(ctx context.Context, brokers, topics []string, partitions, rf, minISR int) (time.Duration, error) {
	t0 := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequestTimeoutOverhead(adminRequestTimeout))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	minISRStr := strconv.Itoa(minISR)
	configs := map[string]*string{"min.insync.replicas": &minISRStr}
	for _, topic := range topics {
		deadline := time.Now().Add(createTimeout)
		for attempt := 1; ; attempt++ {
			rctx, cancel := context.WithTimeout(ctx, adminRequestTimeout)
			_, err := adm.CreateTopic(rctx, int32(partitions), int16(rf), configs, topic)
			cancel()
			// A retried CreateTopics may find the topic its first attempt created.
			if err == nil || attempt > 1 && errors.Is(err, kerr.TopicAlreadyExists) {
				break
			}
			retriable := kerr.IsRetriable(err) || errors.Is(err, context.DeadlineExceeded)
			if !retriable || ctx.Err() != nil || time.Now().After(deadline) {
				return 0, fmt.Errorf("create topic %s (attempt %d): %w", topic, attempt, err)
			}
			time.Sleep(retryEvery)
		}
	}
	deadline := time.Now().Add(leadersTimeout)
	for _, topic := range topics {
		for {
			missing, err := leaderless(ctx, adm, topic, partitions)
			if err == nil && missing == 0 {
				break
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				return 0, fmt.Errorf("topic %s: %d of %d partitions without a leader after %v (last error: %v)", topic, missing, partitions, leadersTimeout, err)
			}
			time.Sleep(retryEvery)
		}
	}
	return time.Since(t0), nil
}

// leaderless counts topic's partitions that have no leader in the cluster's metadata.
func leaderless(ctx context.Context, adm *kadm.Client, topic string, partitions int) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, adminRequestTimeout)
	defer cancel()
	md, err := adm.Metadata(rctx, topic)
	if err != nil {
		return partitions, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return partitions, errors.New("not in metadata")
	}
	if td.Err != nil {
		return partitions, td.Err
	}
	missing := partitions - len(td.Partitions)
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			missing++
		}
	}
	return missing, nil
}
