package kafka

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"chronik/core/log"
)

// Config is a node's configuration. Zero values take the defaults noted; validate fills
// them in.
type Config struct {
	NodeID    int32
	Host      string // advertised host for clients
	Port      int32  // advertised port for clients
	ClusterID string // default "chronik"
	Rack      string // optional

	// DataDir is the directory, within the FS, that holds one directory per partition.
	DataDir string

	// AutoCreateTopics creates a topic the first time a Metadata request names it, as
	// Kafka's auto.create.topics.enable; default on (set DisableAutoCreate to turn off).
	DisableAutoCreate bool
	DefaultPartitions int32 // num.partitions; default 1

	// GroupCommitWindowMs bounds how long an append may wait for others to share its
	// fsync. 0 (the default) syncs as soon as the previous sync of that partition ends, so
	// an idle broker never waits on a timer while a busy one still batches.
	GroupCommitWindowMs int64
	// GroupCommitMaxBytes starts a sync before the window ends once this many bytes wait;
	// default 4 MiB.
	GroupCommitMaxBytes int64

	// Topic defaults (broker-level log.* settings).
	SegmentBytes       int64 // default 1 GiB
	SegmentMs          int64 // default 7 days
	RetentionMs        int64 // default 7 days; -1 unlimited
	RetentionBytes     int64 // default -1 (unlimited)
	MaxMessageBytes    int32 // largest batch accepted; default 1048588
	MinInsyncReplicas  int32 // default 1
	RetentionCheckMs   int64 // how often retention runs; default 5 minutes
	MaxFetchBytes      int32 // cap on one fetch response; default 64 MiB
	MaxParkedFetches   int   // long-polling fetches held at once; default 10000
	MaxPartitionsTotal int   // partitions this node will host; default 100000

	// Consumer groups (Kafka's offsets.* and group.* broker settings).
	OffsetsTopicPartitions   int32 // offsets.topic.num.partitions; default 8 (Kafka: 50)
	GroupMinSessionTimeoutMs int32 // group.min.session.timeout.ms; default 6000
	GroupMaxSessionTimeoutMs int32 // group.max.session.timeout.ms; default 1800000
	// GroupInitialRebalanceDelayMs is group.initial.rebalance.delay.ms; default 3000, as
	// Kafka; a negative value means no delay.
	GroupInitialRebalanceDelayMs int64
	GroupMaxSize                 int   // group.max.size, members plus pending members; default 10000
	GroupNewMemberJoinTimeoutMs  int64 // how long a new member may wait in JoinGroup; default 300000
	OffsetMetadataMaxBytes       int   // offset.metadata.max.bytes; default 4096

	// Cluster mode (cluster.go). Peers are the cluster's nodes, this one (NodeID) included;
	// empty runs a single node without Raft.
	Peers []Peer
	// RaftTickMs is the Raft tick; default 100.
	RaftTickMs int64
	// ElectionTimeoutMs is the Raft election timeout (raft randomizes each wait between
	// it and twice it): a dead leader is replaced within about 1-2 timeouts. Default 1000.
	ElectionTimeoutMs int64
	// DefaultReplicationFactor is default.replication.factor: auto-created topics and
	// CreateTopics with -1 get it. Default min(3, len(Peers)).
	DefaultReplicationFactor int16
	// AdminTimeoutMs bounds how long an admin request (CreateTopics, DeleteTopics,
	// CreatePartitions) waits for the metadata group to apply it; default 10000.
	AdminTimeoutMs int64
}

