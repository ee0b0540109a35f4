package producer

import (
	"errors"
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
