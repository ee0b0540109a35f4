package main

import (
	"math/rand/v2"
	"slices"
	"testing"

	"chronik/internal/loadrec"
)

// read is one record as a consumer reads it: partition, offset, producer, sequence; bad
// damages its checksum, foreign makes it no load record.
type read struct {
	part         int32
	off          int64
	pid, seq     uint64
	bad, foreign bool
}

func value(r read) []byte {
	if r.foreign {
		return []byte(`{"not":"a load record"}`)
	}
	v := make([]byte, 100)
	loadrec.Encode(v, r.pid, r.seq)
	if r.bad {
		v[90] ^= 1
	}
	return v
}

// inOrder numbers reads of one producer in partition 0 at offsets 0, 1, 2, ...
func inOrder(pid uint64, seqs ...uint64) []read {
	out := make([]read, len(seqs))
	for i, s := range seqs {
		out[i] = read{part: 0, off: int64(i), pid: pid, seq: s}
	}
	return out
}

func TestChecker(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fromZero bool
		reads    []read
		want     Counts // Producers and Partitions are checked too
		kinds    []FaultKind
	}{
		{"clean", true, inOrder(1, 0, 1, 2, 3),
			Counts{Records: 4, OK: 4, Producers: 1, Partitions: 1}, nil},
		{"duplicate in place", true, inOrder(1, 0, 1, 1, 2),
			Counts{Records: 4, OK: 3, Duplicated: 1, Producers: 1, Partitions: 1}, []FaultKind{FaultDuplicate}},
		{"duplicate of an older sequence is a duplicate, not out of order", true, inOrder(1, 0, 1, 2, 0),
			Counts{Records: 4, OK: 3, Duplicated: 1, Producers: 1, Partitions: 1}, []FaultKind{FaultDuplicate}},
		{"gap never filled", true, inOrder(1, 0, 1, 4, 5),
			Counts{Records: 4, OK: 4, Lost: 2, Producers: 1, Partitions: 1}, []FaultKind{FaultLost}},
		{"missing start", true, inOrder(1, 3, 4),
			Counts{Records: 2, OK: 2, Lost: 3, Producers: 1, Partitions: 1}, []FaultKind{FaultLost}},
		{"missing start tolerated mid-stream", false, inOrder(1, 3, 4),
			Counts{Records: 2, OK: 2, Producers: 1, Partitions: 1}, nil},
		{"reordered fills its gap", true, inOrder(1, 0, 2, 1, 3),
			Counts{Records: 4, OK: 3, OutOfOrder: 1, Producers: 1, Partitions: 1}, []FaultKind{FaultOutOfOrder}},
		{"gap split then filled", true, inOrder(1, 0, 5, 3, 1, 2, 4),
			Counts{Records: 6, OK: 2, OutOfOrder: 4, Producers: 1, Partitions: 1},
			[]FaultKind{FaultOutOfOrder, FaultOutOfOrder, FaultOutOfOrder, FaultOutOfOrder}},
		{"duplicate inside the seen range", true, inOrder(1, 0, 3, 2, 2),
			Counts{Records: 4, OK: 2, OutOfOrder: 1, Duplicated: 1, Lost: 1, Producers: 1, Partitions: 1},
			[]FaultKind{FaultOutOfOrder, FaultDuplicate, FaultLost}},
		{"corrupt copy of a delivered record", true,
			[]read{{0, 0, 1, 0, false, false}, {0, 1, 1, 1, false, false}, {0, 2, 1, 1, true, false}, {0, 3, 1, 2, false, false}},
			Counts{Records: 4, OK: 3, Corrupt: 1, Producers: 1, Partitions: 1}, []FaultKind{FaultCorrupt}},
		{"corrupt record in place of its sequence is also lost", true,
			[]read{{0, 0, 1, 0, false, false}, {0, 1, 1, 1, true, false}, {0, 2, 1, 2, false, false}},
			Counts{Records: 3, OK: 2, Corrupt: 1, Lost: 1, Producers: 1, Partitions: 1}, []FaultKind{FaultCorrupt, FaultLost}},
		{"foreign", true, []read{{foreign: true}},
			Counts{Records: 1, Foreign: 1, Partitions: 1}, []FaultKind{FaultForeign}},
		{"redelivery after a rebalance is not a duplicate", true,
			[]read{{0, 0, 1, 0, false, false}, {0, 1, 1, 1, false, false}, {0, 0, 1, 0, false, false}, {0, 1, 1, 1, false, false}, {0, 2, 1, 2, false, false}},
			Counts{Records: 3, OK: 3, Redelivered: 2, Producers: 1, Partitions: 1}, nil},
		{"skipped offsets are reported, not faults", true,
			[]read{{0, 0, 1, 0, false, false}, {0, 5, 1, 1, false, false}},
			Counts{Records: 2, OK: 2, OffsetGaps: 1, Producers: 1, Partitions: 1}, nil},
		{"producers interleave in one partition", true,
			[]read{{0, 0, 1, 0, false, false}, {0, 1, 2, 0, false, false}, {0, 2, 1, 1, false, false}, {0, 3, 2, 1, false, false}},
			Counts{Records: 4, OK: 4, Producers: 2, Partitions: 1}, nil},
		{"a producer moved partitions: order is per partition", true,
			[]read{{0, 0, 1, 0, false, false}, {1, 0, 1, 2, false, false}, {0, 1, 1, 1, false, false}, {1, 1, 1, 3, false, false}},
			Counts{Records: 4, OK: 4, Producers: 1, Partitions: 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(tc.fromZero)
			var kinds []FaultKind
			for _, r := range tc.reads {
				c.Check("t", r.part, r.off, value(r))
			}
			got := c.Finish()
			tc.want.Bytes = got.Bytes // not under test here
			if got != tc.want {
				t.Errorf("counts\n got %+v\nwant %+v", got, tc.want)
			}
			for _, f := range c.Faults() {
				kinds = append(kinds, f.Kind)
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("fault kinds %v, want %v", kinds, tc.kinds)
			}
		})
	}
}

