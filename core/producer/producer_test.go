package producer

import (
	"errors"
	"reflect"
	"testing"

	"chronik/core/record"
)

func hdr(pid int64, epoch int16, seq int32, n int32, base int64) record.Header {
	return record.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1, NumRecords: n, BaseOffset: base}
}

func TestCheck(t *testing.T) {
	type step struct {
		h       record.Header
		wantDup *Duplicate
		wantErr error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"plain batches always append", []step{
			{h: record.Header{ProducerID: -1}},
			{h: record.Header{ProducerID: -1}},
		}},
		{"in order", []step{
			{h: hdr(7, 0, 0, 3, 0)},
			{h: hdr(7, 0, 3, 2, 3)},
			{h: hdr(7, 0, 5, 1, 5)},
		}},
		{"retry of a cached batch is a duplicate", []step{
			{h: hdr(7, 0, 0, 3, 0)},
			{h: hdr(7, 0, 3, 2, 3)},
			{h: hdr(7, 0, 0, 3, -1), wantDup: &Duplicate{0, 2}},
			{h: hdr(7, 0, 3, 2, -1), wantDup: &Duplicate{3, 4}},
		}},
		{"gap is out of order", []step{
			{h: hdr(7, 0, 0, 3, 0)},
			{h: hdr(7, 0, 4, 1, -1), wantErr: ErrOutOfOrder},
		}},
		{"old duplicate beyond the cache is out of order", []step{
			{h: hdr(7, 0, 0, 1, 0)},
			{h: hdr(7, 0, 1, 1, 1)},
			{h: hdr(7, 0, 2, 1, 2)},
			{h: hdr(7, 0, 3, 1, 3)},
			{h: hdr(7, 0, 4, 1, 4)},
			{h: hdr(7, 0, 5, 1, 5)},
			{h: hdr(7, 0, 0, 1, -1), wantErr: ErrOutOfOrder},
			{h: hdr(7, 0, 1, 1, -1), wantDup: &Duplicate{1, 1}},
		}},
		{"stale epoch is fenced", []step{
			{h: hdr(7, 1, 0, 1, 0)},
			{h: hdr(7, 0, 1, 1, -1), wantErr: ErrFenced},
		}},
		{"new epoch starts at zero", []step{
			{h: hdr(7, 0, 0, 1, 0)},
			{h: hdr(7, 1, 5, 1, -1), wantErr: ErrOutOfOrder},
			{h: hdr(7, 1, 0, 1, 1)},
		}},
		{"unknown producer accepts any sequence", []step{
			{h: hdr(9, 0, 42, 1, 0)},
			{h: hdr(9, 0, 43, 1, 1)},
		}},
		{"sequence wraps", []step{
			{h: hdr(7, 0, 1<<31-2, 2, 0)},
			{h: hdr(7, 0, 0, 1, 2)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for i, st := range tt.steps {
				dup, err := s.Check(st.h)
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("step %d: err %v, want %v", i, err, st.wantErr)
				}
				if (dup == nil) != (st.wantDup == nil) || dup != nil && *dup != *st.wantDup {
					t.Fatalf("step %d: dup %+v, want %+v", i, dup, st.wantDup)
				}
				if err == nil && dup == nil {
					s.Append(st.h)
				}
			}
		})
	}
}

func TestProducersSorted(t *testing.T) {
	s := New()
	for _, id := range []int64{5, 1, 3} {
		s.Append(hdr(id, 0, 0, 2, 0))
	}
	got := s.Producers()
	if len(got) != 3 || got[0].ID != 1 || got[1].ID != 3 || got[2].ID != 5 || got[0].LastSeq != 1 {
		t.Fatalf("%+v", got)
	}
}

// hdrAt is hdr with the batch's MaxTimestamp set to ts.
func hdrAt(pid int64, seq int32, base, ts int64) record.Header {
	h := hdr(pid, 0, seq, 1, base)
	h.MaxTimestamp = ts
	return h
}

func ids(s *State) []int64 {
	var out []int64
	for _, p := range s.Producers() {
		out = append(out, p.ID)
	}
	return out
}

