package producer

import "container/heap"

// ExpireBefore removes the producers whose last batch's MaxTimestamp is below ts (ms since
// the epoch) and returns how many it removed. It is Kafka's producer.id.expiration.ms check
// (remove when now - lastTimestamp >= expiration) with now taken from the log, never from a
// clock, so that replicas agree: a replica calls it with ts = T - DefaultExpirationMs + 1
// (or the topic's setting) at the same point of the log, where T is a time every replica
// reads from the same committed entries. T should be one the leader stamped (a
// LogAppendTime, or a time the leader puts in its entries), not a client's CreateTime: a
// single batch with a far-future CreateTime would otherwise expire every other producer.
// A producer that expired is unknown to Check, which then accepts any sequence from it.
func (s *State) ExpireBefore(ts int64) int {
	n := 0
	for len(s.byAge) > 0 && s.byAge[0].lastTimestamp < ts {
		s.evictOldest()
		n++
	}
	return n
}

// evictOldest removes the producer whose last batch has the smallest MaxTimestamp, the
// smallest id on a tie, so that every replica evicts the same one. s is not empty.
func (s *State) evictOldest() {
	e := heap.Pop(&s.byAge).(*entry)
	delete(s.byID, e.id)
}

// ageHeap is a container/heap of entries ordered by (lastTimestamp, id), a total order, so
// that its minimum is the same on every replica whatever the heap's layout.
type ageHeap []*entry

func (h ageHeap) Len() int { return len(h) }

func (h ageHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	return a.lastTimestamp < b.lastTimestamp || a.lastTimestamp == b.lastTimestamp && a.id < b.id
}

func (h ageHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].age, h[j].age = i, j
}

// Push appends x, an *entry; use heap.Push.
func (h *ageHeap) Push(x any) {
	e := x.(*entry)
	e.age = len(*h)
	*h = append(*h, e)
}

// Pop removes the last entry; use heap.Pop.
func (h *ageHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.age = -1
	return e
}
