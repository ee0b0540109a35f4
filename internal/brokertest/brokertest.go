// Package brokertest starts in-process brokers on loopback for tests, as net/http/httptest
// does for HTTP servers. Each broker writes through disk.OS into a test-owned directory and
// is stopped when the test ends.
package brokertest

import (
	"context"
	gonet "net"
	"testing"

	"chronik/disk"
	"chronik/kafka"
	cnet "chronik/net"
)

// Start starts a broker on a free port of 127.0.0.1. A zero cfg.NodeID becomes 1 and an
// empty cfg.DataDir a fresh t.TempDir().
func Start(t testing.TB, cfg kafka.Config, scfg cnet.ServerConfig) *cnet.Broker {
	t.Helper()
	ln, err := gonet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, ln, cfg, scfg)
}

// Serve starts a broker on ln, which it owns from then on (it is closed on failure too),
// with Start's defaults. Closing the broker before the test ends is allowed.
func Serve(t testing.TB, ln gonet.Listener, cfg kafka.Config, scfg cnet.ServerConfig) *cnet.Broker {
	t.Helper()
	if cfg.NodeID == 0 {
		cfg.NodeID = 1
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	b, err := cnet.StartBroker(context.Background(), ln, cfg, disk.OS(), 1, scfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("broker close: %v", err)
		}
	})
	return b
}
