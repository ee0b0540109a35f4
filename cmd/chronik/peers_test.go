package main

import (
	"reflect"
	"strings"
	"testing"

	"chronik/kafka"
)

func TestParsePeers(t *testing.T) {
	three := []kafka.Peer{
		{ID: 1, Host: "127.0.0.1", Port: 9092, PeerAddr: "127.0.0.1:19092"},
		{ID: 2, Host: "127.0.0.1", Port: 9093, PeerAddr: "127.0.0.1:19093"},
		{ID: 3, Host: "broker3.example", Port: 9094, PeerAddr: "10.0.0.3:19094"},
	}
	tests := []struct {
		in   string
		want []kafka.Peer
		err  string
	}{
		{in: "", want: nil},
		{in: "1=127.0.0.1:9092/127.0.0.1:19092,2=127.0.0.1:9093/127.0.0.1:19093,3=broker3.example:9094/10.0.0.3:19094", want: three},
		{in: " 1=127.0.0.1:9092/127.0.0.1:19092 , 2=127.0.0.1:9093/127.0.0.1:19093,3=broker3.example:9094/10.0.0.3:19094,", want: three},
		{in: "0=[::1]:9092/[::1]:19092", want: []kafka.Peer{{ID: 0, Host: "::1", Port: 9092, PeerAddr: "[::1]:19092"}}},
		{in: "1=127.0.0.1:9092", err: "want id="},
		{in: "127.0.0.1:9092/127.0.0.1:19092", err: "want id="},
		{in: "x=127.0.0.1:9092/127.0.0.1:19092", err: "node id"},
		{in: "-1=127.0.0.1:9092/127.0.0.1:19092", err: "node id"},
		{in: "1=127.0.0.1:0/127.0.0.1:19092", err: "kafka address"},
		{in: "1=127.0.0.1:9092/127.0.0.1", err: "peer address"},
		{in: "1=:9092/127.0.0.1:19092", err: "kafka address"},
		{in: "1=127.0.0.1:9092/127.0.0.1:19092,1=127.0.0.1:9093/127.0.0.1:19093", err: "twice"},
	}
	for _, tt := range tests {
		got, err := parsePeers(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parsePeers(%q) error %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePeers(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parsePeers(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseClusterFile(t *testing.T) {
	file := "# three nodes\n1=127.0.0.1:9092/127.0.0.1:19092\n\n  2=127.0.0.1:9093/127.0.0.1:19093\n"
	got, err := parseClusterFile(strings.NewReader(file), "c.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].ID != 2 || got[1].PeerAddr != "127.0.0.1:19093" {
		t.Errorf("got %+v", got)
	}
	if _, err := parseClusterFile(strings.NewReader("1=127.0.0.1:9092/x\n"), "c.txt"); err == nil || !strings.Contains(err.Error(), "c.txt:1") {
		t.Errorf("bad line: error %v, want it to name c.txt:1", err)
	}
}

func TestClusterNodeConfig(t *testing.T) {
	const peers = "1=127.0.0.1:9092/127.0.0.1:19092,2=127.0.0.1:9093/127.0.0.1:19093,3=127.0.0.1:9094/127.0.0.1:19094"
	o, err := parse([]string{"-node-id", "2", "-peers", peers, "-election-timeout", "500ms", "-raft-tick", "50ms", "-min-insync-replicas", "2"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.nodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:9093" || cfg.Host != "127.0.0.1" || cfg.Port != 9093 {
		t.Errorf("listen %s, advertised %s:%d; want node 2's 127.0.0.1:9093", o.listen, cfg.Host, cfg.Port)
	}
	if len(cfg.Peers) != 3 || cfg.RaftTickMs != 50 || cfg.ElectionTimeoutMs != 500 || cfg.MinInsyncReplicas != 2 {
		t.Errorf("config %+v", cfg)
	}

	o, err = parse([]string{"-node-id", "2", "-peers", peers, "-listen", "0.0.0.0:7000"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = o.nodeConfig(); err != nil || o.listen != "0.0.0.0:7000" || cfg.Port != 9093 {
		t.Errorf("explicit -listen: listen %s, advertised port %d, %v", o.listen, cfg.Port, err)
	}

	for _, args := range [][]string{
		{"-node-id", "4", "-peers", peers},
		{"-node-id", "1", "-peers", peers, "-advertise", "127.0.0.1:9999"},
		{"-node-id", "1", "-peers", peers, "-election-timeout", "100ms", "-raft-tick", "100ms"},
		{"-node-id", "1", "-peers", peers, "-default-replication-factor", "4"},
		{"-node-id", "1", "-peers", peers, "-cluster-file", "x"},
		{"-default-replication-factor", "3"},
	} {
		o, err := parse(args)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.nodeConfig(); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
