package producer

// ExpireBefore removes the producers whose last batch's MaxTimestamp is below ts (ms since
// the epoch) and returns how many it removed. It is Kafka's producer.id.expiration.ms check
// (remove when now - lastTimestamp >= expiration) with now taken from the log, never from a
// clock, so that replicas agree: a replica calls it with ts = T - DefaultExpirationMs + 1
// (or the topic's setting) where T is a timestamp every replica derives from the same
// committed batches, for example the largest MaxTimestamp applied so far, at the same
// point of the log. A producer that expired is unknown to Check, which then accepts any
// sequence from it.
func (s *State) ExpireBefore(ts int64) int {
	n := 0
	for id, e := range s.byID {
		if e.lastTimestamp < ts {
			delete(s.byID, id)
			n++
		}
	}
	return n
}

// evictOldest removes the producer whose last batch has the smallest MaxTimestamp, the
// smallest id on a tie, so that every replica evicts the same one.
func (s *State) evictOldest() {
	var oldest int64
	var oldestTs int64
	found := false
	for id, e := range s.byID {
		if !found || e.lastTimestamp < oldestTs || e.lastTimestamp == oldestTs && id < oldest {
			oldest, oldestTs, found = id, e.lastTimestamp, true
		}
	}
	if found {
		delete(s.byID, oldest)
	}
}
