package net

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	gonet "net"
	"reflect"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// peerTestWait bounds every wait in these tests.
const peerTestWait = 10 * time.Second

// peerCluster is n transports on 127.0.0.1 with node ids 1..n.
type peerCluster struct {
	t     testing.TB
	addrs map[NodeID]string
	trs   map[NodeID]*PeerTransport
	tune  func(*PeerConfig)
}

func listenPeerLocal(t testing.TB, addr string) gonet.Listener {
	t.Helper()
	var ln gonet.Listener
	var err error
	for range 50 { // a restarted node's port can take a moment to free up
		if ln, err = gonet.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

func newPeerCluster(t testing.TB, n int, tune func(*PeerConfig)) *peerCluster {
	t.Helper()
	c := &peerCluster{t: t, addrs: map[NodeID]string{}, trs: map[NodeID]*PeerTransport{}, tune: tune}
	lns := map[NodeID]gonet.Listener{}
	for id := NodeID(1); id <= NodeID(n); id++ {
		lns[id] = listenPeerLocal(t, "127.0.0.1:0")
		c.addrs[id] = lns[id].Addr().String()
	}
	for id := NodeID(1); id <= NodeID(n); id++ {
		c.start(id, lns[id])
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *peerCluster) config(id NodeID, ln gonet.Listener) PeerConfig {
	peers := map[NodeID]string{}
	for p, a := range c.addrs {
		if p != id {
			peers[p] = a
		}
	}
	cfg := PeerConfig{ID: id, ClusterID: "test-cluster", Peers: peers, Listener: ln, JitterSeed: uint64(id)}
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

func (c *peerCluster) start(id NodeID, ln gonet.Listener) {
	c.t.Helper()
	tr, err := NewPeerTransport(c.config(id, ln))
	if err != nil {
		c.t.Fatal(err)
	}
	c.trs[id] = tr
}

func (c *peerCluster) stop(id NodeID) {
	c.trs[id].Close()
	delete(c.trs, id)
}

func (c *peerCluster) restart(id NodeID) { c.start(id, listenPeerLocal(c.t, c.addrs[id])) }

func (c *peerCluster) closeAll() {
	for id := range c.trs {
		c.stop(id)
	}
}

// waitConnected waits until every transport has a connection to every other.
func (c *peerCluster) waitConnected() {
	c.t.Helper()
	deadline := time.Now().Add(peerTestWait)
	for _, tr := range c.trs {
		for p := range tr.peers {
			for !tr.Reachable(p) {
				if time.Now().After(deadline) {
					c.t.Fatalf("node %d never reached node %d: %+v", tr.cfg.ID, p, tr.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// receivePeer takes n messages from tr, failing after peerTestWait.
func receivePeer(t testing.TB, tr *PeerTransport, n int) []PeerBatch {
	t.Helper()
	var got []PeerBatch
	timer := time.NewTimer(peerTestWait)
	defer timer.Stop()
	for count := 0; count < n; {
		select {
		case b := <-tr.Received():
			got = append(got, b)
			count += len(b.Msgs)
		case <-timer.C:
			t.Fatalf("received %d of %d messages: %+v", count, n, tr.Stats())
		}
	}
	return got
}

// peerGroupTraffic is what one loop iteration of node from sends node to: messages of groups
// groups, mixing appends, responses, votes and heartbeats.
func peerGroupTraffic(from, to NodeID, groups int, round uint64) []GroupMessage {
	f, t := uint64(from), uint64(to)
	var msgs []GroupMessage
	for g := uint64(1); g <= uint64(groups); g++ {
		var m raftpb.Message
		switch g % 5 {
		case 0:
			m = raftpb.Message{Type: raftpb.MsgApp, From: f, To: t, Term: round, LogTerm: round, Index: g, Commit: g,
				Entries: []raftpb.Entry{{Term: round, Index: g + 1, Data: bytes.Repeat([]byte{byte(g)}, int(g%300)+1)}}}
		case 1:
			m = raftpb.Message{Type: raftpb.MsgAppResp, From: f, To: t, Term: round, Index: g}
		case 2:
			m = raftpb.Message{Type: raftpb.MsgVote, From: f, To: t, Term: round, LogTerm: 1, Index: g}
		case 3:
			m = raftpb.Message{Type: raftpb.MsgHeartbeat, From: f, To: t, Term: round, Commit: g * round}
		case 4:
			m = raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: f, To: t, Term: round}
		}
		msgs = append(msgs, GroupMessage{Group: g<<20 | f, Msg: m})
	}
	return msgs
}

func flattenPeer(bs []PeerBatch, from NodeID) []GroupMessage {
	var out []GroupMessage
	for _, b := range bs {
		if b.From == from {
			out = append(out, b.Msgs...)
		}
	}
	return out
}

func TestPeerTwoTransportsExchange(t *testing.T) {
	c := newPeerCluster(t, 2, nil)
	const groups, rounds = 500, 5
	var want1, want2 []GroupMessage
	for r := uint64(1); r <= rounds; r++ {
		to2, to1 := peerGroupTraffic(1, 2, groups, r), peerGroupTraffic(2, 1, groups, r)
		if n := c.trs[1].Send(2, to2); n != len(to2) {
			t.Fatalf("queued %d of %d", n, len(to2))
		}
		if n := c.trs[2].Send(1, to1); n != len(to1) {
			t.Fatalf("queued %d of %d", n, len(to1))
		}
		want2, want1 = append(want2, to2...), append(want1, to1...)
	}
	got2 := flattenPeer(receivePeer(t, c.trs[2], len(want2)), 1)
	got1 := flattenPeer(receivePeer(t, c.trs[1], len(want1)), 2)
	if !reflect.DeepEqual(got2, want2) {
		t.Fatal("node 2 received other messages than node 1 sent")
	}
	if !reflect.DeepEqual(got1, want1) {
		t.Fatal("node 1 received other messages than node 2 sent")
	}
	s := sentPeerStats(t, c.trs[1], groups*rounds)
	if s.Sent != groups*rounds || s.DroppedFull+s.DroppedDown+s.TooLarge != 0 || s.Frames > rounds {
		t.Fatalf("stats %+v", s)
	}
}

func TestPeerThreeTransportsExchange(t *testing.T) {
	c := newPeerCluster(t, 3, nil)
	const groups = 1000
	want := map[[2]NodeID][]GroupMessage{}
	for from := NodeID(1); from <= 3; from++ {
		for to := NodeID(1); to <= 3; to++ {
			if from == to {
				continue
			}
			msgs := peerGroupTraffic(from, to, groups, uint64(from))
			if n := c.trs[from].Send(to, msgs); n != groups {
				t.Fatalf("queued %d", n)
			}
			want[[2]NodeID{from, to}] = msgs
		}
	}
	for to := NodeID(1); to <= 3; to++ {
		got := receivePeer(t, c.trs[to], 2*groups)
		for from := NodeID(1); from <= 3; from++ {
			if from != to && !reflect.DeepEqual(flattenPeer(got, from), want[[2]NodeID{from, to}]) {
				t.Fatalf("node %d got other messages from node %d than sent", to, from)
			}
		}
	}
}

func TestPeerHeartbeatsCoalesced(t *testing.T) {
	c := newPeerCluster(t, 2, nil)
	c.waitConnected()
	const groups = 2000
	var msgs []GroupMessage
	for g := uint64(0); g < groups; g++ {
		typ := raftpb.MsgHeartbeat
		if g%2 == 1 {
			typ = raftpb.MsgHeartbeatResp
		}
		m := raftpb.Message{Type: typ, From: 1, To: 2, Term: 3 + g%4}
		if typ == raftpb.MsgHeartbeat {
			m.Commit = 1000 + g
		}
		msgs = append(msgs, GroupMessage{Group: g, Msg: m})
	}
	c.trs[1].Send(2, msgs)
	got := flattenPeer(receivePeer(t, c.trs[2], groups), 1)
	for i := range msgs {
		if !reflect.DeepEqual(got[i], msgs[i]) {
			t.Fatalf("message %d: got %+v, want %+v", i, got[i], msgs[i])
		}
	}
	// Group < 2^14 (2 bytes), term (1), commit < 2^14 (2), kind (1): 6 bytes a heartbeat,
	// 4 a response; the frame header adds ~11 bytes.
	if s := c.trs[1].Stats().Peers[0]; s.SentBytes > groups*5+16 {
		t.Fatalf("%d heartbeats took %d bytes", groups, s.SentBytes)
	}
}

func TestPeerRestartReconnects(t *testing.T) {
	c := newPeerCluster(t, 2, nil)
	c.waitConnected()
	c.trs[1].Send(2, peerGroupTraffic(1, 2, 10, 1))
	receivePeer(t, c.trs[2], 10)

	c.stop(2)
	// Node 1 notices the closed socket at once (its watcher reads EOF) and starts dialing.
	deadline := time.Now().Add(peerTestWait)
	for c.trs[1].Reachable(2) {
		if time.Now().After(deadline) {
			t.Fatal("node 1 still thinks node 2 is reachable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.trs[1].Send(2, peerGroupTraffic(1, 2, 10, 2)) // discarded, or sent if a dial succeeds
	time.Sleep(200 * time.Millisecond)              // a few failed dials and backoffs
	c.restart(2)

	// Traffic resumes: send one round per 20 ms until a round arrives whole.
	for r := uint64(3); ; r++ {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic after restart: %+v", c.trs[1].Stats())
		}
		want := peerGroupTraffic(1, 2, 10, r)
		c.trs[1].Send(2, want)
		select {
		case b := <-c.trs[2].Received():
			// Rounds queued while node 1 was dialing share a frame: whole rounds, in order.
			if len(b.Msgs)%10 != 0 {
				t.Fatalf("after restart got %d messages", len(b.Msgs))
			}
			for i := 0; i < len(b.Msgs); i += 10 {
				round := b.Msgs[i+1].Msg.Term // group 2 is a MsgVote
				if round < 2 || !reflect.DeepEqual(b.Msgs[i:i+10], peerGroupTraffic(1, 2, 10, round)) {
					t.Fatalf("after restart got a stale or altered round %d", round)
				}
			}
			s := c.trs[1].Stats().Peers[0]
			if s.Connects < 2 || s.Dials < 3 {
				t.Fatalf("stats %+v: want a reconnect after failed dials", s)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPeerFullQueueDrops: a peer that accepts TCP but never answers the handshake; Send
// queues up to the limits, then drops and counts without blocking; Close does not wait
// for the handshake timeout.
func TestPeerFullQueueDrops(t *testing.T) {
	silent := listenPeerLocal(t, "127.0.0.1:0") // never accepts: the kernel completes connects
	defer silent.Close()
	ln := listenPeerLocal(t, "127.0.0.1:0")
	tr, err := NewPeerTransport(PeerConfig{ID: 1, ClusterID: "c", Peers: map[NodeID]string{2: silent.Addr().String()},
		Listener: ln, MaxQueuedMessages: 100, MaxQueuedBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	msgs := peerGroupTraffic(1, 2, 150, 1)
	if n := tr.Send(2, msgs); n != 100 {
		t.Fatalf("queued %d, want 100 (message limit)", n)
	}
	if n := tr.Send(2, msgs); n != 0 {
		t.Fatalf("queued %d into a full queue", n)
	}
	big := []GroupMessage{{Group: 1, Msg: raftpb.Message{Type: raftpb.MsgApp, Entries: []raftpb.Entry{{Data: make([]byte, 100<<10)}}}}}
	if n := tr.Send(2, big); n != 0 {
		t.Fatalf("queued a message over the byte limit")
	}
	if n := tr.Send(9, msgs[:3]); n != 0 {
		t.Fatal("queued for an unknown node")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Send took %v", d)
	}
	s := tr.Stats()
	if p := s.Peers[0]; p.Queued != 100 || p.DroppedFull != 50+150+1 || p.Connected || s.UnknownPeer != 3 {
		t.Fatalf("stats %+v", s)
	}
	start = time.Now()
	tr.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v (waited for the handshake?)", d)
	}
}

// TestPeerInboundFullDrops: a loop that does not read Received makes readers drop after
// PeerInboundWait, not block forever.
func TestPeerInboundFullDrops(t *testing.T) {
	c := newPeerCluster(t, 2, func(cfg *PeerConfig) { cfg.InboundBatches = 1 })
	c.waitConnected()
	for r := uint64(1); r <= 3; r++ {
		c.trs[1].Send(2, peerGroupTraffic(1, 2, 5, r))
		time.Sleep(10 * time.Millisecond) // one frame each
	}
	deadline := time.Now().Add(peerTestWait)
	for c.trs[2].Stats().InboundDropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing dropped: %+v", c.trs[2].Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The reader lives on: drain, and new traffic arrives.
	for len(c.trs[2].Received()) > 0 {
		<-c.trs[2].Received()
	}
	want := peerGroupTraffic(1, 2, 5, 9)
	for time.Now().Before(deadline) {
		c.trs[1].Send(2, want)
		select {
		case b := <-c.trs[2].Received():
			if reflect.DeepEqual(b.Msgs, want) {
				return
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("no traffic after the drop")
}

// rawPeerConn dials addr and completes a handshake as node from.
func rawPeerConn(t *testing.T, addr string, from, to NodeID, cluster string) (gonet.Conn, error) {
	t.Helper()
	nc, err := gonet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(peerTestWait))
	if _, err := nc.Write(appendPeerHello(nil, peerFrameHello, peerHello{from: from, to: to, clusterID: cluster})); err != nil {
		t.Fatal(err)
	}
	body, err := readPeerFrame(nc, nil, 1024)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := parsePeerHello(body, peerFrameAck); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

func TestPeerGarbageFrameClosesConnection(t *testing.T) {
	c := newPeerCluster(t, 2, nil)
	c.waitConnected()
	addr := c.addrs[2]
	for i, garbage := range [][]byte{
		{0, 0, 0, 3, peerFrameBatch, PeerProtocolVersion, 0xff},                      // truncated batch
		{0xff, 0xff, 0xff, 0xff},                                                     // over the frame limit
		append([]byte{0, 0, 0, 6, peerFrameBatch, 9}, 1, 0, 0, 0),                    // unknown version
		{0, 0, 0, 10, peerFrameBatch, PeerProtocolVersion, 3, 0, 0, 0, 1, 0x7, 1, 1}, // unknown entry kind
		{0, 0, 0, 10, peerFrameBatch, PeerProtocolVersion, 3, 0, 0, 0, 1, 3, 1, 9},   // append cut short
	} {
		nc, err := rawPeerConn(t, addr, 3, 2, "test-cluster")
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(garbage)
		if _, err := io.ReadAll(nc); err != nil { // returns once node 2 closes
			t.Fatalf("garbage %d: %v", i, err)
		}
		nc.Close()
		if got := c.trs[2].Stats().DecodeErrors; got != uint64(i+1) {
			t.Fatalf("garbage %d: %d decode errors", i, got)
		}
	}
	// Handshakes that must be refused, with the reason.
	for _, tc := range []struct {
		from, to NodeID
		cluster  string
	}{{3, 2, "other-cluster"}, {3, 7, "test-cluster"}, {2, 2, "test-cluster"}} {
		if _, err := rawPeerConn(t, addr, tc.from, tc.to, tc.cluster); err == nil {
			t.Fatalf("handshake %+v accepted", tc)
		}
	}
	if got := c.trs[2].Stats().Rejected; got != 3 {
		t.Fatalf("%d rejected handshakes, want 3", got)
	}
	// Node 1's connection never noticed.
	want := peerGroupTraffic(1, 2, 20, 1)
	c.trs[1].Send(2, want)
	if got := flattenPeer(receivePeer(t, c.trs[2], 20), 1); !reflect.DeepEqual(got, want) {
		t.Fatal("traffic after garbage differs")
	}
	if s := c.trs[1].Stats().Peers[0]; s.Connects != 1 {
		t.Fatalf("node 1 reconnected: %+v", s)
	}
}

func TestPeerClusterIDMismatchNeverConnects(t *testing.T) {
	c := newPeerCluster(t, 2, func(cfg *PeerConfig) { cfg.ClusterID = fmt.Sprintf("cluster-%d", cfg.ID) })
	deadline := time.Now().Add(peerTestWait)
	for id, tr := range c.trs {
		for tr.Stats().Rejected == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d rejected nothing: %+v", id, tr.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for id, tr := range c.trs {
		if s := tr.Stats(); s.Peers[0].Connects != 0 {
			t.Fatalf("node %d connected across clusters: %+v", id, s)
		}
	}
}

func TestPeerLargeBatchSplitsFrames(t *testing.T) {
	c := newPeerCluster(t, 2, func(cfg *PeerConfig) { cfg.MaxFrameBytes = 8 << 10 })
	var msgs []GroupMessage
	for g := uint64(0); g < 100; g++ {
		msgs = append(msgs, GroupMessage{Group: g, Msg: raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 1,
			Entries: []raftpb.Entry{{Term: 1, Index: g, Data: bytes.Repeat([]byte{1}, 1024)}}}})
	}
	tooBig := GroupMessage{Group: 7, Msg: raftpb.Message{Type: raftpb.MsgApp, Entries: []raftpb.Entry{{Data: make([]byte, 9<<10)}}}}
	c.trs[1].Send(2, append(msgs[:50:50], append([]GroupMessage{tooBig}, msgs[50:]...)...))
	got := receivePeer(t, c.trs[2], 100)
	if !reflect.DeepEqual(flattenPeer(got, 1), msgs) {
		t.Fatal("split batch differs")
	}
	if s := c.trs[1].Stats().Peers[0]; s.TooLarge != 1 || s.Frames < 13 || len(got) < 13 {
		t.Fatalf("stats %+v, %d batches", s, len(got))
	}
}

func TestPeerTLS(t *testing.T) {
	cert := selfSignedPeerCert(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	c := newPeerCluster(t, 2, func(cfg *PeerConfig) {
		cfg.ServerTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		cfg.ClientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	})
	want := peerGroupTraffic(1, 2, 50, 1)
	c.trs[1].Send(2, want)
	if got := flattenPeer(receivePeer(t, c.trs[2], 50), 1); !reflect.DeepEqual(got, want) {
		t.Fatal("TLS traffic differs")
	}
}

func selfSignedPeerCert(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chronik-peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []gonet.IP{gonet.ParseIP("127.0.0.1")}, IsCA: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestPeerGoroutinesReturnAfterClose(t *testing.T) {
	base := runtime.NumGoroutine()
	c := newPeerCluster(t, 3, nil)
	c.waitConnected()
	for from := NodeID(1); from <= 3; from++ {
		for to := NodeID(1); to <= 3; to++ {
			if from != to {
				c.trs[from].Send(to, peerGroupTraffic(from, to, 100, 1))
			}
		}
	}
	for id := NodeID(1); id <= 3; id++ {
		receivePeer(t, c.trs[id], 200)
	}
	// A half-open raw connection too: Close must end its reader.
	raw, err := gonet.Dial("tcp", c.addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Per transport: accept, 2 writers, 2 watchers, 2 inbound readers; 1 raw reader (for
	// PeerHandshakeTimeout). The base may still count a goroutine of an earlier test that
	// is on its way out, so this only checks that the test exercises what it should.
	deadline := time.Now().Add(peerTestWait)
	for runtime.NumGoroutine() < base+3*7 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines while running, base %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.closeAll()
	deadline = time.Now().Add(peerTestWait)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, base %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPeerConfigValidate(t *testing.T) {
	ln := listenPeerLocal(t, "127.0.0.1:0")
	defer ln.Close()
	for _, cfg := range []PeerConfig{
		{ClusterID: "c", Listener: ln},
		{ID: 1, Listener: ln, ClusterID: string(make([]byte, 256))},
		{ID: 1},
		{ID: 1, Listener: ln, Peers: map[NodeID]string{1: "x:1"}},
		{ID: 1, Listener: ln, Peers: map[NodeID]string{2: ""}},
	} {
		if _, err := NewPeerTransport(cfg); err == nil {
			t.Fatalf("accepted %+v", cfg)
		}
	}
}

func TestPeerBackoffBounded(t *testing.T) {
	rng := newPeer(&PeerTransport{cfg: PeerConfig{JitterSeed: 1}}, 2, "x").rng
	for f := range 100 {
		d := peerBackoff(f, rng)
		ceil := min(PeerBackoffMin<<min(f, 30), PeerBackoffMax)
		if d < ceil/2 || d > ceil {
			t.Fatalf("failure %d: wait %v outside [%v, %v]", f, d, ceil/2, ceil)
		}
	}
}

// BenchmarkPeerMsgApp: 1 KiB MsgApp entries from node 1 to node 2, 64 messages (of 64
// groups) per Send, at most 4096 in flight. One op is one message; allocations are those
// of both transports (sender encode, receiver decode).
func BenchmarkPeerMsgApp(b *testing.B) {
	c := newPeerCluster(b, 2, nil)
	c.waitConnected()
	const perSend, window = 64, 4096
	batch := make([]GroupMessage, perSend)
	data := bytes.Repeat([]byte{0x5a}, 1024)
	for g := range batch {
		batch[g] = GroupMessage{Group: uint64(g), Msg: raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3,
			Index: 100, Commit: 99, Entries: []raftpb.Entry{{Term: 3, Index: 101, Data: data}}}}
	}
	rx := c.trs[2].Received()
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), processCPU(b)
	sent, got := 0, 0
	for got < b.N {
		for sent < b.N && sent-got < window {
			n := min(perSend, b.N-sent)
			if q := c.trs[1].Send(2, batch[:n]); q != n {
				b.Fatalf("queued %d of %d", q, n)
			}
			sent += n
		}
		select {
		case pb := <-rx:
			got += len(pb.Msgs)
		case <-time.After(peerTestWait):
			b.Fatalf("stalled at %d of %d: %+v", got, b.N, c.trs[1].Stats())
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/msg")
}

// BenchmarkPeerHeartbeats: one loop iteration's heartbeats for 1,000 groups from node 1
// to node 2, sent and received as one frame. One op is one heartbeat.
func BenchmarkPeerHeartbeats(b *testing.B) {
	c := newPeerCluster(b, 2, nil)
	c.waitConnected()
	const groups = 1000
	batch := make([]GroupMessage, groups)
	for g := range batch {
		batch[g] = GroupMessage{Group: uint64(g), Msg: raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 5, Commit: 1 << 20}}
	}
	rx := c.trs[2].Received()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU(b)
	for got := 0; got < b.N; {
		n := min(groups, b.N-got)
		c.trs[1].Send(2, batch[:n])
		for want := got + n; got < want; {
			select {
			case pb := <-rx:
				got += len(pb.Msgs)
			case <-time.After(peerTestWait):
				b.Fatalf("stalled at %d of %d", got, b.N)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/msg")
	s := c.trs[1].Stats().Peers[0]
	b.ReportMetric(float64(s.SentBytes)/float64(s.Sent), "wire-B/heartbeat")
}

// TestPeerFlappingPeerBacksOff: a peer that completes the handshake and hangs up at once
// is redialed with a growing backoff, not in a loop.
func TestPeerFlappingPeerBacksOff(t *testing.T) {
	flap := listenPeerLocal(t, "127.0.0.1:0")
	defer flap.Close()
	var accepted sync.WaitGroup
	accepted.Add(1)
	go func() {
		defer accepted.Done()
		for range 1000 {
			nc, err := flap.Accept()
			if err != nil {
				return
			}
			nc.SetDeadline(time.Now().Add(peerTestWait))
			if body, err := readPeerFrame(nc, nil, 1024); err == nil {
				if h, err := parsePeerHello(body, peerFrameHello); err == nil {
					nc.Write(appendPeerHello(nil, peerFrameAck, peerHello{from: h.to, to: h.from, clusterID: h.clusterID}))
				}
			}
			nc.Close()
		}
	}()
	tr, err := NewPeerTransport(PeerConfig{ID: 1, ClusterID: "c", Peers: map[NodeID]string{2: flap.Addr().String()},
		Listener: listenPeerLocal(t, "127.0.0.1:0"), JitterSeed: 7})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	s := tr.Stats().Peers[0]
	tr.Close()
	flap.Close()
	accepted.Wait()
	// Waits of at least 25, 50, 100, 200, 400 ms: at most 6 connections in a second.
	if s.Connects < 2 || s.Connects > 7 {
		t.Fatalf("%d connections in a second to a flapping peer: %+v", s.Connects, s)
	}
}

// TestPeerFrameMessageLimit: more heartbeats than a frame may hold go in several frames.
func TestPeerFrameMessageLimit(t *testing.T) {
	c := newPeerCluster(t, 2, func(cfg *PeerConfig) { cfg.MaxQueuedMessages = 2 * MaxPeerFrameMessages })
	const n = MaxPeerFrameMessages + 100
	msgs := make([]GroupMessage, n)
	for i := range msgs {
		msgs[i] = GroupMessage{Group: uint64(i), Msg: raftpb.Message{Type: raftpb.MsgHeartbeatResp, From: 1, To: 2, Term: 1}}
	}
	if q := c.trs[1].Send(2, msgs); q != n {
		t.Fatalf("queued %d of %d", q, n)
	}
	got := receivePeer(t, c.trs[2], n)
	if len(got) < 2 || !reflect.DeepEqual(flattenPeer(got, 1), msgs) {
		t.Fatalf("%d batches", len(got))
	}
}

// processCPU is the CPU time (user + system) the process has used: a machine's load
// changes wall-clock figures much more than it changes this.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestPeerResetEndsReader: a peer connection reset (RST) after its handshake ends its
// reader goroutine at once; the transport keeps serving.
func TestPeerResetEndsReader(t *testing.T) {
	c := newPeerCluster(t, 2, nil)
	c.waitConnected()
	waitInbound := func(want int) {
		t.Helper()
		deadline := time.Now().Add(peerTestWait)
		for c.trs[2].Stats().InboundConns != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d inbound readers, want %d", c.trs[2].Stats().InboundConns, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitInbound(1) // node 1's
	nc, err := rawPeerConn(t, c.addrs[2], 3, 2, "test-cluster")
	if err != nil {
		t.Fatal(err)
	}
	waitInbound(2)
	nc.(*gonet.TCPConn).SetLinger(0)
	nc.Close() // RST
	waitInbound(1)
	want := peerGroupTraffic(1, 2, 10, 1)
	c.trs[1].Send(2, want)
	if got := flattenPeer(receivePeer(t, c.trs[2], 10), 1); !reflect.DeepEqual(got, want) {
		t.Fatal("traffic after a reset differs")
	}
}