// TestCheckerGapLimit: a producer with more gaps than the limit keeps only the newest;
// the oldest are counted lost at once, and memory stays bounded.
func TestCheckerGapLimit(t *testing.T) {
	c := NewChecker(true)
	const extra = 10
	off := int64(0)
	for i := uint64(0); i < MaxGapsPerProducer+extra; i++ {
		c.Check("t", 0, off, value(read{pid: 7, seq: 2*i + 1})) // every even sequence missing
		off++
	}
	n := c.Counts()
	if n.GapsAbandoned != extra || n.Lost != extra || n.Missing != MaxGapsPerProducer {
		t.Fatalf("abandoned %d lost %d missing %d, want %d %d %d", n.GapsAbandoned, n.Lost, n.Missing, extra, extra, MaxGapsPerProducer)
	}
	if got := len(c.producers[7].gaps); got != MaxGapsPerProducer {
		t.Fatalf("%d gaps kept, want %d", got, MaxGapsPerProducer)
	}
	n = c.Finish()
	if n.Lost != MaxGapsPerProducer+extra || n.Missing != 0 {
		t.Fatalf("after Finish lost %d missing %d, want %d 0", n.Lost, n.Missing, MaxGapsPerProducer+extra)
	}
}

// TestCheckerShuffledDelivery is a differential test against the obvious model (a set of
// sequences seen): any delivery order of a producer's records, with some dropped and
// some repeated, gives lost = dropped and duplicated = repeats.
func TestCheckerShuffledDelivery(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		const n = 300
		var seqs []uint64
		dropped, repeats := 0, 0
		for s := uint64(0); s < n; s++ {
			switch rng.IntN(20) {
			case 0:
				if s != n-1 { // a dropped last sequence is not detectable: nothing is above it
					dropped++
					continue
				}
			case 1:
				seqs = append(seqs, s)
				repeats++
			}
			seqs = append(seqs, s)
		}
		// Shuffle within windows, as a partition's order would not be, to stress gaps.
		for i := range seqs {
			j := min(len(seqs)-1, i+rng.IntN(8))
			seqs[i], seqs[j] = seqs[j], seqs[i]
		}
		c := NewChecker(true)
		for i, s := range seqs {
			c.Check("t", 0, int64(i), value(read{pid: 9, seq: s}))
		}
		got := c.Finish()
		if got.Lost != int64(dropped) || got.Duplicated != int64(repeats) || got.Records != int64(len(seqs)) {
			t.Fatalf("seed %d: lost %d duplicated %d records %d, want %d %d %d (replay: go test ./cmd/chronik-verify -run TestCheckerShuffledDelivery)",
				seed, got.Lost, got.Duplicated, got.Records, dropped, repeats, len(seqs))
		}
		if got.OK+got.OutOfOrder+got.Duplicated != got.Records {
			t.Fatalf("seed %d: ok %d + out of order %d + duplicated %d != records %d", seed, got.OK, got.OutOfOrder, got.Duplicated, got.Records)
		}
	}
}

// TestCheckerExpect: the writer's report reveals a lost tail and a producer never read,
// and excuses as many missing records as it says failed.
func TestCheckerExpect(t *testing.T) {
	for _, tc := range []struct {
		name         string
		reads        []read
		sent, failed uint64
		lost, unack  int64
	}{
		{"all there", inOrder(1, 0, 1, 2), 3, 0, 0, 0},
		{"lost tail", inOrder(1, 0, 1, 2), 5, 0, 2, 0},
		{"failed tail", inOrder(1, 0, 1, 2), 5, 2, 0, 2},
		{"failed batch in the middle", inOrder(1, 0, 3, 4), 5, 2, 0, 2},
		{"more missing than failed", inOrder(1, 0, 4), 6, 2, 2, 2},
		{"failed but written after all (a timeout)", inOrder(1, 0, 1, 2), 3, 1, 0, 0},
		{"never read", nil, 4, 0, 4, 0},
		{"never read, all failed", nil, 4, 4, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(true)
			for _, r := range tc.reads {
				c.Check("t", r.part, r.off, value(r))
			}
			if !c.Expect(1, tc.sent, tc.failed) {
				t.Fatal("Expect refused")
			}
			got := c.Finish()
			if got.Lost != tc.lost || got.NotAcked != tc.unack || got.Missing != 0 || got.Producers != 1 {
				t.Errorf("lost %d not acked %d missing %d producers %d, want %d %d 0 1", got.Lost, got.NotAcked, got.Missing, got.Producers, tc.lost, tc.unack)
			}
			if lostFaults := len(c.Faults()) > 0; lostFaults != (tc.lost > 0) {
				t.Errorf("faults %v with %d lost", c.Faults(), tc.lost)
			}
		})
	}
}
