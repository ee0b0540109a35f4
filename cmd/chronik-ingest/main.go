// Command chronik-ingest is the HTTP ingestor of the benchmark pipeline: it takes JSON
// batches over HTTP and produces them to Kafka (Chronik or any Kafka) with franz-go,
// answering each request once its records are acknowledged. See internal/ingest for the
// request model and docs/pipeline.md for the forms, the answers and the flags.
//
//	chronik-ingest -brokers 127.0.0.1:9092 -listen 127.0.0.1:8080
//	curl -s -H 'Content-Type: application/vnd.kafka.json.v2+json' \
//	    -d '{"records":[{"key":"k","value":{"n":1}}]}' http://127.0.0.1:8080/topics/demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	gonet "net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"chronik/internal/ingest"
)

// Timeouts of the HTTP server.
const (
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole request, body included.
	readTimeout = time.Minute
	idleTimeout = 2 * time.Minute
	// shutdownTimeout bounds draining requests and flushing records at exit.
	shutdownTimeout = 30 * time.Second
	maxHeaderBytes  = 64 << 10
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "chronik-ingest:", err)
		os.Exit(1)
	}
}

type options struct {
	listen string
	quiet  bool
	cfg    ingest.Config
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chronik-ingest", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "seed brokers, comma-separated host:port (any brokers of the cluster)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "HTTP listen address (host:port)")
	fs.StringVar(&o.cfg.Acks, "acks", "all", "acks of the produce requests: 0, 1 or all (all is idempotent)")
	fs.Int64Var(&o.cfg.MaxInflightBytes, "max-inflight-bytes", ingest.DefaultMaxInflightBytes, "body bytes of the requests worked on at once; a request beyond waits up to -max-wait, then gets 429")
	fs.Int64Var(&o.cfg.MaxBodyBytes, "max-body-bytes", ingest.DefaultMaxBodyBytes, "largest request body; larger gets 413")
	fs.DurationVar(&o.cfg.MaxWait, "max-wait", ingest.DefaultMaxWait, "how long a request waits for in-flight budget before 429")
	fs.IntVar(&o.cfg.MaxRecords, "max-records", ingest.DefaultMaxRecords, "most records in one request; more gets 413")
	fs.DurationVar(&o.cfg.ProduceTimeout, "produce-timeout", ingest.DefaultProduceTimeout, "how long a record may wait to be sent (franz-go's record delivery timeout)")
	fs.DurationVar(&o.cfg.Linger, "linger", 5*time.Millisecond, "how long franz-go waits for more records before sending a batch")
	fs.StringVar(&o.cfg.Compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.BoolVar(&o.cfg.AutoCreateTopics, "auto-create-topics", false, "let the broker create a topic on first use (if the broker allows it); off, unknown topics get 404")
	fs.BoolVar(&o.quiet, "quiet", false, "log only errors")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.cfg.Brokers = append(o.cfg.Brokers, b)
		}
	}
	if len(o.cfg.Brokers) == 0 {
		return nil, errors.New("-brokers: none given")
	}
	return o, nil
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := ingest.New(o.cfg)
	if err != nil {
		return err
	}
	ln, err := gonet.Listen("tcp", o.listen)
	if err != nil {
		return errors.Join(err, s.Close(ctx))
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("chronik-ingest listening", "addr", ln.Addr().String(), "brokers", strings.Join(o.cfg.Brokers, ","), "acks", o.cfg.Acks)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	log.Info("chronik-ingest stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	if serveErr == nil {
		if serveErr = <-served; errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = nil
		}
	}
	return errors.Join(serveErr, err, s.Close(sctx))
}