func TestExpireBefore(t *testing.T) {
	tests := []struct {
		name        string
		batches     []record.Header
		ts          int64
		wantRemoved int
		wantIDs     []int64
	}{
		{"empty", nil, 100, 0, nil},
		{"strictly older expires, equal stays", []record.Header{hdrAt(1, 0, 0, 99), hdrAt(2, 0, 1, 100), hdrAt(3, 0, 2, 101)}, 100, 1, []int64{2, 3}},
		{"the last batch's timestamp counts, not the first", []record.Header{hdrAt(1, 0, 0, 10), hdrAt(1, 1, 1, 200)}, 100, 0, []int64{1}},
		{"the last batch counts even when older than an earlier one", []record.Header{hdrAt(1, 0, 0, 200), hdrAt(1, 1, 1, 10)}, 100, 1, nil},
		{"all expire", []record.Header{hdrAt(1, 0, 0, 1), hdrAt(2, 0, 1, 2)}, 1 << 62, 2, nil},
		{"negative timestamps (none given) expire first", []record.Header{hdrAt(1, 0, 0, -1), hdrAt(2, 0, 1, 0)}, 0, 1, []int64{2}},
		{"plain batches are not producers", []record.Header{{ProducerID: -1, MaxTimestamp: 1}}, 100, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for _, h := range tt.batches {
				s.Append(h)
			}
			if got := s.ExpireBefore(tt.ts); got != tt.wantRemoved {
				t.Fatalf("removed %d, want %d", got, tt.wantRemoved)
			}
			if got := ids(s); !reflect.DeepEqual(got, tt.wantIDs) {
				t.Fatalf("ids %v, want %v", got, tt.wantIDs)
			}
		})
	}
}

func TestExpiredProducerIsUnknown(t *testing.T) {
	s := New()
	s.Append(hdrAt(7, 0, 0, 10))
	s.Append(hdrAt(7, 1, 1, 11))
	if _, err := s.Check(hdrAt(7, 5, -1, 12)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("before expiry: %v", err)
	}
	s.ExpireBefore(12)
	if dup, err := s.Check(hdrAt(7, 5, -1, 12)); dup != nil || err != nil {
		t.Fatalf("after expiry: %v %v, want accepted at any sequence", dup, err)
	}
}

func TestMaxProducers(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		batches []record.Header
		wantIDs []int64
	}{
		{"under the bound nothing is evicted", 3, []record.Header{hdrAt(1, 0, 0, 5), hdrAt(2, 0, 1, 6), hdrAt(3, 0, 2, 7)}, []int64{1, 2, 3}},
		{"a new id evicts the oldest last batch", 2, []record.Header{hdrAt(1, 0, 0, 5), hdrAt(2, 0, 1, 6), hdrAt(3, 0, 2, 7)}, []int64{2, 3}},
		{"oldest by timestamp, not by arrival", 2, []record.Header{hdrAt(1, 0, 0, 9), hdrAt(2, 0, 1, 6), hdrAt(3, 0, 2, 7)}, []int64{1, 3}},
		{"a later batch renews a producer", 2, []record.Header{hdrAt(1, 0, 0, 5), hdrAt(2, 0, 1, 6), hdrAt(1, 1, 2, 8), hdrAt(3, 0, 3, 9)}, []int64{1, 3}},
		{"tie on timestamp evicts the smaller id", 2, []record.Header{hdrAt(5, 0, 0, 5), hdrAt(4, 0, 1, 5), hdrAt(9, 0, 2, 7)}, []int64{5, 9}},
		{"a known id never evicts", 1, []record.Header{hdrAt(1, 0, 0, 5), hdrAt(1, 1, 1, 1), hdrAt(1, 2, 2, 0)}, []int64{1}},
		{"a new epoch of a known id never evicts", 2, []record.Header{hdrAt(1, 0, 0, 5), hdrAt(2, 0, 1, 6), {ProducerID: 1, ProducerEpoch: 1, BaseOffset: 2, MaxTimestamp: 7}}, []int64{1, 2}},
		{"the new producer itself is kept even when oldest", 1, []record.Header{hdrAt(1, 0, 0, 5), hdrAt(2, 0, 1, 1)}, []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLimited(tt.max)
			for _, h := range tt.batches {
				s.Append(h)
				if s.Len() > tt.max {
					t.Fatalf("%d producers over the bound %d", s.Len(), tt.max)
				}
			}
			if got := ids(s); !reflect.DeepEqual(got, tt.wantIDs) {
				t.Fatalf("ids %v, want %v", got, tt.wantIDs)
			}
		})
	}
}

func TestCloneSharesNothing(t *testing.T) {
	s := New()
	s.Append(hdrAt(1, 0, 0, 5))
	c := s.Clone()
	if !equalStates(s, c) || checkInvariants(c) != nil {
		t.Fatalf("clone differs")
	}
	c.Append(hdrAt(1, 1, 1, 6))
	c.Append(hdrAt(2, 0, 2, 6))
	if got := s.Producers(); len(got) != 1 || got[0].LastSeq != 0 || got[0].LastTimestamp != 5 {
		t.Fatalf("original changed: %+v", got)
	}
}
