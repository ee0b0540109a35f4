package producer

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"chronik/core/record"
	"pgregory.net/rapid"
)

// genHeader draws a batch at base: a plain batch, or one of a few producers with a few
// epochs, whose sequence continues the producer's last batch in s, retries one of its
// recent batches, jumps, or sits near the wrap; timestamps go back as well as forward.
func genHeader(t *rapid.T, s *State, base int64) record.Header {
	pid := rapid.Int64Range(-1, 5).Draw(t, "pid")
	n := rapid.Int32Range(1, 3).Draw(t, "records")
	h := record.Header{
		BaseOffset:      base,
		ProducerID:      pid,
		ProducerEpoch:   -1,
		BaseSequence:    -1,
		LastOffsetDelta: n - 1,
		NumRecords:      n,
		MaxTimestamp:    rapid.Int64Range(-1, 60).Draw(t, "ts"),
	}
	if pid < 0 {
		return h
	}
	h.ProducerEpoch = rapid.Int16Range(0, 2).Draw(t, "epoch")
	e := s.byID[pid]
	switch kind := rapid.IntRange(0, 3).Draw(t, "kind"); {
	case kind == 0 && e != nil:
		h.ProducerEpoch = e.epoch
		h.BaseSequence = nextSequence(e.batches[len(e.batches)-1].lastSeq)
	case kind == 1 && e != nil:
		b := e.batches[rapid.IntRange(0, len(e.batches)-1).Draw(t, "retry")]
		h.ProducerEpoch = e.epoch
		h.BaseSequence = b.firstSeq
		h.LastOffsetDelta = int32((int64(b.lastSeq) - int64(b.firstSeq) + 1<<31) % (1 << 31))
		h.NumRecords = h.LastOffsetDelta + 1
	case kind == 2:
		h.BaseSequence = rapid.Int32Range(1<<31-4, 1<<31-1).Draw(t, "seq near wrap")
	default:
		h.BaseSequence = rapid.Int32Range(0, 12).Draw(t, "seq")
	}
	return h
}

type checked struct {
	dup *Duplicate
	err error
}

func checkState(s *State, h record.Header) checked {
	d, err := s.Check(h)
	return checked{d, err}
}

func sameChecked(a, b checked) bool {
	return errors.Is(a.err, b.err) && errors.Is(b.err, a.err) && (a.dup == nil) == (b.dup == nil) && (a.dup == nil || *a.dup == *b.dup)
}

// TestSnapshotProperty: for any state, decode(encode(s)) and s.Clone() equal s, and the
// three answer Check identically and stay equal under any following batches and expiries.
func TestSnapshotProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(1, 6).Draw(t, "maxProducers")
		s := newLimited(limit)
		var end int64
		for range rapid.IntRange(0, 40).Draw(t, "history") {
			if rapid.IntRange(0, 9).Draw(t, "expire?") == 0 {
				s.ExpireBefore(rapid.Int64Range(0, 60).Draw(t, "expire before"))
				continue
			}
			h := genHeader(t, s, end)
			s.Append(h)
			end = h.LastOffset() + 1
			if err := checkInvariants(s); err != nil {
				t.Fatal(err)
			}
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		d := newLimited(limit)
		if err := d.UnmarshalBinary(b); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if err := checkInvariants(d); err != nil {
			t.Fatalf("decoded: %v", err)
		}
		c := s.Clone()
		if !equalStates(s, d) || !equalStates(s, c) {
			t.Fatalf("decoded or cloned state differs:\n%+v\n%+v\n%+v", s.Producers(), d.Producers(), c.Producers())
		}
		if def, err := Decode(b); err != nil || !reflect.DeepEqual(def.Producers(), s.Producers()) {
			t.Fatalf("Decode: %v", err)
		}
		states := []*State{s, c, d}
		for range rapid.IntRange(0, 30).Draw(t, "following") {
			if rapid.IntRange(0, 9).Draw(t, "expire after?") == 0 {
				ts := rapid.Int64Range(0, 60).Draw(t, "expire after")
				n := s.ExpireBefore(ts)
				for _, o := range states[1:] {
					if got := o.ExpireBefore(ts); got != n {
						t.Fatalf("ExpireBefore(%d) removed %d and %d", ts, n, got)
					}
				}
				continue
			}
			h := genHeader(t, s, end)
			want := checkState(s, h)
			for _, o := range states[1:] {
				if got := checkState(o, h); !sameChecked(got, want) {
					t.Fatalf("Check(%+v) = %+v, original %+v", h, got, want)
				}
			}
			if want.err == nil && want.dup == nil || rapid.Bool().Draw(t, "replayed anyway") {
				for _, o := range states {
					o.Append(h)
				}
				end = h.LastOffset() + 1
			}
		}
		want, _ := s.MarshalBinary()
		for _, o := range states[1:] {
			if !equalStates(s, o) || checkInvariants(o) != nil {
				t.Fatalf("states diverged:\n%+v\n%+v", s.Producers(), o.Producers())
			}
			if got, _ := o.MarshalBinary(); !bytes.Equal(got, want) {
				t.Fatalf("encodings diverged")
			}
		}
	})
}

