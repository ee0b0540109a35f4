package main

import (
	"bufio"
	"fmt"
	"io"
	gonet "net"
	"os"
	"strconv"
	"strings"

	"chronik/kafka"
)

// maxPeers bounds the entries of -peers and -cluster-file.
const maxPeers = 1024

// parsePeers parses -peers: comma-separated id=kafkaHost:kafkaPort/peerHost:peerPort
// entries, one per node. Empty input is no peers.
func parsePeers(s string) ([]kafka.Peer, error) {
	var peers []kafka.Peer
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		p, err := parsePeer(e)
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	return checkPeers(peers)
}

// readClusterFile reads -cluster-file: the entries of -peers one per line; blank lines
// and lines starting with # are skipped.
func readClusterFile(name string) ([]kafka.Peer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseClusterFile(f, name)
}

func parseClusterFile(r io.Reader, name string) ([]kafka.Peer, error) {
	var peers []kafka.Peer
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		e := strings.TrimSpace(sc.Text())
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		p, err := parsePeer(e)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		peers = append(peers, p)
		if len(peers) > maxPeers {
			break // checkPeers reports it
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return checkPeers(peers)
}

// parsePeer parses one id=kafkaHost:kafkaPort/peerHost:peerPort entry.
func parsePeer(e string) (kafka.Peer, error) {
	idStr, addrs, ok := strings.Cut(e, "=")
	if !ok {
		return kafka.Peer{}, fmt.Errorf("peer %q: want id=kafkaHost:kafkaPort/peerHost:peerPort", e)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(idStr), 10, 32)
	if err != nil || id < 0 {
		return kafka.Peer{}, fmt.Errorf("peer %q: node id %q is not a non-negative integer", e, idStr)
	}
	kafkaAddr, peerAddr, ok := strings.Cut(addrs, "/")
	if !ok {
		return kafka.Peer{}, fmt.Errorf("peer %q: want id=kafkaHost:kafkaPort/peerHost:peerPort", e)
	}
	host, port, err := splitHostPort(kafkaAddr)
	if err != nil {
		return kafka.Peer{}, fmt.Errorf("peer %q: kafka address: %w", e, err)
	}
	if _, _, err := splitHostPort(peerAddr); err != nil {
		return kafka.Peer{}, fmt.Errorf("peer %q: peer address: %w", e, err)
	}
	return kafka.Peer{ID: int32(id), Host: host, Port: port, PeerAddr: peerAddr}, nil
}

// splitHostPort splits a host:port whose host is not empty and whose port is in 1-65535.
func splitHostPort(addr string) (string, int32, error) {
	host, portStr, err := gonet.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("%q: want host:port with a port in 1-65535", addr)
	}
	return host, int32(port), nil
}

func checkPeers(peers []kafka.Peer) ([]kafka.Peer, error) {
	if len(peers) > maxPeers {
		return nil, fmt.Errorf("more than %d peers", maxPeers)
	}
	seen := map[int32]bool{}
	for _, p := range peers {
		if seen[p.ID] {
			return nil, fmt.Errorf("peer id %d appears twice", p.ID)
		}
		seen[p.ID] = true
	}
	return peers, nil
}

// peerByID is the entry of node id, if there is one.
func peerByID(peers []kafka.Peer, id int32) (kafka.Peer, bool) {
	for _, p := range peers {
		if p.ID == id {
			return p, true
		}
	}
	return kafka.Peer{}, false
}