func (c *Config) validate() error {
	if c.NodeID < 0 {
		return errors.New("kafka: node id must be >= 0")
	}
	if c.ClusterID == "" {
		c.ClusterID = "chronik"
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 9092
	}
	setDefault(&c.DefaultPartitions, 1)
	setDefault(&c.GroupCommitMaxBytes, 4<<20)
	setDefault(&c.SegmentBytes, 1<<30)
	setDefault(&c.SegmentMs, 7*24*3600*1000)
	setDefault(&c.RetentionMs, 7*24*3600*1000)
	setDefault(&c.RetentionBytes, -1)
	setDefault(&c.MaxMessageBytes, 1048588)
	if len(c.Peers) > 0 {
		// Cluster defaults: RF 3 and min.insync.replicas 2 where there are nodes for them.
		setDefault(&c.MinInsyncReplicas, int32(min(2, len(c.Peers))))
		setDefault(&c.DefaultReplicationFactor, int16(min(3, len(c.Peers))))
		setDefault(&c.RaftTickMs, 100)
		setDefault(&c.ElectionTimeoutMs, 1000)
		setDefault(&c.AdminTimeoutMs, 10000)
		if err := c.validatePeers(); err != nil {
			return err
		}
	}
	setDefault(&c.MinInsyncReplicas, 1)
	setDefault(&c.DefaultReplicationFactor, 1)
	setDefault(&c.RetentionCheckMs, 5*60*1000)
	setDefault(&c.MaxFetchBytes, 64<<20)
	setDefault(&c.MaxParkedFetches, 10000)
	setDefault(&c.MaxPartitionsTotal, 100000)
	setDefault(&c.OffsetsTopicPartitions, 8)
	setDefault(&c.GroupMinSessionTimeoutMs, 6000)
	setDefault(&c.GroupMaxSessionTimeoutMs, 1800000)
	setDefault(&c.GroupInitialRebalanceDelayMs, 3000)
	setDefault(&c.GroupMaxSize, 10000)
	setDefault(&c.GroupNewMemberJoinTimeoutMs, 300000)
	setDefault(&c.OffsetMetadataMaxBytes, 4096)
	if c.OffsetsTopicPartitions < 0 || c.GroupMinSessionTimeoutMs < 0 || c.GroupMaxSessionTimeoutMs < c.GroupMinSessionTimeoutMs ||
		c.GroupMaxSize < 0 || c.GroupNewMemberJoinTimeoutMs < 0 || c.OffsetMetadataMaxBytes < 0 {
		return errors.New("kafka: invalid consumer group settings")
	}
	if c.GroupCommitWindowMs < 0 {
		return errors.New("kafka: group commit window must be >= 0")
	}
	return nil
}

func (c *Config) validatePeers() error {
	seen := map[int32]bool{}
	me := false
	for _, p := range c.Peers {
		if p.ID < 0 || seen[p.ID] {
			return fmt.Errorf("kafka: peer id %d is negative or repeated", p.ID)
		}
		seen[p.ID] = true
		if p.ID == c.NodeID {
			me = true
		}
		if p.Host == "" || p.Port <= 0 {
			return fmt.Errorf("kafka: peer %d has no Kafka address", p.ID)
		}
		if p.PeerAddr == "" && len(c.Peers) > 1 {
			return fmt.Errorf("kafka: peer %d has no peer address", p.ID)
		}
	}
	if !me {
		return fmt.Errorf("kafka: node id %d is not among the peers", c.NodeID)
	}
	if c.RaftTickMs <= 0 || c.ElectionTimeoutMs < 2*c.RaftTickMs {
		return errors.New("kafka: the election timeout must be at least two Raft ticks")
	}
	if c.DefaultReplicationFactor < 1 || int(c.DefaultReplicationFactor) > len(c.Peers) {
		return fmt.Errorf("kafka: default replication factor %d with %d nodes", c.DefaultReplicationFactor, len(c.Peers))
	}
	return nil
}

