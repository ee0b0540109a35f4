package net

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"chronik/kafka"
)

// peerCollector exports the peer transport's counters (PeerTransport.Stats) at scrape
// time; a single node exports none. Peers are labelled by Kafka node id.
type peerCollector struct{ m *Metrics }

var (
	peerLabel      = []string{"peer"}
	descPeerUp     = prometheus.NewDesc("chronik_peer_connected", "1 while the outbound connection to the peer is up (handshake done).", peerLabel, nil)
	descPeerQueued = prometheus.NewDesc("chronik_peer_queued_messages", "Raft messages waiting to be written to the peer.", peerLabel, nil)
	descPeerSent   = prometheus.NewDesc("chronik_peer_sent_messages_total", "Raft messages written to the peer's socket.", peerLabel, nil)
	descPeerBytes  = prometheus.NewDesc("chronik_peer_sent_bytes_total", "Bytes written to the peer's socket.", peerLabel, nil)
	descPeerDrop   = prometheus.NewDesc("chronik_peer_dropped_messages_total",
		"Raft messages to the peer that were dropped: reason full (its queue was full), down (no connection or a failed write), too_large (over a frame).",
		[]string{"peer", "reason"}, nil)
	descPeerDials  = prometheus.NewDesc("chronik_peer_dials_total", "Connection attempts to the peer.", peerLabel, nil)
	descPeerRecv   = prometheus.NewDesc("chronik_peer_received_messages_total", "Raft messages received from all peers and handed to the loop.", nil, nil)
	descPeerInDrop = prometheus.NewDesc("chronik_peer_inbound_dropped_messages_total",
		"Raft messages received but dropped because the loop did not take them in time.", nil, nil)
	descPeerBad = prometheus.NewDesc("chronik_peer_bad_connections_total",
		"Inbound peer connections closed for a malformed frame (reason decode) or refused at the handshake (reason rejected).", []string{"reason"}, nil)
)

func (peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeerUp, descPeerQueued, descPeerSent, descPeerBytes,
		descPeerDrop, descPeerDials, descPeerRecv, descPeerInDrop, descPeerBad} {
		ch <- d
	}
}

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.m.loop.Load()
	if l == nil || l.peers == nil {
		return
	}
	st := l.peers.t.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range st.Peers {
		id := strconv.Itoa(int(kafka.NodeOfRaftID(uint64(p.Peer))))
		up := 0.0
		if p.Connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up, id)
		ch <- prometheus.MustNewConstMetric(descPeerQueued, prometheus.GaugeValue, float64(p.Queued), id)
		counter(descPeerSent, p.Sent, id)
		counter(descPeerBytes, p.SentBytes, id)
		counter(descPeerDrop, p.DroppedFull, id, "full")
		counter(descPeerDrop, p.DroppedDown, id, "down")
		counter(descPeerDrop, p.TooLarge, id, "too_large")
		counter(descPeerDials, p.Dials, id)
	}
	counter(descPeerRecv, st.Received)
	counter(descPeerInDrop, st.InboundDropped)
	counter(descPeerBad, st.DecodeErrors, "decode")
	counter(descPeerBad, st.Rejected, "rejected")
}
