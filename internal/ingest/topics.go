package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Limits of the topic memory.
const (
	// topicFoundTTL is how long a topic seen to exist is produced to without asking
	// again. A topic deleted meanwhile fails its records with UNKNOWN_TOPIC_OR_PARTITION
	// and is forgotten at once.
	topicFoundTTL = time.Minute
	// topicMissingTTL is how long a topic seen not to exist is answered 404 without
	// asking again: a topic created meanwhile is served at most this late.
	topicMissingTTL = time.Second
	// maxTopicsRemembered bounds each of the two memories.
	maxTopicsRemembered = 10000
	// topicCheckTimeout bounds one metadata request.
	topicCheckTimeout = 5 * time.Second
)

// errTopicMissing is the error of a record not sent because its topic does not exist.
var errTopicMissing = fmt.Errorf("ingest: topic does not exist: %w", kerr.UnknownTopicOrPartition)

// topicState is what is known of a topic.
type topicState int

const (
	topicUnknown topicState = iota
	topicFound
	topicMissing
)

// topics remembers which topics exist. franz-go, asked to produce to a topic that does
// not exist, retries metadata four times, rate-limited to one refresh per 5 s, before it
// fails the records: 1 to 25 s during which the request waits. One metadata request
// answers the question in a round trip instead.
type topics struct {
	mu sync.Mutex
	// found and missing map topics to when the knowledge expires.
	// Invariant: len(found), len(missing) <= maxTopicsRemembered; no topic in both.
	found, missing map[string]time.Time
}

func (t *topics) state(topic string, now time.Time) topicState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until, ok := t.found[topic]; ok && now.Before(until) {
		return topicFound
	}
	if until, ok := t.missing[topic]; ok && now.Before(until) {
		return topicMissing
	}
	return topicUnknown
}

func (t *topics) set(topic string, s topicState, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.found == nil {
		t.found, t.missing = map[string]time.Time{}, map[string]time.Time{}
	}
	delete(t.found, topic)
	delete(t.missing, topic)
	switch s {
	case topicFound:
		remember(t.found, topic, now.Add(topicFoundTTL), now)
	case topicMissing:
		remember(t.missing, topic, now.Add(topicMissingTTL), now)
	}
}

// remember sets m[topic] = until, first dropping expired entries if m is full, and
// everything if they are all fresh, rather than grow past the limit.
func remember(m map[string]time.Time, topic string, until, now time.Time) {
	if len(m) >= maxTopicsRemembered {
		for k, u := range m {
			if !now.Before(u) {
				delete(m, k)
			}
		}
		if len(m) >= maxTopicsRemembered {
			clear(m)
		}
	}
	m[topic] = until
}

// lookupTopic asks the brokers whether topic exists, without creating it. It answers
// topicUnknown when the brokers cannot tell (an error other than an unknown topic).
func (s *Server) lookupTopic(ctx context.Context, topic string) topicState {
	ctx, cancel := context.WithTimeout(ctx, topicCheckTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil || len(resp.Topics) != 1 {
		return topicUnknown
	}
	switch err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); {
	case err == nil:
		return topicFound
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return topicMissing
	}
	return topicUnknown
}
