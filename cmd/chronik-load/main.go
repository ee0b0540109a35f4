// Command chronik-load is the benchmark pipeline's staged load generator, after the k6
// profile of the seed report: stages of (duration, target virtual users), each virtual
// user (VU) posting batches of -batch records of -size bytes to the ingestor and waiting
// for the answer before the next, or with -direct producing them with franz-go.
//
// Every record is an internal/loadrec record: the VU's producer id, a sequence with no
// gaps, and a checksum, keyed by the producer id, so a verifier can check every record.
//
// A run:
//  1. Creates the topic (with -brokers and -create-topic), unless it exists.
//  2. Every 100 ms starts or stops VUs to follow the stages' linear ramps; a stopped VU
//     finishes its batch first. Every second prints a progress line to stderr.
//  3. After the last stage, waits for the VUs' last batches (at most -request-timeout),
//     prints a markdown table per stage to stdout, and with -json writes the table, a
//     per-second timeline and every producer's record counts.
//
// The exit status is 1 when a record failed, 2 on a usage or setup error.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/loadrec"
)

// Profiles and limits.
const (
	// defaultStages is a bounded ramp of 90 s, the report's shape at a laptop's scale.
	defaultStages = "10s:20,20s:100,30s:200,20s:100,10s:0"
	// quickStages is the -quick profile for tests: 4 s, at most 8 VUs.
	quickStages = "1s:4,2s:8,1s:0"
	maxBatch    = 10000
	// maxBodyBytes bounds one batch's encoded size.
	maxBodyBytes = 64 << 20
	maxClients   = 64
	// controlTick is how often the VU count follows the ramp.
	controlTick = 100 * time.Millisecond
	// failurePause is how long a VU waits after a failed batch, so an ingestor that
	// refuses at once is not hammered in a tight loop.
	failurePause = 100 * time.Millisecond
	// drainGrace is added to -request-timeout for the last batches after the stages.
	drainGrace = 5 * time.Second
	// adminTimeout bounds creating the topic.
	adminTimeout = 30 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ok, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "chronik-load:", err)
		os.Exit(2)
	case !ok:
		os.Exit(1)
	}
}

type options struct {
	targets        []string // ingestor base URLs
	brokers        []string
	direct         bool
	topic          string
	stages         []stage
	batch, size    int
	form           string
	acks           string
	linger         time.Duration
	clients        int
	partitions     int
	replication    int
	createTopic    bool
	requestTimeout time.Duration
	jsonOut        string
	runID          uint32
	command        string
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "http://127.0.0.1:8080", "ingestor base URLs, comma-separated; VU i posts to the (i mod n)th")
	brokers := fs.String("brokers", "127.0.0.1:9092", "seed brokers, comma-separated host:port: for -direct and -create-topic")
	fs.BoolVar(&o.direct, "direct", false, "produce directly with franz-go instead of posting to the ingestor")
	fs.StringVar(&o.topic, "topic", "chronik-load", "topic to load")
	stagesFlag := fs.String("stages", defaultStages, "comma-separated duration:target-VUs stages, ramped linearly like k6's (at most 1h in all, 20000 VUs)")
	quick := fs.Bool("quick", false, "the short test profile "+quickStages+" (unless -stages is given)")
	fs.IntVar(&o.batch, "batch", 100, "records per batch (one HTTP request or one produce wait)")
	fs.IntVar(&o.size, "size", 256, fmt.Sprintf("bytes per record value, %d to %d", loadrec.HeaderBytes, loadrec.MaxBytes))
	fs.StringVar(&o.form, "form", "simple", "ingestor request form: simple (POST /ingest/{topic}) or rest (POST /topics/{topic}, REST Proxy v2 binary)")
	fs.StringVar(&o.acks, "acks", "all", "with -direct: acks 0, 1 or all (the ingestor has its own -acks)")
	fs.DurationVar(&o.linger, "linger", 5*time.Millisecond, "with -direct: franz-go linger")
	fs.IntVar(&o.clients, "clients", 4, "with -direct: franz-go clients shared by the VUs")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of the topic if it is created")
	fs.IntVar(&o.replication, "replication-factor", -1, "replication factor of the topic if it is created; -1 for the broker default")
	fs.BoolVar(&o.createTopic, "create-topic", true, "create the topic through -brokers first (an existing topic is kept)")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 30*time.Second, "longest wait for one batch's answer")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file")
	runID := fs.Uint("run-id", 0, "run id, the high 32 bits of every producer id; 0 picks a random one")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *quick && !given["stages"] {
		*stagesFlag = quickStages
	}
	var err error
	if o.stages, err = parseStages(*stagesFlag); err != nil {
		return nil, fmt.Errorf("-stages: %w", err)
	}
	o.brokers = splitList(*brokers)
	for _, t := range splitList(*target) {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("-target %q: want http://host:port", t)
		}
		o.targets = append(o.targets, strings.TrimSuffix(t, "/"))
	}
	if *runID > 1<<32-1 {
		return nil, fmt.Errorf("-run-id %d: want a 32-bit number", *runID)
	}
	o.runID = uint32(*runID)
	o.command = "chronik-load " + strings.Join(args, " ")
	return o, o.check()
}

