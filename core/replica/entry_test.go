package replica

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"

	pb "go.etcd.io/raft/v3/raftpb"

	"chronik/core/record"
)

func TestStoredEntriesRoundTrip(t *testing.T) {
	data := makeBatch(batchSpec{records: 3, valueBytes: 20, fill: 7})
	marker := appendControlBatch(nil, 1, []byte{0, 0, 0, 0, 0, 0}) // a COMMIT marker
	tests := []struct {
		name string
		e    pb.Entry
	}{
		{"batch", pb.Entry{Term: 3, Index: 9, Data: data}},
		{"empty entry", pb.Entry{Term: 4, Index: 10}},
		{"conf change", pb.Entry{Term: 5, Index: 11, Type: pb.EntryConfChange, Data: []byte{8, 1, 16, 2}}},
		{"conf change v2", pb.Entry{Term: 5, Index: 12, Type: pb.EntryConfChangeV2, Data: []byte{}}},
		{"transaction marker", pb.Entry{Term: 6, Index: 13, Data: marker}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := appendStored([]byte("prefix"), &tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatalf("appendStored overwrote dst")
			}
			b = b[len("prefix"):]
			h, err := record.Validate(b)
			if err != nil {
				t.Fatalf("stored batch does not validate: %v", err)
			}
			if h.PartitionLeaderEpoch != int32(tt.e.Term) {
				t.Fatalf("epoch %d, term %d", h.PartitionLeaderEpoch, tt.e.Term)
			}
			got, err := decodeStored(b, tt.e.Index)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.e
			if want.Data != nil && want.Type == pb.EntryNormal {
				// The stored batch carries the term; compare the rest.
				if !bytes.Equal(got.Data[16:], want.Data[16:]) {
					t.Fatalf("data differs after the epoch")
				}
				got.Data, want.Data = nil, nil
			}
			if len(got.Data) == 0 && len(want.Data) == 0 {
				got.Data, want.Data = nil, nil
			}
			if got.Term != want.Term || got.Index != want.Index || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
		})
	}
}

func TestProposalChecks(t *testing.T) {
	ok := makeBatch(batchSpec{records: 2})
	if err := checkProposal(ok); err != nil {
		t.Fatal(err)
	}
	if err := checkProposal(append(ok[:len(ok):len(ok)], ok...)); err == nil {
		t.Fatal("two batches accepted")
	}
	if err := checkProposal(ok[:len(ok)-1]); err == nil {
		t.Fatal("a truncated batch accepted")
	}
	ctl := appendControlBatch(nil, controlTypeLeaderChange, leaderChangeValue[:])
	if err := checkProposal(ctl); !errors.Is(err, ErrControlBatch) {
		t.Fatalf("control batch: %v", err)
	}
}

// TestPropertyStoredEntries: every entry raft can produce is stored as one valid batch
// that decodes back to it (data compared past the rewritten header fields).
func TestPropertyStoredEntries(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := pb.Entry{
			Term:  rapid.Uint64Range(0, 1<<31-1).Draw(t, "term"),
			Index: rapid.Uint64Range(1, 1<<40).Draw(t, "index"),
		}
		switch rapid.IntRange(0, 3).Draw(t, "kind") {
		case 0:
			e.Data = makeBatch(batchSpec{records: rapid.IntRange(1, 20).Draw(t, "records"), valueBytes: rapid.IntRange(0, 200).Draw(t, "value")})
		case 1:
		case 2:
			e.Type = pb.EntryConfChange
			e.Data = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "cc")
		case 3:
			e.Type = pb.EntryConfChangeV2
			e.Data = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "cc")
		}
		b, err := appendStored(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := record.Validate(b); err != nil {
			t.Fatalf("does not validate: %v", err)
		}
		got, err := decodeStored(b, e.Index)
		if err != nil {
			t.Fatal(err)
		}
		if got.Term != e.Term || got.Index != e.Index || got.Type != e.Type || len(got.Data) != len(e.Data) ||
			len(e.Data) > 16 && !bytes.Equal(got.Data[16:], e.Data[16:]) ||
			len(e.Data) <= 16 && !bytes.Equal(got.Data, e.Data) {
			t.Fatalf("decoded %+v, want %+v", got, e)
		}
	})
}
