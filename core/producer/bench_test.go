package producer

import "testing"

// full returns a State holding MaxProducers producers with MaxCachedBatches batches each.
func full() *State {
	s := New()
	off := int64(0)
	for id := int64(0); id < MaxProducers; id++ {
		for seq := int32(0); seq < MaxCachedBatches; seq++ {
			s.Append(hdrAt(id, seq, off, id))
			off++
		}
	}
	return s
}

// BenchmarkAppendEvict is the cost of a new producer id at the MaxProducers bound: a scan
// of every producer for the oldest.
func BenchmarkAppendEvict(b *testing.B) {
	s := full()
	id := int64(MaxProducers)
	b.ResetTimer()
	for b.Loop() {
		s.Append(hdrAt(id, 0, 1<<40, 1<<40+id))
		id++
	}
}

func BenchmarkAppendKnown(b *testing.B) {
	s := full()
	seq := int32(MaxCachedBatches)
	b.ResetTimer()
	for b.Loop() {
		s.Append(hdrAt(7, seq, 1<<40, 1<<40))
		seq++
	}
}

func BenchmarkMarshalFull(b *testing.B) {
	s := full()
	var buf []byte
	b.ResetTimer()
	for b.Loop() {
		var err error
		if buf, err = s.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeFull(b *testing.B) {
	buf, err := full().MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClone(b *testing.B) {
	s := full()
	b.ResetTimer()
	for b.Loop() {
		s.Clone()
	}
}