func (o *options) check() error {
	switch {
	case o.batch < 1 || o.batch > maxBatch:
		return fmt.Errorf("-batch %d: want 1 to %d", o.batch, maxBatch)
	case o.size < loadrec.HeaderBytes || o.size > loadrec.MaxBytes:
		return fmt.Errorf("-size %d: want %d to %d", o.size, loadrec.HeaderBytes, loadrec.MaxBytes)
	case int64(o.batch)*int64(o.size)*4/3 > maxBodyBytes:
		return fmt.Errorf("-batch %d of -size %d: a batch would exceed %d bytes", o.batch, o.size, maxBodyBytes)
	case o.form != "simple" && o.form != "rest":
		return fmt.Errorf("-form %q: want simple or rest", o.form)
	case o.acks != "0" && o.acks != "1" && o.acks != "all":
		return fmt.Errorf("-acks %q: want 0, 1 or all", o.acks)
	case o.clients < 1 || o.clients > maxClients:
		return fmt.Errorf("-clients %d: want 1 to %d", o.clients, maxClients)
	case o.partitions < 1:
		return fmt.Errorf("-partitions %d: want at least 1", o.partitions)
	case o.requestTimeout <= 0:
		return errors.New("-request-timeout: want a positive duration")
	case o.direct && len(o.brokers) == 0, o.createTopic && len(o.brokers) == 0:
		return errors.New("-brokers: none given")
	case !o.direct && len(o.targets) == 0:
		return errors.New("-target: none given")
	case o.topic == "":
		return errors.New("-topic: empty")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// run does one load run. ok is false when a record failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (ok bool, err error) {
	o, err := parse(args, stderr)
	if err != nil {
		return false, err
	}
	if o.runID == 0 {
		var b [4]byte
		for o.runID == 0 {
			if _, err := rand.Read(b[:]); err != nil {
				return false, err
			}
			o.runID = binary.BigEndian.Uint32(b[:])
		}
	}
	if o.createTopic {
		if err := createTopic(ctx, o); err != nil {
			return false, err
		}
	}
	snd, closeSender, err := newSender(o)
	if err != nil {
		return false, err
	}
	defer closeSender()

	fmt.Fprintf(stderr, "chronik-load: %s, topic %s, %d x %d B per batch, stages %s, run id %08x\n",
		o.mode(), o.topic, o.batch, o.size, formatStages(o.stages), o.runID)
	res := drive(ctx, o, snd, stderr)
	rep := newReport(o, res)
	fmt.Fprint(stdout, rep.markdown())
	if o.jsonOut != "" {
		if err := rep.writeJSON(o.jsonOut); err != nil {
			return false, err
		}
		fmt.Fprintln(stderr, "chronik-load: wrote", o.jsonOut)
	}
	if rep.Total.RecordsFailed > 0 {
		fmt.Fprintf(stderr, "chronik-load: FAILED: %d of %d records failed\n", rep.Total.RecordsFailed, rep.Total.RecordsFailed+rep.Total.RecordsOK)
		return false, nil
	}
	if ctx.Err() != nil {
		return false, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return true, nil
}

func (o *options) mode() string {
	if o.direct {
		return "direct (franz-go, acks=" + o.acks + ") to " + strings.Join(o.brokers, ",")
	}
	return "ingest (" + o.form + " form) to " + strings.Join(o.targets, ",")
}

// createTopic creates o.topic through o.brokers, keeping it if it exists.
func createTopic(ctx context.Context, o *options) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, int32(o.partitions), int16(o.replication), nil, o.topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", o.topic, err)
	}
	return nil
}

// newSender builds the sender of o's mode; the caller calls closeSender when done.
func newSender(o *options) (snd sender, closeSender func(), err error) {
	peak := peakVUs(o.stages)
	if !o.direct {
		path, ctype := "/ingest/", "application/json"
		if o.form == "rest" {
			path, ctype = "/topics/", "application/vnd.kafka.binary.v2+json"
		}
		h := &httpSender{ctype: ctype, rest: o.form == "rest", batch: o.batch, size: o.size}
		for _, t := range o.targets {
			h.urls = append(h.urls, t+path+url.PathEscape(o.topic))
		}
		tr := &http.Transport{
			MaxIdleConns:        peak + len(o.targets),
			MaxIdleConnsPerHost: peak + 1,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		h.client = &http.Client{Transport: tr, Timeout: o.requestTimeout}
		return h, tr.CloseIdleConnections, nil
	}
	d := &directSender{topic: o.topic, batch: o.batch, size: o.size}
	perClient := (peak + o.clients - 1) / o.clients
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.brokers...),
		kgo.ProducerLinger(o.linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(o.requestTimeout),
		kgo.MaxBufferedRecords(max(perClient*o.batch, 10000)),
	}
	switch o.acks {
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	for range o.clients {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			for _, c := range d.clients {
				c.Close()
			}
			return nil, nil, err
		}
		d.clients = append(d.clients, cl)
	}
	return d, func() {
		for _, c := range d.clients {
			c.Close()
		}
	}, nil
}
