package producer

import (
	"fmt"
	"reflect"
	"sort"
)

// entryView is an entry without its place in the age heap.
type entryView struct {
	ID, LastTimestamp int64
	Epoch             int16
	Batches           []batch
}

// contents is s as a value independent of map order and heap layout, for comparisons.
func contents(s *State) (limit int, out []entryView) {
	for _, e := range s.byID {
		out = append(out, entryView{e.id, e.lastTimestamp, e.epoch, append([]batch(nil), e.batches...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return s.maxProducers, out
}

// equalStates reports whether a and b hold the same producers with the same bound.
func equalStates(a, b *State) bool {
	la, ea := contents(a)
	lb, eb := contents(b)
	return la == lb && reflect.DeepEqual(ea, eb)
}

// checkInvariants returns the first broken invariant of s, or nil.
func checkInvariants(s *State) error {
	if len(s.byID) > s.maxProducers {
		return fmt.Errorf("%d producers over the bound %d", len(s.byID), s.maxProducers)
	}
	if len(s.byAge) != len(s.byID) {
		return fmt.Errorf("heap %d, map %d", len(s.byAge), len(s.byID))
	}
	for id, e := range s.byID {
		if e.id != id || e.age < 0 || e.age >= len(s.byAge) || s.byAge[e.age] != e {
			return fmt.Errorf("producer %d: id %d, age %d not its heap slot", id, e.id, e.age)
		}
		if len(e.batches) < 1 || len(e.batches) > MaxCachedBatches {
			return fmt.Errorf("producer %d: %d batches", id, len(e.batches))
		}
	}
	for i := 1; i < len(s.byAge); i++ {
		if s.byAge.Less(i, (i-1)/2) {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	return nil
}
