// Command chronik runs a Chronik broker.
//
// Every flag can also be set from the environment as CHRONIK_<FLAG>, upper-cased with
// dashes as underscores (-data-dir is CHRONIK_DATA_DIR); a flag on the command line wins.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	stdlog "log"
	gonet "net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"chronik/disk"
	"chronik/kafka"
	cnet "chronik/net"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chronik:", err)
		os.Exit(1)
	}
}

type options struct {
	listen, advertise, dataDir   string
	nodeID                       int
	tlsCert, tlsKey              string
	walProfile                   string
	groupCommitWindow            time.Duration
	autoCreate                   bool
	partitions                   int
	segmentBytes, retentionBytes int64
	retentionMs, segmentMs       int64
	maxMessageBytes              int
	idleTimeout                  time.Duration
	offsetsPartitions            int
	initialRebalanceDelay        time.Duration
	metricsListen                string
	quiet                        bool
	memoryLimit                  int64
	clusterID                    string
	cpuProfile                   string

	// Cluster mode.
	peers, clusterFile, peerListen string
	electionTimeout, raftTick      time.Duration
	replicationFactor, minInsync   int
	// listenGiven: -listen was set on the command line or in the environment.
	listenGiven bool
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9092", "Kafka listener address (host:port)")
	fs.StringVar(&o.advertise, "advertise", "", "address clients are told to connect to (default: the listen address)")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "directory of the partition logs")
	fs.IntVar(&o.nodeID, "node-id", 1, "this broker's node id")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate file: serve TLS on the listener (with -tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key file for -tls-cert")
	fs.StringVar(&o.walProfile, "wal-profile", "immediate", "group-commit window by name: immediate (0), low (1ms), medium (10ms), high (50ms), ultra (100ms)")
	fs.DurationVar(&o.groupCommitWindow, "group-commit-window", -1, "longest an append waits to share an fsync (overrides -wal-profile)")
	fs.BoolVar(&o.autoCreate, "auto-create-topics", true, "create a topic when a client's metadata request names it (auto.create.topics.enable)")
	fs.IntVar(&o.partitions, "default-partitions", 1, "partitions of an auto-created topic (num.partitions)")
	fs.Int64Var(&o.segmentBytes, "segment-bytes", 1<<30, "roll a segment past this size (log.segment.bytes)")
	fs.Int64Var(&o.segmentMs, "segment-ms", 7*24*3600*1000, "roll a segment this old (log.roll.ms)")
	fs.Int64Var(&o.retentionMs, "retention-ms", 7*24*3600*1000, "delete segments older than this; -1 keeps forever (log.retention.ms)")
	fs.Int64Var(&o.retentionBytes, "retention-bytes", -1, "delete oldest segments past this size per partition; -1 unlimited (log.retention.bytes)")
	fs.IntVar(&o.maxMessageBytes, "max-message-bytes", 1048588, "largest record batch accepted (message.max.bytes)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 10*time.Minute, "close connections idle this long (connections.max.idle.ms)")
	fs.IntVar(&o.offsetsPartitions, "offsets-topic-partitions", 8, "partitions of __consumer_offsets, fixed when it is first created (offsets.topic.num.partitions)")
	fs.DurationVar(&o.initialRebalanceDelay, "group-initial-rebalance-delay", 3*time.Second, "how long a new group waits for more members before its first rebalance; 0 for none (group.initial.rebalance.delay.ms)")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus /metrics and /healthz over HTTP on this address, e.g. 127.0.0.1:9644 (default: off)")
	fs.BoolVar(&o.quiet, "quiet", false, "log only errors")
	fs.StringVar(&o.clusterID, "cluster-id", "chronik", "the cluster's id, in Metadata and DescribeCluster; peers with another id are refused by the peer transport")
	fs.Int64Var(&o.memoryLimit, "memory-limit", 768<<20, "soft limit on the Go heap in bytes (runtime/debug.SetMemoryLimit): the GC works harder as the heap nears it; 0 leaves the runtime's default (GOMEMLIMIT)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (runtime/pprof) to this file from start to shutdown; {node} in the name becomes the node id")
	fs.StringVar(&o.peers, "peers", "", "cluster mode: every node, this one included, as comma-separated id=kafkaHost:kafkaPort/peerHost:peerPort (default: a single node)")
	fs.StringVar(&o.clusterFile, "cluster-file", "", "cluster mode: a file of -peers entries, one per line (# comments)")
	fs.StringVar(&o.peerListen, "peer-listen", "", "address the peer (Raft) listener binds (default: this node's peerHost:peerPort in -peers)")
	fs.DurationVar(&o.electionTimeout, "election-timeout", time.Second, "Raft election timeout: a failed leader is replaced within about one to two of these")
	fs.DurationVar(&o.raftTick, "raft-tick", 100*time.Millisecond, "Raft tick: heartbeats go out every tick")
	fs.IntVar(&o.replicationFactor, "default-replication-factor", 0, "replicas of an auto-created topic, and of CreateTopics asking for -1 (default: min(3, nodes))")
	fs.IntVar(&o.minInsync, "min-insync-replicas", 0, "default min.insync.replicas of a topic (default: min(2, nodes) in a cluster, 1 on a single node)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.listenGiven = o.listenGiven || f.Name == "listen" })
	if _, ok := os.LookupEnv("CHRONIK_LISTEN"); ok {
		o.listenGiven = true
	}
	return o, nil
}

// applyEnv sets each flag not given on the command line from CHRONIK_<NAME>.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "CHRONIK_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func (o *options) nodeConfig() (kafka.Config, error) {
	peers, err := o.peerList()
	if err != nil {
		return kafka.Config{}, err
	}
	if len(peers) > 0 {
		if err := o.clusterAddrs(peers); err != nil {
			return kafka.Config{}, err
		}
	} else if o.replicationFactor > 1 {
		return kafka.Config{}, fmt.Errorf("-default-replication-factor %d needs a cluster (-peers)", o.replicationFactor)
	}
	adv := o.advertise
	if adv == "" {
		adv = o.listen
	}
	host, portStr, err := gonet.SplitHostPort(adv)
	if err != nil {
		return kafka.Config{}, fmt.Errorf("advertise address %q: %w", adv, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return kafka.Config{}, fmt.Errorf("advertise port %q: %w", portStr, err)
	}
	windowMs, ok := kafka.WALProfiles[o.walProfile]
	if !ok {
		return kafka.Config{}, fmt.Errorf("unknown wal profile %q", o.walProfile)
	}
	if o.groupCommitWindow >= 0 {
		windowMs = o.groupCommitWindow.Milliseconds()
	}
	return kafka.Config{
		ClusterID:           o.clusterID,
		NodeID:              int32(o.nodeID),
		Host:                host,
		Port:                int32(port),
		DataDir:             o.dataDir,
		DisableAutoCreate:   !o.autoCreate,
		DefaultPartitions:   int32(o.partitions),
		GroupCommitWindowMs: windowMs,
		SegmentBytes:        o.segmentBytes,
		SegmentMs:           o.segmentMs,
		RetentionMs:         o.retentionMs,
		RetentionBytes:      o.retentionBytes,
		MaxMessageBytes:     int32(o.maxMessageBytes),

		OffsetsTopicPartitions:       int32(o.offsetsPartitions),
		GroupInitialRebalanceDelayMs: rebalanceDelayMs(o.initialRebalanceDelay),

		Peers:                    peers,
		RaftTickMs:               o.raftTick.Milliseconds(),
		ElectionTimeoutMs:        o.electionTimeout.Milliseconds(),
		DefaultReplicationFactor: int16(o.replicationFactor),
		MinInsyncReplicas:        int32(o.minInsync),
	}, nil
}

// peerList is the cluster from -peers or -cluster-file; none on a single node.
func (o *options) peerList() ([]kafka.Peer, error) {
	switch {
	case o.peers != "" && o.clusterFile != "":
		return nil, errors.New("-peers and -cluster-file are exclusive")
	case o.clusterFile != "":
		return readClusterFile(o.clusterFile)
	}
	return parsePeers(o.peers)
}

// clusterAddrs checks the cluster flags and derives this node's Kafka addresses from its
// entry in peers: it listens there unless -listen says otherwise, and advertises it.
func (o *options) clusterAddrs(peers []kafka.Peer) error {
	me, ok := peerByID(peers, int32(o.nodeID))
	if !ok {
		return fmt.Errorf("-node-id %d is not among the peers", o.nodeID)
	}
	switch {
	case o.raftTick < time.Millisecond:
		return fmt.Errorf("-raft-tick %v: at least 1ms", o.raftTick)
	case o.electionTimeout < 2*o.raftTick:
		return fmt.Errorf("-election-timeout %v: at least two ticks (-raft-tick %v)", o.electionTimeout, o.raftTick)
	case o.replicationFactor < 0 || o.replicationFactor > len(peers):
		return fmt.Errorf("-default-replication-factor %d: between 1 and the %d nodes", o.replicationFactor, len(peers))
	case o.minInsync < 0:
		return fmt.Errorf("-min-insync-replicas %d: negative", o.minInsync)
	}
	own := gonet.JoinHostPort(me.Host, strconv.Itoa(int(me.Port)))
	if o.advertise != "" && o.advertise != own {
		return fmt.Errorf("-advertise %s differs from node %d's Kafka address %s in the peers (clients are told that one)", o.advertise, o.nodeID, own)
	}
	o.advertise = own
	if !o.listenGiven {
		o.listen = own
	}
	return nil
}

// rebalanceDelayMs maps a flag duration to the config, where 0 means the default and a
// negative value means none.
func rebalanceDelayMs(d time.Duration) int64 {
	if d <= 0 {
		return -1
	}
	return d.Milliseconds()
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	cfg, err := o.nodeConfig()
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(strings.ReplaceAll(o.cpuProfile, "{node}", strconv.Itoa(int(cfg.NodeID))))
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if o.memoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(o.memoryLimit)
	}
	logger := stdlog.New(os.Stderr, "chronik ", stdlog.LstdFlags|stdlog.Lmicroseconds)
	var tlsCfg *tls.Config
	if o.tlsCert != "" || o.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := gonet.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scfg := cnet.ServerConfig{TLS: tlsCfg, IdleTimeout: o.idleTimeout, Peer: cnet.PeerOptions{Listen: o.peerListen}}
	if !o.quiet {
		scfg.Logf = logger.Printf
	}
	var metricsLn gonet.Listener
	if o.metricsListen != "" {
		if metricsLn, err = gonet.Listen("tcp", o.metricsListen); err != nil {
			ln.Close()
			return fmt.Errorf("metrics: %w", err)
		}
		scfg.Metrics = cnet.NewMetrics()
	}
	b, err := cnet.StartBroker(ctx, ln, cfg, disk.OS(), uint64(time.Now().UnixNano()), scfg)
	if err != nil {
		ln.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
		return err
	}
	if metricsLn != nil {
		metricsDone := make(chan struct{})
		defer func() { <-metricsDone }()
		go func() { // ends with ctx: when the broker stops or run returns
			defer close(metricsDone)
			if err := cnet.ServeMetrics(ctx, metricsLn, scfg.Metrics.Handler()); err != nil {
				logger.Printf("metrics: %v", err)
			}
		}()
		defer stop()
		logger.Printf("metrics on http://%s/metrics", metricsLn.Addr())
	}
	proto := "kafka"
	if tlsCfg != nil {
		proto = "kafka+tls"
	}
	logger.Printf("node %d serving %s on %s (advertised %s:%d), data in %s, group-commit window %dms",
		cfg.NodeID, proto, ln.Addr(), cfg.Host, cfg.Port, cfg.DataDir, cfg.GroupCommitWindowMs)
	if b.Peers != nil {
		logger.Printf("cluster of %d nodes, peer listener on %s, raft tick %dms, election timeout %dms",
			len(cfg.Peers), b.Peers.Addr(), cfg.RaftTickMs, cfg.ElectionTimeoutMs)
	}
	if err := b.Wait(); err != nil {
		return err
	}
	logger.Printf("stopped")
	return nil
}
