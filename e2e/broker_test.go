// Package e2e tests the broker with real Kafka client libraries against a real listening
// broker on loopback.
package e2e

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"chronik/internal/brokertest"
	"chronik/kafka"
	cnet "chronik/net"
)

// testBroker is an in-process broker on 127.0.0.1 with its data in a temp dir.
type testBroker struct {
	*cnet.Broker
	dir string
	cfg kafka.Config
}

type brokerOption func(*kafka.Config, *cnet.ServerConfig)

func withTLS(c *tls.Config) brokerOption {
	return func(_ *kafka.Config, s *cnet.ServerConfig) { s.TLS = c }
}

func withConfig(f func(*kafka.Config)) brokerOption {
	return func(c *kafka.Config, _ *cnet.ServerConfig) { f(c) }
}

// startBroker starts a broker and stops it when the test ends.
func startBroker(t testing.TB, opts ...brokerOption) *testBroker {
	t.Helper()
	return startBrokerIn(t, t.TempDir(), opts...)
}

func startBrokerIn(t testing.TB, dir string, opts ...brokerOption) *testBroker {
	t.Helper()
	cfg := kafka.Config{NodeID: 1, DataDir: dir}
	var scfg cnet.ServerConfig
	for _, o := range opts {
		o(&cfg, &scfg)
	}
	return &testBroker{Broker: brokertest.Start(t, cfg, scfg), dir: dir, cfg: cfg}
}

// testCtx is a context bounded for one test step.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