// op is a step of the committed history: a batch appended, or an expiry.
type op struct {
	h        record.Header
	expireTs int64
	expire   bool
}

func fold(limit int, ops []op, tail []record.Header) *State {
	s := newLimited(limit)
	for _, o := range ops {
		if o.expire {
			s.ExpireBefore(o.expireTs)
		} else {
			s.Append(o.h)
		}
	}
	for _, h := range tail {
		s.Append(h)
	}
	return s
}

// TestPendingProperty: for any sequence of appends, commits, truncations of the
// uncommitted suffix and expiries, the committed state equals the fold of the committed
// history, and the view equals it plus the surviving uncommitted batches; the view answers
// Check as that rebuilt state does.
func TestPendingProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(1, 6).Draw(t, "maxProducers")
		start := rapid.Int64Range(0, 5).Draw(t, "start offset")
		p := NewPending(newLimited(limit), start)
		var committed []op
		var log []record.Header // batches appended and not truncated, in offset order
		ncommitted := 0         // log[:ncommitted] are committed
		for range rapid.IntRange(0, 60).Draw(t, "steps") {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1:
				k := rapid.IntRange(ncommitted, len(log)).Draw(t, "commit batches")
				upTo := p.CommitOffset()
				if k > ncommitted {
					upTo = log[k-1].LastOffset() + 1
				}
				if k < len(log) && rapid.Bool().Draw(t, "commit up to next base") {
					upTo = log[k].BaseOffset // the gap before a batch is boundary too
				}
				p.Commit(upTo)
				for _, h := range log[ncommitted:k] {
					committed = append(committed, op{h: h})
				}
				ncommitted = k
			case 2:
				k := rapid.IntRange(ncommitted, len(log)).Draw(t, "keep batches")
				from := p.EndOffset() + rapid.Int64Range(0, 2).Draw(t, "beyond end")
				if k < len(log) {
					from = log[k].BaseOffset
				}
				if k > 0 && from > log[k-1].LastOffset()+1 && rapid.Bool().Draw(t, "cut at batch end") {
					from = log[k-1].LastOffset() + 1
				}
				if k == ncommitted && from < p.CommitOffset() {
					from = p.CommitOffset()
				}
				p.Discard(from)
				log = log[:k]
			case 3:
				ts := rapid.Int64Range(0, 60).Draw(t, "expire before")
				p.ExpireBefore(ts)
				committed = append(committed, op{expire: true, expireTs: ts})
			default:
				h := genHeader(t, p.View(), p.EndOffset()+rapid.Int64Range(0, 2).Draw(t, "gap"))
				want := checkState(fold(limit, committed, log[ncommitted:]), h)
				if got := checkPending(p, h); !sameChecked(got, want) {
					t.Fatalf("Check(%+v) = %+v, rebuilt state %+v", h, got, want)
				}
				p.Append(h)
				log = append(log, h)
			}
			if got, want := p.Committed(), fold(limit, committed, nil); !equalStates(got, want) || checkInvariants(got) != nil {
				t.Fatalf("committed state %+v, rebuilt %+v", got.Producers(), want.Producers())
			}
			if got, want := p.View(), fold(limit, committed, log[ncommitted:]); !equalStates(got, want) || checkInvariants(got) != nil {
				t.Fatalf("view %+v, rebuilt %+v", got.Producers(), want.Producers())
			}
		}
	})
}

func checkPending(p *Pending, h record.Header) checked {
	d, err := p.Check(h)
	return checked{d, err}
}
