package producer

import (
	"errors"
	"testing"

	"chronik/core/record"
)

func TestPendingRetryOfUncommittedBatch(t *testing.T) {
	p := NewPending(New(), 10)
	p.Append(hdr(7, 0, 0, 3, 10)) // [10, 12]
	p.Append(hdr(7, 0, 3, 2, 13)) // [13, 14]
	p.Commit(13)
	dup, err := p.Check(hdr(7, 0, 3, 2, -1))
	if err != nil || dup == nil || *dup != (Duplicate{13, 14}) || dup.LastOffset < p.CommitOffset() {
		t.Fatalf("retry of uncommitted batch: %+v %v, commit %d", dup, err, p.CommitOffset())
	}
	if got := p.Committed().Producers(); len(got) != 1 || got[0].LastSeq != 2 {
		t.Fatalf("committed %+v", got)
	}
	// A new leader's log lacks [13, 14]: the retry is then written again, at sequence 3.
	p.Discard(13)
	if p.EndOffset() != 13 {
		t.Fatalf("end %d", p.EndOffset())
	}
	if dup, err := p.Check(hdr(7, 0, 3, 2, -1)); dup != nil || err != nil {
		t.Fatalf("after discard: %+v %v, want append", dup, err)
	}
	if _, err := p.Check(hdr(7, 0, 5, 1, -1)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("after discard, sequence 5: %v", err)
	}
}

func TestPendingPlainBatchesMoveOffsetsOnly(t *testing.T) {
	p := NewPending(New(), 0)
	p.Append(record.Header{ProducerID: -1, BaseOffset: 0, LastOffsetDelta: 4})
	p.Append(hdr(1, 0, 0, 1, 5))
	p.Append(record.Header{ProducerID: -1, BaseOffset: 6})
	p.Discard(6) // only the plain batch: the view is kept
	if p.EndOffset() != 6 || p.View().Len() != 1 {
		t.Fatalf("end %d, view %+v", p.EndOffset(), p.View().Producers())
	}
	p.Commit(6)
	if p.Committed().Len() != 1 || p.CommitOffset() != 6 {
		t.Fatalf("commit %d, committed %+v", p.CommitOffset(), p.Committed().Producers())
	}
}

func TestPendingPreconditions(t *testing.T) {
	setup := func() *Pending {
		p := NewPending(New(), 0)
		p.Append(hdr(1, 0, 0, 3, 0)) // [0, 2]
		p.Append(hdr(1, 0, 3, 3, 3)) // [3, 5]
		p.Commit(3)
		return p
	}
	tests := []struct {
		name string
		do   func(p *Pending)
	}{
		{"append below end", func(p *Pending) { p.Append(hdr(1, 0, 6, 1, 5)) }},
		{"commit backwards", func(p *Pending) { p.Commit(2) }},
		{"commit beyond end", func(p *Pending) { p.Commit(7) }},
		{"commit inside a batch", func(p *Pending) { p.Commit(4) }},
		{"discard below commit", func(p *Pending) { p.Discard(2) }},
		{"discard inside a batch", func(p *Pending) { p.Discard(5) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := setup()
			defer func() {
				if recover() == nil {
					t.Fatalf("no panic")
				}
			}()
			tt.do(p)
		})
	}
}
