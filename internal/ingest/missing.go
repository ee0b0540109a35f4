package ingest

import (
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Limits of the missing-topic memory.
const (
	// missingTopicTTL is how long a topic answered UNKNOWN_TOPIC_OR_PARTITION is
	// answered 404 without asking the brokers again. franz-go takes several metadata
	// rounds (seconds) to give up on a topic; this keeps a stream of requests for a
	// topic that does not exist from each waiting that long.
	missingTopicTTL = 5 * time.Second
	// maxMissingTopics bounds the topics remembered.
	maxMissingTopics = 1024
)

// missingTopics remembers topics found not to exist, for missingTopicTTL.
type missingTopics struct {
	mu sync.Mutex
	// until maps a topic to when it is to be asked about again.
	// Invariant: len(until) <= maxMissingTopics.
	until map[string]time.Time
}

// errTopicMissing is the error of a record not sent because its topic was found missing
// less than missingTopicTTL ago.
var errTopicMissing = fmt.Errorf("%w (remembered for %v)", kerr.UnknownTopicOrPartition, missingTopicTTL)

// has reports whether topic was found missing less than missingTopicTTL before now.
func (m *missingTopics) has(topic string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.until[topic]
	if ok && now.After(until) {
		delete(m.until, topic)
		return false
	}
	return ok
}

// add remembers topic as missing from now.
func (m *missingTopics) add(topic string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = map[string]time.Time{}
	}
	if len(m.until) >= maxMissingTopics {
		for t, until := range m.until {
			if now.After(until) {
				delete(m.until, t)
			}
		}
		if len(m.until) >= maxMissingTopics {
			clear(m.until) // all fresh: forget them all rather than grow
		}
	}
	m.until[topic] = now.Add(missingTopicTTL)
}