func setDefault[T int | int16 | int32 | int64](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// WALProfiles names group-commit windows, after the seed report's WAL profiles: the
// longest an append waits for others to share its fsync.
var WALProfiles = map[string]int64{
	"immediate": 0,
	"low":       1,
	"medium":    10,
	"high":      50,
	"ultra":     100,
}

// topicConfig is a topic's effective settings.
type topicConfig struct {
	RetentionMs       int64
	RetentionBytes    int64
	SegmentBytes      int64
	SegmentMs         int64
	MaxMessageBytes   int32
	MinInsyncReplicas int32
	CleanupPolicy     string
	// Set holds the keys set explicitly on the topic, with their values as given.
	Set map[string]string
}

// configKey describes one topic config Chronik understands.
type configKey struct {
	name  string
	apply func(tc *topicConfig, v string) error
	value func(tc *topicConfig) string
}

var errBadConfig = errors.New("kafka: invalid config")

func int64Key(name string, min int64, field func(*topicConfig) *int64) configKey {
	return configKey{
		name: name,
		apply: func(tc *topicConfig, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < min {
				return fmt.Errorf("%w: %s=%q must be an integer >= %d", errBadConfig, name, v, min)
			}
			*field(tc) = n
			return nil
		},
		value: func(tc *topicConfig) string { return strconv.FormatInt(*field(tc), 10) },
	}
}

func int32Key(name string, min int32, field func(*topicConfig) *int32) configKey {
	return configKey{
		name: name,
		apply: func(tc *topicConfig, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || int32(n) < min {
				return fmt.Errorf("%w: %s=%q must be an integer >= %d", errBadConfig, name, v, min)
			}
			*field(tc) = int32(n)
			return nil
		},
		value: func(tc *topicConfig) string { return strconv.FormatInt(int64(*field(tc)), 10) },
	}
}

func fixedKey(name string, allowed ...string) configKey {
	return configKey{
		name: name,
		apply: func(tc *topicConfig, v string) error {
			for _, a := range allowed {
				if v == a {
					if name == "cleanup.policy" {
						tc.CleanupPolicy = v
					}
					return nil
				}
			}
			return fmt.Errorf("%w: %s=%q is not supported (supported: %v)", errBadConfig, name, v, allowed)
		},
		value: func(tc *topicConfig) string {
			if v, ok := tc.Set[name]; ok {
				return v
			}
			return allowed[0]
		},
	}
}

// topicConfigKeys are the topic configs Chronik accepts, by name.
var topicConfigKeys = func() map[string]configKey {
	keys := []configKey{
		int64Key("retention.ms", -1, func(tc *topicConfig) *int64 { return &tc.RetentionMs }),
		int64Key("retention.bytes", -1, func(tc *topicConfig) *int64 { return &tc.RetentionBytes }),
		int64Key("segment.bytes", 14, func(tc *topicConfig) *int64 { return &tc.SegmentBytes }),
		int64Key("segment.ms", 1, func(tc *topicConfig) *int64 { return &tc.SegmentMs }),
		int32Key("max.message.bytes", 0, func(tc *topicConfig) *int32 { return &tc.MaxMessageBytes }),
		int32Key("min.insync.replicas", 1, func(tc *topicConfig) *int32 { return &tc.MinInsyncReplicas }),
		fixedKey("cleanup.policy", "delete"),
		fixedKey("compression.type", "producer"),
		fixedKey("message.timestamp.type", "CreateTime"),
	}
	m := make(map[string]configKey, len(keys))
	for _, k := range keys {
		m[k.name] = k
	}
	return m
}()

// newTopicConfig builds a topic's settings from the broker defaults and the given keys.
func (c *Config) newTopicConfig(set map[string]string) (topicConfig, error) {
	tc := topicConfig{
		RetentionMs:       c.RetentionMs,
		RetentionBytes:    c.RetentionBytes,
		SegmentBytes:      c.SegmentBytes,
		SegmentMs:         c.SegmentMs,
		MaxMessageBytes:   c.MaxMessageBytes,
		MinInsyncReplicas: c.MinInsyncReplicas,
		CleanupPolicy:     "delete",
		Set:               map[string]string{},
	}
	for _, name := range sortedKeys(set) {
		k, ok := topicConfigKeys[name]
		if !ok {
			return tc, fmt.Errorf("%w: unknown or unsupported topic config %q", errBadConfig, name)
		}
		if err := k.apply(&tc, set[name]); err != nil {
			return tc, err
		}
		tc.Set[name] = set[name]
	}
	return tc, nil
}

func (tc *topicConfig) logConfig() log.Config {
	return log.Config{
		SegmentBytes:   tc.SegmentBytes,
		SegmentMs:      tc.SegmentMs,
		RetentionBytes: tc.RetentionBytes,
		RetentionMs:    tc.RetentionMs,
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
