package net

import (
	"context"
	"crypto/tls"
	"errors"
	gonet "net"
	"sync"
	"time"

	"chronik/kafka"
)

// ServerConfig configures a listener's connections.
type ServerConfig struct {
	// MaxFrameBytes is the largest request accepted; default kafka.MaxFrameBytes.
	MaxFrameBytes int
	// IdleTimeout closes a connection that sends nothing for this long (Kafka's
	// connections.max.idle.ms); default 10 minutes; negative disables.
	IdleTimeout time.Duration
	// TLS, when set, serves TLS on the listener.
	TLS *tls.Config
	// Logf logs connection-level problems; nil discards them.
	Logf func(format string, args ...any)
	// Metrics, when set, measures requests, bytes, connections and sync jobs, and reads
	// the node's stats when scraped (metrics.go).
	Metrics *Metrics
	// Peer configures the peer transport of a clustered node (kafka.Config.Peers set).
	Peer PeerOptions
}

func (c *ServerConfig) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Serve accepts connections on ln until ctx ends, then closes ln and every connection and
// waits for their goroutines.
func Serve(ctx context.Context, ln gonet.Listener, loop *Loop, cfg ServerConfig) error {
	if cfg.MaxFrameBytes == 0 {
		cfg.MaxFrameBytes = kafka.MaxFrameBytes
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	var (
		mu    sync.Mutex
		live  = map[*conn]struct{}{}
		wg    sync.WaitGroup
		errCh = make(chan error, 1)
	)
	go func() {
		<-ctx.Done()
		ln.Close()
		mu.Lock()
		for c := range live {
			c.nc.Close()
		}
		mu.Unlock()
	}()
	var tempDelay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne gonet.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			errCh <- err
			break
		}
		tempDelay = 0
		if tc, ok := nc.(*gonet.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c := &conn{
			id:       kafka.ConnID(connIDs.Add(1)),
			nc:       nc,
			loop:     loop,
			cfg:      &cfg,
			out:      make(chan kafka.Response, MaxInflightPerConn+1),
			inflight: make(chan struct{}, MaxInflightPerConn),
			done:     make(chan struct{}),
			timer:    cfg.Metrics.newReqTimer(),
		}
		mu.Lock()
		live[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg.Metrics.connOpened()
			defer cfg.Metrics.connClosed()
			c.serve()
			mu.Lock()
			delete(live, c)
			mu.Unlock()
		}()
	}
	mu.Lock()
	for c := range live {
		c.nc.Close()
	}
	mu.Unlock()
	wg.Wait()
	select {
	case err := <-errCh:
		return err
	default:
		return nil
	}
}
